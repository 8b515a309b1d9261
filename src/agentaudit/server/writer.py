"""Group commit: one thread owns the store's write connection; requests share transactions.

Request handlers ``await writer.append(events)``. The writer thread takes every request waiting
(up to ``max_commit_events``), stores their events in one ``append_batch`` (one transaction, one
fsync) and only then resolves each request with its own accepted/duplicate counts. The queue is
bounded in events: when full, ``append`` raises ``Saturated`` at once and the caller answers 503
instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentaudit.events import AuditEvent
from agentaudit.exceptions import IngestError
from agentaudit.store.base import AppendResult, Store

__all__ = ["GroupCommitWriter", "Saturated", "WriterClosed"]

log = logging.getLogger("agentaudit.server")

Done = Callable[[AppendResult | None, BaseException | None], None]


class Saturated(IngestError):
    """The writer's queue is full; retry later."""


class WriterClosed(IngestError):
    """The writer is shutting down."""


class _Request:
    __slots__ = ("done", "duplicates", "events", "queued_at", "sent")

    def __init__(self, events: Sequence[AuditEvent], done: Done) -> None:
        self.events = events
        self.done = done
        self.queued_at = time.perf_counter()
        self.sent: list[AuditEvent] = []
        self.duplicates = 0


class _Job:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Store], Any]) -> None:
        self.fn = fn
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()


class GroupCommitWriter:
    """Commits requests' events in shared transactions on one background thread."""

    def __init__(self, open_store: Callable[[], Store], *, max_queue_events: int = 200_000,
                 max_commit_events: int = 20_000, commit_interval: float = 0.0,
                 on_commit: Callable[[list[AuditEvent]], None] | None = None,
                 on_group: Callable[[float, int, int, int], None] | None = None,
                 redact: Callable[[AuditEvent], AuditEvent] | None = None) -> None:
        self._open_store = open_store
        self._redact = redact  # in place, on this thread: the event loop never pays for it
        self.max_queue_events = max_queue_events
        self.max_commit_events = max_commit_events
        self.commit_interval = commit_interval
        self._on_commit = on_commit
        self._on_group = on_group  # (seconds, events, accepted, duplicates)
        self._queue: collections.deque[_Request | _Job] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._pending = 0
        self._stopping = False
        self._store: Store | None = None
        self._thread = threading.Thread(target=self._run, name="agentaudit-group-commit",
                                        daemon=True)

    # -- any thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the store (errors surface here) and start the writer thread."""
        self._store = self._open_store()
        self._thread.start()

    @property
    def pending_events(self) -> int:
        """Events queued and not yet committed."""
        return self._pending

    def submit(self, events: Sequence[AuditEvent], done: Done) -> None:
        """Queue events; ``done(result, error)`` runs on the writer thread after the commit."""
        with self._cond:
            if self._stopping:
                raise WriterClosed("the collector is shutting down")
            if self._pending + len(events) > self.max_queue_events and self._pending:
                raise Saturated(f"the write queue is full ({self._pending} events waiting)")
            self._pending += len(events)
            self._queue.append(_Request(events, done))
            self._cond.notify()

    async def append(self, events: Sequence[AuditEvent]) -> AppendResult:
        """Queue events and wait until they are committed; raises ``Saturated`` when full."""
        if not events:
            return AppendResult(0, 0)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[AppendResult] = loop.create_future()

        def done(result: AppendResult | None, error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_resolve, fut, result, error)

        self.submit(events, done)
        return await fut

    def run_job(self, fn: Callable[[Store], Any]) -> concurrent.futures.Future[Any]:
        """Run ``fn(store)`` on the writer thread, between two group commits."""
        job = _Job(fn)
        with self._cond:
            if self._stopping:
                raise WriterClosed("the collector is shutting down")
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def close(self, timeout: float = 30.0) -> bool:
        """Commit what is queued (within ``timeout``), stop the thread and close the store."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if stopped and self._store is not None:
            try:  # sign what was committed since the last checkpoint, as the SDK does on close
                self._store.checkpoint()
            except Exception as e:
                log.warning("agentaudit: no checkpoint signed at shutdown: %s", e)
            with contextlib.suppress(Exception):
                self._store.close()
        return stopped

    # -- writer thread -------------------------------------------------------------------------

    def _take(self) -> list[_Request | _Job] | None:
        """Wait for work; return the requests of one group (or one job); None when stopping."""
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
        if self.commit_interval and not self._stopping:
            time.sleep(self.commit_interval)
        with self._cond:
            first = self._queue.popleft()
            if isinstance(first, _Job):
                return [first]
            group: list[_Request | _Job] = [first]
            size = len(first.events)
            while self._queue and isinstance(self._queue[0], _Request) and (
                    size + len(self._queue[0].events) <= self.max_commit_events):
                req = self._queue.popleft()
                size += len(req.events)  # type: ignore[union-attr]
                group.append(req)
            return group

    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            if isinstance(group[0], _Job):
                self._run_job(group[0])
                continue
            requests: list[_Request] = group  # type: ignore[assignment]
            try:
                self._commit(requests)
            except BaseException as e:  # every waiter hears of it; the thread lives on
                log.error("agentaudit: group commit failed: %r", e)
                for req in requests:
                    req.done(None, e)
            finally:
                with self._cond:
                    self._pending -= sum(len(r.events) for r in requests)

    def _run_job(self, job: _Job) -> None:
        assert self._store is not None
        try:
            job.future.set_result(job.fn(self._store))
        except BaseException as e:
            job.future.set_exception(e)

    def _commit(self, requests: list[_Request]) -> None:
        store = self._store
        assert store is not None
        batch = _dedupe_across(requests)
        if self._redact is not None:
            for ev in batch:
                self._redact(ev)
        sizes = _log_sizes(store, batch)
        started = time.perf_counter()
        result = store.append_batch(batch)
        elapsed = time.perf_counter() - started
        new = batch if result.duplicates == 0 else _newly_stored(store, batch, sizes)
        accepted: dict[int, int] = {}
        if new is not batch:
            fresh = {id(ev) for ev in new}
            for req in requests:
                accepted[id(req)] = sum(1 for ev in req.sent if id(ev) in fresh)
        if self._on_group is not None:
            self._on_group(elapsed, len(batch), len(new),
                           len(batch) - len(new) + sum(r.duplicates for r in requests))
        if self._on_commit is not None and new:
            self._on_commit(new)
        for req in requests:
            ok = accepted.get(id(req), len(req.sent))
            req.done(AppendResult(ok, len(req.events) - ok), None)


def _resolve(fut: asyncio.Future[AppendResult], result: AppendResult | None,
             error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)  # type: ignore[arg-type]


def _dedupe_across(requests: list[_Request]) -> list[AuditEvent]:
    """The group's events, each (tenant, event_id) once; later copies count as duplicates."""
    seen: set[tuple[str, str]] = set()
    batch: list[AuditEvent] = []
    for req in requests:
        for ev in req.events:
            key = (ev.tenant, ev.event_id)
            if key in seen:
                req.duplicates += 1
                continue
            seen.add(key)
            batch.append(ev)
            req.sent.append(ev)
    return batch


def _log_sizes(store: Store, batch: list[AuditEvent]) -> dict[str, int]:
    """Each tenant's log size before the commit (to tell new events from stored ones after)."""
    log_state = getattr(store, "log_state", None)
    if log_state is None:
        return {}
    return {t: int(log_state(t)[0]) for t in {ev.tenant for ev in batch}}


def _newly_stored(store: Store, batch: list[AuditEvent], sizes: dict[str, int]) -> list[AuditEvent]:
    """After a commit that found duplicates: the events this commit stored (seq past the old
    log size). Runs only when a retried batch met stored events."""
    new = []
    for ev in batch:
        stored = store.get_event(ev.tenant, ev.event_id)
        if stored is not None and stored.seq is not None and stored.seq >= sizes.get(ev.tenant, 0):
            ev.seq = stored.seq
            new.append(ev)
    return new
