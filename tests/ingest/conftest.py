"""Spans from the real OpenTelemetry SDK, encoded as an exporter would send them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer


class SpanRecorder:
    """A TracerProvider whose finished spans are kept in memory."""

    def __init__(self, service: str = "support-bot") -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                                 "service.version": "1.2.3"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer: Tracer = self.provider.get_tracer("tests.ingest", "0.1")

    def spans(self) -> list[ReadableSpan]:
        return list(self.memory.get_finished_spans())

    def request(self, spans: list[ReadableSpan] | None = None) -> ExportTraceServiceRequest:
        return encode_spans(self.spans() if spans is None else spans)


@pytest.fixture
def recorder() -> Iterator[SpanRecorder]:
    rec = SpanRecorder()
    yield rec
    rec.provider.shutdown()
