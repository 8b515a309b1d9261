"""Security and governance detection on the audit log (docs/detection.md)."""

from __future__ import annotations

from agentaudit.detect.engine import DetectionEngine
from agentaudit.detect.firing import DETECT_SOURCE, Firing
from agentaudit.detect.history import StoreHistory, detect_history
from agentaudit.detect.hook import DetectionHook, attach
from agentaudit.detect.injection import PATTERNS, pattern_ids, scan_text
from agentaudit.detect.rules import (
    RULE_NAMES,
    SEVERITIES,
    RuleSet,
    default_rules,
    load_rules,
    rules_from_mapping,
)

__all__ = ["DETECT_SOURCE", "PATTERNS", "RULE_NAMES", "SEVERITIES", "DetectionEngine",
           "DetectionHook", "Firing", "RuleSet", "StoreHistory", "default_rules",
           "attach", "detect_history", "load_rules", "pattern_ids", "rules_from_mapping", "scan_text"]
