"""The query API, the live stream, key management, health, metrics and the OpenAPI document."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentaudit.events import new_event_id

from .conftest import Server


@pytest.fixture(scope="module")
def server(home: Path, keys: dict[str, str]) -> Iterator[Server]:
    srv = Server(home / "audit.db", home, env={"AGENTAUDIT_SSE_HEARTBEAT": "0.3"}).start()
    try:
        yield srv
    finally:
        srv.stop()


def _trace(trace_id: str, t0: float) -> list[dict[str, Any]]:
    ids = [new_event_id() for _ in range(5)]
    base = {"trace_id": trace_id, "session_id": "s-1", "user_id": "u-1", "task_id": f"task-{trace_id}"}
    return [
        {**base, "event_id": ids[0], "event_type": "agent.invocation", "agent_name": "Router",
         "action": "route", "timestamp": t0},
        {**base, "event_id": ids[1], "event_type": "agent.handoff", "agent_name": "Router",
         "action": "handoff to Billing", "parent_event_id": ids[0], "timestamp": t0 + 1,
         "params": {"from_agent": "Router", "to_agent": "Billing"}},
        {**base, "event_id": ids[2], "event_type": "agent.tool_call", "agent_name": "Billing",
         "action": "refund", "parent_event_id": ids[1], "timestamp": t0 + 2},
        {**base, "event_id": ids[3], "event_type": "agent.error", "agent_name": "Billing",
         "action": "refund", "error": "card declined", "error_type": "PaymentError",
         "parent_event_id": ids[2], "timestamp": t0 + 3},
        {**base, "event_id": ids[4], "event_type": "agent.decision", "agent_name": "Billing",
         "action": "escalate", "confidence": 0.4, "parent_event_id": ids[1], "timestamp": t0 + 4},
    ]


@pytest.fixture(scope="module")
def stored_trace(server: Server, keys: dict[str, str]) -> list[dict[str, Any]]:
    events = _trace("trace-q1", time.time() - 600)
    with server.client(keys["acme-ingest"]) as c:
        assert c.post("/v1/events", json=events).json()["accepted"] == 5
    return events


def test_events_filters(server: Server, keys: dict[str, str],
                        stored_trace: list[dict[str, Any]]) -> None:
    with server.client(keys["acme-read"]) as c:
        def ids(**params: Any) -> list[str]:
            r = c.get("/v1/events", params={"trace_id": "trace-q1", **params})
            assert r.status_code == 200, r.text
            return [e["event_id"] for e in r.json()["data"]]

        all_ids = [e["event_id"] for e in stored_trace]
        assert ids(order="asc") == all_ids
        assert ids() == all_ids[::-1]
        assert ids(agent="Billing", order="asc") == all_ids[2:]
        assert ids(type="error") == [all_ids[3]]
        assert ids(type="tool_call,decision", order="asc") == [all_ids[2], all_ids[4]]
        assert ids(errors_only="true") == [all_ids[3]]
        t0 = stored_trace[0]["timestamp"]
        assert ids(since=str(t0 + 1), until=str(t0 + 3), order="asc") == all_ids[1:3]
        assert ids(session_id="s-1", user_id="u-1", task_id="task-trace-q1", order="asc") == all_ids
        assert ids(session_id="nope") == []


def test_cursor_pagination_walks_every_event_once(server: Server, keys: dict[str, str],
                                                  stored_trace: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    cursor = None
    with server.client(keys["acme-read"]) as c:
        while True:
            params: dict[str, Any] = {"trace_id": "trace-q1", "limit": 2, "order": "asc"}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/events", params=params).json()
            seen += [e["event_id"] for e in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == [e["event_id"] for e in stored_trace]


def test_trace_view(server: Server, keys: dict[str, str],
                    stored_trace: list[dict[str, Any]]) -> None:
    with server.client(keys["acme-read"]) as c:
        by_trace = c.get("/v1/traces/trace-q1").json()
        by_task = c.get("/v1/traces/task-trace-q1").json()
    assert by_trace["timeline"] == by_task["timeline"]
    assert [row["event_id"] for row in by_trace["timeline"]] == [e["event_id"] for e in stored_trace]
    assert by_trace["summary"]["agents"] == ["Router", "Billing"]
    assert by_trace["summary"]["errors"] == 1
    assert by_trace["graph"]["handoff_path"] == ["Router", "Billing"]
    assert {"handoff", "child"} <= {e["type"] for e in by_trace["graph"]["edges"]}
    assert [row["status"] for row in by_trace["timeline"]][3:] == ["error", "warning"]


def test_agents(server: Server, keys: dict[str, str], stored_trace: list[dict[str, Any]]) -> None:
    with server.client(keys["acme-read"]) as c:
        rows = {r["agent_name"]: r for r in c.get("/v1/agents").json()["data"]}
    assert rows["Billing"]["errors"] >= 1 and rows["Billing"]["tool_calls"] >= 1
    assert rows["Router"]["invocations"] >= 1


def _read_stream(server: Server, key: str, params: dict[str, Any], send: Any,
                 want: int, timeout: float = 20.0) -> tuple[list[dict[str, Any]], list[str]]:
    """Open the stream, call ``send()`` once it is open, collect ``want`` data messages."""
    data: list[dict[str, Any]] = []
    comments: list[str] = []
    deadline = time.monotonic() + timeout
    with server.client(key) as c, c.stream("GET", "/v1/stream", params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith(":"):
                comments.append(line)
                if line == ": connected":
                    send()
            elif line.startswith("data: "):
                data.append(json.loads(line[6:]))
            if (len(data) >= want and any("heartbeat" in x for x in comments)) or (
                    time.monotonic() > deadline):
                break
    return data, comments


def test_stream_delivers_committed_events_of_the_tenant_only(server: Server,
                                                             keys: dict[str, str]) -> None:
    mine = _trace("trace-live", time.time())
    theirs = _trace("trace-live-globex", time.time())

    def send() -> None:
        with server.client(keys["globex-ingest"]) as g:
            g.post("/v1/events", json=theirs)
        with server.client(keys["acme-ingest"]) as a:
            a.post("/v1/events", json=mine)

    data, comments = _read_stream(server, keys["acme-read"], {}, send, want=5)
    assert [d["event_id"] for d in data] == [e["event_id"] for e in mine]
    first = data[0]
    assert set(first) >= {"timestamp", "agent", "type", "action", "status", "duration", "trace_id"}
    assert first["trace_id"] == "trace-live" and first["type"] == "agent.invocation"
    assert data[3]["status"] == "error"
    assert ": heartbeat" in comments


def test_stream_filters(server: Server, keys: dict[str, str]) -> None:
    events = _trace("trace-live-2", time.time())

    def send() -> None:
        with server.client(keys["acme-ingest"]) as a:
            a.post("/v1/events", json=events)

    errors, _ = _read_stream(server, keys["acme-admin"], {"errors_only": "true"}, send, want=1)
    assert [d["type"] for d in errors] == ["agent.error"]
    events = _trace("trace-live-3", time.time())
    billing, _ = _read_stream(server, keys["acme-read"], {"agent": "Billing",
                                                          "type": "tool_call"}, send, want=1)
    assert [(d["agent"], d["type"]) for d in billing] == [("Billing", "agent.tool_call")]


def test_key_management_over_http_is_audited(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["acme-admin"]) as admin:
        r = admin.post("/v1/keys", json={"scope": "ingest", "name": "ci"})
        assert r.status_code == 201
        created = r.json()
        assert created["key"].startswith("aa_") and created["tenant"] == "acme"
        assert created["id"] == created["key"][:15]
        listed = {k["id"]: k for k in admin.get("/v1/keys").json()["data"]}
        assert "key" not in listed[created["id"]]
        with server.client(created["key"]) as new:
            assert new.post("/v1/events", json=[{"event_type": "agent.reasoning",
                                                 "agent_name": "CI"}]).status_code == 200
        revoked = admin.delete(f"/v1/keys/{created['id']}").json()
        assert revoked["revoked_at"] is not None
        with server.client(created["key"]) as new:
            assert new.post("/v1/events", json=[]).status_code == 401
        audit = admin.get("/v1/events", params={"type": "audit.key_created,audit.key_revoked",
                                                "limit": 1000}).json()["data"]
    mine = [e for e in audit if e["params"]["key_id"] == created["id"]]
    assert sorted(e["event_type"] for e in mine) == ["audit.key_created", "audit.key_revoked"]
    assert all(created["key"] not in json.dumps(e) for e in audit)


def test_healthz_metrics_and_openapi(server: Server, keys: dict[str, str]) -> None:
    with server.client() as c:
        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["auth"] is True
        assert c.get("/metrics").status_code == 401
        spec = c.get("/openapi.json").json()
    with server.client(keys["acme-read"]) as c:
        text = c.get("/metrics").text
    for name in ("agentaudit_events_ingested_total", "agentaudit_events_rejected_total",
                 "agentaudit_events_duplicate_total", "agentaudit_writer_queue_events",
                 "agentaudit_commit_seconds_bucket", "agentaudit_commit_seconds_count"):
        assert name in text
    paths = spec["paths"]
    expected = {("/v1/events", "post"), ("/v1/events", "get"), ("/v1/traces", "post"),
                ("/v1/traces/{trace_id}", "get"), ("/v1/agents", "get"), ("/v1/stream", "get"),
                ("/v1/keys", "post"), ("/v1/keys", "get"), ("/v1/keys/{key_id}", "delete"),
                ("/healthz", "get"), ("/metrics", "get")}
    assert expected <= {(p, m) for p, ops in paths.items() for m in ops}
    for path, method in expected:
        op = paths[path][method]
        assert "200" in op["responses"] or "201" in op["responses"]
        assert op.get("summary")
        if method == "post":
            assert op["requestBody"]["content"]
    assert {"EventIn", "EventBatch", "EventOut", "IngestResult", "ErrorBody"} <= set(
        spec["components"]["schemas"])
