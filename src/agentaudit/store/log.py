"""Sequencing: every stored event gets its tenant's next ``seq`` and a Merkle leaf, in the same
transaction that stores it.

The leaf commits to the event's envelope (docs/formats.md): every column except the erasable
payload, which enters as ``payload_sha256 = SHA-256(salt || payload bytes)``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from agentaudit.events import AuditEvent, default_tier
from agentaudit.store.rows import encode_payload, row_values

__all__ = ["LogSequencer", "envelope"]

LoadState = Callable[[Any, str], tuple[int, "bytes | None"]]


def envelope(ev: AuditEvent, seq: int, tier: str, payload_sha256: str) -> dict[str, Any]:
    """The committed form of an event (its leaf entry is the JCS of this dict)."""
    return {
        "v": 1,
        "tenant": ev.tenant,
        "seq": seq,
        "event_id": ev.event_id,
        "event_type": ev.event_type,
        "agent_name": ev.agent_name,
        "trace_id": ev.trace_id,
        "parent_event_id": ev.parent_event_id,
        "task_id": ev.task_id,
        "session_id": ev.session_id,
        "action": ev.action,
        "source": ev.source,
        "model": ev.model,
        "version": ev.version,
        "error_type": ev.error_type,
        "timestamp": ev.timestamp,
        "duration_ms": ev.duration_ms,
        "confidence": ev.confidence,
        "token_count": ev.token_count,
        "prompt_tokens": ev.prompt_tokens,
        "completion_tokens": ev.completion_tokens,
        "cost_usd": ev.cost_usd,
        "tier": tier,
        "payload_sha256": payload_sha256,
    }


class LogSequencer:
    """Assigns seq, salt and leaf hash to a batch; keeps the per-tenant state it changed until the
    transaction commits."""

    def __init__(self, integrity: bool = True) -> None:
        self.integrity = integrity
        self._pending: dict[str, tuple[int, bytes | None]] = {}

    def sequence(self, db: Any, events: Sequence[AuditEvent], load_state: LoadState) -> list[tuple[Any, ...]]:
        self._pending = {}
        sizes: dict[str, int] = {}
        ranges: dict[str, Any] = {}
        rows = []
        if self.integrity:
            from agentaudit.integrity.canonical import canonical_json
            from agentaudit.integrity.merkle import CompactRange, leaf_hash
            salts = os.urandom(16 * len(events))
            sha256 = hashlib.sha256
        for i, ev in enumerate(events):
            tenant = ev.tenant
            if tenant not in sizes:
                size, frontier = load_state(db, tenant)
                sizes[tenant] = size
                if self.integrity:
                    ranges[tenant] = (CompactRange.from_bytes(frontier) if frontier
                                      else CompactRange())
            seq = sizes[tenant]
            sizes[tenant] = seq + 1
            payload = encode_payload(ev)
            tier = ev.tier or default_tier(ev.event_type)
            if self.integrity:
                salt = salts[16 * i : 16 * i + 16]
                digest = sha256(salt + payload).hexdigest()
                leaf = leaf_hash(canonical_json(envelope(ev, seq, tier, digest)))
                ranges[tenant].append(leaf)
                rows.append(row_values(ev, seq, tier, payload, salt, leaf))
            else:
                rows.append(row_values(ev, seq, tier, payload, None, None))
        for tenant, size in sizes.items():
            self._pending[tenant] = (size, ranges[tenant].to_bytes() if self.integrity else None)
        return rows

    def pending_states(self) -> dict[str, tuple[int, bytes | None]]:
        return self._pending

    def discard_pending(self) -> None:
        self._pending = {}

    def commit_pending(self) -> None:
        self._pending = {}
