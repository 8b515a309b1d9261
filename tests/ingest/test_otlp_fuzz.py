"""Whatever arrives, decoding raises only BadRequest and mapping never raises (no 5xx)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from agentaudit.events import validate_event
from agentaudit.exceptions import BadRequest
from agentaudit.ingest import JSON, PROTOBUF, _otlp_map, decode_otlp_request, spans_to_events

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
KEYS = sorted({k for n in dir(_otlp_map) if n.endswith("_KEYS") for k in getattr(_otlp_map, n)}
              | {"openinference.span.kind", "gen_ai.operation.name", "graph.node.id",
                 "graph.node.parent_id", "tool.parameters", "llm.cost.total", "error.type",
                 "gen_ai.handoff.from_agent", "gen_ai.handoff.to_agent",
                 "gen_ai.guardrail.triggered", "gen_ai.guardrail.name",
                 "llm.token_count.total"})
KINDS = ["AGENT", "TOOL", "LLM", "CHAIN", "GUARDRAIL", "EVALUATOR", "RETRIEVER", "EMBEDDING"]
OPS = ["invoke_agent", "execute_tool", "chat", "agent_handoff", "handoff", "retrieval"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)
scalars = (st.text(max_size=30) | st.integers(-2**63, 2**63 - 1) | st.floats() | st.booleans()
           | st.sampled_from(KINDS + OPS + ["{", "[1", "[" * 200 + "]" * 200, '{"a": 1}', "-1",
                                            "1e400", "nan"]))


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    return AnyValue(string_value=str(value))


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(body: bytes) -> None:
    for content_type in (PROTOBUF, JSON):
        try:
            request = decode_otlp_request(body, content_type)
        except BadRequest:
            continue
        spans_to_events(request, "default")


@FUZZ
@given(st.sampled_from(["traceId", "spanId", "parentSpanId", "name", "kind", "status",
                        "attributes", "events", "links", "startTimeUnixNano",
                        "endTimeUnixNano", "scopeSpans", "resource", "spans"]), json_values)
def test_any_json_in_any_field(field: str, value: Any) -> None:
    span: dict[str, Any] = {"traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174", "name": "s",
                            "startTimeUnixNano": "1700000000000000000",
                            "attributes": [{"key": "openinference.span.kind",
                                            "value": {"stringValue": "TOOL"}}]}
    scope: dict[str, Any] = {"spans": [span]}
    rs: dict[str, Any] = {"scopeSpans": [scope]}
    target = {"scopeSpans": rs, "resource": rs, "spans": scope}.get(field, span)
    target[field] = value
    try:
        request = decode_otlp_request(json.dumps({"resourceSpans": [rs]}).encode(), JSON)
    except BadRequest:
        return
    events, _ = spans_to_events(request, "default")
    for e in events:
        validate_event(e)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), scalars | st.lists(scalars, max_size=3),
                       max_size=12),
       st.sampled_from(KINDS + [None]), st.sampled_from(OPS + [None]),
       st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.booleans())
def test_any_attribute_values(attrs: dict[str, Any], kind: str | None, op: str | None,
                              start: int, end: int, error: bool) -> None:
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=b"\x03" * 8,
                name="handoff to X" if error else "span", start_time_unix_nano=start,
                end_time_unix_nano=end)
    span.status.code = 2 if error else 0
    if kind:
        attrs["openinference.span.kind"] = kind
    if op:
        attrs["gen_ai.operation.name"] = op
    for key, value in attrs.items():
        span.attributes.add(key=key, value=any_value(value))
    ev = span.events.add(name="exception", time_unix_nano=end)
    ev.attributes.add(key="exception.type", value=any_value(attrs.get("error.type", "E")))
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        scope_spans=[ScopeSpans(spans=[span])])])
    events, rejected = spans_to_events(request, "default")
    assert len(rejected) == (0 if events else 1)
    for e in events:
        validate_event(e)
