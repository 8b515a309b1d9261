from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentaudit.events import (
    TIERS,
    AuditEvent,
    EventType,
    default_tier,
    event_from_dict,
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


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    st.text(max_size=8), c, max_size=4), max_leaves=12)
opt_text = st.none() | st.text(min_size=1, max_size=30)
opt_count = st.none() | st.integers(0, 10**9)
opt_pos = st.none() | st.floats(0, 1e9, allow_nan=False)

events = st.builds(
    AuditEvent,
    event_type=st.sampled_from([t.value for t in EventType]),
    agent_name=st.text(min_size=1, max_size=30),
    task_id=opt_text, session_id=opt_text, action=opt_text,
    params=st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    result=json_values, reasoning=st.none() | st.text(max_size=50),
    confidence=st.none() | st.floats(0, 1), source=opt_text, parent_event_id=opt_text,
    trace_id=opt_text, timestamp=st.floats(1.0, 4e9), duration_ms=opt_pos,
    token_count=opt_count, model=opt_text, version=opt_text, error=st.none() | st.text(max_size=40),
    error_type=opt_text, tenant=st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True),
    user_id=opt_text, prompt_tokens=opt_count, completion_tokens=opt_count, cost_usd=opt_pos,
    tags=st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    tier=st.none() | st.sampled_from(TIERS),
)


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
