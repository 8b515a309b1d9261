"""``GET /v1/stream``: a Server-Sent Events live feed of events as they are committed.

The group-commit writer publishes every newly stored event; each subscriber (one per open
stream) gets those of its tenant that pass its filters, as ``data:`` lines with the seed's
``live_feed`` fields. A comment line every ``heartbeat`` seconds keeps proxies from closing an
idle stream. A subscriber that falls more than ``MAX_BACKLOG`` events behind loses the oldest
and is told how many with a ``: dropped N`` comment.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

from agentaudit.events import AuditEvent, EventType
from agentaudit.query import event_status, iso_time

__all__ = ["Broadcaster", "Subscription", "feed_item"]

MAX_BACKLOG = 10_000


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
    """Fans committed events out to open streams, on the event loop."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

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
        for sub in list(self._subs):
            sub.offer(events)

    def subscribe(self, sub: Subscription) -> Subscription:
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)


_encode = msgspec.json.Encoder().encode


async def stream(broadcaster: Broadcaster, sub: Subscription,
                 heartbeat: float) -> AsyncIterator[bytes]:
    """The SSE byte stream of one subscription, until the client goes away."""
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
