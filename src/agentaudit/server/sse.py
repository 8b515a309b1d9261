"""``GET /v1/stream``: a Server-Sent Events live feed of events as they are committed.

The group-commit writer publishes every newly stored event; each subscriber (one per open
stream) gets those of its tenant that pass its filters, as ``data:`` lines with the seed's
``live_feed`` fields. A comment line every ``heartbeat`` seconds keeps proxies from closing an
idle stream. A subscriber that falls more than ``MAX_BACKLOG`` events behind loses the oldest
and is told how many with a ``: dropped N`` comment.

Other processes may write to the same store (an SDK appending to the SQLite file while the
collector runs, other collectors in front of one PostgreSQL database): ``StorePoller`` reads the
store's feed position every ``interval`` seconds and publishes the events it has not seen. The
position is opaque to the poller: SQLite's newest row id (row ids grow in commit order), or
PostgreSQL's size of each tenant's log (seqs are committed in order under the tenant's lock;
``events.id`` is not commit order there). Each event reaches a stream once, whichever path saw
it first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import msgspec

from agentaudit.events import AuditEvent, EventType
from agentaudit.query import event_status, iso_time

__all__ = ["Broadcaster", "StorePoller", "Subscription", "feed_item"]

log = logging.getLogger("agentaudit.server")

MAX_BACKLOG = 10_000
SEEN_IDS = 200_000  # event ids remembered to publish each event once
POLL_BATCH = 5_000


def feed_item(ev: AuditEvent) -> dict[str, Any]:
    """The live-feed fields of one event."""
    return {"timestamp": iso_time(ev.timestamp), "agent": ev.agent_name, "type": ev.event_type,
            "action": ev.action, "status": event_status(ev), "duration": ev.duration_ms,
            "trace_id": ev.trace_id, "event_id": ev.event_id}


class Subscription:
    """One open stream: its tenant, its filters, and a bounded backlog."""

    def __init__(self, tenant: str, agent: str | None = None,
                 types: Iterable[str] | None = None, errors_only: bool = False) -> None:
        self.tenant = tenant
        self.agent = agent
        self.types = frozenset(types) if types else None
        self.errors_only = errors_only
        self.backlog: collections.deque[AuditEvent] = collections.deque()
        self.dropped = 0
        self.ready = asyncio.Event()

    def wants(self, ev: AuditEvent) -> bool:
        if ev.tenant != self.tenant or (self.agent is not None and ev.agent_name != self.agent):
            return False
        if self.errors_only and ev.event_type != EventType.ERROR:
            return False
        return self.types is None or ev.event_type in self.types

    def offer(self, events: list[AuditEvent]) -> None:
        added = False
        for ev in events:
            if self.wants(ev):
                self.backlog.append(ev)
                added = True
        while len(self.backlog) > MAX_BACKLOG:
            self.backlog.popleft()
            self.dropped += 1
        if added:
            self.ready.set()


class Broadcaster:
    """Fans committed events out to open streams, on the event loop, each event once."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Run (in a thread) before the first stream opens: ``StorePoller.catch_up``.
        self.before_first_subscriber: Callable[[], None] | None = None
        self._seen: set[str] = set()
        self._seen_order: collections.deque[str] = collections.deque()

    def seen(self, event_id: str) -> bool:
        """Whether the event was already published (a hint from any thread)."""
        return event_id in self._seen

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, events: list[AuditEvent]) -> None:
        """Called from the writer thread after a commit; cheap when nobody listens."""
        if self._subs and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self._loop.call_soon_threadsafe(self._fanout, events)

    def _fanout(self, events: list[AuditEvent]) -> None:
        fresh = [ev for ev in events if ev.event_id not in self._seen]
        if not fresh:
            return
        for ev in fresh:
            self._seen.add(ev.event_id)
            self._seen_order.append(ev.event_id)
        while len(self._seen_order) > SEEN_IDS:
            self._seen.discard(self._seen_order.popleft())
        for sub in list(self._subs):
            sub.offer(fresh)

    def subscribe(self, sub: Subscription) -> Subscription:
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)


class StorePoller:
    """Publishes events that other processes commit to the store (see the module docstring).

    ``reader`` opens a read connection of the store (a context manager) whose store has
    ``feed_position``, ``feed_after`` and ``feed_events`` (a backend without them turns the
    poller off), and ``feed_advance`` when its position is more than the key of the last row
    read. Only the feed position is read while nobody listens.
    """

    def __init__(self, broadcaster: Broadcaster, reader: Callable[[], AbstractContextManager[Any]],
                 interval: float) -> None:
        self.broadcaster = broadcaster
        self.reader: Callable[[], AbstractContextManager[Any]] | None = reader
        self.interval = interval
        self.position: Any = None  # the store's: a row id, or a log size per tenant
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self.run())

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the polling task (from any thread)."""
        if self._task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._task.cancel)

    async def run(self) -> None:
        while self.reader is not None:
            try:
                events = await asyncio.to_thread(self.poll)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a locked or missing file now is no reason to stop
                log.warning("agentaudit: live feed could not read the store: %s", e)
                events = []
            if events:
                self.broadcaster._fanout(events)
            await asyncio.sleep(self.interval)

    def catch_up(self) -> None:
        """Move to the newest stored row before the first stream opens: what was committed while
        nobody listened is not news to it (a poll tick may not have seen it yet)."""
        if self.reader is None or self.broadcaster.subscribers:
            return
        with self.reader() as store:
            if hasattr(store, "feed_position"):
                self.position = store.feed_position()

    def poll(self) -> list[AuditEvent]:
        """Events stored since the last poll that were not published yet (runs in a thread)."""
        if self.reader is None:
            return []
        with self.reader() as store:
            if not hasattr(store, "feed_position"):  # a backend without a feed: stop polling
                log.info("agentaudit: the %s store has no feed position; /v1/stream shows only "
                         "events this collector commits", getattr(store, "backend", "?"))
                self.reader = None
                return []
            if self.position is None or not self.broadcaster.subscribers:
                self.position = store.feed_position()
                return []
            unseen: list[Any] = []
            while True:
                rows = store.feed_after(self.position, POLL_BATCH)
                if rows:
                    advance = getattr(store, "feed_advance", None)
                    self.position = (rows[-1][0] if advance is None
                                     else advance(self.position, rows))
                unseen.extend(i for i, event_id in rows if not self.broadcaster.seen(event_id))
                if len(rows) < POLL_BATCH:
                    break
            return store.feed_events(unseen) if unseen else []


_encode = msgspec.json.Encoder().encode


async def stream(broadcaster: Broadcaster, sub: Subscription,
                 heartbeat: float) -> AsyncIterator[bytes]:
    """The SSE byte stream of one subscription, until the client goes away."""
    if not broadcaster.subscribers and broadcaster.before_first_subscriber is not None:
        with contextlib.suppress(Exception):  # a locked file: the next poll catches up anyway
            await asyncio.to_thread(broadcaster.before_first_subscriber)
    broadcaster.subscribe(sub)
    try:
        yield b": connected\nretry: 2000\n\n"
        while True:
            try:
                await asyncio.wait_for(sub.ready.wait(), timeout=heartbeat)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            sub.ready.clear()
            chunks = []
            if sub.dropped:
                chunks.append(b": dropped %d events\n\n" % sub.dropped)
                sub.dropped = 0
            while sub.backlog:
                ev = sub.backlog.popleft()
                chunks.append(b"id: " + ev.event_id.encode() + b"\nevent: audit\ndata: "
                              + _encode(feed_item(ev)) + b"\n\n")
            yield b"".join(chunks)
    finally:
        broadcaster.unsubscribe(sub)
