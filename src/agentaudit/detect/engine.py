"""The detection engine: every enabled rule over each stored event, in time order.

``DetectionEngine.evaluate(events)`` is called with each committed batch (by the collector's
writer thread or the SDK's, never the agent's) or with history in pages (``agentaudit
detect``). It skips events written by detection itself (``source = agentaudit.detect``), so a
firing never feeds back, and applies each rule's suppression window: a repeat of the same
incident (same dedup key) within ``suppress_seconds`` is counted on the first firing
(``occurrences``), not fired again. A rule that raises is logged and counted, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from agentaudit.detect._base import BoundedDict, History, Rule
from agentaudit.detect.anomaly import AnomalyRule
from agentaudit.detect.content import ExfiltrationRule, PromptInjectionRule
from agentaudit.detect.firing import DETECT_SOURCE, Firing
from agentaudit.detect.governance import (
    ActingAfterStopRule,
    ApprovalRule,
    BudgetRule,
    HandoffLoopRule,
    RejectionsRule,
)
from agentaudit.detect.rules import RuleSet, default_rules
from agentaudit.events import AuditEvent

__all__ = ["DetectionEngine"]

log = logging.getLogger("agentaudit.detect")

_RULES: dict[str, type[Rule]] = {
    "prompt_injection": PromptInjectionRule, "exfiltration": ExfiltrationRule,
    "anomaly": AnomalyRule, "approval_required": ApprovalRule,
    "repeated_rejections": RejectionsRule, "budget": BudgetRule,
    "handoff_loop": HandoffLoopRule, "acting_after_stop": ActingAfterStopRule,
}


def _time_key(ev: AuditEvent) -> float:
    return ev.timestamp


class DetectionEngine:
    """Stateful rules over a stream of stored events (one engine per writer)."""

    def __init__(self, rules: RuleSet | None = None, history: History | None = None) -> None:
        self.ruleset = rules or default_rules()
        self.rules: list[Rule] = []
        for name in self.ruleset.enabled():
            rule = _RULES[name](self.ruleset.rule(name), history)
            if isinstance(rule, AnomalyRule):
                rule.baseline_seconds = float(self.ruleset.options["baseline_hours"]) * 3600
            self.rules.append(rule)
        self._by_type: dict[str, list[Rule]] = {}
        self._last: BoundedDict[str, Firing] = BoundedDict(100_000)
        # Suppressed repeats of the last ``evaluate``: (first firing, timestamp of the repeat).
        self.repeats: list[tuple[Firing, float]] = []
        self.stats: dict[str, Any] = {"events": 0, "firings": 0, "suppressed": 0,
                                      "rule_errors": 0, "last_error": None}

    def evaluate(self, events: Sequence[AuditEvent], cutoff: float | None = None) -> list[Firing]:
        """Firings for these stored events (in time order). ``cutoff``: events stored before it
        are history the rules may read; default the batch's earliest timestamp."""
        self.repeats = []
        batch = [ev for ev in events if ev.source != DETECT_SOURCE]
        if not batch:
            return []
        batch.sort(key=_time_key)
        start = batch[0].timestamp if cutoff is None else cutoff
        for rule in self.rules:
            rule.cutoff = start
        out: list[Firing] = []
        by_type = self._by_type
        for ev in batch:
            rules = by_type.get(ev.event_type)
            if rules is None:
                rules = by_type[ev.event_type] = [
                    r for r in self.rules if r.event_types is None
                    or ev.event_type in r.event_types]
            for rule in rules:
                try:
                    found = rule.observe(ev)
                except Exception as e:  # one broken rule must not stop the others
                    self._rule_failed(rule, ev, e)
                    continue
                if found:
                    window = rule.settings["suppress_seconds"]
                    out.extend(f for f in found if self._admit(f, window))
        self.stats["events"] += len(batch)
        self.stats["firings"] += len(out)
        return out

    def _admit(self, firing: Firing, window: float) -> bool:
        first = self._last.get(firing.dedup_key)
        if first is not None and firing.timestamp - first.timestamp < window:
            first.occurrences += 1
            self.repeats.append((first, firing.timestamp))
            self.stats["suppressed"] += 1
            return False
        self._last[firing.dedup_key] = firing
        return True

    def _rule_failed(self, rule: Rule, ev: AuditEvent, e: Exception) -> None:
        self.stats["rule_errors"] += 1
        message = f"rule {rule.name} failed on event {ev.event_id}: {e!r}"
        if message != self.stats["last_error"]:
            log.warning("agentaudit: %s", message)
        self.stats["last_error"] = message
