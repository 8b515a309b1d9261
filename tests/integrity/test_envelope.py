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


@settings(max_examples=300)
@given(st.lists(events, min_size=1, max_size=4), st.integers(0, 2**53 - 10), odd_floats,
       odd_floats, odd_floats)
@example([AuditEvent(event_type="agent.decision", agent_name="a", timestamp=1_773_136_800.0,
                     confidence=1.0, duration_ms=0.0, cost_usd=3.5e-05)], 0, None, None, None)
def test_verify_recomputes_the_leaf_sequencing_made(evs: list[AuditEvent], start: int,
                                                     dur: float | None, cost: float | None,
                                                     conf: float | None) -> None:
    """verify's row loop inlines the envelope encoder (its hot path); on every value the store
    can hold it recomputes exactly the leaf that sequencing stored, and ``_leaf_for`` (the
    general path) agrees."""
    from agentaudit.integrity.verify import _check_rows, _leaf_for
    from agentaudit.store.log import LogSequencer
    from agentaudit.store.rows import COLUMNS, VERIFY_COLUMNS

    for ev in evs:
        ev.tenant, ev.duration_ms, ev.cost_usd = "t", dur, cost
        ev.confidence = None if conf is None else min(conf, 1.0)
    rows = LogSequencer().sequence(None, evs, lambda db, tenant: (start, None))
    stored = [dict(zip(COLUMNS, row, strict=True), erased=None) for row in rows]
    checked = [tuple(r[c] for c in VERIFY_COLUMNS) for r in stored]
    chunk, more = _check_rows(iter(checked), "t", start, None)
    assert chunk.damage is None and not more
    assert chunk.leaves == b"".join(r["leaf_hash"] for r in stored)
    assert [_leaf_for(row, "t", start + i) for i, row in enumerate(checked)] == \
        [r["leaf_hash"] for r in stored]
