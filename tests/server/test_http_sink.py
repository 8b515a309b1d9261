"""The SDK over HTTP: batches reach the collector; retries back off, honour Retry-After, and
an unreachable collector leaves the events in the spool until it is back."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentaudit import AuditLogger
from agentaudit.events import AuditEvent
from agentaudit.exceptions import ConfigError
from agentaudit.sdk.http_sink import CollectorUnavailable, HttpSink
from agentaudit.store.base import AppendResult

from .conftest import Server, free_port, make_key, stored_ids, wait_for


class _Scripted(BaseHTTPRequestHandler):
    """Answers POSTs from a script of (status, headers) and records the bodies."""

    script: list[tuple[int, dict[str, str]]] = []
    bodies: list[list[dict[str, Any]]] = []
    limit = 10**9

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        events = json.loads(gzip.decompress(raw))
        type(self).bodies.append(events)
        status, headers = type(self).script.pop(0) if type(self).script else (200, {})
        if status == 200 and len(events) > type(self).limit:
            status = 413
        body = json.dumps({"accepted": len(events), "duplicates": 0, "rejected": []}
                          if status == 200 else {"error": "nope"}).encode()
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"script": [], "bodies": [], "limit": 10**9})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def _events(n: int) -> list[AuditEvent]:
    return [AuditEvent(event_type="agent.tool_call", agent_name="W") for _ in range(n)]


def test_retry_after_is_honoured(scripted: tuple[str, Any]) -> None:
    url, handler = scripted
    handler.script = [(503, {"Retry-After": "3"}), (429, {"Retry-After": "1"}), (200, {})]
    sleeps: list[float] = []
    sink = HttpSink(url, "aa_x", sleep=sleeps.append)
    assert sink.append_batch(_events(4)) == AppendResult(4, 0)
    assert sleeps == [3.0, 1.0]
    assert len(handler.bodies) == 3 and all(len(b) == 4 for b in handler.bodies)
    sink.close()


def test_backoff_with_jitter_then_raise(scripted: tuple[str, Any]) -> None:
    url, handler = scripted
    handler.script = [(502, {})] * 10
    sleeps: list[float] = []
    sink = HttpSink(url, max_attempts=4, backoff=0.2, sleep=sleeps.append)
    with pytest.raises(CollectorUnavailable, match="HTTP 502"):
        sink.append_batch(_events(1))
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (0.2, 0.4, 0.8), strict=True))


def test_long_retry_after_hands_over_to_the_spool(scripted: tuple[str, Any]) -> None:
    url, handler = scripted
    handler.script = [(503, {"Retry-After": "3600"})]
    sleeps: list[float] = []
    with pytest.raises(CollectorUnavailable):
        HttpSink(url, sleep=sleeps.append).append_batch(_events(1))
    assert sleeps == []


def test_batch_too_large_is_split(scripted: tuple[str, Any]) -> None:
    url, handler = scripted
    handler.limit = 3
    assert HttpSink(url).append_batch(_events(10)) == AppendResult(10, 0)
    assert sorted(len(b) for b in handler.bodies if len(b) <= 3) == [2, 2, 3, 3]


def test_refused_key_raises(scripted: tuple[str, Any]) -> None:
    url, handler = scripted
    handler.script = [(401, {})]
    with pytest.raises(CollectorUnavailable, match="401"):
        HttpSink(url, "aa_bad").append_batch(_events(1))


def test_unreachable_collector_raises_after_retries() -> None:
    sleeps: list[float] = []
    sink = HttpSink(f"http://127.0.0.1:{free_port()}", max_attempts=3, sleep=sleeps.append)
    with pytest.raises(CollectorUnavailable, match="after 3 attempt"):
        sink.append_batch(_events(1))
    assert len(sleeps) == 2


def test_bad_collector_urls() -> None:
    for url in ("http://", "http://host:notaport"):
        with pytest.raises(ConfigError):
            AuditLogger(url)


def test_logger_delivers_to_a_real_collector(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    key = make_key(db, "acme", "ingest")
    srv = Server(db, tmp_path).start()
    try:
        audit = AuditLogger(srv.url, api_key=key, flush_interval=0.05)
        with audit.trace("refund", agent="Support") as t:
            for i in range(50):
                with t.tool_call("lookup", {"i": i}) as call:
                    call.result = i
        assert audit.flush(30)
        s = audit.stats()
        audit.close()
        assert s.enqueued > 100 and (s.written, s.spilled, s.failed) == (s.enqueued, 0, 0)
        assert len(stored_ids(db, "acme")) == s.enqueued + 1  # and the key's audit event
    finally:
        srv.stop()


def test_env_api_key_and_spool_while_the_collector_is_down(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "audit.db"
    key = make_key(db, "acme", "ingest")
    monkeypatch.setenv("AGENTAUDIT_API_KEY", key)
    port = free_port()
    audit = AuditLogger(f"http://127.0.0.1:{port}", flush_interval=0.05)
    audit._writer.retry_interval = audit._writer._backoff = 0.2
    audit._writer.max_retry_interval = 0.5
    ids = [audit.log_tool_call("Worker", "step", {"i": i}) for i in range(300)]
    assert audit.flush(60)
    s = audit.stats()
    assert s.written == 0 and s.spilled == 300 and s.spool_pending == 300
    srv = Server(db, tmp_path, port=port).start()
    try:
        wait_for(lambda: audit.stats().spool_pending == 0, timeout=60)
        s = audit.stats()
        audit.close()
        assert s.replayed == 300 and s.failed == 0 and s.dropped == 0
        assert set(ids) <= set(stored_ids(db, "acme"))
    finally:
        srv.stop()
