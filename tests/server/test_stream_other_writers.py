"""The live feed sees events that other processes write straight into the collector's store."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentaudit.events import AuditEvent, new_event_id
from agentaudit.server.sse import Broadcaster, StorePoller, Subscription
from agentaudit.store.sqlite import SQLiteStore

from .conftest import Server


@pytest.fixture(scope="module")
def server(home: Path, keys: dict[str, str]) -> Iterator[Server]:
    srv = Server(home / "audit.db", home, env={"AGENTAUDIT_SSE_HEARTBEAT": "0.3",
                                               "AGENTAUDIT_SSE_POLL_INTERVAL": "0.1"}).start()
    try:
        yield srv
    finally:
        srv.stop()


def _collect(server: Server, key: str, send: Any, want: int,
             timeout: float = 20.0) -> list[dict[str, Any]]:
    """Stream messages until ``want`` arrived and a heartbeat followed (so that a duplicate
    would have shown up), calling ``send`` once the stream is open."""
    data: list[dict[str, Any]] = []
    beats_after = 0
    deadline = time.monotonic() + timeout
    with server.client(key) as c, c.stream("GET", "/v1/stream") as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == ": connected":
                threading.Thread(target=send).start()
            elif line.startswith("data: "):
                data.append(json.loads(line[6:]))
            elif line == ": heartbeat" and len(data) >= want:
                beats_after += 1
            if beats_after >= 2 or time.monotonic() > deadline:
                break
    return data


def test_events_written_by_an_sdk_process_reach_the_stream_once(
        server: Server, keys: dict[str, str], home: Path) -> None:
    from agentaudit import AuditLogger

    over_http = [{"event_id": new_event_id(), "event_type": "agent.tool_call",
                  "agent_name": "Collector-Client", "action": "lookup",
                  "timestamp": time.time()} for _ in range(3)]
    sdk_ids: list[str] = []

    def send() -> None:
        # an SDK in this (another) process, writing to the collector's SQLite file directly
        with AuditLogger(store=str(server.db), tenant="acme", spool_dir=home / "sdk-spool") as a, \
                AuditLogger(store=str(server.db), tenant="globex",
                            spool_dir=home / "sdk-spool-g") as g:
            with a.trace("nightly job", agent="Batch") as t:
                with t.tool_call("export", {"rows": 10}) as call:
                    call.result = "ok"
                sdk_ids.extend([t.event_id, call.event_id])
            g.log_invocation("Other-Tenant", "secret")
            assert a.flush(10) and g.flush(10)
        with server.client(keys["acme-ingest"]) as c:
            assert c.post("/v1/events", json=over_http).json()["accepted"] == 3

    data = _collect(server, keys["acme-read"], send, want=4 + 3)
    ids = [d["event_id"] for d in data]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert {d["agent"] for d in data} == {"Batch", "Collector-Client"}
    assert set(sdk_ids) <= set(ids)
    assert [d["type"] for d in data if d["agent"] == "Batch"] == [
        "agent.invocation", "agent.tool_call", "agent.tool_result", "agent.decision"]
    assert {e["event_id"] for e in over_http} <= set(ids)
    assert len(ids) == 7


def _event(tenant: str = "acme") -> AuditEvent:
    return AuditEvent(event_id=new_event_id(), event_type="agent.tool_call", agent_name="W",
                      action="x", tenant=tenant, timestamp=time.time())


def test_poller_reads_only_the_position_while_nobody_listens(tmp_path: Path) -> None:
    import contextlib

    db = tmp_path / "feed.db"
    with SQLiteStore(db) as store:
        store.append_batch([_event() for _ in range(5)])
    reads: list[str] = []

    @contextlib.contextmanager
    def reader() -> Iterator[Any]:
        with SQLiteStore(db, readonly=True) as s:
            class Spy:
                def __getattr__(self, name: str) -> Any:
                    reads.append(name)
                    return getattr(s, name)
            yield Spy()

    broadcaster = Broadcaster()
    poller = StorePoller(broadcaster, reader, 0.1)
    assert poller.poll() == [] and poller.position == 5
    with SQLiteStore(db) as store:
        store.append_batch([_event() for _ in range(3)])
    assert poller.poll() == [] and poller.position == 8  # nobody listens: skipped, not queued
    assert set(reads) == {"feed_position"}

    broadcaster.subscribe(Subscription("acme"))
    with SQLiteStore(db) as store:
        new = [_event() for _ in range(3)]
        store.append_batch(new)
    polled = poller.poll()
    assert [e.event_id for e in polled] == [e.event_id for e in new]
    assert poller.poll() == []


def test_broadcaster_publishes_each_event_once() -> None:
    async def scenario() -> list[str]:
        b = Broadcaster()
        b.bind(asyncio.get_running_loop())
        sub = b.subscribe(Subscription("acme"))
        events = [_event(), _event(), _event("globex")]
        b._fanout(events[:2])
        b._fanout(events)  # the poller finds what the writer already published
        return [e.event_id for e in sub.backlog]

    ids = asyncio.run(scenario())
    assert len(ids) == 2 and len(set(ids)) == 2


def test_poller_turns_off_for_a_store_without_a_feed() -> None:
    import contextlib

    class NoFeed:
        backend = "elsewhere"

    @contextlib.contextmanager
    def reader() -> Iterator[Any]:
        yield NoFeed()

    poller = StorePoller(Broadcaster(), reader, 0.1)
    assert poller.poll() == [] and poller.reader is None
    asyncio.run(asyncio.wait_for(poller.run(), 5))  # returns at once instead of polling


def test_a_new_stream_gets_no_events_committed_before_it_opened(tmp_path: Path) -> None:
    """Events committed after the last poll tick but before the first stream opened are not
    news to that stream: the stream catches the poller up before it subscribes."""
    import contextlib

    db = tmp_path / "feed.db"
    with SQLiteStore(db) as store:
        store.append_batch([_event() for _ in range(2)])

    @contextlib.contextmanager
    def reader() -> Iterator[Any]:
        with SQLiteStore(db, readonly=True) as s:
            yield s

    async def scenario() -> list[str]:
        from agentaudit.server.sse import stream

        b = Broadcaster()
        b.bind(asyncio.get_running_loop())
        poller = StorePoller(b, reader, 60.0)
        b.before_first_subscriber = poller.catch_up
        assert poller.poll() == []  # a tick while nobody listens: position 2
        with SQLiteStore(db) as store:  # committed between two ticks, nobody listening yet
            store.append_batch([_event() for _ in range(3)])
        sub = Subscription("acme")
        body = stream(b, sub, heartbeat=60.0)
        assert await body.__anext__() == b": connected\nretry: 2000\n\n"
        after = [_event() for _ in range(2)]
        with SQLiteStore(db) as store:
            store.append_batch(after)
        b._fanout(poller.poll())
        await body.aclose()
        assert [e.event_id for e in after] == [e.event_id for e in sub.backlog]
        return [e.event_id for e in sub.backlog]

    assert len(asyncio.run(scenario())) == 2
