"""The group-commit writer, in process: shared transactions, per-request counts, back-pressure."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from agentaudit.events import AuditEvent
from agentaudit.exceptions import StoreError
from agentaudit.server.writer import GroupCommitWriter, Saturated
from agentaudit.store.base import AppendResult
from agentaudit.store.sqlite import SQLiteStore


def _events(n: int, tenant: str = "default") -> list[AuditEvent]:
    return [AuditEvent(event_type="agent.tool_call", agent_name="W", tenant=tenant)
            for _ in range(n)]


class _Results:
    def __init__(self, n: int) -> None:
        self.items: list[tuple[AppendResult | None, BaseException | None]] = []
        self.all_done = threading.Event()
        self.n = n

    def done(self, result: AppendResult | None, error: BaseException | None) -> None:
        self.items.append((result, error))
        if len(self.items) == self.n:
            self.all_done.set()


@pytest.fixture
def writer(db_path: Path) -> Any:
    groups: list[tuple[int, int, int]] = []
    w = GroupCommitWriter(lambda: SQLiteStore(db_path), max_queue_events=1000,
                          on_group=lambda s, n, a, d: groups.append((n, a, d)))
    w.start()
    w.groups = groups  # type: ignore[attr-defined]
    yield w
    w.close()


def _hold(writer: GroupCommitWriter) -> threading.Event:
    """Keep the writer thread busy until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def job(store: Any) -> None:
        started.set()
        release.wait(10)

    writer.run_job(job)
    assert started.wait(10)
    return release


def test_waiting_requests_share_one_transaction(writer: Any) -> None:
    release = _hold(writer)
    results = _Results(5)
    for _ in range(5):
        writer.submit(_events(20), results.done)
    assert writer.pending_events == 100
    release.set()
    assert results.all_done.wait(10)
    assert writer.groups == [(100, 100, 0)]
    assert [r for r, _ in results.items] == [AppendResult(20, 0)] * 5
    assert writer.pending_events == 0


def test_duplicates_are_counted_per_request(writer: Any) -> None:
    old = _events(10)
    first = _Results(1)
    writer.submit(old, first.done)
    assert first.all_done.wait(10)
    release = _hold(writer)
    results = _Results(3)
    fresh = _events(5)
    writer.submit(old[:4] + fresh[:2], results.done)      # 4 stored before
    writer.submit(fresh[:3], results.done)                # 2 sent by the request before
    writer.submit(_events(1, tenant="other"), results.done)
    release.set()
    assert results.all_done.wait(10)
    assert [r for r, _ in results.items] == [AppendResult(2, 4), AppendResult(1, 2),
                                             AppendResult(1, 0)]


def test_a_full_queue_refuses_instead_of_buffering(writer: Any) -> None:
    release = _hold(writer)
    results = _Results(2)
    writer.submit(_events(600), results.done)
    with pytest.raises(Saturated):
        writer.submit(_events(401), results.done)
    writer.submit(_events(400), results.done)
    release.set()
    assert results.all_done.wait(10)
    assert all(error is None for _, error in results.items)


def test_a_failed_commit_reaches_every_waiter(db_path: Path) -> None:
    class Broken(SQLiteStore):
        fail = True

        def append_batch(self, events: Any) -> AppendResult:
            if self.fail:
                raise StoreError("disk full")
            return super().append_batch(events)

    store = Broken(db_path)
    w = GroupCommitWriter(lambda: store)
    w.start()
    try:
        results = _Results(2)
        w.submit(_events(3), results.done)
        w.submit(_events(3), results.done)
        assert results.all_done.wait(10)
        assert all(isinstance(e, StoreError) and r is None for r, e in results.items)
        store.fail = False
        ok = _Results(1)
        w.submit(_events(3), ok.done)
        assert ok.all_done.wait(10) and ok.items[0] == (AppendResult(3, 0), None)
    finally:
        w.close()


def test_close_commits_what_is_queued(db_path: Path) -> None:
    w = GroupCommitWriter(lambda: SQLiteStore(db_path))
    w.start()
    release = _hold(w)
    results = _Results(1)
    w.submit(_events(7), results.done)
    release.set()
    assert w.close(10)
    assert results.items == [(AppendResult(7, 0), None)]
    with SQLiteStore(db_path) as store:
        assert store.info().events == 7
