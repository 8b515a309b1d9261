"""decode_otlp_request: protobuf and OTLP/JSON on one path, hex ids, bad input named."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind, Status, StatusCode

import agentaudit.ingest
from agentaudit.exceptions import BadRequest, IngestError
from agentaudit.ingest import (
    JSON,
    PROTOBUF,
    UnsupportedMediaType,
    decode_otlp_request,
    encode_otlp_json,
)

if TYPE_CHECKING:
    from tests.ingest.conftest import SpanRecorder

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


def sample(recorder: SpanRecorder) -> ExportTraceServiceRequest:
    """A request with nested spans, a link, an exception event, every attribute type."""
    t = recorder.tracer
    with t.start_as_current_span("Triage", kind=SpanKind.SERVER, attributes={
            "openinference.span.kind": "AGENT", "agent.name": "Triage", "n": 7, "f": 0.5,
            "ok": True, "tags": ["a", "b"]}) as root:
        link = root.get_span_context()
        with t.start_as_current_span("lookup", links=[]) as s:
            s.set_attribute("tool.name", "lookup")
        with t.start_as_current_span("pay", links=[_link(link)]) as s:
            s.record_exception(ValueError("declined"))
            s.set_status(Status(StatusCode.ERROR, "declined"))
    return recorder.request()


def _link(ctx: Any) -> Any:
    from opentelemetry.trace import Link

    return Link(ctx, {"why": "retry"})


def to_json(request: ExportTraceServiceRequest, *, upper: bool = False) -> bytes:
    """OTLP/JSON written independently of the code under test (hex ids, integer enums)."""
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if holder.get(key):
                            h = base64.b64decode(holder[key]).hex()
                            holder[key] = h.upper() if upper else h
    return json.dumps(doc).encode()


def minimal(span: dict[str, Any]) -> bytes:
    body = {"resourceSpans": [{"resource": {"attributes": []},
                               "scopeSpans": [{"scope": {"name": "x"}, "spans": [span]}]}]}
    return json.dumps(body).encode()


def base_span(**fields: Any) -> dict[str, Any]:
    span = {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "name": "s", "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"}
    span.update(fields)
    return span


# -- the same request in both encodings --------------------------------------------------------

def test_protobuf_round_trip(recorder: SpanRecorder) -> None:
    request = sample(recorder)
    assert decode_otlp_request(request.SerializeToString(), PROTOBUF) == request
    assert decode_otlp_request(request.SerializeToString(), "application/protobuf") == request


@pytest.mark.parametrize("upper", [False, True])
def test_json_with_hex_ids_equals_protobuf(recorder: SpanRecorder, upper: bool) -> None:
    request = sample(recorder)
    from_proto = decode_otlp_request(request.SerializeToString(), PROTOBUF)
    from_json = decode_otlp_request(to_json(request, upper=upper), "application/json; charset=utf-8")
    assert from_json == from_proto
    span = from_json.resource_spans[0].scope_spans[0].spans[0]
    assert len(span.trace_id) == 16 and len(span.span_id) == 8
    linked = [s for s in from_json.resource_spans[0].scope_spans[0].spans if s.links]
    assert linked[0].links[0].trace_id == span.trace_id


def test_encode_otlp_json_matches_the_spec_encoding(recorder: SpanRecorder) -> None:
    request = sample(recorder)
    body = encode_otlp_json(request)
    doc = json.loads(body)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and span["traceId"] == span["traceId"].lower()
    assert isinstance(span["kind"], int)
    assert decode_otlp_request(body, JSON) == request
    assert body == encode_otlp_json(request)


def test_hex_id_is_not_read_as_base64() -> None:
    # 32 hex digits are also valid base64 (24 bytes): the standard parser would accept them
    body = minimal(base_span(traceId=TRACE_HEX.upper()))
    request = decode_otlp_request(body, JSON)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == TRACE_HEX
    assert span.span_id.hex() == SPAN_HEX
    naive = json_format.Parse(body, ExportTraceServiceRequest())
    assert len(naive.resource_spans[0].scope_spans[0].spans[0].trace_id) == 24  # the trap


def test_base64_ids_are_rejected_not_misdecoded() -> None:
    b64 = base64.b64encode(bytes.fromhex(TRACE_HEX)).decode()
    with pytest.raises(BadRequest, match=r"spans\[0\]\.traceId .* not 32 hex digits .*base64"):
        decode_otlp_request(minimal(base_span(traceId=b64)), JSON)
    b64_span = base64.b64encode(bytes.fromhex(SPAN_HEX)).decode()
    with pytest.raises(BadRequest, match=r"spans\[0\]\.spanId"):
        decode_otlp_request(minimal(base_span(spanId=b64_span)), JSON)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("traceId", TRACE_HEX[:-2], r"traceId .* not 32 hex digits"),
    ("traceId", "zz" * 16, r"traceId .* not 32 hex digits"),
    ("spanId", SPAN_HEX + "00", r"spanId .* not 16 hex digits"),
    ("parentSpanId", "xyz", r"parentSpanId .* not 16 hex digits"),
    ("traceId", 12345, r"traceId must be a hex string, got a number"),
    ("spanId", ["ab"], r"spanId must be a hex string, got an array"),
])
def test_bad_ids_name_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=r"resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\."
                                         + message):
        decode_otlp_request(minimal(base_span(**{field: value})), JSON)


def test_bad_link_id_names_the_link() -> None:
    span = base_span(links=[{"traceId": TRACE_HEX, "spanId": "nothex!!nothex!!"}])
    with pytest.raises(BadRequest, match=r"spans\[0\]\.links\[0\]\.spanId"):
        decode_otlp_request(minimal(span), JSON)


def test_long_bad_id_is_truncated_in_the_message() -> None:
    with pytest.raises(BadRequest) as info:
        decode_otlp_request(minimal(base_span(traceId="q" * 10_000)), JSON)
    assert len(str(info.value)) < 300


def test_long_bad_values_are_not_echoed_whole() -> None:
    span = base_span(attributes=[{"key": "k", "value": {"intValue": "9" * 100_000}}])
    with pytest.raises(BadRequest, match="invalid OTLP/JSON") as info:
        decode_otlp_request(minimal(span), JSON)
    assert len(str(info.value)) <= 500


def test_empty_ids_mean_unset() -> None:
    request = decode_otlp_request(minimal(base_span(parentSpanId="")), JSON)
    assert request.resource_spans[0].scope_spans[0].spans[0].parent_span_id == b""


# -- the rest of the proto3 JSON mapping -------------------------------------------------------

def test_enums_ints_and_names_and_int64_strings() -> None:
    span = base_span(kind="SPAN_KIND_CLIENT", status={"code": 2, "message": "boom"},
                     attributes=[{"key": "n", "value": {"intValue": "42"}},
                                 {"key": "m", "value": {"intValue": 43}},
                                 {"key": "d", "value": {"doubleValue": "1.5"}}])
    s = decode_otlp_request(minimal(span), JSON).resource_spans[0].scope_spans[0].spans[0]
    assert s.kind == 3 and s.status.code == 2 and s.status.message == "boom"
    assert [a.value.int_value for a in s.attributes[:2]] == [42, 43]
    assert s.attributes[2].value.double_value == 1.5
    assert s.start_time_unix_nano == 1_700_000_000_000_000_000


def test_unknown_fields_are_ignored() -> None:
    span = base_span(futureField={"x": 1})
    body = json.loads(minimal(span))
    body["somethingNew"] = True
    request = decode_otlp_request(json.dumps(body).encode(), JSON)
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "s"


def test_snake_case_ids_are_hex_too() -> None:
    span = {"trace_id": TRACE_HEX, "span_id": SPAN_HEX, "name": "s",
            "start_time_unix_nano": "1700000000000000000"}
    body = json.dumps({"resource_spans": [{"scope_spans": [{"spans": [span]}]}]}).encode()
    s = decode_otlp_request(body, JSON).resource_spans[0].scope_spans[0].spans[0]
    assert s.trace_id.hex() == TRACE_HEX


def test_legacy_instrumentation_library_spans() -> None:
    body = json.dumps({"resourceSpans": [{"instrumentationLibrarySpans": [
        {"instrumentationLibrary": {"name": "old"}, "spans": [base_span()]}]}]}).encode()
    ss = decode_otlp_request(body, JSON).resource_spans[0].scope_spans[0]
    assert ss.scope.name == "old" and ss.spans[0].span_id.hex() == SPAN_HEX


def test_empty_requests_are_valid() -> None:
    assert decode_otlp_request(b"", PROTOBUF) == ExportTraceServiceRequest()
    assert decode_otlp_request(b"{}", JSON) == ExportTraceServiceRequest()
    assert decode_otlp_request(b'{"resourceSpans": null}', JSON) == ExportTraceServiceRequest()


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"\xff\xff\xff\xff", b"\x0a\x05abc", b"not protobuf at all", b"\x0a\xff\xff\xff\xff\x0f",
])
def test_malformed_protobuf(body: bytes) -> None:
    with pytest.raises(BadRequest, match="malformed protobuf"):
        decode_otlp_request(body, PROTOBUF)


@pytest.mark.parametrize(("body", "message"), [
    (b"{", r"malformed JSON: .* line 1 column 2"),
    (b'{"resourceSpans": [}', "malformed JSON"),
    (b"\xff\xfe\x00garbage", "malformed JSON"),
    (b"[" * 100_000, "malformed JSON"),
    (b"[]", "must be a JSON object, got an array"),
    (b'"text"', "must be a JSON object, got a string"),
])
def test_malformed_json(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        decode_otlp_request(body, JSON)


@pytest.mark.parametrize(("body", "message"), [
    ({"resourceSpans": {}}, r"resourceSpans must be an array, got an object"),
    ({"resourceSpans": [1]}, r"resourceSpans\[0\] must be an object, got a number"),
    ({"resourceSpans": [{"scopeSpans": "x"}]}, r"resourceSpans\[0\]\.scopeSpans must be an array"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [None]}]}]},
     r"resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\] must be an object, got null"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(links=5)]}]}]},
     r"spans\[0\]\.links must be an array"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(name=5)]}]}]}, "invalid OTLP/JSON"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(startTimeUnixNano="soon")]}]}]},
     "invalid OTLP/JSON.*startTimeUnixNano"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(
        attributes=[{"key": "k", "value": {"intValue": 1.5}}])]}]}]}, "invalid OTLP/JSON"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(kind="SPAN_KIND_NOPE")]}]}]},
     r"spans\[0\]\.kind 'SPAN_KIND_NOPE' is not an OTLP enum value"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(status={"code": "EROR"})]}]}]},
     r"spans\[0\]\.status\.code 'EROR' is not an OTLP enum value"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(status={"code": True})]}]}]},
     r"status\.code must be an integer, got a boolean"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(
        attributes=[{"key": "k", "value": {"intValue": True}}])]}]}]}, "invalid OTLP/JSON"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [base_span(name="\ud800")]}]}]},
     "invalid OTLP/JSON"),
])
def test_wrong_types_are_named(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        decode_otlp_request(json.dumps(body).encode(), JSON)


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/grpc",
                                          "application/x-www-form-urlencoded", "x" * 500])
def test_unsupported_media_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="unsupported Content-Type") as info:
        decode_otlp_request(b"{}", content_type)
    assert isinstance(info.value, BadRequest) and isinstance(info.value, IngestError)
    assert len(str(info.value)) < 300


def test_exported_members() -> None:
    public = {n for n in dir(agentaudit.ingest) if not n.startswith("_")} - {"otlp", "annotations"}
    assert agentaudit.ingest.__all__ == sorted(agentaudit.ingest.__all__)
    assert set(agentaudit.ingest.__all__) == public
