"""Ingest: turning what other systems send (OTLP traces) into audit events."""

from __future__ import annotations

from agentaudit.ingest.otlp import (
    JSON,
    PROTOBUF,
    UnsupportedMediaType,
    decode_otlp_request,
    encode_otlp_json,
    span_event_id,
    spans_to_events,
)

__all__ = [
    "JSON",
    "PROTOBUF",
    "UnsupportedMediaType",
    "decode_otlp_request",
    "encode_otlp_json",
    "span_event_id",
    "spans_to_events",
]
