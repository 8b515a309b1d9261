from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentaudit.events import (
    AuditEvent,
    EventType,
    _check_every_field,
    _plainly_valid,
    default_tier,
    event_from_dict,
    event_to_dict,
    new_event_id,
    validate_event,
)
from agentaudit.exceptions import ValidationError
from agentaudit.store.log import envelope  # noqa: F401  (import check: the log uses events)
from agentaudit.store.rows import (
    COLUMNS,
    SELECT_COLUMNS,
    encode_payload,
    event_from_row,
    row_values,
)
from strategies import events

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_event_ids_are_uuid7_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(10_000)]
    assert all(UUID7.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_event_types_cover_design() -> None:
    values = {t.value for t in EventType}
    for name in ("invocation", "reasoning", "tool_call", "tool_result", "decision",
                 "llm_response", "error", "handoff", "human_intervention", "token_usage",
                 "feedback", "security", "compliance"):
        assert f"agent.{name}" in values
    assert any(v.startswith("audit.") for v in values)


@pytest.mark.parametrize(("event_type", "tier"), [
    ("agent.error", "critical"), ("agent.security", "critical"), ("agent.compliance", "critical"),
    ("agent.decision", "compliance"), ("agent.handoff", "compliance"),
    ("agent.human_intervention", "compliance"), ("agent.invocation", "info"),
    ("agent.tool_call", "info"), ("agent.token_usage", "info"), ("agent.reasoning", "debug"),
    ("agent.feedback", "debug"), ("audit.erasure", "critical"),
])
def test_seed_tier_classification(event_type: str, tier: str) -> None:
    assert default_tier(event_type) == tier


@pytest.mark.parametrize(("field", "value"), [
    ("event_type", "agent.nonsense"),
    ("event_id", "not-a-uuid"),
    ("agent_name", ""),
    ("confidence", 1.5),
    ("confidence", math.nan),
    ("duration_ms", -1.0),
    ("token_count", -3),
    ("token_count", True),
    ("timestamp", -5.0),
    ("tags", {"a": 1}),
    ("tier", "forever"),
    ("tenant", "bad tenant!"),
    ("params", [1, 2]),
    ("trace_id", 42),
])
def test_validation_names_the_bad_field(field: str, value: object) -> None:
    ev = AuditEvent(event_type="agent.decision", agent_name="Router")
    setattr(ev, field, value)
    with pytest.raises(ValidationError) as info:
        validate_event(ev)
    assert info.value.field == field
    assert field in str(info.value)


def test_from_dict_reports_type_errors_by_field() -> None:
    with pytest.raises(ValidationError) as info:
        event_from_dict({"event_type": "agent.decision", "agent_name": "a", "confidence": "high"})
    assert info.value.field == "confidence"
    with pytest.raises(ValidationError) as info:
        event_from_dict({"agent_name": "a"})
    assert info.value.field == "event_type"


def test_from_dict_ignores_store_assigned_fields() -> None:
    ev = event_from_dict({"event_type": "agent.decision", "agent_name": "a", "seq": 7,
                          "leaf_hash": "00"})
    assert ev.seq is None and ev.leaf_hash is None


@settings(max_examples=300)
@given(events)
def test_round_trip_event_row_event(ev: AuditEvent) -> None:
    validate_event(ev)
    tier = ev.tier or default_tier(ev.event_type)
    row = dict(zip(COLUMNS, row_values(ev, 5, tier, encode_payload(ev), b"s" * 16, b"d" * 32,
                                               b"h" * 32),
                   strict=True))
    back = event_from_row(tuple(row[c] for c in SELECT_COLUMNS))
    expected = AuditEvent(**{f: getattr(ev, f) for f in ev.__struct_fields__})
    expected.tier = tier
    expected.seq = 5
    expected.leaf_hash = (b"h" * 32).hex()
    assert back == expected


def test_events_are_not_tracked_by_the_cyclic_gc() -> None:
    """A queue of events must not be walked by every full collection (see AuditEvent)."""
    import gc

    ev = AuditEvent(event_type="agent.tool_call", agent_name="A", params={"items": [1, 2]})
    assert not gc.is_tracked(ev)
    assert gc.is_tracked(ev.params)  # its containers are the caller's, tracked as usual


_AWKWARD = st.sampled_from([
    None, True, False, 0, -1, 2**53, 2**60, 0.0, -0.0, 1.0, 1.5, -1e-9, 1e12, 1e13, math.nan,
    math.inf, -math.inf, "", "x", "x" * 1025, "agent.decision", "default", "bad tenant!",
    b"bytes", [1], {"a": 1}, {"a": "b"}, {1: "b"}, "critical", "forever",
    "01a1f5db-2d23-7c3f-ba48-42a4db1854c0", "01A1F5DB-2D23-7C3F-BA48-42A4DB1854C0",
])


@settings(max_examples=600)
@given(events, st.sampled_from([f for f in AuditEvent.__struct_fields__
                                if f not in ("seq", "leaf_hash")]), _AWKWARD)
def test_the_quick_check_accepts_only_what_the_full_check_accepts(
        ev: AuditEvent, field: str, value: object) -> None:
    """``validate_event`` first tries ``_plainly_valid`` (exact types, no regex for a known
    tenant): whatever it lets through, the full check passes unchanged, field by field."""
    validate_event(AuditEvent(event_type="agent.decision", agent_name="a", tenant=ev.tenant))
    setattr(ev, field, value)
    if _plainly_valid(ev):
        before = event_to_dict(ev)
        assert _check_every_field(ev) is ev and event_to_dict(ev) == before


@settings(max_examples=200)
@given(events)
def test_the_quick_check_takes_plain_events(ev: AuditEvent) -> None:
    """The events the SDK and the collector build pass the quick check once their tenant is
    known (otherwise the faster path would be dead code that tests cannot see)."""
    validate_event(ev)
    assert _plainly_valid(ev)


def test_builders_events_take_the_quick_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK and the OTLP mapping build events with ``EventType`` members: once their
    tenant is known they do not need the full check, and still get the plain string value."""
    import agentaudit.events as events_mod

    validate_event(AuditEvent(event_type=EventType.DECISION, agent_name="a", tenant="quick"))
    full = []
    monkeypatch.setattr(events_mod, "_check_every_field", lambda ev: full.append(ev) or ev)
    ev = validate_event(AuditEvent(event_type=EventType.TOOL_CALL, agent_name="a",
                                   tenant="quick", duration_ms=1.5, tags={"k": "v"}))
    assert full == [] and ev.event_type == "agent.tool_call"
    assert ev.event_type.__class__ is str
    validate_event(AuditEvent(event_type=EventType.TOOL_CALL, agent_name="a", tenant="new-one"))
    assert len(full) == 1  # a tenant seen for the first time gets the full check
