"""``GET /v1/stream`` across collectors: two ``agentaudit serve`` processes on one PostgreSQL
database; a client of one sees what the other stores, once, and only its own tenant's events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentaudit.events import new_event_id
from agentaudit.server.keys import create_key_audited
from agentaudit.store import open_store
from server.conftest import Server


@pytest.fixture
def collectors(pg_url: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    """Collectors A and B (authentication on, one signing key) and keys of acme and globex."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    keys = {}
    with open_store(pg_url) as store:
        for tenant in ("acme", "globex"):
            for scope in ("ingest", "read"):
                keys[f"{tenant}-{scope}"] = create_key_audited(
                    store, tenant, scope, None, actor="test")[1]  # type: ignore[arg-type]
    env = {"AGENTAUDIT_SSE_HEARTBEAT": "0.3", "AGENTAUDIT_SSE_POLL_INTERVAL": "0.2"}
    a = Server(pg_url, tmp_path, env=env).start()  # type: ignore[arg-type]
    try:
        b = Server(pg_url, tmp_path, env=env).start()  # type: ignore[arg-type]
        try:
            yield a, b, keys
        finally:
            b.stop()
    finally:
        a.stop()


def _post(server: Server, key: str, agent: str) -> tuple[str, float]:
    """Store one event through ``server``; its id and when it was acknowledged."""
    event = {"event_id": new_event_id(), "event_type": "agent.tool_call", "agent_name": agent,
             "action": "lookup", "timestamp": time.time()}
    with server.client(key) as c:
        r = c.post("/v1/events", json=[event])
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    return event["event_id"], time.monotonic()


def _stream(server: Server, key: str, send: Callable[[], None],
            want: int, timeout: float = 30.0) -> list[tuple[dict[str, Any], float]]:
    """Feed messages (with arrival times) until ``want`` arrived and two heartbeats followed
    (time for a duplicate to show up), calling ``send`` once the stream is open."""
    got: list[tuple[dict[str, Any], float]] = []
    beats_after = 0
    deadline = time.monotonic() + timeout
    sender = threading.Thread(target=send)
    with server.client(key) as c, c.stream("GET", "/v1/stream") as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == ": connected":
                sender.start()
            elif line.startswith("data: "):
                got.append((json.loads(line[6:]), time.monotonic()))
            elif line == ": heartbeat" and len(got) >= want and not sender.is_alive():
                beats_after += 1
            if beats_after >= 2 or time.monotonic() > deadline:
                break
    sender.join(10)
    return got


def test_a_client_of_one_collector_sees_what_the_other_stores(
        collectors: tuple[Server, Server, dict[str, str]]) -> None:
    a, b, keys = collectors
    sent: dict[str, tuple[str, float]] = {}

    def send() -> None:
        sent["via_b"] = _post(b, keys["acme-ingest"], "Via-B")
        sent["other_tenant_b"] = _post(b, keys["globex-ingest"], "Globex-B")
        sent["via_a"] = _post(a, keys["acme-ingest"], "Via-A")
        sent["other_tenant_a"] = _post(a, keys["globex-ingest"], "Globex-A")

    got = _stream(a, keys["acme-read"], send, want=2)
    ids = [d["event_id"] for d, _ in got]
    assert len(ids) == len(set(ids)), f"an event was delivered twice: {ids}"
    assert set(ids) == {sent["via_b"][0], sent["via_a"][0]}  # no globex event, nothing else
    arrived = {d["event_id"]: t for d, t in got}
    assert arrived[sent["via_b"][0]] - sent["via_b"][1] < 5.0  # polled from the database


def test_tenant_filtering_holds_on_the_other_collector(
        collectors: tuple[Server, Server, dict[str, str]]) -> None:
    a, b, keys = collectors
    sent: list[str] = []

    def send() -> None:
        for server in (a, b):
            _post(server, keys["acme-ingest"], "Acme")
            sent.append(_post(server, keys["globex-ingest"], "Globex")[0])

    got = _stream(b, keys["globex-read"], send, want=2)
    assert sorted(d["event_id"] for d, _ in got) == sorted(sent)
    assert {d["agent"] for d, _ in got} == {"Globex"}
