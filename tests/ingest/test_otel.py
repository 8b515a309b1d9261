"""AuditSpanExporter: in-process OTel spans become audit events in a real SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.trace import Status, StatusCode, Tracer

import agentaudit.otel
from agentaudit import AuditLogger
from agentaudit.events import AuditEvent
from agentaudit.exceptions import ConfigError
from agentaudit.otel import AuditSpanExporter
from agentaudit.store import EventQuery, open_store

OI = "openinference.span.kind"


def provider_with(exporter: AuditSpanExporter, *, batch: bool = False) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "bridge-test"}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def run_agent(tracer: Tracer) -> str:
    """An agent with a tool, a model call and a failing tool; returns the trace id (hex)."""
    with tracer.start_as_current_span("Support", attributes={
            OI: "AGENT", "agent.name": "Support", "session.id": "s-1"}) as root:
        with tracer.start_as_current_span("lookup", attributes={
                OI: "TOOL", "tool.name": "lookup", "input.value": '{"id": 7}',
                "output.value": '{"found": true}'}):
            pass
        with tracer.start_as_current_span("llm", attributes={
                OI: "LLM", "llm.model_name": "m", "llm.token_count.prompt": 5,
                "llm.token_count.completion": 2}):
            pass
        with tracer.start_as_current_span("pay", attributes={OI: "TOOL", "tool.name": "pay"}) as s:
            s.record_exception(ValueError("card declined"))
            s.set_status(Status(StatusCode.ERROR, "card declined"))
        return format(root.get_span_context().trace_id, "032x")


def stored(db: Path, tenant: str = "default") -> list[AuditEvent]:
    with open_store(str(db)) as store:
        return store.query(EventQuery(tenant=tenant, limit=10_000)).data


def test_spans_are_stored_and_read_back_by_trace(db_path: Path) -> None:
    exporter = AuditSpanExporter(store=str(db_path))
    provider = provider_with(exporter)
    trace_id = run_agent(provider.get_tracer("t"))
    provider.shutdown()
    with open_store(str(db_path)) as store:
        events = store.trace_events("default", trace_id)
    types = sorted(e.event_type for e in events)
    assert types == sorted(["agent.invocation", "agent.tool_call", "agent.tool_result",
                            "agent.llm_response", "agent.token_usage", "agent.tool_call",
                            "agent.error"])
    by_id = {e.event_id: e for e in events}
    root = next(e for e in events if e.event_type == "agent.invocation")
    assert all(e.agent_name == "Support" for e in events)
    assert all(e.parent_event_id in by_id for e in events if e is not root)
    error = next(e for e in events if e.event_type == "agent.error")
    assert (error.error_type, error.error, by_id[error.parent_event_id or ""].action) == (
        "ValueError", "card declined", "pay")
    assert all(e.seq is not None and e.leaf_hash for e in events)
    assert exporter.stats() == {"spans": 4, "events": 7, "rejected": 0, "failures": 0,
                                "pending": 0}


def test_spans_wait_for_their_root(db_path: Path) -> None:
    logger = AuditLogger(str(db_path))
    exporter = AuditSpanExporter(logger)
    tracer = provider_with(exporter).get_tracer("t")
    with tracer.start_as_current_span("A", attributes={OI: "AGENT", "agent.name": "A"}):
        with tracer.start_as_current_span("tool", attributes={OI: "TOOL", "tool.name": "x"}):
            pass
        assert exporter.stats()["pending"] == 1
        assert logger.flush() and stored(db_path) == []
    assert exporter.stats()["pending"] == 0
    assert logger.flush()
    events = stored(db_path)
    assert {e.agent_name for e in events} == {"A"}  # the tool knew its agent
    logger.close()


def test_batch_processor_and_tenant(db_path: Path) -> None:
    exporter = AuditSpanExporter(store=str(db_path), tenant="acme")
    provider = provider_with(exporter, batch=True)
    trace_id = run_agent(provider.get_tracer("t"))
    assert provider.force_flush()
    provider.shutdown()
    assert stored(db_path, "default") == []
    with open_store(str(db_path)) as store:
        assert len(store.trace_events("acme", trace_id)) == 7


def test_exporting_the_same_spans_twice_stores_them_once(db_path: Path) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter, memory = AuditSpanExporter(store=str(db_path)), InMemorySpanExporter()
    provider = provider_with(exporter)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    run_agent(provider.get_tracer("t"))
    provider.shutdown()
    again = AuditSpanExporter(store=str(db_path))  # a retry, as after a crash
    assert again.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    again.shutdown()
    assert len(stored(db_path)) == 7


def _finished_spans() -> list[ReadableSpan]:
    """The spans of one fresh ``run_agent`` trace, children first, root last."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    run_agent(provider.get_tracer("t"))
    return list(memory.get_finished_spans())


def test_orphans_are_flushed_by_age_and_by_count(db_path: Path) -> None:
    now = [0.0]
    logger = AuditLogger(str(db_path))
    exporter = AuditSpanExporter(logger, max_trace_age=10, max_pending_spans=3,
                                 clock=lambda: now[0])
    orphans = [s for s in _finished_spans() if s.parent is not None]  # the root never ends
    exporter.export(orphans[:1])
    assert exporter.stats()["pending"] == 1
    now[0] = 11.0
    exporter.export(orphans[1:2])
    assert exporter.stats()["pending"] == 0  # its trace was older than max_trace_age

    exporter.export([s for s in _finished_spans() if s.parent is not None])
    assert exporter.stats()["pending"] == 3  # at the limit, not over it
    exporter.export([s for s in _finished_spans() if s.parent is not None][:1])
    assert exporter.stats()["pending"] == 1  # over it: the oldest trace was recorded
    assert exporter.stats()["events"] == 4 + 6  # lookup, llm; then lookup, llm, pay
    logger.close()


def test_export_never_raises(db_path: Path, monkeypatch: pytest.MonkeyPatch,
                             caplog: pytest.LogCaptureFixture) -> None:
    exporter = AuditSpanExporter(store=str(db_path))

    def broken(*args: Any) -> Any:
        raise RuntimeError("mapper exploded")

    monkeypatch.setattr(agentaudit.otel, "spans_to_events", broken)
    assert exporter.export(_finished_spans()) == SpanExportResult.FAILURE
    assert exporter.stats()["failures"] == 1
    assert "could not record" in caplog.text
    monkeypatch.undo()
    exporter.shutdown()
    assert exporter.export(_finished_spans()) == SpanExportResult.FAILURE  # after shutdown
    exporter.shutdown()  # idempotent


def test_force_flush_records_held_spans_and_keeps_a_shared_logger(db_path: Path) -> None:
    with AuditLogger(str(db_path)) as logger:
        exporter = AuditSpanExporter(logger)
        exporter.export([s for s in _finished_spans() if s.parent is not None])
        assert exporter.stats()["pending"] == 3
        assert exporter.force_flush()
        assert exporter.stats()["pending"] == 0 and len(stored(db_path)) == 6
        exporter.shutdown()
        assert logger.log_reasoning("after", "the logger is still open")
        assert logger.flush()
    assert len(stored(db_path)) == 7


def test_non_agent_spans_are_counted_as_rejected(db_path: Path) -> None:
    exporter = AuditSpanExporter(store=str(db_path))
    provider = provider_with(exporter)
    with provider.get_tracer("t").start_as_current_span("GET /health"):
        pass
    provider.shutdown()
    assert exporter.stats()["rejected"] == 1
    assert "not an agent span" in exporter.last_rejected[0]


def test_configuration_is_checked(db_path: Path) -> None:
    with AuditLogger(str(db_path)) as logger:
        with pytest.raises(ConfigError, match="not both"):
            AuditSpanExporter(logger, store=str(db_path))
        with pytest.raises(ConfigError, match="invalid tenant"):
            AuditSpanExporter(logger, tenant="bad tenant")
        with pytest.raises(ConfigError, match="positive"):
            AuditSpanExporter(logger, max_pending_spans=0)
