"""The seed methods' short path (``AuditLogger._defer``: no ``Frame``, no ``**fields``) stores
exactly the event the full path (``_emit``) stores, in every trace context, and an overflowing
call is spilled, counted and replayed like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentaudit import AuditLogger
from agentaudit.store import EventQuery, open_store

# what differs between two events logged one after the other
_OWN = {"event_id", "timestamp", "seq", "leaf_hash"}


def _calls(audit: AuditLogger, extra: dict[str, Any], trace: str | None, parent: str | None
           ) -> list[str]:
    """One call of each deferred method; ``extra`` (a field at its default) forces the full
    path."""
    return [
        audit.log_tool_call("Router", "get_order", {"order_id": 7, "n": [1, 2]},
                            trace_id=trace, parent_id=parent, **extra),
        audit.log_tool_result("Router", "get_order", {"status": "shipped"}, 12.5,
                              trace_id=trace, parent_id=parent, **extra),
        audit.log_decision("Router", "refund", reasoning="policy 4.2", confidence=0.9,
                           trace_id=trace, parent_id=parent, **extra),
        audit.log_reasoning("Router", "the order shipped", trace_id=trace, parent_id=parent,
                            **extra),
    ]


def _pairs(audit: AuditLogger, trace: str | None = None, parent: str | None = None
           ) -> list[tuple[str, str]]:
    return list(zip(_calls(audit, {}, trace, parent), _calls(audit, {"tier": None}, trace, parent),
                    strict=True))


def _fields(store: Any, event_id: str, tenant: str = "acme") -> dict[str, Any]:
    ev = store.get_event(tenant, event_id)
    assert ev is not None, event_id
    return {f: getattr(ev, f) for f in ev.__struct_fields__ if f not in _OWN}


def test_deferred_events_equal_the_full_path_in_every_context(db_path: Path) -> None:
    audit = AuditLogger(str(db_path), tenant="acme", source="svc-a", version="1.2.3")
    pairs = _pairs(audit)  # outside any trace: each call starts its own
    with audit.trace("refund request", agent="Support", session_id="s-1", user_id="u-1",
                     task_id="task-9") as t:
        pairs += _pairs(audit)  # the trace's ids, parent, session, user, task
        pairs += _pairs(audit, parent="01900000-0000-7000-8000-000000000001")
        pairs += _pairs(audit, trace="another-trace")  # none of the trace's context
        pairs += _pairs(audit, trace=t.trace_id)  # the same trace named explicitly
    assert audit.flush(10)
    stats = audit.stats()
    assert stats.written == len(pairs) * 2 + 1 + 1 and stats.failed == 0  # + invocation, end
    audit.close()
    store = open_store(str(db_path))
    try:
        for cheap, full in pairs:
            a, b = _fields(store, cheap), _fields(store, full)
            if a["trace_id"] != b["trace_id"]:  # outside a trace, each call gets a new trace
                assert a["parent_event_id"] is None and b["parent_event_id"] is None
                a.pop("trace_id"), b.pop("trace_id")
            assert a == b
            assert a["tenant"] == "acme" and a["source"] == "svc-a" and a["version"] == "1.2.3"
        inside = _fields(store, pairs[4][0])
        assert (inside["session_id"], inside["user_id"], inside["task_id"]) == (
            "s-1", "u-1", "task-9")
        assert inside["parent_event_id"] is not None
        other = _fields(store, pairs[12][0])
        assert other["trace_id"] == "another-trace" and other["session_id"] is None
    finally:
        store.close()


def test_deferred_calls_that_overflow_are_counted_and_spilled(db_path: Path) -> None:
    audit = AuditLogger(str(db_path), max_queue=1, batch_size=10_000, flush_interval=3600.0,
                        overflow="spill")
    ids = [audit.log_tool_call("Worker", "step", {"i": i}, trace_id="t") for i in range(50)]
    assert all(ids) and len(set(ids)) == 50
    assert audit.flush(10)
    audit.close()
    stats = audit.stats()
    assert stats.enqueued == 50 and stats.failed == 0 and stats.dropped == 0
    assert stats.spilled >= 1
    replayed = AuditLogger(str(db_path))  # replays the spool
    assert replayed.flush(10)
    replayed.close()
    store = open_store(str(db_path))
    try:
        stored = {e.event_id: e for e in store.iter_events(EventQuery(limit=1000))}
    finally:
        store.close()
    assert set(ids) <= set(stored)
    assert [stored[i].params for i in ids] == [{"i": i} for i in range(50)]
