"""OTLP trace ingest: decode an OTLP/HTTP body and turn its spans into audit events.

    request = decode_otlp_request(body, "application/x-protobuf")   # or application/json
    events, rejected = spans_to_events(request, tenant="acme")

Spans of both conventions seen in the wild are mapped, OpenInference
(``openinference.span.kind``) and OpenTelemetry GenAI (``gen_ai.operation.name``); the table
is docs/otlp-mapping.md. Event ids are derived from (trace id, span id, role), so a retried
export maps to the same events and the store keeps them once.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentaudit.events import AuditEvent, EventType, validate_event
from agentaudit.exceptions import BadRequest, ValidationError
from agentaudit.ingest._otlp_json import encode_otlp_json, parse_otlp_json
from agentaudit.ingest._otlp_map import Resolver, build_events
from agentaudit.ingest._otlp_spans import read_spans, span_event_id

__all__ = [
    "JSON",
    "PROTOBUF",
    "UnsupportedMediaType",
    "decode_otlp_request",
    "encode_otlp_json",
    "span_event_id",
    "spans_to_events",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_ALIASES = frozenset((PROTOBUF, "application/protobuf"))


class UnsupportedMediaType(BadRequest):
    """The body is neither OTLP protobuf nor OTLP/JSON (HTTP 415)."""

    def __init__(self, content_type: str) -> None:
        shown = content_type if len(content_type) <= 100 else content_type[:97] + "..."
        super().__init__(f"unsupported Content-Type {shown!r}: "
                         f"send {PROTOBUF} or {JSON}")
        self.content_type = content_type


def decode_otlp_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Decode an (already decompressed) OTLP/HTTP trace export body.

    ``content_type`` picks the encoding (parameters such as ``charset`` are ignored). Raises
    ``UnsupportedMediaType`` for other media types and ``BadRequest`` naming the problem for
    malformed bodies, bad ids and wrongly typed fields.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _PROTOBUF_ALIASES:
        return _parse_protobuf(bytes(body))
    if media == JSON:
        return parse_otlp_json(bytes(body))
    raise UnsupportedMediaType(content_type or "")


def _parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as e:
        raise BadRequest(f"malformed protobuf: {e or 'cannot parse ExportTraceServiceRequest'}"
                         ) from e
    except (RuntimeError, ValueError, RecursionError) as e:  # depth limits, bad UTF-8
        raise BadRequest(f"malformed protobuf: {e}") from e
    return request


def spans_to_events(request: ExportTraceServiceRequest,
                    tenant: str) -> tuple[list[AuditEvent], list[str]]:
    """Map every span of ``request`` to audit events of ``tenant``.

    Returns the events (validated, in span order, each span's primary event first) and one
    message per span that could not be mapped; those spans produce no events (the collector
    reports them as OTLP ``partial_success``).
    """
    _check_tenant(tenant)
    views = read_spans(request)
    ctx = Resolver(views)
    ctx.merge_repeated_agents()
    events: list[AuditEvent] = []
    rejected: list[str] = []
    for v in views:
        if v.kind is None:
            rejected.append(f"{v.label()}: {v.problem}")
            continue
        try:
            built = [validate_event(e) for e in build_events(v, ctx, tenant)]
        except ValidationError as e:
            rejected.append(f"{v.label()}: {e}")
            continue
        events.extend(built)
    return events, rejected


def _check_tenant(tenant: str) -> None:
    try:
        validate_event(AuditEvent(event_type=EventType.INVOCATION, agent_name="-",
                                  tenant=tenant))
    except ValidationError as e:
        raise BadRequest(f"invalid tenant: {e.reason}") from e
