"""Compaction: drop whole envelopes of days older than every tier, keeping the leaf hashes and a
signed checkpoint at the compaction point, so the log — and every later event — still verifies.

Only a prefix of the log (seq 0..n-1) can be compacted, so that it stays contiguous: ``n`` is
the first seq whose event is not older than the date, or is under a legal hold. The date must be
older than every tier: nothing a tier still keeps is dropped. Each compaction is an
``audit.compaction`` event. Compacted events can no longer be read, exported or proven
individually; the tree they are part of still verifies, and proofs of later events still work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agentaudit.events import AuditEvent
from agentaudit.exceptions import ConfigError
from agentaudit.retention.config import TenantPolicy
from agentaudit.store._sqlite_retention import CompactionRecord, new_id

__all__ = ["CompactionResult", "compact_before", "latest_compactable"]

DAY = 86400


def latest_compactable(policy: TenantPolicy, now: float) -> float:
    """The latest date (UTC midnight) before which every tier has erased every payload."""
    return float((int(now // DAY) - max(policy.days.values())) * DAY)


@dataclass
class CompactionResult:
    """What a compaction dropped: the envelopes of seq [from_seq, to_seq)."""

    id: str
    tenant: str
    before: float
    at: float
    from_seq: int
    to_seq: int
    audit_event_id: str | None = None
    space: dict[str, int] | None = None

    @property
    def dropped(self) -> int:
        return self.to_seq - self.from_seq

    def as_dict(self) -> dict[str, Any]:
        from agentaudit.query import iso_time

        return {"compaction_id": self.id, "tenant": self.tenant, "before": iso_time(self.before),
                "at": iso_time(self.at), "from_seq": self.from_seq, "to_seq": self.to_seq,
                "dropped": self.dropped, "audit_event_id": self.audit_event_id,
                "space": self.space}


def compact_before(store: Any, policy: TenantPolicy, before: float, *, actor: str = "cli",
                   now: float | None = None, vacuum: bool = True,
                   dry_run: bool = False) -> CompactionResult:
    """Compact the tenant's log up to the first event not older than ``before`` (with
    ``dry_run``, only say how far)."""
    from agentaudit.integrity.checkpoint import format_checkpoint, sign_note
    from agentaudit.integrity.merkle import CompactRange
    from agentaudit.query import iso_time
    from agentaudit.store.log import origin_for

    at = time.time() if now is None else now
    limit = latest_compactable(policy, at)
    if before > limit:
        raise ConfigError(f"--compact-before {iso_time(before)} is not older than every tier: "
                          f"the longest ({max(policy.days.values())} days) still keeps days "
                          f"from {str(iso_time(limit))[:10]}; choose that date or an earlier one")
    tenant = policy.tenant
    start = store.compacted_size(tenant)
    size = store.compaction_point(tenant, before)
    result = CompactionResult(new_id("cmp_"), tenant, before, at, start, max(start, size))
    if size <= start or dry_run:
        return result
    crange = CompactRange()
    for leaf in store.prefix_leaf_hashes(tenant, size):
        crange.append(leaf)
    root = crange.root()
    note = sign_note(format_checkpoint(origin_for(store.log_id, tenant), size, root),
                     store.signer)
    event = AuditEvent(event_type="audit.compaction", agent_name="agentaudit", tenant=tenant,
                       action="retention.compact", source=actor, timestamp=at,
                       params={"compaction_id": result.id, "before": iso_time(before),
                               "from_seq": start, "to_seq": size, "dropped": size - start,
                               "checkpoint_size": size, "root": root.hex(), "by": actor})
    result.audit_event_id = event.event_id
    store.compact_prefix(tenant, size, (root, note),
                         CompactionRecord(result.id, tenant, before, start, size, at,
                                          event.event_id), [event])
    if vacuum:
        result.space = store.reclaim_space()
    return result
