"""Sequencing: every stored event gets its tenant's next ``seq`` and a Merkle leaf, in the same
transaction that stores it; signed checkpoints follow every N events or T seconds.

The leaf commits to the event's envelope (docs/formats.md): every column except the erasable
payload, which enters as ``payload_sha256 = SHA-256(salt || payload bytes)``.
"""

from __future__ import annotations

import hashlib
import operator
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from agentaudit.events import AuditEvent, default_tier
from agentaudit.integrity._hash import sha256_digest
from agentaudit.integrity.canonical import es_number
from agentaudit.store.rows import encode_payload, row_middle, row_values

__all__ = [
    "ENVELOPE_FIELDS",
    "CheckpointPolicy",
    "EnvelopeStruct",
    "LogSequencer",
    "encode_entry",
    "entry_from_values",
    "envelope",
    "envelope_entry",
    "envelope_from_values",
    "event_values",
    "jcs_float",
    "leaf_of",
    "origin_for",
]


# The envelope's fields taken from the event, in sorted (JCS) key order; the envelope adds
# "payload_sha256", "seq", "tier" and "v" (see docs/formats.md).
ENVELOPE_FIELDS = (
    "action", "agent_name", "completion_tokens", "confidence", "cost_usd", "duration_ms",
    "error_type", "event_id", "event_type", "model", "parent_event_id", "prompt_tokens",
    "session_id", "source", "task_id", "tenant", "timestamp", "token_count", "trace_id",
    "version",
)
event_values = operator.attrgetter(*ENVELOPE_FIELDS)


def envelope_from_values(values: Sequence[Any], seq: int, tier: str,
                         payload_sha256: str) -> dict[str, Any]:
    """The committed form of an event from its ``ENVELOPE_FIELDS`` values."""
    env = dict(zip(ENVELOPE_FIELDS, values, strict=True))
    env.update(v=1, seq=seq, tier=tier, payload_sha256=payload_sha256)
    return env


def envelope(ev: AuditEvent, seq: int, tier: str, payload_sha256: str) -> dict[str, Any]:
    """The committed form of an event (its leaf entry is the JCS of this dict)."""
    return envelope_from_values(event_values(ev), seq, tier, payload_sha256)


_MAX_SAFE = 2**53


def jcs_float(x: float | None) -> Any:
    """x as the encoder must see it to print it as JCS does, or raise ValueError."""
    if x is None or (x.__class__ is float and 1e-4 <= abs(x) < 1e16 and not x.is_integer()):
        return x
    if x.__class__ is float and x.is_integer() and abs(x) < _MAX_SAFE:
        return int(x)
    if x.__class__ is int and abs(x) <= _MAX_SAFE:
        return x
    if x.__class__ is float:
        # A small cost (3.5e-05 USD) or a huge value: the encoder's exponent form differs
        # from ECMAScript's, so the number goes in already printed (NaN and Infinity raise).
        return msgspec.Raw(es_number(x).encode())
    raise ValueError("needs the general JCS path")


# The envelope as a struct whose fields are its keys in JCS order (all ASCII, so UTF-16 and
# byte order agree): msgspec writes them in that order, strings escaped as JSON.stringify does.
EnvelopeStruct = msgspec.defstruct("EnvelopeStruct", [(name, Any) for name in sorted(
    (*ENVELOPE_FIELDS, "payload_sha256", "seq", "tier", "v"))])
encode_entry = msgspec.json.Encoder().encode


def entry_from_values(values: Sequence[Any], seq: int, tier: str, payload_sha256: str) -> bytes:
    """JCS of the envelope, fast: the keys are written already sorted, floats are checked to be
    in the range where the encoder prints exactly what JCS prints (the integers are counts the
    validator keeps below 2**53, printed alike by both), and a value JCS cannot
    print (bytes, which the encoder would write as base64) is left to the general
    ``canonical_json`` path, which prints or rejects everything else (tested equal by
    hypothesis)."""
    if bytes not in set(map(type, values)):
        (action, agent, completion, confidence, cost, duration, error_type, event_id, event_type,
         model, parent, prompt, session, source, task, tenant, timestamp, tokens, trace,
         version) = values
        try:
            return encode_entry(EnvelopeStruct(
                action, agent, completion, jcs_float(confidence), jcs_float(cost),
                jcs_float(duration), error_type, event_id, event_type, model, parent,
                payload_sha256, prompt, seq, session, source, task, tenant, tier,
                jcs_float(timestamp), tokens, trace, 1, version))
        except (ValueError, TypeError):
            pass
    from agentaudit.integrity.canonical import canonical_json

    return canonical_json(envelope_from_values(values, seq, tier, payload_sha256))


def envelope_entry(ev: AuditEvent, seq: int, tier: str, payload_sha256: str) -> bytes:
    """JCS(envelope(ev, ...)): the leaf entry of an event."""
    return entry_from_values(event_values(ev), seq, tier, payload_sha256)


def leaf_of(ev: AuditEvent, seq: int, tier: str, digest: bytes) -> tuple[bytes, bytes]:
    """(leaf entry, leaf hash) of an event at ``seq`` whose payload digest is ``digest``."""
    from agentaudit.integrity.merkle import leaf_hash

    entry = envelope_entry(ev, seq, tier, digest.hex())
    return entry, leaf_hash(entry)


def origin_for(log_id: str, tenant: str) -> str:
    """The checkpoint origin line of a tenant's log."""
    return f"agentaudit/{log_id}/{tenant}"


@dataclass(frozen=True)
class CheckpointPolicy:
    """Write a signed checkpoint once ``every_events`` events or ``every_seconds`` seconds have
    passed since the last one (and on flush/close, see ``Store.checkpoint``)."""

    every_events: int = 10_000
    every_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> CheckpointPolicy:
        return cls(int(os.environ.get("AGENTAUDIT_CHECKPOINT_EVENTS", "10000")),
                   float(os.environ.get("AGENTAUDIT_CHECKPOINT_SECONDS", "60")))


LoadState = Callable[[Any, str], "tuple[int, bytes | None]"]
# An event ready to be sequenced (``LogSequencer.prepare``): tenant, its row's columns between
# seq and leaf_hash (``row_middle``; tuples of plain values, which the cyclic GC stops tracking),
# 0x00 + the leaf entry up to its seq (None without integrity), and the entry after the seq.
Prepared = tuple[str, tuple[Any, ...], bytes | None, bytes]
_SEQ_KEY = b',"seq":0,"session_id":'


class LogSequencer:
    """Assigns seq, salt, payload digest and leaf hash to a batch. The per-tenant state it
    changed is returned by ``pending_states`` for the store to save in the same transaction."""

    TILE_HEIGHT = 8  # roots of every 256-leaf subtree are kept, so proofs read few leaves

    def __init__(self, integrity: bool = True, policy: CheckpointPolicy | None = None) -> None:
        self.integrity = integrity
        self.policy = policy or CheckpointPolicy()
        self.heads: list[tuple[str, int, bytes]] = []  # (tenant, size, root) to sign now
        self._pending: dict[str, tuple[int, bytes | None]] = {}
        self.ranges: dict[str, Any] = {}  # tenant -> CompactRange after the last sequence()
        self.tiles: list[tuple[str, int, bytes]] = []  # (tenant, tile index, root) completed

    def _tile_visitor(self, tenant: str) -> Callable[[int, int, bytes], None]:
        tiles, height = self.tiles, self.TILE_HEIGHT

        def visit(level: int, index: int, h: bytes) -> None:
            if level == height:
                tiles.append((tenant, index, h))
        return visit

    def prepare(self, events: Sequence[AuditEvent]) -> list[Prepared]:
        """What sequencing ``events`` needs that does not depend on their seq, one item per
        event: its tenant, its row's columns between seq and leaf_hash (payload, salt and digest
        included), and 0x00 + its leaf entry up to the seq and the entry after it. It reads
        nothing from the store, so a writer that shares the store with writers of other
        processes (``serve --workers``, several collectors) does it before taking the write
        lock and they commit meanwhile. A writer alone does better to let ``sequence`` prepare
        each event as it goes (~1-3 µs/event less here: the batch stays in the CPU's caches)."""
        out: list[Prepared] = []
        if self.integrity:
            salts = os.urandom(16 * len(events))
        for i, ev in enumerate(events):
            payload = encode_payload(ev)
            tier = ev.tier or default_tier(ev.event_type)
            if self.integrity:
                salt = salts[16 * i : 16 * i + 16]
                digest = sha256_digest(salt + payload)
                entry = envelope_entry(ev, 0, tier, digest.hex())
                # the entry is the same bytes at every seq but for the number after "seq":
                cut = entry.index(_SEQ_KEY) + 7  # after ',"seq":'
                out.append((ev.tenant, row_middle(ev, tier, payload, salt, digest),
                            b"\x00" + entry[:cut], entry[cut + 1:]))
            else:
                out.append((ev.tenant, row_middle(ev, tier, payload, None, None), None, b""))
        return out

    @staticmethod
    def pick(prepared: list[Prepared], events: Sequence[AuditEvent],
             chosen: Sequence[AuditEvent]) -> list[Prepared]:
        """The items of ``prepared`` (made for ``events``) of the ``chosen`` ones, in order."""
        at = {id(ev): item for ev, item in zip(events, prepared, strict=True)}
        return [at[id(ev)] for ev in chosen]

    def sequence(self, db: Any, events: Sequence[AuditEvent], load_state: LoadState,
                 last_checkpoint: Callable[[Any, str], tuple[int, float]] | None = None,
                 prepared: list[Prepared] | None = None) -> list[tuple[Any, ...]]:
        """Rows for ``events`` (inside the write transaction); ``self.heads`` lists the log
        heads the policy wants signed. ``prepared`` is ``prepare(events)``; without it each
        event is prepared as it is sequenced (the same rows)."""
        self._pending = {}
        self.tiles = []
        self.heads = []
        last_cp: dict[str, list[float]] = {}
        now = time.time()
        policy, integrity = self.policy, self.integrity
        sizes: dict[str, int] = {}
        ranges: dict[str, Any] = {}
        rows = []
        sha256 = hashlib.sha256
        if integrity:
            from agentaudit.integrity.merkle import CompactRange
            salts = os.urandom(16 * len(events)) if prepared is None else b""
        leaf = None
        for i, ev in enumerate(events):
            tenant = ev.tenant
            if tenant not in sizes:
                size, frontier = load_state(db, tenant)
                sizes[tenant] = size
                if integrity:
                    visitor = self._tile_visitor(tenant)
                    ranges[tenant] = (CompactRange.from_bytes(frontier, visitor=visitor)
                                      if frontier else CompactRange(visitor=visitor))
                    size0, at0 = last_checkpoint(db, tenant) if last_checkpoint else (0, now)
                    last_cp[tenant] = [size0, at0]
            seq = sizes[tenant]
            sizes[tenant] = seq + 1
            if prepared is not None:
                _, middle, head, tail = prepared[i]
                if integrity:  # leaf_hash(entry) = SHA-256(0x00 || entry)
                    leaf = sha256(b"%b%d%b" % (head, seq, tail)).digest()
                rows.append((tenant, seq, *middle, leaf))
            else:
                payload = encode_payload(ev)
                tier = ev.tier or default_tier(ev.event_type)
                if integrity:
                    salt = salts[16 * i : 16 * i + 16]
                    digest = sha256_digest(salt + payload)
                    leaf = sha256(b"\x00" + envelope_entry(ev, seq, tier, digest.hex())).digest()
                    rows.append(row_values(ev, seq, tier, payload, salt, digest, leaf))
                else:
                    rows.append(row_values(ev, seq, tier, payload, None, None, None))
            if integrity:
                crange = ranges[tenant]
                crange.append(leaf)
                cp = last_cp[tenant]
                if seq + 1 - cp[0] >= policy.every_events:
                    self.heads.append((tenant, seq + 1, crange.root()))
                    cp[0] = seq + 1
        for tenant, size in sizes.items():
            self._pending[tenant] = (size, ranges[tenant].to_bytes() if integrity else None)
            if integrity and size > last_cp[tenant][0] and (
                    now - last_cp[tenant][1] >= policy.every_seconds):
                self.heads.append((tenant, size, ranges[tenant].root()))
        self.ranges = ranges
        return rows

    def pending_states(self) -> dict[str, tuple[int, bytes | None]]:
        return self._pending

    def discard_pending(self) -> None:
        self.heads = []
        self._pending = {}
        self.ranges = {}
        self.tiles = []

