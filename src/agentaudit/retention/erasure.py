"""Erasure on request (GDPR Art. 17): erase the payloads of a user's, session's or trace's
events, refuse the ones under a legal hold (and say which hold), and record the request as an
``audit.erasure`` event. Envelopes and leaves stay, so the log still verifies.

The request is recorded without the personal identifier it names: a user id appears only as
``sha256:`` + the first 16 hex digits of SHA-256(tenant ":" user id), enough to match a repeated
request, not to read the id back. Session and trace ids are recorded as given.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from agentaudit.events import AuditEvent, EventType
from agentaudit.exceptions import ConfigError
from agentaudit.retention.holds import check_reason
from agentaudit.store._sqlite_retention import ErasurePlan, ErasureRecord, Hold, new_id

__all__ = ["ErasureResult", "erase", "erasure_reason", "user_pseudonym"]


def user_pseudonym(tenant: str, user_id: str) -> str:
    """How an erasure request for ``user_id`` is recorded."""
    return "sha256:" + hashlib.sha256(f"{tenant}:{user_id}".encode()).hexdigest()[:16]


def erasure_reason(erasure_id: str, reason: str) -> str:
    """The ``erased`` text of a payload erased on request (``verify`` prints it)."""
    return f"erasure {erasure_id}: {reason}"


@dataclass
class ErasureResult:
    """What an erasure request did (or, dry, would do)."""

    id: str
    tenant: str
    selector: str  # "user", "session" or "trace"
    recorded_as: str  # the selector value as recorded (a user id is pseudonymised)
    reason: str
    at: float
    dry_run: bool
    erased: int = 0
    payload_bytes: int = 0
    already_erased: int = 0
    refused_held: int = 0
    holds: list[tuple[Hold, int]] = field(default_factory=list)
    audit_event_id: str | None = None
    space: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        from agentaudit.query import iso_time

        return {"erasure_id": self.id, "tenant": self.tenant, "selector": self.selector,
                "recorded_as": self.recorded_as, "reason": self.reason,
                "at": iso_time(self.at), "dry_run": self.dry_run, "erased": self.erased,
                "payload_bytes": self.payload_bytes, "already_erased": self.already_erased,
                "refused_held": self.refused_held,
                "holds": [{"hold_id": h.id, "reason": h.reason, "events": n}
                          for h, n in self.holds],
                "audit_event_id": self.audit_event_id, "space": self.space}


def _selector(user: str | None, session: str | None, trace: str | None) -> tuple[str, str]:
    given = [(k, v) for k, v in (("user", user), ("session", session), ("trace", trace))
             if v is not None]
    if len(given) != 1:
        raise ConfigError("erase needs exactly one of --user ID, --session ID, --trace ID"
                          + ("" if not given else f" (got {', '.join('--' + k for k, _ in given)})"))
    kind, value = given[0]
    if not value.strip() or len(value) > 1024:
        raise ConfigError(f"--{kind} must be a non-empty id of at most 1024 characters")
    return kind, value


def erase(store: Any, tenant: str, *, reason: str, user: str | None = None,
          session: str | None = None, trace: str | None = None, actor: str = "cli",
          now: float | None = None, dry_run: bool = False, vacuum: bool = True) -> ErasureResult:
    """Erase the payloads of the events of one user, session or trace (not the held ones)."""
    text = check_reason(reason, "an erasure")
    kind, value = _selector(user, session, trace)
    at = time.time() if now is None else now
    shown = user_pseudonym(tenant, value) if kind == "user" else value
    result = ErasureResult(new_id("er_"), tenant, kind, shown, text, at, dry_run)

    def plan() -> ErasurePlan | None:
        live, result.already_erased = store.erasure_candidates(tenant, kind, value)
        ids = [row_id for row_id, _n, held in live if not held]
        result.erased = len(ids)
        result.payload_bytes = sum(n for _i, n, held in live if not held)
        result.refused_held = len(live) - len(ids)
        if result.refused_held:
            result.holds = store.holds_matching(tenant, kind, value)
        return None if dry_run else ErasurePlan(
            [(erasure_reason(result.id, text), ids)], at, finish)

    def finish(erased: list[list[int]]) -> tuple[ErasureRecord, list[AuditEvent]]:
        # read in this same transaction: what plan() chose is what was erased
        event = _erasure_event(result, actor)
        result.audit_event_id = event.event_id
        record = ErasureRecord(result.id, tenant, "erasure", f"{kind}={shown}", text, at,
                               len(erased[0]), result.payload_bytes, result.refused_held,
                               event.event_id)
        return record, [event]

    if dry_run:
        plan()
        return result
    store.erase_payloads(plan)
    if vacuum and result.erased:
        result.space = store.reclaim_space()
    return result


def _erasure_event(result: ErasureResult, actor: str) -> AuditEvent:
    """The ``audit.erasure`` event of a request: its counts, never the user id."""
    return AuditEvent(
        event_type=str(EventType.AUDIT_ERASURE), agent_name="agentaudit", tenant=result.tenant,
        action="erase", source=actor, timestamp=result.at,
        params={"erasure_id": result.id, "selector": result.selector,
                "value": result.recorded_as, "reason": result.reason, "erased": result.erased,
                "payload_bytes": result.payload_bytes,
                "already_erased": result.already_erased,
                "refused_held": result.refused_held,
                "holds": [h.id for h, _n in result.holds], "by": actor})
