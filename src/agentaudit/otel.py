"""The OpenTelemetry bridge: record an instrumented application's spans in-process.

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from agentaudit.otel import AuditSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(AuditSpanExporter(store="agentaudit.db")))

Finished spans are encoded to the same OTLP protobuf the collector receives and mapped by the
same table (``agentaudit.ingest.spans_to_events``), then written through an ``AuditLogger``.
Children end before their parents, so spans are held per trace until the trace's local root
ends (or ``max_trace_age`` passes, or ``max_pending_spans`` is exceeded): a tool span can only
be attributed to its agent when the agent span is mapped in the same batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

try:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("agentaudit.otel needs opentelemetry-sdk and "
                      "opentelemetry-exporter-otlp-proto-common: "
                      "pip install 'agentaudit[otel]'") from e

from agentaudit.events import AuditEvent, EventType, validate_event
from agentaudit.exceptions import ConfigError, ValidationError
from agentaudit.ingest.otlp import spans_to_events
from agentaudit.sdk.logger import AuditLogger

__all__ = ["AuditSpanExporter"]

log = logging.getLogger("agentaudit")


@dataclass(slots=True)
class _PendingTrace:
    first_seen: float
    spans: list[ReadableSpan] = field(default_factory=list)
    complete: bool = False


class AuditSpanExporter(SpanExporter):
    """An OTel ``SpanExporter`` that writes agent spans as audit events (never raises).

    Give an ``AuditLogger`` to share one, or a ``store`` (path or URL; None means
    ``AGENTAUDIT_DB``) and the exporter opens, and on ``shutdown`` closes, its own.
    """

    def __init__(self, logger: AuditLogger | None = None, store: str | None = None,
                 tenant: str = "default", *, max_pending_spans: int = 10_000,
                 max_trace_age: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if logger is not None and store is not None:
            raise ConfigError("give AuditSpanExporter a logger or a store, not both")
        if max_pending_spans < 1 or max_trace_age <= 0:
            raise ConfigError("max_pending_spans and max_trace_age must be positive")
        try:
            validate_event(AuditEvent(event_type=EventType.INVOCATION, agent_name="-",
                                      tenant=tenant))
        except ValidationError as e:
            raise ConfigError(f"invalid tenant: {e.reason}") from e
        self.tenant = tenant
        self._owns_logger = logger is None
        self.logger = logger if logger is not None else AuditLogger(store, tenant=tenant)
        self._max_pending = max_pending_spans
        self._max_age = max_trace_age
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[int, _PendingTrace] = {}  # oldest first
        self._pending_spans = 0
        self._closed = False
        self._counts = {"spans": 0, "events": 0, "rejected": 0, "failures": 0}
        self.last_rejected: deque[str] = deque(maxlen=100)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Hold the spans with their trace; record every trace that is complete."""
        if self._closed:
            return SpanExportResult.FAILURE
        try:
            for batch in self._admit(spans):
                self._record(batch)
            return SpanExportResult.SUCCESS
        except Exception:  # never into the application
            self._count_failure()
            log.exception("agentaudit: could not record %d spans", len(spans))
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Record every held span, then wait until the logger has made them durable."""
        with self._lock:
            batches = [p.spans for p in self._pending.values()]
            self._pending.clear()
            self._pending_spans = 0
        ok = True
        for batch in batches:
            try:
                self._record(batch)
            except Exception:
                ok = False
                self._count_failure()
                log.exception("agentaudit: could not record %d spans", len(batch))
        return self.logger.flush(timeout_millis / 1000) and ok

    def shutdown(self) -> None:
        """Flush; close the logger if this exporter opened it. Later exports fail."""
        if self._closed:
            return
        self.force_flush()
        self._closed = True
        if self._owns_logger:
            self.logger.close()

    def stats(self) -> dict[str, int]:
        """Spans received, events logged, spans rejected, failed exports, spans held."""
        return {**self._counts, "pending": self._pending_spans}

    def _count_failure(self) -> None:
        with self._lock:
            self._counts["failures"] += 1

    def _admit(self, spans: Sequence[ReadableSpan]) -> list[list[ReadableSpan]]:
        now = self._clock()
        ready: list[list[ReadableSpan]] = []
        with self._lock:
            touched: set[int] = set()
            for span in spans:
                if span.context is None:
                    continue
                trace_id = span.context.trace_id
                pending = self._pending.get(trace_id)
                if pending is None:
                    pending = self._pending[trace_id] = _PendingTrace(now)
                pending.spans.append(span)
                self._pending_spans += 1
                self._counts["spans"] += 1
                touched.add(trace_id)
                if span.parent is None or span.parent.is_remote:
                    pending.complete = True
            for trace_id in touched:
                if self._pending[trace_id].complete:
                    ready.append(self._take(trace_id))
            while self._pending and (self._pending_spans > self._max_pending
                                     or now - next(iter(self._pending.values())).first_seen
                                     >= self._max_age):
                ready.append(self._take(next(iter(self._pending))))
        return ready

    def _take(self, trace_id: int) -> list[ReadableSpan]:
        pending = self._pending.pop(trace_id)
        self._pending_spans -= len(pending.spans)
        return pending.spans

    def _record(self, spans: list[ReadableSpan]) -> None:
        events, rejected = spans_to_events(encode_spans(spans), self.tenant)
        for event in events:
            self.logger.log(event)
        with self._lock:
            self._counts["events"] += len(events)
            self._counts["rejected"] += len(rejected)
            self.last_rejected.extend(rejected)
        if rejected:
            log.debug("agentaudit: %d spans not recorded, e.g. %s", len(rejected), rejected[0])
