"""Event <-> row conversion shared by every backend.

A row keeps the envelope in typed columns (so SQL can filter and aggregate) and the erasable
payload (params, result, reasoning, error, user_id, tags) as one JSON document, stored beside a
random salt. ``user_id`` is also kept as a column for look-ups; it is derived from the payload and
cleared with it on erasure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from agentaudit.events import PAYLOAD_FIELDS, AuditEvent

__all__ = [
    "COLUMNS",
    "LOG_COLUMNS",
    "SECONDS_PER_DAY",
    "SELECT_COLUMNS",
    "VERIFY_COLUMNS",
    "decode_payload",
    "encode_payload",
    "event_from_row",
    "log_columns",
    "prepare_payload",
    "row_middle",
    "row_values",
]

SECONDS_PER_DAY = 86400

# Column order of the ``events`` table as written by ``row_values`` (``day`` is generated from
# ``timestamp`` by the database).
COLUMNS = (
    "tenant", "seq", "event_id", "event_type", "agent_name", "trace_id", "parent_event_id",
    "task_id", "session_id", "user_id", "action", "source", "model", "version", "error_type",
    "timestamp", "duration_ms", "confidence", "token_count", "prompt_tokens",
    "completion_tokens", "cost_usd", "tier", "payload", "salt", "payload_sha256", "leaf_hash",
)


def _fallback(obj: Any) -> Any:
    """Payloads are JSON; anything else an agent passes is kept as its text, never an error."""
    return repr(obj)


_encoder = msgspec.json.Encoder(enc_hook=_fallback)
_decoder = msgspec.json.Decoder()


def encode_payload(ev: AuditEvent) -> bytes:
    """The exact payload bytes that are stored and hashed: a JSON object of the present fields.
    Bytes encoded for the same event moments ago (``prepare_payload``, which redaction calls to
    scan them) are reused when the event's payload fields are still the very same objects."""
    if _prepared:
        prepared = _prepared.pop(id(ev), None)
        if prepared is not None and prepared[0] is ev and _same_fields(ev, prepared[1]):
            return prepared[2]
    return _encode_fresh(ev)


def _encode_fresh(ev: AuditEvent) -> bytes:
    doc = {}
    for name in PAYLOAD_FIELDS:
        v = getattr(ev, name)
        if v is not None:
            doc[name] = v
    return _encoder.encode(doc)


# id(event) -> (event, its payload fields, payload bytes). One dict for every thread: an entry
# holds its event (so the id cannot be reused while it is there), each operation on it is
# atomic, and a hit must be the same event with the very same payload objects.
_prepared: dict[int, tuple[AuditEvent, tuple[Any, ...], bytes]] = {}
_MAX_PREPARED = 50_000


def _same_fields(ev: AuditEvent, fields: tuple[Any, ...]) -> bool:
    p, r, reasoning, error, user_id, tags = fields
    return (ev.params is p and ev.result is r and ev.reasoning is reasoning
            and ev.error is error and ev.user_id is user_id and ev.tags is tags)


def prepare_payload(ev: AuditEvent) -> bytes:
    """``encode_payload(ev)``, kept for the next ``encode_payload`` of the same event (the
    store's), so that scanning a payload before storing it does not encode it twice."""
    raw = _encode_fresh(ev)
    if len(_prepared) >= _MAX_PREPARED:  # events prepared but never stored (a failed batch)
        _prepared.clear()
    _prepared[id(ev)] = (ev, (ev.params, ev.result, ev.reasoning, ev.error, ev.user_id, ev.tags),
                         raw)
    return raw


def decode_payload(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    result: dict[str, Any] = _decoder.decode(raw)
    return result


def row_values(ev: AuditEvent, seq: int, tier: str, payload: bytes, salt: bytes | None,
               digest: bytes | None, leaf: bytes | None) -> tuple[Any, ...]:
    """The row of ``COLUMNS`` for an event that the store has sequenced."""
    return (
        ev.tenant, seq, ev.event_id, ev.event_type, ev.agent_name, ev.trace_id,
        ev.parent_event_id, ev.task_id, ev.session_id, ev.user_id, ev.action, ev.source,
        ev.model, ev.version, ev.error_type, ev.timestamp, ev.duration_ms,
        ev.confidence, ev.token_count, ev.prompt_tokens, ev.completion_tokens, ev.cost_usd,
        tier, payload, salt, digest, leaf,
    )


def row_middle(ev: AuditEvent, tier: str, payload: bytes, salt: bytes | None,
               digest: bytes | None) -> tuple[Any, ...]:
    """``row_values`` between seq and leaf_hash (``LogSequencer.prepare``)."""
    return (
        ev.event_id, ev.event_type, ev.agent_name, ev.trace_id,
        ev.parent_event_id, ev.task_id, ev.session_id, ev.user_id, ev.action, ev.source,
        ev.model, ev.version, ev.error_type, ev.timestamp, ev.duration_ms,
        ev.confidence, ev.token_count, ev.prompt_tokens, ev.completion_tokens, ev.cost_usd,
        tier, payload, salt, digest,
    )


# What verification reads of each row: every stored column (row id first, then seq).
LOG_COLUMNS = ("id", "seq", *(c for c in COLUMNS if c != "seq"), "day", "erased")
# What ``verify`` checks of each row, in the order its loop unpacks them: LOG_COLUMNS without
# the row id and the day, which it never reads, and the tenant, which the query fixes (each
# column read costs ~0.5 µs). The envelope's values come first (event_id .. tier, contiguous).
VERIFY_COLUMNS = (
    "seq", "event_id", "event_type", "agent_name", "trace_id", "parent_event_id", "task_id",
    "session_id", "action", "source", "model", "version", "error_type", "timestamp",
    "duration_ms", "confidence", "token_count", "prompt_tokens", "completion_tokens", "cost_usd",
    "tier", "user_id", "payload", "salt", "payload_sha256", "leaf_hash", "erased",
)


def log_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """``columns`` checked to be ``LOG_COLUMNS`` that include ``seq`` (they go into SQL)."""
    unknown = [c for c in columns if c not in LOG_COLUMNS]
    if unknown or "seq" not in columns:
        raise ValueError(f"log rows are read by LOG_COLUMNS including seq, not {unknown or columns}")
    return tuple(columns)


# Columns a query selects to rebuild an event (payload decoded separately).
SELECT_COLUMNS = (
    "tenant", "seq", "event_id", "event_type", "agent_name", "trace_id", "parent_event_id",
    "task_id", "session_id", "action", "source", "model", "version", "error_type", "timestamp",
    "duration_ms", "confidence", "token_count", "prompt_tokens", "completion_tokens", "cost_usd",
    "tier", "payload", "leaf_hash",
)


def event_from_row(row: tuple[Any, ...] | Any) -> AuditEvent:
    """Rebuild an event from a row selected with ``SELECT_COLUMNS``."""
    (tenant, seq, event_id, event_type, agent_name, trace_id, parent_event_id, task_id,
     session_id, action, source, model, version, error_type, timestamp, duration_ms, confidence,
     token_count, prompt_tokens, completion_tokens, cost_usd, tier, payload, leaf) = row
    p = decode_payload(payload)
    # 15 keywords at most, in field order, then attributes: a call with more keywords makes
    # CPython build a dict and msgspec take its slow path (~4x the cost of the whole build)
    ev = AuditEvent(
        event_type=event_type, agent_name=agent_name, event_id=event_id, task_id=task_id,
        session_id=session_id, action=action, params=p.get("params"), result=p.get("result"),
        reasoning=p.get("reasoning"), confidence=confidence, source=source,
        parent_event_id=parent_event_id, trace_id=trace_id, timestamp=timestamp,
        duration_ms=duration_ms)
    ev.token_count, ev.model, ev.version, ev.error, ev.error_type = (
        token_count, model, version, p.get("error"), error_type)
    ev.tenant, ev.user_id, ev.prompt_tokens, ev.completion_tokens, ev.cost_usd = (
        tenant, p.get("user_id"), prompt_tokens, completion_tokens, cost_usd)
    ev.tags, ev.tier, ev.seq, ev.leaf_hash = (
        p.get("tags"), tier, seq, leaf.hex() if leaf else None)
    return ev
