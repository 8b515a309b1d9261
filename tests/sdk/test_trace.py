"""The SDK's context managers, decorators and seed methods build correct traces."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path

import pytest

from agentaudit import AuditEvent, AuditLogger, EventType
from agentaudit.store import EventQuery, open_store
from agentaudit.testing import capture_events


def stored(db: Path, **filters: object) -> list[AuditEvent]:
    with open_store(str(db)) as s:
        return s.query(EventQuery(limit=100_000, **filters)).data  # type: ignore[arg-type]


def test_trace_builds_parent_child_links(db_path: Path) -> None:
    with AuditLogger(str(db_path)) as audit:
        with audit.trace("refund request", agent="Router", session_id="s1", user_id="u1") as t:
            t.reasoning("customer wants money back")
            with t.tool_call("get_order", {"order_id": 42}) as call:
                call.result = {"status": "delivered"}
            with t.handoff("Billing", context_summary="refund of order 42") as billing:
                billing.decision("approve_refund", reasoning="within policy", confidence=0.92)
                billing.human(kind="approval", by="alice")
                billing.llm_response(model="gpt-4o", output="ok", prompt_tokens=10,
                                     completion_tokens=5)
            t.feedback(score=5, comment="great")
    events = stored(db_path)
    by_id = {e.event_id: e for e in events}
    types = [e.event_type for e in events]
    assert types == [
        "agent.invocation", "agent.reasoning", "agent.tool_call", "agent.tool_result",
        "agent.handoff", "agent.invocation", "agent.decision", "agent.human_intervention",
        "agent.llm_response", "agent.decision", "agent.feedback", "agent.decision",
    ]
    assert {e.trace_id for e in events} == {t.trace_id}
    assert all(e.session_id == "s1" and e.user_id == "u1" for e in events)
    inv, reasoning, call, result, handoff, b_inv, decision, human, llm, b_finish, fb, finish = events
    assert inv.parent_event_id is None and inv.action == "refund request"
    assert reasoning.parent_event_id == inv.event_id
    assert call.parent_event_id == inv.event_id and call.params == {"order_id": 42}
    assert result.parent_event_id == call.event_id and result.result == {"status": "delivered"}
    assert result.duration_ms is not None and result.duration_ms >= 0
    assert handoff.params == {"from_agent": "Router", "to_agent": "Billing",
                              "context_summary": "refund of order 42"}
    assert b_inv.agent_name == "Billing" and b_inv.parent_event_id == handoff.event_id
    for child in (decision, human, llm, b_finish):
        assert child.agent_name == "Billing" and child.parent_event_id == b_inv.event_id
    assert decision.confidence == 0.92 and decision.reasoning == "within policy"
    assert human.params == {"kind": "approval", "by": "alice"}
    assert llm.token_count == 15 and llm.model == "gpt-4o"
    assert fb.agent_name == "Router" and fb.params == {"score": 5, "comment": "great"}
    assert finish.action == "finish" and finish.parent_event_id == inv.event_id
    assert all(e.parent_event_id is None or e.parent_event_id in by_id for e in events)
    assert [e.seq for e in events] == list(range(len(events)))


def test_tool_exception_becomes_one_error_and_is_reraised(db_path: Path) -> None:
    audit = AuditLogger(str(db_path))
    with pytest.raises(TimeoutError), audit.trace("pay", agent="Billing") as t:
        with t.tool_call("process_refund", {"amount": 10}):
            raise TimeoutError("process_refund timed out after 30s")
    audit.close()
    events = stored(db_path)
    errors = [e for e in events if e.event_type == EventType.ERROR]
    assert len(errors) == 1  # not logged again by the enclosing trace
    err = errors[0]
    call = next(e for e in events if e.event_type == EventType.TOOL_CALL)
    assert err.error_type == "TimeoutError"
    assert err.error == "process_refund timed out after 30s"
    assert err.action == "process_refund" and err.parent_event_id == call.event_id
    assert not any(e.event_type == EventType.TOOL_RESULT for e in events)


def test_decorators_sync_and_async(db_path: Path) -> None:
    audit = AuditLogger(str(db_path))

    @audit.tool()
    def get_order(order_id: int, verbose: bool = False) -> dict[str, int]:
        return {"order_id": order_id}

    @audit.tool("search")
    async def search_kb(query: str) -> list[str]:
        await asyncio.sleep(0)
        return [query.upper()]

    @audit.agent("Support")
    def support(order_id: int) -> dict[str, int]:
        return get_order(order_id)

    @audit.agent("Research")
    async def research(q: str) -> list[str]:
        return await search_kb(q)

    assert support(7) == {"order_id": 7}
    assert asyncio.run(research("refunds")) == ["REFUNDS"]
    audit.close()
    events = stored(db_path)
    support_trace = [e for e in events if e.agent_name == "Support"]
    call = next(e for e in support_trace if e.event_type == "agent.tool_call")
    assert call.action == "get_order" and call.params == {"order_id": 7}
    inv = next(e for e in support_trace if e.event_type == "agent.invocation")
    assert call.parent_event_id == inv.event_id
    res = next(e for e in events if e.event_type == "agent.tool_result" and e.action == "search")
    assert res.result == ["REFUNDS"] and res.agent_name == "Research"


def test_seed_methods_with_seed_keywords(db_path: Path) -> None:
    audit = AuditLogger(str(db_path))
    inv = audit.log_invocation(agent_name="Router", task="route ticket", session_id="s9",
                               trace_id="t-1")
    call = audit.log_tool_call(agent_name="Router", tool_name="lookup", params={"q": 1},
                               trace_id="t-1", parent_id=inv)
    audit.log_decision(agent_name="Router", decision="send to Billing", reasoning="money",
                       confidence=0.7, trace_id="t-1")
    audit.log_error(agent_name="Router", error=ValueError("bad id"), context={"id": "x"},
                    trace_id="t-1")
    audit.close()
    events = stored(db_path, trace_id="t-1")
    assert [e.event_type for e in events] == ["agent.invocation", "agent.tool_call",
                                              "agent.decision", "agent.error"]
    assert events[0].session_id == "s9" and events[0].params == {"task": "route ticket"}
    assert events[1].event_id == call and events[1].parent_event_id == inv
    assert events[2].confidence == 0.7
    assert events[3].error_type == "ValueError" and events[3].params == {"id": "x"}


def test_explicit_event_keeps_its_timestamp(db_path: Path) -> None:
    audit = AuditLogger(str(db_path))
    ev = AuditEvent(event_type="agent.decision", agent_name="Importer", timestamp=1_600_000_000.5)
    assert audit.log(ev) == ev.event_id
    audit.close()
    (back,) = stored(db_path)
    assert back.timestamp == 1_600_000_000.5 and back.event_id == ev.event_id


def test_bad_arguments_never_raise_into_agent_code(db_path: Path) -> None:
    audit = AuditLogger(str(db_path))
    audit.log_decision("Router", "x", confidence=7.0)  # out of range
    audit.log_tool_call("Router", "t", params=["not", "a", "dict"])  # type: ignore[arg-type]
    audit.log(AuditEvent(event_type="agent.bogus", agent_name="Router"))
    audit.log("not an event")  # type: ignore[arg-type]
    audit.log_decision("Router", "fine", confidence=0.5)
    assert audit.flush(10)
    stats = audit.stats()
    audit.close()
    assert stats.failed == 4 and stats.written == 1  # "not an event" is counted too
    assert stats.enqueued == 5
    assert "event_type" in (stats.last_error or "") or "confidence" in (stats.last_error or "")
    assert len(stored(db_path)) == 1


def test_context_follows_threads_and_asyncio_tasks(db_path: Path) -> None:
    audit = AuditLogger(str(db_path))
    with audit.trace("fan out", agent="Router") as t:
        def worker(i: int) -> None:
            audit.log_tool_call("Router", f"thread_tool_{i}", {"i": i})

        threads = [threading.Thread(target=contextvars.copy_context().run, args=(worker, i))
                   for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

        async def task(i: int) -> None:
            with audit.trace(f"sub {i}", agent="Research") as sub:
                await asyncio.sleep(0)
                sub.reasoning(f"task {i}")

        async def main() -> None:
            await asyncio.gather(*(task(i) for i in range(5)))

        asyncio.run(main())
    audit.close()
    events = stored(db_path)
    assert {e.trace_id for e in events} == {t.trace_id}
    root = events[0]
    for e in events:
        if e.action and e.action.startswith("thread_tool_"):
            assert e.parent_event_id == root.event_id
    subs = {e.event_id: e for e in events if e.event_type == "agent.invocation" and e is not root}
    assert len(subs) == 5 and all(s.parent_event_id == root.event_id for s in subs.values())
    for e in events:
        if e.event_type == "agent.reasoning":
            assert e.parent_event_id in subs
            assert subs[e.parent_event_id].action == "sub " + e.reasoning.split()[-1]  # type: ignore[union-attr]


def test_capture_events_sees_what_agents_log(db_path: Path) -> None:
    audit = AuditLogger(str(db_path))
    with capture_events() as events, audit.trace("x", agent="Support") as t:
        t.decision("answer", confidence=0.8)
    audit.close()
    assert [e.event_type for e in events] == ["agent.invocation", "agent.decision",
                                              "agent.decision"]
    assert events.of_type("agent.invocation")[0].agent_name == "Support"
    assert len(stored(db_path)) == 3


def test_explicit_fields_win_over_the_trace_context_and_none_leaves_it(db_path: Path) -> None:
    audit = AuditLogger(str(db_path), source="svc-a")
    with audit.trace("refund", agent="Support", session_id="s-1", user_id="u-1",
                     task_id="task-9") as t:
        own = audit.log_tool_call("Support", "get_order", {"id": 1}, session_id="s-2",
                                  source="svc-b", timestamp=1_600_000_000.25, model="m-1")
        kept = audit.log_tool_call("Support", "get_order", {"id": 2}, session_id=None,
                                   user_id=None, model="m-1")
        step = t.reasoning("checked the order", task_id="task-10", tags={"k": "v"})
        audit.log_tool_call("Support", "get_order", {"id": 3}, no_such_field="x")
    assert audit.flush(10)
    stats = audit.stats()
    audit.close()
    assert stats.failed == 1 and "no_such_field" in (stats.last_error or "")
    by_id = {ev.event_id: ev for ev in stored(db_path)}
    assert len(by_id) == 5  # invocation, 2 tool calls, reasoning, finish: the bad call is not kept
    a, b, c = by_id[own], by_id[kept], by_id[step]
    assert (a.session_id, a.user_id, a.task_id, a.source, a.timestamp, a.model) == (
        "s-2", "u-1", "task-9", "svc-b", 1_600_000_000.25, "m-1")
    assert (b.session_id, b.user_id, b.task_id, b.source, b.model) == (
        "s-1", "u-1", "task-9", "svc-a", "m-1")
    assert (c.session_id, c.task_id, c.tags, c.trace_id, c.parent_event_id) == (
        "s-1", "task-10", {"k": "v"}, t.trace_id, t.event_id)
