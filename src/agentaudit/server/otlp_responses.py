"""OTLP/HTTP on the wire: turning a request into events, and answers as the OTLP spec wants.

Success is an ``ExportTraceServiceResponse`` (empty, or with ``partial_success`` naming the
rejected spans); failures carry a ``google.rpc.Status``. Both are protobuf when the request was
protobuf and JSON otherwise. The span → event mapping itself lives in ``agentaudit.ingest.otlp``.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from fastapi import Response

from agentaudit.events import AuditEvent, validate_event
from agentaudit.exceptions import BadRequest, ValidationError
from agentaudit.server.errors import ApiError
from agentaudit.server.models import OtlpResponse, OtlpStatus
from agentaudit.server.settings import ServerSettings

__all__ = ["JSON", "MEDIA_TYPES", "PROTOBUF", "REQUEST_BODY", "RESPONSES", "error_response", "success_response",
           "to_events"]

log = logging.getLogger("agentaudit.server")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = frozenset({PROTOBUF, "application/protobuf", JSON})
# google.rpc.Code of each HTTP status we answer with.
_RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 501: 12, 503: 14}
_MAX_MESSAGES = 20

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        PROTOBUF: {"schema": {"type": "string", "format": "binary",
                              "description": "ExportTraceServiceRequest (protobuf)"}},
        JSON: {"schema": {"type": "object", "description":
                          "ExportTraceServiceRequest in OTLP/JSON (trace and span ids in hex)",
                          "properties": {"resourceSpans": {"type": "array",
                                                           "items": {"type": "object"}}}}},
    },
}


def _answers(description: str, model: type[Any]) -> dict[str, Any]:
    return {"description": description, "model": model,
            "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}}


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _answers("Stored; `partialSuccess` counts rejected spans", OtlpResponse),
    400: _answers("Malformed request (google.rpc.Status)", OtlpStatus),
    401: _answers("Missing, invalid or revoked API key", OtlpStatus),
    403: _answers("The API key's scope does not allow ingest", OtlpStatus),
    413: _answers("Body, decompressed body or span count too large", OtlpStatus),
    415: _answers("Unsupported Content-Type or Content-Encoding", OtlpStatus),
    501: _answers("OTLP ingest is not available in this build", OtlpStatus),
    503: _answers("Busy: retry after Retry-After seconds", OtlpStatus),
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _status_protobuf(code: int, message: str) -> bytes:
    """google.rpc.Status {code = 1; message = 2}, encoded by hand (no googleapis dependency)."""
    text = message.encode("utf-8")
    return (b"\x08" + _varint(code) if code else b"") + (
        b"\x12" + _varint(len(text)) + text if text else b"")


def error_response(error: ApiError, proto: bool) -> Response:
    """A google.rpc.Status body for ``error``, in the request's encoding."""
    code = _RPC_CODE.get(error.status, 2)
    if proto:
        return Response(_status_protobuf(code, error.reason), status_code=error.status,
                        media_type=PROTOBUF, headers=error.headers)
    return Response(msgspec.json.encode({"code": code, "message": error.reason}),
                    status_code=error.status, media_type=JSON, headers=error.headers)


def success_response(rejected: list[str], proto: bool) -> Response:
    """ExportTraceServiceResponse: empty on full success, else ``partial_success``."""
    message = "; ".join(rejected[:_MAX_MESSAGES])
    if len(rejected) > _MAX_MESSAGES:
        message += f"; and {len(rejected) - _MAX_MESSAGES} more"
    if proto:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb

        reply = pb.ExportTraceServiceResponse()
        if rejected:
            reply.partial_success.rejected_spans = len(rejected)
            reply.partial_success.error_message = message
        return Response(reply.SerializeToString(), media_type=PROTOBUF)
    body: dict[str, Any] = {}
    if rejected:
        body["partialSuccess"] = {"rejectedSpans": len(rejected), "errorMessage": message}
    return Response(msgspec.json.encode(body), media_type=JSON)


def _count_spans(request: Any) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def to_events(body: bytes, content_type: str, tenant: str,
              settings: ServerSettings) -> tuple[list[AuditEvent], list[str], int]:
    """(valid events, rejected-span messages, spans received) of an OTLP request body."""
    try:
        from agentaudit.ingest.otlp import (
            UnsupportedMediaType,
            decode_otlp_request,
            spans_to_events,
        )
    except ImportError as e:
        raise ApiError(501, "OTLP ingest is not available in this build") from e
    try:
        request = decode_otlp_request(body, content_type)
    except UnsupportedMediaType as e:
        raise ApiError(415, str(e)) from e
    except BadRequest as e:
        raise ApiError(400, str(e)) from e
    except Exception as e:  # a decoder bug must still not turn bad input into a 5xx
        log.exception("agentaudit: OTLP decoding failed")
        raise ApiError(400, "malformed OTLP request") from e
    spans = _count_spans(request)
    if spans > settings.max_batch_events:
        raise ApiError(413, f"{spans} spans in one request; the limit is "
                            f"{settings.max_batch_events}")
    try:
        events, rejected = spans_to_events(request, tenant)
    except BadRequest as e:
        raise ApiError(400, str(e)) from e
    valid: list[AuditEvent] = []
    rejected = list(rejected)
    for ev in events:
        try:
            if ev.tenant != tenant:
                raise ValidationError("tenant", f"mapped to tenant {ev.tenant!r}, not {tenant!r}")
            valid.append(validate_event(ev))
        except ValidationError as e:
            rejected.append(f"span mapped to an invalid event: {e}")
    return valid, rejected, spans
