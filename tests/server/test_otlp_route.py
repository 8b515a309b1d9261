"""``POST /v1/traces`` with real OTLP clients: the OpenTelemetry SDK's OTLPSpanExporter
(protobuf, plain and gzip) and an OTLP/JSON body with hex ids sent with httpx."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("agentaudit.ingest.otlp")

from google.rpc.status_pb2 import Status  # noqa: E402
from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace import Status as SpanStatus  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

from .conftest import Server, snapshot, stored_ids  # noqa: E402

PROTO = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(home: Path, keys: dict[str, str]) -> Iterator[Server]:
    srv = Server(home / "audit.db", home, env={"AGENTAUDIT_MAX_BODY_BYTES": "1000000",
                                               "AGENTAUDIT_MAX_DECOMPRESSED_BYTES": "2000000"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _provider(srv: Server, key: str, compression: Compression | None = None) -> TracerProvider:
    exporter = OTLPSpanExporter(endpoint=srv.url + "/v1/traces", compression=compression,
                                headers={"authorization": f"Bearer {key}"})
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _run_agent(provider: TracerProvider) -> str:
    """An OpenInference-instrumented agent run: agent → LLM, tool, failing tool."""
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("Support", attributes={
            "openinference.span.kind": "AGENT", "agent.name": "Support",
            "input.value": "refund order 42", "session.id": "s-otlp"}) as agent:
        trace_id = format(agent.get_span_context().trace_id, "032x")
        with tracer.start_as_current_span("chat", attributes={
                "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
                "llm.token_count.prompt": 120, "llm.token_count.completion": 30}):
            pass
        with tracer.start_as_current_span("get_order", attributes={
                "openinference.span.kind": "TOOL", "tool.name": "get_order",
                "tool.parameters": '{"order": 42}', "output.value": "shipped"}):
            pass
        with tracer.start_as_current_span("charge", attributes={
                "openinference.span.kind": "TOOL", "tool.name": "charge"}) as failing:
            failing.record_exception(RuntimeError("card declined"))
            failing.set_status(SpanStatus(StatusCode.ERROR, "card declined"))
    provider.force_flush()
    return trace_id


@pytest.mark.parametrize("compression", [None, Compression.Gzip], ids=["plain", "gzip"])
def test_otel_sdk_exporter_protobuf(server: Server, keys: dict[str, str],
                                    compression: Compression | None) -> None:
    provider = _provider(server, keys["acme-ingest"], compression)
    trace_id = _run_agent(provider)
    provider.shutdown()
    with server.client(keys["acme-read"]) as c:
        view = c.get(f"/v1/traces/{trace_id}").json()
    types = [row["event_type"] for row in view["timeline"]]
    assert {"agent.invocation", "agent.llm_response", "agent.tool_call", "agent.tool_result",
            "agent.error"} <= set(types)
    assert "Support" in view["summary"]["agents"]
    errors = [row for row in view["timeline"] if row["event_type"] == "agent.error"]
    assert errors and "card declined" in errors[0]["details"]
    with server.client(keys["globex-read"]) as c:
        assert c.get(f"/v1/traces/{trace_id}").status_code == 404


def _json_body(trace_hex: str, kind: str = "AGENT") -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "json-client"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": trace_hex, "spanId": "ABCDEF0123456789", "name": "Planner",
            "kind": 1, "startTimeUnixNano": "1790000000000000000",
            "endTimeUnixNano": "1790000001500000000",
            "attributes": [{"key": "openinference.span.kind", "value": {"stringValue": kind}},
                           {"key": "agent.name", "value": {"stringValue": "Planner"}}],
            "status": {"code": 1}}]}]}]}


def test_otlp_json_with_hex_ids_and_idempotent_retry(server: Server,
                                                     keys: dict[str, str]) -> None:
    trace_hex = "5B8EFFF798038103D269B633813FC60C"
    body = json.dumps(_json_body(trace_hex)).encode()
    with server.client(keys["acme-ingest"]) as c:
        r = c.post("/v1/traces", content=body, headers=JSON)
        assert r.status_code == 200 and r.json() == {}
        count = len(stored_ids(server.db, "acme"))
        again = c.post("/v1/traces", content=gzip.compress(body),
                       headers={**JSON, "Content-Encoding": "gzip"})
        assert again.status_code == 200
    assert len(stored_ids(server.db, "acme")) == count  # a retried export stores nothing twice
    with server.client(keys["acme-read"]) as c:
        view = c.get(f"/v1/traces/{trace_hex.lower()}")
    assert view.status_code == 200
    assert view.json()["timeline"][0]["agent"] == "Planner"


def test_partial_success_names_rejected_spans(server: Server, keys: dict[str, str]) -> None:
    body = _json_body("0af7651916cd43dd8448eb211c80319c", kind="UNKNOWN")
    with server.client(keys["acme-ingest"]) as c:
        r = c.post("/v1/traces", json=body)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1 and partial["errorMessage"]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from agentaudit.ingest.otlp import decode_otlp_request

    proto_body = decode_otlp_request(json.dumps(body).encode(), "application/json")
    assert isinstance(proto_body, ExportTraceServiceRequest)
    with server.client(keys["acme-ingest"]) as c:
        r = c.post("/v1/traces", content=proto_body.SerializeToString(), headers=PROTO)
    reply = ExportTraceServiceResponse.FromString(r.content)
    assert r.status_code == 200 and reply.partial_success.rejected_spans == 1


def _status(r: httpx.Response) -> tuple[int, str]:
    if r.headers["content-type"].startswith("application/x-protobuf"):
        s = Status.FromString(r.content)
        return s.code, s.message
    data = r.json()
    return data["code"], data["message"]


BAD = [
    ("malformed protobuf", 400, "protobuf", PROTO, b"\xff\xff\xff\xff\x0f"),
    ("malformed json", 400, "JSON", JSON, b'{"resourceSpans": ['),
    ("base64 ids in json", 400, "hex", JSON,
     json.dumps(_json_body("W47/95gDgQPSabYzgT/GDA==")).encode()),
    ("wrong types in json", 400, "resourceSpans", JSON, b'{"resourceSpans": 5}'),
    ("unknown content type", 415, "Content-Type", {"Content-Type": "text/plain"}, b"x"),
    ("oversized", 413, "limit", PROTO, b"\x0a" * 1_100_000),
    ("gzip bomb", 413, "decompresses", {**PROTO, "Content-Encoding": "gzip"},
     gzip.compress(b"\x00" * 20_000_000, 9)),
]


@pytest.mark.parametrize(("case", "status", "words", "headers", "body"), BAD,
                         ids=[b[0] for b in BAD])
def test_bad_otlp_requests(server: Server, keys: dict[str, str], case: str, status: int,
                           words: str, headers: dict[str, str], body: bytes) -> None:
    before = snapshot(server.db)
    with server.client(keys["acme-ingest"]) as c:
        r = c.post("/v1/traces", content=body, headers=headers)
    assert r.status_code == status, r.content[:300]
    code, message = _status(r)
    assert code != 0 and words.lower() in message.lower(), message
    assert snapshot(server.db) == before


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("aa_" + "1" * 48, 401),
                                             ("acme-read", 403)])
def test_otlp_auth(server: Server, keys: dict[str, str], key: str | None, status: int) -> None:
    before = snapshot(server.db)
    secret = keys.get(key or "", key)
    with server.client(secret) as c:
        r = c.post("/v1/traces", content=json.dumps(_json_body("1" * 32)).encode(), headers=JSON)
    assert r.status_code == status
    code, message = _status(r)
    assert code in (16, 7) and message
    assert snapshot(server.db) == before
