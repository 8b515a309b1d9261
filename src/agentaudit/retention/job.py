"""The retention job: erase the payloads whose tier's time is up, keep envelopes and leaves.

A payload recorded on UTC day ``d`` in a tier of ``D`` days is kept for ``D`` whole days after
that day and erased from ``(d + D + 1) * 86400`` on (``expiry_of``): an event of 1 November in
the 7-day debug tier is erased on 9 November 00:00 UTC. Events under an active legal hold are
kept and counted. A run (unless ``dry_run``) is recorded as one ``audit.retention_run`` event with
its counts, in the transaction that erases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentaudit.events import TIERS, AuditEvent, EventType
from agentaudit.retention.config import RetentionConfig, TenantPolicy
from agentaudit.store._sqlite_retention import ErasurePlan, ErasureRecord, new_id

__all__ = ["RetentionRun", "apply_all", "apply_retention", "expiry_of", "last_expired_day",
           "retention_status", "retention_reason"]

DAY = 86400


def last_expired_day(now: float, days: int) -> int:
    """The newest UTC day (days since the epoch) whose payloads a ``days``-day tier erases."""
    return int(now // DAY) - days - 1


def expiry_of(day: int, days: int) -> float:
    """When payloads of UTC day ``day`` in a ``days``-day tier are due for erasure."""
    return float((day + days + 1) * DAY)


def retention_reason(tier: str, days: int) -> str:
    """The ``erased`` text of a payload erased by retention (``verify`` prints it)."""
    return f"retention: {tier} tier, {days} days"


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, UTC).date().isoformat()


@dataclass
class RetentionRun:
    """What one run erased (or, dry, would erase) in one tenant."""

    tenant: str
    id: str
    at: float
    dry_run: bool
    days: dict[str, int]
    erased: int = 0
    payload_bytes: int = 0
    kept_by_hold: int = 0
    by_tier: dict[str, dict[str, int]] = field(default_factory=dict)
    audit_event_id: str | None = None
    space: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "run_id": self.id, "at": _iso(self.at),
                "dry_run": self.dry_run, "erased": self.erased,
                "payload_bytes": self.payload_bytes, "kept_by_hold": self.kept_by_hold,
                "by_tier": self.by_tier, "days": self.days,
                "audit_event_id": self.audit_event_id, "space": self.space}


def _iso(ts: float) -> str:
    from agentaudit.query import iso_time

    return str(iso_time(ts))


def run_event(run: RetentionRun, actor: str) -> AuditEvent:
    """The ``audit.retention_run`` event of a run: its counts, never a payload."""
    params: dict[str, Any] = {"run_id": run.id, "erased": run.erased,
                              "payload_bytes": run.payload_bytes,
                              "kept_by_hold": run.kept_by_hold, "by_tier": run.by_tier,
                              "days": run.days, "by": actor}
    return AuditEvent(event_type=str(EventType.AUDIT_RETENTION_RUN), agent_name="agentaudit",
                      tenant=run.tenant, action="retention.apply", params=params, source=actor,
                      timestamp=run.at)


def apply_retention(store: Any, policy: TenantPolicy, *, now: float | None = None,
                    dry_run: bool = False, actor: str = "cli", vacuum: bool = True,
                    full_vacuum: bool = False, record_empty: bool = True,
                    progress: Callable[[int, int], None] | None = None) -> RetentionRun:
    """Erase the expired, unheld payloads of ``policy.tenant``; see the module docstring.

    ``record_empty=False`` skips the audit event of a run that erased nothing (the collector's
    periodic runs); ``progress(done, total)`` is called as rows are erased.
    """
    at = time.time() if now is None else now
    last = {t: last_expired_day(at, policy.days[t]) for t in TIERS}
    run = RetentionRun(policy.tenant, new_id("ret_"), at, dry_run, dict(policy.days))

    def plan() -> ErasurePlan | None:
        groups = _count(run, store.retention_candidates(policy.tenant, policy.rules, last))
        if dry_run or (run.erased == 0 and not record_empty):
            return None
        event = run_event(run, actor)
        run.audit_event_id = event.event_id
        record = None
        if run.erased:
            summary = ", ".join(f"{t} {policy.days[t]} d" for t in TIERS if groups[t])
            record = ErasureRecord(run.id, policy.tenant, "retention", None,
                                   f"retention ({summary})", at, run.erased,
                                   run.payload_bytes, run.kept_by_hold, event.event_id)
        return ErasurePlan([(retention_reason(t, policy.days[t]), ids)
                            for t, ids in groups.items() if ids], at, record, [event])

    if dry_run:
        plan()
        return run
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], run.erased)
    store.erase_payloads(plan, step)
    if vacuum and run.erased:
        run.space = store.reclaim_space(full=full_vacuum)
    return run


def _count(run: RetentionRun, candidates: list[tuple[int, str, int, int, bool]]
           ) -> dict[str, list[int]]:
    """Fill the run's counts from the candidates; the row ids to erase, by tier."""
    groups: dict[str, list[int]] = {t: [] for t in TIERS}
    for row_id, tier, _day, nbytes, held in candidates:
        counts = run.by_tier.setdefault(tier, {"erased": 0, "payload_bytes": 0,
                                               "kept_by_hold": 0})
        if held:
            counts["kept_by_hold"] += 1
            run.kept_by_hold += 1
        else:
            counts["erased"] += 1
            counts["payload_bytes"] += nbytes
            run.erased += 1
            run.payload_bytes += nbytes
            groups[tier].append(row_id)
    return groups


def apply_all(store: Any, config: RetentionConfig, **options: Any) -> list[RetentionRun]:
    """``apply_retention`` for every tenant with a log in ``store``."""
    return [apply_retention(store, config.policy(t), **options) for t in store.info().tenants]


def retention_status(store: Any, policy: TenantPolicy,
                     now: float | None = None) -> dict[str, Any]:
    """Per tier and day: events, payloads kept, erased, held, payload bytes and expiry."""
    at = time.time() if now is None else now
    days_rows = []
    tiers: dict[str, dict[str, Any]] = {
        t: {"tier": t, "days": policy.days[t], "events": 0, "payloads": 0, "erased": 0,
            "held": 0, "payload_bytes": 0, "due": 0} for t in TIERS}
    for row in store.retention_days(policy.tenant, policy.rules):
        tier, day = row["tier"], int(row["day"])
        expires = expiry_of(day, policy.days[tier])
        due = row["payloads"] - row["held"] if expires <= at else 0
        days_rows.append({**row, "date": _date(day), "expires": _iso(expires),
                          "expired": expires <= at, "due": max(due, 0)})
        total = tiers[tier]
        for key in ("events", "payloads", "erased", "held", "payload_bytes"):
            total[key] += int(row[key] or 0)
        total["due"] += max(due, 0)
    return {"tenant": policy.tenant, "at": _iso(at), "tiers": list(tiers.values()),
            "days": days_rows, "rules": [r.describe() for r in policy.rules],
            "warnings": policy.warnings()}
