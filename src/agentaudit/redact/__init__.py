"""Finding personal data and secrets in payload text, and redacting them from events."""

from __future__ import annotations

from agentaudit.redact.detectors import DETECTORS, Detector, Finding, detector_names, scan
from agentaudit.redact.redactor import (
    DEFAULT_FIELDS,
    MODES,
    SECRET_DETECTORS,
    RedactionRules,
    Redactor,
    finding_filter,
)

__all__ = ["DEFAULT_FIELDS", "DETECTORS", "MODES", "SECRET_DETECTORS", "Detector", "Finding",
           "RedactionRules", "Redactor", "detector_names", "finding_filter", "scan"]
