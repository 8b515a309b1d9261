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

__all__ = ["RetentionRun", "apply_all", "apply_retention", "commit_retention", "expiry_of",
           "last_expired_day", "plan_retention", "retention_reason", "retention_status"]

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
    run, groups = plan_retention(store, policy, now=now, dry_run=dry_run)
    if dry_run:
        return run
    return commit_retention(store, run, groups, actor=actor, vacuum=vacuum,
                            full_vacuum=full_vacuum, record_empty=record_empty,
                            progress=progress)


Groups = dict[str, dict[int, int]]  # tier -> {row id: payload bytes}


def plan_retention(store: Any, policy: TenantPolicy, *, now: float | None = None,
                   dry_run: bool = False) -> tuple[RetentionRun, Groups]:
    """Read phase (any connection, e.g. a WAL reader that does not block the writer): the
    expired payloads by tier, and a run counting them."""
    at = time.time() if now is None else now
    last = {t: last_expired_day(at, policy.days[t]) for t in TIERS}
    run = RetentionRun(policy.tenant, new_id("ret_"), at, dry_run, dict(policy.days))
    groups: Groups = {t: {} for t in TIERS}
    for row_id, tier, _day, nbytes, held in store.retention_candidates(policy.tenant,
                                                                       policy.rules, last):
        counts = _tier_counts(run, tier)
        if held:
            counts["kept_by_hold"] += 1
            run.kept_by_hold += 1
        else:
            counts["erased"] += 1
            counts["payload_bytes"] += nbytes
            run.erased += 1
            run.payload_bytes += nbytes
            groups[tier][row_id] = nbytes
    return run, groups


def _tier_counts(run: RetentionRun, tier: str) -> dict[str, int]:
    return run.by_tier.setdefault(tier, {"erased": 0, "payload_bytes": 0, "kept_by_hold": 0})


def commit_retention(store: Any, run: RetentionRun, groups: Groups, *, actor: str = "cli",
                     vacuum: bool = True, full_vacuum: bool = False, record_empty: bool = True,
                     progress: Callable[[int, int], None] | None = None) -> RetentionRun:
    """Write phase (the write connection): erase what ``plan_retention`` found, re-checking
    holds, and record the run with the counts of what was really erased."""
    tiers = [t for t in TIERS if groups[t]]
    total = run.erased

    def finish(erased: list[list[int]]) -> tuple[ErasureRecord | None, list[AuditEvent]]:
        for tier, ids in zip(tiers, erased, strict=True):
            counts = _tier_counts(run, tier)
            gone = set(ids)
            skipped = [i for i in groups[tier] if i not in gone]
            newly_held = store.still_held(skipped) if skipped else 0
            run.erased -= counts["erased"] - len(ids)
            run.payload_bytes -= sum(groups[tier][i] for i in skipped)
            counts["erased"] = len(ids)
            counts["payload_bytes"] = sum(groups[tier][i] for i in ids)
            counts["kept_by_hold"] += newly_held
            run.kept_by_hold += newly_held
        if run.erased == 0 and not record_empty:
            return None, []
        event = run_event(run, actor)
        run.audit_event_id = event.event_id
        record = None
        if run.erased:
            summary = ", ".join(f"{t} {run.days[t]} d" for t in tiers)
            record = ErasureRecord(run.id, run.tenant, "retention", None,
                                   f"retention ({summary})", run.at, run.erased,
                                   run.payload_bytes, run.kept_by_hold, event.event_id)
        return record, [event]

    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)
    store.erase_payloads(lambda: ErasurePlan(
        [(retention_reason(t, run.days[t]), list(groups[t])) for t in tiers], run.at, finish),
        step)
    if vacuum and run.erased:
        run.space = store.reclaim_space(full=full_vacuum)
    return run


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
