"""8 threads x 5,000 events plus 50 asyncio tasks with nested traces: each stored exactly once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

from agentaudit import AuditLogger
from agentaudit.store import EventQuery, open_store

THREADS, PER_THREAD, TASKS = 8, 5_000, 50


def test_threads_and_tasks_store_every_event_exactly_once(db_path: Path) -> None:
    audit = AuditLogger(str(db_path), max_queue=20_000)
    expected: dict[str, tuple[str, str | None]] = {}  # event_id -> (trace_id, parent)
    lock = threading.Lock()

    def thread_body(n: int) -> None:
        local: dict[str, tuple[str, str | None]] = {}
        trace = f"thread-{n}"
        root = audit.log_invocation(f"Agent{n}", task="batch", trace_id=trace)
        local[root] = (trace, None)
        for i in range(PER_THREAD - 1):
            eid = audit.log_tool_call(f"Agent{n}", "tool", {"i": i}, trace_id=trace,
                                      parent_id=root)
            local[eid] = (trace, root)
        with lock:
            expected.update(local)

    threads = [threading.Thread(target=thread_body, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()

    async def task(i: int) -> list[tuple[str, str, str | None]]:
        out = []
        with audit.trace(f"outer {i}", agent="Outer") as outer:
            await asyncio.sleep(0)
            with audit.trace(f"inner {i}", agent="Inner") as inner:
                await asyncio.sleep(0)
                eid = inner.reasoning(f"deep {i}")
                out.append((eid, inner.trace_id, inner.event_id))
            out.append((inner.event_id, outer.trace_id, outer.event_id))
            out.append((outer.event_id, outer.trace_id, None))
        return out

    async def main() -> list[list[tuple[str, str, str | None]]]:
        return await asyncio.gather(*(task(i) for i in range(TASKS)))

    results = asyncio.run(main())
    for t in threads:
        t.join()
    assert audit.flush(120)
    stats = audit.stats()
    audit.close()

    with open_store(str(db_path)) as store:
        events = list(store.iter_events(EventQuery()))
    ids = Counter(e.event_id for e in events)
    assert max(ids.values()) == 1
    by_id = {e.event_id: e for e in events}
    for eid, (trace, parent) in expected.items():
        assert by_id[eid].trace_id == trace and by_id[eid].parent_event_id == parent
    for out in results:
        for eid, trace, parent in out:
            assert by_id[eid].trace_id == trace and by_id[eid].parent_event_id == parent
        # inner and outer trace of one task are the same trace
        assert len({trace for _, trace, _ in out}) == 1
    n_task_events = TASKS * 5  # outer inv, inner inv, reasoning, inner finish, outer finish
    assert len(events) == THREADS * PER_THREAD + n_task_events
    assert stats.written == len(events) and stats.failed == stats.dropped == 0
    assert sorted(e.seq for e in events) == list(range(len(events)))  # gap-free log
