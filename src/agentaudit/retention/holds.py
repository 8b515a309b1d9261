"""Legal holds: while a hold is active, neither retention nor erasure touches the payloads of
the events it matches. A hold selects by trace, session, agent, user and/or a time range (all
given criteria must match); it also covers matching events recorded after it was created.
Creating and releasing a hold are ``audit.legal_hold`` / ``audit.legal_hold_released`` events.
"""

from __future__ import annotations

import time
from typing import Any

from agentaudit.events import AuditEvent, EventType
from agentaudit.exceptions import ConfigError, NotFound
from agentaudit.store._sqlite_retention import Hold, new_id

__all__ = ["Hold", "create_hold", "hold_event", "release_hold"]

MAX_REASON = 1000


def check_reason(reason: str | None, what: str) -> str:
    """A non-empty reason of at most 1000 characters, stripped."""
    text = (reason or "").strip()
    if not text:
        raise ConfigError(f"{what} needs a --reason (it is recorded in the audit log)")
    if len(text) > MAX_REASON:
        raise ConfigError(f"the reason is {len(text)} characters; at most {MAX_REASON}")
    return text


def hold_event(hold: Hold, released: bool, actor: str, matching: int | None = None
               ) -> AuditEvent:
    """The audit event of creating or releasing ``hold``."""
    params: dict[str, Any] = {"hold_id": hold.id, "reason": hold.reason, **hold.criteria(),
                              "by": actor}
    if matching is not None:
        params["matching_events"] = matching
    kind = EventType.AUDIT_LEGAL_HOLD_RELEASED if released else EventType.AUDIT_LEGAL_HOLD
    at = hold.released_at if released and hold.released_at is not None else hold.created_at
    return AuditEvent(event_type=str(kind), agent_name="agentaudit", tenant=hold.tenant,
                      action="hold.release" if released else "hold.create", params=params,
                      source=actor, timestamp=at)


def create_hold(store: Any, tenant: str, reason: str, *, trace: str | None = None,
                session: str | None = None, agent: str | None = None, user: str | None = None,
                from_ts: float | None = None, to_ts: float | None = None, actor: str = "cli",
                now: float | None = None) -> tuple[Hold, int]:
    """Create a hold; returns it and how many stored events it matches now."""
    text = check_reason(reason, "a legal hold")
    if all(v is None for v in (trace, session, agent, user, from_ts, to_ts)):
        raise ConfigError("a legal hold needs at least one of --trace, --session, --agent, "
                          "--user, --from/--to (holding a whole tenant takes --from)")
    if from_ts is not None and to_ts is not None and from_ts >= to_ts:
        raise ConfigError("--from must be before --to")
    for name, value in (("--trace", trace), ("--session", session), ("--agent", agent),
                        ("--user", user)):
        if value is not None and (not value.strip() or len(value) > 1024):
            raise ConfigError(f"{name} must be a non-empty id of at most 1024 characters")
    at = time.time() if now is None else now
    hold = Hold(new_id("hold_"), tenant, text, trace, session, agent, user, from_ts, to_ts,
                at, actor)
    matching = store.held_events(hold)
    store.insert_hold(hold, hold_event(hold, False, actor, matching))
    return hold, matching


def release_hold(store: Any, hold_id: str, tenant: str, *, actor: str = "cli",
                 now: float | None = None) -> tuple[Hold, bool]:
    """Release a hold of ``tenant``; returns (hold, whether it was active until now)."""
    hold = store.get_hold(hold_id)
    if hold is None or hold.tenant != tenant:
        raise NotFound(f"no legal hold {hold_id!r} in tenant {tenant!r} "
                       "(see `agentaudit hold list`)")
    if not hold.active:
        return hold, False
    at = time.time() if now is None else now
    released = Hold(**{**hold.__dict__, "released_at": at, "released_by": actor})
    if not store.mark_hold_released(hold.id, at, actor, hold_event(released, True, actor)):
        return store.get_hold(hold_id), False
    return released, True
