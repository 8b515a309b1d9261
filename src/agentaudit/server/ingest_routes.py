"""Ingest: ``POST /v1/events`` (native JSON / NDJSON) and ``POST /v1/traces`` (OTLP/HTTP).

A request is answered only after its events are committed (group commit). Bad input gets a 4xx
with a reason; a saturated writer gets 503 with ``Retry-After`` instead of an unbounded buffer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response, Security

from agentaudit.events import AuditEvent
from agentaudit.server import otlp_responses as otlp
from agentaudit.server.auth import authenticate, bearer
from agentaudit.server.bodies import (
    JSON_TYPES,
    NDJSON_TYPES,
    discard_body,
    media_type,
    parse_events,
    read_body,
)
from agentaudit.server.collector import Collector
from agentaudit.server.errors import ApiError
from agentaudit.server.models import ErrorBody, IngestResult
from agentaudit.server.writer import Saturated, WriterClosed
from agentaudit.store.base import AppendResult

__all__ = ["router"]

log = logging.getLogger("agentaudit.server")
router = APIRouter(tags=["ingest"])
_encode = msgspec.json.Encoder().encode


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    reasons = {400: "Malformed body or parameters", 401: "Missing, invalid or revoked API key",
               403: "The API key's scope does not allow this", 404: "Not found in your tenant",
               413: "Body, decompressed body, batch or event too large",
               415: "Unsupported Content-Type or Content-Encoding",
               503: "The collector is busy or cannot store now; retry after Retry-After seconds"}
    return {c: {"model": ErrorBody, "description": reasons[c]} for c in codes}


_EVENTS_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"oneOf": [
            {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}},
            {"$ref": "#/components/schemas/EventBatch"}]}},
        "application/x-ndjson": {"schema": {"type": "string", "description":
                                            "one JSON event per line"}},
    },
}


async def append_events(collector: Collector, events: Sequence[AuditEvent]) -> AppendResult:
    """Queue events with the group-commit writer and wait for their commit."""
    retry = {"Retry-After": str(collector.settings.retry_after)}
    started = time.perf_counter()
    try:
        result = await collector.writer.append(events)
    except Saturated as e:
        raise ApiError(503, "the collector is busy: retry later", retry) from e
    except WriterClosed as e:
        raise ApiError(503, "the collector is shutting down: retry later", retry) from e
    except Exception as e:
        log.error("agentaudit: events could not be committed: %r", e)
        raise ApiError(503, "the events could not be stored: retry later", retry) from e
    collector.metrics.observe_ack(time.perf_counter() - started)
    return result


def _refused(collector: Collector, status: int) -> None:
    collector.metrics.inc("agentaudit_requests_refused_total", label=f'code="{status}"')


@router.post("/v1/events", summary="Ingest audit events", openapi_extra={"requestBody": _EVENTS_BODY},
             dependencies=[Security(bearer)], response_model=None,
             responses={200: {"model": IngestResult, "description": "Stored (or already stored); "
                              "invalid events are listed in `rejected`"},
                        **_errors(400, 401, 403, 413, 415, 503)})
async def ingest_events(request: Request) -> Response:
    """Store a batch of events: a JSON array, `{"events": [...]}` or NDJSON, optionally gzip
    (`Content-Encoding: gzip`). Idempotent on `event_id`. Needs an `ingest` key."""
    collector: Collector = request.app.state.collector
    settings = collector.settings
    try:
        principal = authenticate(request, "ingest")
        ctype = media_type(request)
        if ctype not in JSON_TYPES and ctype not in NDJSON_TYPES and ctype != "":
            raise ApiError(415, f"unsupported Content-Type {ctype!r}: use application/json or "
                                "application/x-ndjson")
        body = await read_body(request, settings)
        batch = parse_events(body, ctype, principal.tenant, settings)
        result = await append_events(collector, batch.events)
    except ApiError as e:
        _refused(collector, e.status)
        await discard_body(request)
        raise
    collector.metrics.inc("agentaudit_events_rejected_total", len(batch.rejected),
                          'source="native"')
    return Response(_encode({"accepted": result.accepted, "duplicates": result.duplicates,
                             "rejected": batch.rejected}), media_type="application/json")


@router.post("/v1/traces", summary="Ingest OpenTelemetry spans (OTLP/HTTP)",
             openapi_extra={"requestBody": otlp.REQUEST_BODY}, dependencies=[Security(bearer)],
             response_model=None, responses=otlp.RESPONSES)
async def ingest_otlp(request: Request) -> Response:
    """OTLP/HTTP traces, protobuf (`application/x-protobuf`) or JSON (`application/json`, hex
    ids), optionally gzip. Spans become audit events (docs/otlp-mapping.md). Needs an `ingest`
    key."""
    collector: Collector = request.app.state.collector
    ctype = media_type(request)
    proto = ctype in otlp.MEDIA_TYPES and ctype != otlp.JSON  # answer in the client's encoding
    try:
        principal = authenticate(request, "ingest")
        if ctype not in otlp.MEDIA_TYPES:
            raise ApiError(415, f"unsupported Content-Type {ctype!r}: use {otlp.PROTOBUF} or "
                                f"{otlp.JSON}")
        body = await read_body(request, collector.settings)
        events, rejected, spans = otlp.to_events(body, ctype, principal.tenant, collector.settings)
        result = await append_events(collector, events)
    except ApiError as e:
        _refused(collector, e.status)
        await discard_body(request)
        return otlp.error_response(e, proto)
    collector.metrics.inc("agentaudit_events_rejected_total", len(rejected), 'source="otlp"')
    collector.metrics.inc("agentaudit_otlp_spans_total", spans)
    del result
    return otlp.success_response(rejected, proto)
