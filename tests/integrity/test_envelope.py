"""The fast envelope encoder is byte-identical to RFC 8785 JCS of the envelope."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agentaudit.events import AuditEvent, default_tier
from agentaudit.integrity.canonical import _reference_canonical_json, canonical_json
from agentaudit.store.log import envelope, envelope_entry
from strategies import events

odd_floats = st.none() | st.floats(0, 1e300, allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, 1e-7, 1e-4, 12.0, 1e16, 1e21, 5e-324, 2.0**53, 123456789012345.6])


@settings(max_examples=400)
@given(events, st.integers(0, 2**53), odd_floats, odd_floats, st.text(max_size=5))
@example(AuditEvent(event_type="agent.error", agent_name="é\u2028\x00\x7f\"\\", timestamp=1e9),
         0, 12.0, None, "")
def test_fast_envelope_equals_jcs(ev: AuditEvent, seq: int, dur: float | None,
                                  cost: float | None, odd: str) -> None:
    ev.duration_ms, ev.cost_usd = dur, cost
    ev.action = (ev.action or "") + odd
    tier = ev.tier or default_tier(ev.event_type)
    env = envelope(ev, seq, tier, "ab" * 32)
    assert envelope_entry(ev, seq, tier, "ab" * 32) == canonical_json(env)
    assert canonical_json(env) == _reference_canonical_json(env)


@settings(max_examples=300)
@given(st.lists(events, min_size=1, max_size=4), st.integers(0, 2**53 - 10), odd_floats)
@example([AuditEvent(event_type="agent.tool_call", agent_name=',"seq":0,"session_id":',
                     action='"seq":0', timestamp=1e9)], 0, None)
def test_prepared_leaf_equals_leaf_of_the_envelope(evs: list[AuditEvent], start: int,
                                                    cost: float | None) -> None:
    """``LogSequencer.prepare`` cuts each leaf entry around its seq before the write lock;
    the leaf ``sequence`` then makes at any seq is the leaf of the whole envelope there, and the
    row is the one ``row_values`` makes (seq-looking text in a field changes nothing)."""
    from agentaudit.store.log import LogSequencer, leaf_of
    from agentaudit.store.rows import row_values

    for ev in evs:
        ev.tenant, ev.cost_usd = "t", cost
    log = LogSequencer()
    prepared = log.prepare(evs)
    rows = log.sequence(None, evs, lambda db, tenant: (start, None), prepared=prepared)
    for i, (ev, row) in enumerate(zip(evs, rows, strict=True)):
        seq, (payload, salt, digest) = start + i, row[-4:-1]
        assert row == row_values(ev, seq, ev.tier or default_tier(ev.event_type), payload, salt,
                                 digest, leaf_of(ev, seq, row[-5], digest)[1])
