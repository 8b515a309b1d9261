"""The audit event: one step an agent took, with the seed schema's field names.

``AuditEvent`` is a msgspec Struct, so building one costs a few hundred nanoseconds and
(de)serialisation runs in C. Construction does not validate (the SDK builds events on the
caller's thread and must stay cheap); ``validate_event`` does, naming the bad field, and every
path into the store calls it.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import random
import re
import time
from enum import StrEnum
from typing import Any

import msgspec

from agentaudit.exceptions import ValidationError

__all__ = [
    "PAYLOAD_FIELDS",
    "TIERS",
    "AuditEvent",
    "EventType",
    "HumanKind",
    "default_tier",
    "event_from_dict",
    "event_to_dict",
    "new_event_id",
    "validate_event",
]


class EventType(StrEnum):
    """What kind of step an event records."""

    INVOCATION = "agent.invocation"
    REASONING = "agent.reasoning"
    TOOL_CALL = "agent.tool_call"
    TOOL_RESULT = "agent.tool_result"
    DECISION = "agent.decision"
    LLM_RESPONSE = "agent.llm_response"
    ERROR = "agent.error"
    HANDOFF = "agent.handoff"
    HUMAN_INTERVENTION = "agent.human_intervention"
    TOKEN_USAGE = "agent.token_usage"
    FEEDBACK = "agent.feedback"
    SECURITY = "agent.security"
    COMPLIANCE = "agent.compliance"
    # The audit log audits itself: administrative actions of agentaudit.
    AUDIT_KEY_CREATED = "audit.key_created"
    AUDIT_KEY_REVOKED = "audit.key_revoked"
    AUDIT_RETENTION_RUN = "audit.retention_run"
    AUDIT_ERASURE = "audit.erasure"
    AUDIT_LEGAL_HOLD = "audit.legal_hold"
    AUDIT_LEGAL_HOLD_RELEASED = "audit.legal_hold_released"
    AUDIT_CHECKPOINT = "audit.checkpoint"


class HumanKind(StrEnum):
    """Kinds of ``agent.human_intervention``."""

    APPROVAL = "approval"
    REJECTION = "rejection"
    OVERRIDE = "override"
    ESCALATION = "escalation"
    CONFIRMATION = "confirmation"


TIERS = ("debug", "info", "compliance", "critical")

# The seed's retention classification.
_TIER_BY_TYPE: dict[str, str] = {
    EventType.ERROR: "critical",
    EventType.SECURITY: "critical",
    EventType.COMPLIANCE: "critical",
    EventType.DECISION: "compliance",
    EventType.HANDOFF: "compliance",
    EventType.HUMAN_INTERVENTION: "compliance",
    EventType.INVOCATION: "info",
    EventType.TOOL_CALL: "info",
    EventType.TOOL_RESULT: "info",
    EventType.TOKEN_USAGE: "info",
}

# Fields that hold what a person may ask to erase; everything else is the envelope.
PAYLOAD_FIELDS = ("params", "result", "reasoning", "error", "user_id", "tags")


def default_tier(event_type: str) -> str:
    """The seed's retention tier of an event type (audit.* events are critical)."""
    if event_type.startswith("audit."):
        return "critical"
    return _TIER_BY_TYPE.get(event_type, "debug")


class _IdState:
    """Per-process UUIDv7 state: a random 26-bit middle and a randomly seeded 48-bit counter.

    RFC 9562 §6.2 method 1 (fixed-length dedicated counter): ids from one process are unique and
    strictly increasing; across processes the 74 random starting bits keep collisions negligible.

    ``head`` caches the text of everything but the counter's last two hex digits, with the
    millisecond (as a ``time_ns`` range) and the counter's high bits it was made for; it is one
    attribute replaced whole, so a thread never pairs one id's time with another's counter.
    """

    def __init__(self) -> None:
        rng = random.Random(os.urandom(16))
        self.middle = "-7%03x-%04x-" % (rng.getrandbits(12), 0x8000 | rng.getrandbits(14))  # noqa: UP031 (faster than f-strings here)
        self.counter = itertools.count(rng.getrandbits(47))
        self.head: tuple[int, int, int, str] = (0, 0, -1, "")  # (from ns, to ns, count >> 8, text)


_HEX2 = tuple("%02x" % i for i in range(256))  # noqa: UP031


_ids = _IdState()


def _reseed_after_fork() -> None:
    global _ids
    _ids = _IdState()


if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's ids
    os.register_at_fork(after_in_child=_reseed_after_fork)


def new_event_id(_now_ns: Any = time.time_ns, _hex2: tuple[str, ...] = _HEX2) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, then 74 bits of counter/random.

    Formatting hex is slow in Python (~1 µs for the 12-digit counter on a slow machine), so an id
    is a cached head (time, middle, the counter's first 10 digits; remade every millisecond or
    256 ids) plus a table lookup for the last two digits."""
    s = _ids
    now = _now_ns()
    count = next(s.counter)  # starts below 2**47: it wraps (mask below) only after 2**47 ids
    start, end, high, head = s.head
    if not (start <= now < end and high == count >> 8):
        ms = now // 1_000_000
        high = count >> 8
        head = "%08x-%04x%s%010x" % (ms >> 16, ms & 0xFFFF, s.middle, high & 0xFFFFFFFFFF)  # noqa: UP031 (faster than f-strings here)
        s.head = (ms * 1_000_000, (ms + 1) * 1_000_000, high, head)
    return head + _hex2[count & 0xFF]


class AuditEvent(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One audit event. Field names are the seed schema's, plus tenancy, cost and integrity.

    Not tracked by Python's cyclic garbage collector (``gc=False``): the events waiting in the
    SDK's queue would otherwise be walked by every full collection the agent's own code
    triggers (about 15-20 % of the caller's cost per event, bench/sdk_overhead.py). An event
    never refers back to itself; one put into its own ``params`` would leak, not crash (and
    is rejected: it cannot be serialised)."""

    event_type: str
    agent_name: str
    event_id: str = msgspec.field(default_factory=new_event_id)
    task_id: str | None = None
    session_id: str | None = None
    action: str | None = None
    params: dict[str, Any] | None = None
    result: Any = None
    reasoning: str | None = None
    confidence: float | None = None
    source: str | None = None
    parent_event_id: str | None = None
    trace_id: str | None = None
    timestamp: float = msgspec.field(default_factory=time.time)
    duration_ms: float | None = None
    token_count: int | None = None
    model: str | None = None
    version: str | None = None
    error: str | None = None
    error_type: str | None = None
    tenant: str = "default"
    user_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    tags: dict[str, str] | None = None
    tier: str | None = None
    # Set by the store, never by the caller.
    seq: int | None = None
    leaf_hash: str | None = None


_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_EVENT_TYPES = frozenset(t.value for t in EventType)
_AUDIT_TYPE_RE = re.compile(r"^audit\.[a-z][a-z0-9_.]{0,63}$")
_MAX_TEXT = 1024  # short identifying strings (ids, names); payload fields are not capped here
_MIN_TS, _MAX_TS = 0.0, 32503680000.0  # 1970 .. 3000

_OPTIONAL_TEXT = ("task_id", "session_id", "action", "source", "parent_event_id", "trace_id",
                  "model", "version", "error_type", "user_id")
_OPTIONAL_COUNTS = ("token_count", "prompt_tokens", "completion_tokens")


def _bad(field: str, reason: str) -> ValidationError:
    return ValidationError(field, reason)


def _check_number(ev: AuditEvent, name: str, low: float, high: float) -> None:
    v = getattr(ev, name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _bad(name, f"expected a number, got {type(v).__name__}")
    if not math.isfinite(v) or not low <= v <= high:
        raise _bad(name, f"{v!r} is outside {low:g}..{high:g}")


_plain_text = operator.attrgetter(*_OPTIONAL_TEXT)
_plain_numbers = operator.attrgetter("confidence", "duration_ms", "cost_usd", *_OPTIONAL_COUNTS)
_known_tenants: set[str] = set()  # tenants that passed the full check (a few per process)
_KNOWN_TENANTS_MAX = 4096


def _plainly_valid(ev: AuditEvent) -> bool:
    """True when ``ev`` passes ``validate_event`` with nothing to convert, by cheaper tests
    (exact types, no regex for a tenant already seen). False decides nothing: the full check
    then runs and names what is wrong, if anything. Every event the SDK, the collector and the
    OTLP mapping build goes through here, so it is worth its lines."""
    et, eid, agent, tenant, ts = (ev.event_type, ev.event_id, ev.agent_name, ev.tenant,
                                  ev.timestamp)
    if (et.__class__ is not str or et not in _EVENT_TYPES or eid.__class__ is not str
            or not _UUID_RE.match(eid) or agent.__class__ is not str or not agent
            or len(agent) > _MAX_TEXT or tenant.__class__ is not str
            or tenant not in _known_tenants
            or ts.__class__ is not float or not _MIN_TS < ts < _MAX_TS):
        return False
    for v in _plain_text(ev):
        if v is not None and (v.__class__ is not str or len(v) > _MAX_TEXT):
            return False
    reasoning, error, params, tags, tier = ev.reasoning, ev.error, ev.params, ev.tags, ev.tier
    if ((reasoning is not None and reasoning.__class__ is not str)
            or (error is not None and error.__class__ is not str)
            or (params is not None and params.__class__ is not dict)
            or (tier is not None and tier not in TIERS)):
        return False
    if tags is not None:
        if tags.__class__ is not dict:
            return False
        for k, v in tags.items():
            if k.__class__ is not str or v.__class__ is not str:
                return False
    confidence, duration, cost, *counts = _plain_numbers(ev)
    # chained comparisons are False for NaN and the infinities, as the full check's are
    if not (confidence is None or confidence.__class__ is float and 0.0 <= confidence <= 1.0):
        return False
    if not (duration is None or duration.__class__ is float and 0.0 <= duration <= 1e12):
        return False
    if not (cost is None or cost.__class__ is float and 0.0 <= cost <= 1e12):
        return False
    return all(v is None or v.__class__ is int and 0 <= v < 2**53 for v in counts)


def validate_event(ev: AuditEvent) -> AuditEvent:
    """Check every field's type and range; raise ``ValidationError`` naming the first bad one."""
    if ev.__class__ is AuditEvent:
        if ev.event_type.__class__ is EventType:  # store the plain value (as the full check)
            ev.event_type = ev.event_type._value_
        if _plainly_valid(ev):
            return ev
    return _check_every_field(ev)


def _check_every_field(ev: AuditEvent) -> AuditEvent:
    if not isinstance(ev, AuditEvent):
        raise _bad("event", f"expected an AuditEvent, got {type(ev).__name__}")
    et = ev.event_type
    if not isinstance(et, str) or not (et in _EVENT_TYPES or _AUDIT_TYPE_RE.match(et)):
        raise _bad("event_type", f"{et!r} is not an agent.* type of EventType or an audit.* type")
    if et.__class__ is not str:  # an EventType member: store the plain value
        ev.event_type = str.__str__(et)
    if not isinstance(ev.event_id, str) or not _UUID_RE.match(ev.event_id):
        raise _bad("event_id", f"{ev.event_id!r} is not a lowercase hyphenated UUID")
    if not isinstance(ev.agent_name, str) or not ev.agent_name or len(ev.agent_name) > _MAX_TEXT:
        raise _bad("agent_name", "expected a non-empty string of at most 1024 characters")
    if not isinstance(ev.tenant, str) or not _TENANT_RE.match(ev.tenant):
        raise _bad("tenant", f"{ev.tenant!r} must be 1-64 of A-Z a-z 0-9 _ . - (starting alphanumeric)")
    for name in _OPTIONAL_TEXT:
        v = getattr(ev, name)
        if v is not None and (not isinstance(v, str) or len(v) > _MAX_TEXT):
            raise _bad(name, f"expected a string of at most {_MAX_TEXT} characters, got {type(v).__name__}")
    for name in ("reasoning", "error"):
        v = getattr(ev, name)
        if v is not None and not isinstance(v, str):
            raise _bad(name, f"expected a string, got {type(v).__name__}")
    ts = ev.timestamp
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not _MIN_TS < ts < _MAX_TS:
        raise _bad("timestamp", f"{ts!r} is not UTC epoch seconds between 1970 and 3000")
    if not isinstance(ts, float):
        ev.timestamp = float(ts)
    _check_number(ev, "confidence", 0.0, 1.0)
    _check_number(ev, "duration_ms", 0.0, 1e12)
    _check_number(ev, "cost_usd", 0.0, 1e12)
    for name in _OPTIONAL_COUNTS:
        v = getattr(ev, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**53):
            raise _bad(name, f"expected a non-negative integer, got {v!r}")
    if ev.params is not None and not isinstance(ev.params, dict):
        raise _bad("params", f"expected an object (dict), got {type(ev.params).__name__}")
    if ev.tags is not None:
        if not isinstance(ev.tags, dict):
            raise _bad("tags", f"expected a str->str mapping, got {type(ev.tags).__name__}")
        for k, v in ev.tags.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise _bad("tags", f"tag {k!r} must map a string to a string")
    if ev.tier is not None and ev.tier not in TIERS:
        raise _bad("tier", f"{ev.tier!r} is not one of {', '.join(TIERS)}")
    if ev.tenant not in _known_tenants and len(_known_tenants) < _KNOWN_TENANTS_MAX:
        _known_tenants.add(ev.tenant)
    return ev


def event_from_dict(data: dict[str, Any]) -> AuditEvent:
    """Build and validate an event from plain data (API input, JSONL import).

    Type errors name the field (``$.confidence``); ``seq`` and ``leaf_hash`` are ignored because
    only the store sets them.
    """
    if not isinstance(data, dict):
        raise _bad("event", f"expected a JSON object, got {type(data).__name__}")
    data = {k: v for k, v in data.items() if k not in ("seq", "leaf_hash")}
    try:
        ev = msgspec.convert(data, AuditEvent)
    except msgspec.ValidationError as e:
        msg = str(e)
        m = re.search(r"\$\.([A-Za-z_]+)", msg) or re.search(r"field `([A-Za-z_]+)`", msg)
        field = m.group(1) if m else "event"
        raise _bad(field, msg) from e
    return validate_event(ev)


def event_to_dict(ev: AuditEvent) -> dict[str, Any]:
    """All fields by their seed names, ``None`` included (the JSON output of the CLI)."""
    return {f: getattr(ev, f) for f in ev.__struct_fields__}
