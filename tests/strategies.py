"""Hypothesis strategies shared by the tests (importable because tests/ is on sys.path)."""

from __future__ import annotations

from hypothesis import strategies as st

from agentaudit.events import TIERS, AuditEvent, EventType

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
