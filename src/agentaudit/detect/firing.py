"""A rule firing, and the audit event it becomes in the verifiable log.

The event (``agent.security`` or ``agent.compliance``) names its evidence in three ways: the
first evidence event is its ``parent_event_id`` (part of the signed envelope, kept after any
erasure), every evidence id is listed in ``params.evidence`` and in ``tags["evidence"]``.
``source`` is ``agentaudit.detect``: the engine never inspects events of that source, so a
firing cannot trigger another one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentaudit.events import AuditEvent, EventType, new_event_id

__all__ = ["DETECT_SOURCE", "Firing"]

DETECT_SOURCE = "agentaudit.detect"
_MAX_EVIDENCE = 50


@dataclass
class Firing:
    """What a rule found: a one-line ``title``, an ``explanation`` a human can act on, and the
    ids of the events that are its evidence (the triggering one first)."""

    rule: str
    severity: str
    kind: str
    title: str
    explanation: str
    evidence: list[str]
    tenant: str
    agent: str
    timestamp: float
    dedup_key: str
    trace_id: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=new_event_id)
    occurrences: int = 1

    def to_event(self) -> AuditEvent:
        """The ``agent.security`` / ``agent.compliance`` event recording this firing."""
        evidence = self.evidence[:_MAX_EVIDENCE]
        event_type = EventType.COMPLIANCE if self.kind == "compliance" else EventType.SECURITY
        return AuditEvent(
            event_type=event_type.value, agent_name=self.agent, event_id=self.event_id,
            tenant=self.tenant, action=self.rule, source=DETECT_SOURCE,
            parent_event_id=evidence[0] if evidence else None, trace_id=self.trace_id,
            task_id=self.task_id, session_id=self.session_id, timestamp=self.timestamp,
            reasoning=self.explanation,
            params={"rule": self.rule, "severity": self.severity, "title": self.title,
                    "evidence": evidence, "dedup_key": self.dedup_key, "details": self.details},
            tags={"detect.rule": self.rule, "severity": self.severity,
                  "evidence": ",".join(evidence)},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (CLI output, alert payloads)."""
        return {"event_id": self.event_id, "rule": self.rule, "severity": self.severity,
                "kind": self.kind, "title": self.title, "explanation": self.explanation,
                "evidence": self.evidence, "tenant": self.tenant, "agent": self.agent,
                "timestamp": self.timestamp, "trace_id": self.trace_id,
                "task_id": self.task_id, "dedup_key": self.dedup_key,
                "occurrences": self.occurrences, "details": self.details}
