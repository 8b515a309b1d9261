"""The collector's runtime: the write path (group commit), a pool of read connections, the
live-feed broadcaster and the metrics, held together for the routes (``app.state.collector``)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agentaudit.events import AuditEvent
from agentaudit.redact.redactor import RedactionRules, Redactor
from agentaudit.server.metrics import Metrics
from agentaudit.server.settings import ServerSettings
from agentaudit.server.sse import Broadcaster, StorePoller
from agentaudit.server.writer import GroupCommitWriter

if TYPE_CHECKING:
    from agentaudit.store.sqlite import SQLiteStore

__all__ = ["Collector", "ReadPool"]


class ReadPool:
    """Read-only store connections shared by request threads (SQLite WAL readers never block
    the writer). Up to ``size`` are kept; beyond that a caller gets a connection of its own that
    is closed after use, so that nobody (least of all the event loop) waits for a free one."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self._free: queue.LifoQueue[SQLiteStore] = queue.LifoQueue()
        self._kept = 0
        self._lock = threading.Lock()
        self._all: list[SQLiteStore] = []

    def _open(self) -> SQLiteStore:
        from agentaudit.store import open_store

        return open_store(self.url, create=False, readonly=True)  # type: ignore[return-value]

    @contextlib.contextmanager
    def store(self) -> Iterator[SQLiteStore]:
        """A read connection for the duration of the ``with`` block."""
        keep = False
        try:
            store = self._free.get_nowait()
            keep = True
        except queue.Empty:
            with self._lock:
                keep = self._kept < self.size
                self._kept += keep
            try:
                store = self._open()
            except BaseException:
                with self._lock:
                    self._kept -= keep
                raise
            if keep:
                with self._lock:
                    self._all.append(store)
        try:
            yield store
        finally:
            if keep:
                self._free.put(store)
            else:
                store.close()

    def close(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for store in stores:
            with contextlib.suppress(Exception):
                store.close()


class Collector:
    """Everything a request handler needs, created by ``create_app`` and started by its
    lifespan."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.broadcaster = Broadcaster()
        self.pool = ReadPool(settings.db, settings.read_pool_size)
        self.poller = StorePoller(self.broadcaster, self.pool.store, settings.sse_poll_interval)
        self.broadcaster.before_first_subscriber = self.poller.catch_up
        self._loop: asyncio.AbstractEventLoop | None = None
        self.redactor = _redactor(settings)
        self.writer = GroupCommitWriter(
            self._open_write_store, max_queue_events=settings.queue_max_events,
            max_commit_events=settings.max_commit_events,
            commit_interval=settings.commit_interval, on_commit=self._committed,
            on_group=self._group_done,
            redact=self.redactor.redact if self.redactor is not None else None)
        self.detection = _detection(settings, self.writer)
        self.metrics.gauge("agentaudit_writer_queue_events",
                           "Events waiting for the group-commit writer.",
                           lambda: self.writer.pending_events)
        self.metrics.gauge("agentaudit_writer_queue_capacity_events",
                           "Events the writer queue holds before refusing requests.",
                           lambda: settings.queue_max_events)
        self.metrics.gauge("agentaudit_stream_subscribers", "Open /v1/stream connections.",
                           lambda: self.broadcaster.subscribers)
        if self.detection is not None:
            hook = self.detection
            self.metrics.gauge("agentaudit_detect_pending_events",
                               "Stored events waiting for the detection rules.",
                               lambda: hook.pending_events)
            self.metrics.gauge("agentaudit_detect_skipped_events",
                               "Stored events not inspected (detection too far behind).",
                               lambda: hook.stats["skipped_events"])
        self.started = False

    def _open_write_store(self) -> Any:
        from agentaudit.store import open_store

        store = open_store(self.settings.db, synchronous=self.settings.synchronous)
        # other workers' writers share the store: take the write lock only to sequence and write
        store.prepare_outside_lock = self.settings.workers > 1
        return store

    def _committed(self, events: list[AuditEvent]) -> None:
        self.broadcaster.publish(events)
        if self.detection is not None:
            self.detection(events)  # queued: the rules run on the detection thread

    def _group_done(self, seconds: float, events: int, accepted: int, duplicates: int) -> None:
        m = self.metrics
        m.observe_commit(seconds, events)
        m.inc("agentaudit_events_ingested_total", accepted)
        m.inc("agentaudit_events_duplicate_total", duplicates)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the write store, start the writer, bind the broadcaster to the loop and start
        watching the store for events written by other processes."""
        self.broadcaster.bind(loop)
        self.writer.start()
        self._loop = loop
        self.poller.start(loop)
        self.started = True

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then release every connection."""
        if self.detection is not None:  # its firings still go through the open writer
            self.detection.close(timeout)
        if self._loop is not None:
            self.poller.stop(self._loop)
        self.writer.close(timeout)
        if self.detection is not None and self.detection.dispatcher is not None:
            self.detection.dispatcher.close(min(timeout, 10.0))
        self.pool.close()


def _detection(settings: ServerSettings, writer: GroupCommitWriter) -> Any:
    """The detection hook (docs/detection.md); None when turned off."""
    if not settings.detect:
        return None
    from agentaudit.detect.hook import for_collector

    return for_collector(writer, settings.db, settings.detect_rules)


def _redactor(settings: ServerSettings) -> Redactor | None:
    """The redaction policy of ``settings`` (docs/redaction.md); None when turned off."""
    if not settings.redact:
        return None
    if settings.redact_config:
        return Redactor(RedactionRules.from_file(settings.redact_config))
    return Redactor()
