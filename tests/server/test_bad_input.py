"""Bad input gets the right 4xx with a reason, never a 5xx, and changes nothing stored."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, make_key, server_env, snapshot

LIMITS = {"AGENTAUDIT_MAX_BODY_BYTES": "1000000", "AGENTAUDIT_MAX_DECOMPRESSED_BYTES": "2000000",
          "AGENTAUDIT_MAX_BATCH_EVENTS": "100", "AGENTAUDIT_MAX_EVENT_BYTES": "100000"}


@pytest.fixture(scope="module")
def server(home: Path, keys: dict[str, str]) -> Iterator[Server]:
    srv = Server(home / "audit.db", home, env=LIMITS).start()
    try:
        yield srv
    finally:
        srv.stop()


def _event(**fields: Any) -> dict[str, Any]:
    return {"event_type": "agent.tool_call", "agent_name": "W", **fields}


def _bomb(size: int) -> bytes:
    return gzip.compress(b"[" + b" " * size + b"]", 9)


def _assert_refused(srv: Server, status: int, words: str, method: str, path: str,
                    key: str | None, **kwargs: Any) -> dict[str, Any]:
    before = snapshot(srv.db)
    with srv.client(key) as c:
        r = c.request(method, path, **kwargs)
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    reason = body.get("error") or body.get("message")
    assert reason and words.lower() in reason.lower(), reason
    for secret in ("Traceback", "sqlite", str(srv.db), "File \""):
        assert secret not in r.text
    assert snapshot(srv.db) == before
    return body


JSON = {"Content-Type": "application/json"}
NATIVE_CASES = [
    ("malformed json", 400, "malformed JSON", {"content": b'[{"event_type": ', "headers": JSON}),
    ("events not a list", 400, "structure", {"content": b'{"events": 5}', "headers": JSON}),
    ("a bare string", 400, "expected", {"content": b'"hello"', "headers": JSON}),
    ("a number", 400, "expected", {"content": b"42", "headers": JSON}),
    ("trailing garbage", 400, "malformed", {"content": b"[] x", "headers": JSON}),
    ("empty body", 400, "empty", {"content": b"", "headers": JSON}),
    ("text/plain", 415, "Content-Type", {"content": b"[]", "headers": {"Content-Type": "text/plain"}}),
    ("form", 415, "Content-Type", {"data": {"a": "b"}}),
    ("xml", 415, "Content-Type", {"content": b"<a/>", "headers": {"Content-Type": "application/xml"}}),
    ("brotli", 415, "Content-Encoding",
     {"content": b"[]", "headers": {**JSON, "Content-Encoding": "br"}}),
    ("not gzip", 400, "gzip", {"content": b"[]", "headers": {**JSON, "Content-Encoding": "gzip"}}),
    ("truncated gzip", 400, "truncated",
     {"content": gzip.compress(json.dumps([_event()]).encode())[:-12],
      "headers": {**JSON, "Content-Encoding": "gzip"}}),
    ("gzip bomb", 413, "decompresses",
     {"content": _bomb(50_000_000), "headers": {**JSON, "Content-Encoding": "gzip"}}),
    ("oversized body", 413, "limit",
     {"content": json.dumps([_event(params={"x": "y" * 900})] * 1200).encode(), "headers": JSON}),
    ("oversized chunked body", 413, "limit",
     {"content": iter([b"[" + b" " * 300_000] * 5 + [b"]"]), "headers": JSON}),
    ("too many events", 413, "limit",
     {"content": json.dumps([_event()] * 101).encode(), "headers": JSON}),
    ("event too large", 413, "event 1",
     {"content": json.dumps([_event(), _event(params={"x": "y" * 150_000})]).encode(),
      "headers": JSON}),
]


@pytest.mark.parametrize(("case", "status", "words", "kwargs"), NATIVE_CASES,
                         ids=[c[0] for c in NATIVE_CASES])
def test_native_ingest_refuses(server: Server, keys: dict[str, str], case: str, status: int,
                               words: str, kwargs: dict[str, Any]) -> None:
    _assert_refused(server, status, words, "POST", "/v1/events", keys["acme-ingest"], **kwargs)


def test_missing_wrong_and_malformed_keys(server: Server, keys: dict[str, str]) -> None:
    body = {"content": json.dumps([_event()]).encode(), "headers": JSON}
    _assert_refused(server, 401, "missing", "POST", "/v1/events", None, **body)
    wrong = keys["acme-ingest"][:-4] + ("0000" if not keys["acme-ingest"].endswith("0000")
                                        else "1111")
    _assert_refused(server, 401, "invalid", "POST", "/v1/events", wrong, **body)
    _assert_refused(server, 401, "invalid", "POST", "/v1/events", "hello", **body)
    _assert_refused(server, 401, "invalid", "GET", "/v1/events", "aa_" + "0" * 48)
    _assert_refused(server, 401, "invalid", "POST", "/v1/events", None,
                    headers={**JSON, "Authorization": "Basic dXNlcjpwYXNz"},
                    content=b"[]")


def test_revoked_key_is_refused_at_once(server: Server, home: Path) -> None:
    key = make_key(server.db, "acme", "ingest", "to revoke")
    body = {"content": json.dumps([_event()]).encode(), "headers": JSON}
    with server.client(key) as c:
        assert c.post("/v1/events", **body).status_code == 200
    revoke = subprocess.run([sys.executable, "-m", "agentaudit.cli", "keys", "revoke", key[:15],
                             "--db", str(server.db)], env=server_env(home), capture_output=True,
                            text=True, timeout=60)
    assert revoke.returncode == 0, revoke.stderr
    _assert_refused(server, 401, "revoked", "POST", "/v1/events", key, **body)


SCOPE_CASES = [
    ("read key writes", "acme-read", "POST", "/v1/events", "ingest"),
    ("admin key writes", "acme-admin", "POST", "/v1/events", "ingest"),
    ("ingest key reads events", "acme-ingest", "GET", "/v1/events", "read"),
    ("ingest key reads agents", "acme-ingest", "GET", "/v1/agents", "read"),
    ("ingest key reads a trace", "acme-ingest", "GET", "/v1/traces/abc", "read"),
    ("ingest key reads metrics", "acme-ingest", "GET", "/metrics", "read"),
    ("ingest key streams", "acme-ingest", "GET", "/v1/stream", "read"),
    ("read key lists keys", "acme-read", "GET", "/v1/keys", "admin"),
    ("read key creates keys", "acme-read", "POST", "/v1/keys", "admin"),
    ("ingest key revokes keys", "acme-ingest", "DELETE", "/v1/keys/aa_000000000000", "admin"),
]


@pytest.mark.parametrize(("case", "key", "method", "path", "needs"), SCOPE_CASES,
                         ids=[c[0] for c in SCOPE_CASES])
def test_wrong_scope_is_403(server: Server, keys: dict[str, str], case: str, key: str,
                            method: str, path: str, needs: str) -> None:
    kwargs: dict[str, Any] = {}
    if method == "POST":
        kwargs = {"content": json.dumps([_event()] if path == "/v1/events"
                                        else {"scope": "admin"}).encode(), "headers": JSON}
    _assert_refused(server, 403, needs, method, path, keys[key], **kwargs)


def test_another_tenants_ids_are_not_found(server: Server, keys: dict[str, str]) -> None:
    ev = _event(trace_id="globex-secret-trace", task_id="globex-task")
    with server.client(keys["globex-ingest"]) as c:
        assert c.post("/v1/events", json=[ev]).json()["accepted"] == 1
    with server.client(keys["globex-read"]) as c:
        assert c.get("/v1/traces/globex-secret-trace").status_code == 200
    _assert_refused(server, 404, "no such trace", "GET", "/v1/traces/globex-secret-trace",
                    keys["acme-read"])
    _assert_refused(server, 404, "no such trace", "GET", "/v1/traces/globex-task",
                    keys["acme-admin"])
    with server.client(keys["globex-admin"]) as c:
        globex_key_id = c.get("/v1/keys").json()["data"][0]["id"]
    _assert_refused(server, 404, "no such key", "DELETE", f"/v1/keys/{globex_key_id}",
                    keys["acme-admin"])
    with server.client(keys["acme-read"]) as c:
        page = c.get("/v1/events", params={"trace_id": "globex-secret-trace"}).json()
        assert page == {"data": [], "next_cursor": None}
        assert all(e["tenant"] == "acme" for e in c.get("/v1/events",
                                                       params={"limit": 1000}).json()["data"])
        assert "globex" not in c.get("/v1/agents").text
    with server.client(keys["acme-admin"]) as c:
        assert {k["tenant"] for k in c.get("/v1/keys").json()["data"]} == {"acme"}


QUERY_CASES = [
    ("limit zero", "/v1/events?limit=0", "limit"),
    ("limit too big", "/v1/events?limit=1001", "limit"),
    ("limit not a number", "/v1/events?limit=ten", "limit"),
    ("since unreadable", "/v1/events?since=yesterday-ish", "since"),
    ("since after until", "/v1/events?since=1h&until=2h", "since"),
    ("cursor forged", "/v1/events?cursor=DROP%20TABLE", "cursor"),
    ("unknown type", "/v1/events?type=agent.nope", "type"),
    ("order unknown", "/v1/events?order=sideways", "order"),
    ("errors_only not a bool", "/v1/events?errors_only=maybe", "errors_only"),
    ("agents since unreadable", "/v1/agents?since=soon", "since"),
]


@pytest.mark.parametrize(("case", "path", "words"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_bad_query_parameters_are_400(server: Server, keys: dict[str, str], case: str, path: str,
                                      words: str) -> None:
    _assert_refused(server, 400, words, "GET", path, keys["acme-read"])


def test_unknown_routes_and_methods(server: Server, keys: dict[str, str]) -> None:
    _assert_refused(server, 404, "endpoint", "GET", "/v1/nothing", keys["acme-read"])
    _assert_refused(server, 405, "method", "PUT", "/v1/events", keys["acme-ingest"])


def test_bad_key_creation_bodies(server: Server, keys: dict[str, str]) -> None:
    for body in (b"{}", b'{"scope": "root"}', b"[", b'{"scope": "read", "name": 5}'):
        _assert_refused(server, 400, "invalid", "POST", "/v1/keys", keys["acme-admin"],
                        content=body, headers=JSON)
