"""A saturated writer answers 503 with Retry-After at once instead of buffering without bound."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server, make_key, snapshot, wait_for


def test_saturated_writer_answers_503_with_retry_after(tmp_path: Path, events_factory: Any) -> None:
    db = tmp_path / "audit.db"
    key = make_key(db, "acme", "ingest")
    srv = Server(db, tmp_path, env={"AGENTAUDIT_QUEUE_EVENTS": "100",
                                    "AGENTAUDIT_COMMIT_INTERVAL": "1.5",
                                    "AGENTAUDIT_RETRY_AFTER": "2"}).start()
    try:
        first: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: first.append(
            httpx.post(srv.url + "/v1/events", json=events_factory(60), timeout=30,
                       headers={"Authorization": f"Bearer {key}"})))
        sender.start()
        wait_for(lambda: httpx.get(srv.url + "/healthz").json()["queue_events"] == 60)
        before = snapshot(db)
        with srv.client(key) as c:
            busy = c.post("/v1/events", json=events_factory(60))
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "2"
        assert "busy" in busy.json()["error"]
        otlp = pytest.importorskip("agentaudit.ingest.otlp")
        with srv.client(key) as c:
            spans = c.post("/v1/traces", content=otlp.encode_otlp_json(_request(70)),
                           headers={"Content-Type": "application/json"})
        assert spans.status_code == 503 and spans.headers["retry-after"] == "2"
        assert spans.json()["code"] == 14 and "busy" in spans.json()["message"]
        assert snapshot(db) == before
        sender.join(30)
        assert first[0].status_code == 200 and first[0].json()["accepted"] == 60
        with srv.client(key) as c:  # and once the queue drained, requests are taken again
            assert c.post("/v1/events", json=events_factory(60)).status_code == 200
    finally:
        srv.stop()


def _request(n: int) -> object:
    """An OTLP request of ``n`` GenAI tool spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add().scope_spans.add()
    for i in range(n):
        span = scope.spans.add(trace_id=b"\x01" * 16, span_id=(i + 1).to_bytes(8, "big"),
                               name="execute_tool lookup", start_time_unix_nano=10**18,
                               end_time_unix_nano=10**18 + 1000)
        attr = span.attributes.add(key="gen_ai.operation.name")
        attr.value.string_value = "execute_tool"
    return req
