"""A real OpenAI Agents SDK run, instrumented by OpenInference, recorded through the bridge.

No network and no API key: the agents talk to a scripted model that implements the SDK's
``Model`` interface (and, like the SDK's own models, records a generation span per call).
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

agents = pytest.importorskip("agents")
oi_agents = pytest.importorskip("openinference.instrumentation.openai_agents")

from agents import RunConfig, Runner  # noqa: E402

# The scripted workflow (models, tools, agents) is the one examples/ ships and documents.
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

from agentaudit.events import AuditEvent  # noqa: E402
from agentaudit.otel import AuditSpanExporter  # noqa: E402
from agentaudit.store import EventQuery, open_store  # noqa: E402


def _shipped_workflow() -> Any:
    """examples/support_agents.py (the scripted models, tools and agents the examples ship and
    docs/integrations.md shows), loaded by path: ``examples`` here is tests/examples."""
    path = Path(__file__).resolve().parents[2] / "examples" / "support_agents.py"
    spec = importlib.util.spec_from_file_location("agentaudit_example_support_agents", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_agents = _shipped_workflow().build_agents


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_AGENTS_DISABLE_TRACING", raising=False)


def run_workflow(db_path: Path) -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-desk"}))
    provider.add_span_processor(SimpleSpanProcessor(AuditSpanExporter(store=str(db_path))))
    instrumentor = oi_agents.OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        result = asyncio.run(Runner.run(build_agents(), "Refund order A1 for ann@example.com",
                                        run_config=RunConfig(workflow_name="Support workflow")))
    finally:
        instrumentor.uninstrument()
        provider.shutdown()  # flushes the exporter, closes its logger
    return str(result.final_output)


def ancestors(event: AuditEvent, by_id: dict[str, AuditEvent]) -> list[AuditEvent]:
    out = []
    while event.parent_event_id:
        event = by_id[event.parent_event_id]
        out.append(event)
    return out


def find(events: list[AuditEvent], event_type: str,
         pred: Callable[[AuditEvent], bool] = lambda e: True) -> list[AuditEvent]:
    return [e for e in events if e.event_type == event_type and pred(e)]


def test_agents_sdk_run_is_reconstructed_as_one_trace(db_path: Path, no_network: None) -> None:
    final = run_workflow(db_path)
    assert final == "The refund failed; here is your invoice for A1."
    with open_store(str(db_path)) as store:
        everything = store.query(EventQuery(limit=10_000)).data
        trace_ids = {e.trace_id for e in everything}
        assert len(trace_ids) == 1, trace_ids
        events = store.trace_events("default", trace_ids.pop() or "")
    assert len(events) == len(everything)
    by_id = {e.event_id: e for e in events}

    # one root, every other event's parent is in the trace
    roots = [e for e in events if e.parent_event_id is None]
    assert len(roots) == 1 and roots[0].event_type == "agent.invocation"
    assert roots[0].action == "Support workflow"
    assert all(e.parent_event_id in by_id for e in events if e is not roots[0])

    # agents
    triage, = find(events, "agent.invocation", lambda e: e.agent_name == "Triage")
    billing, = find(events, "agent.invocation", lambda e: e.agent_name == "Billing")
    assert billing.params == {"handoff_from": "Triage"}
    assert triage.timestamp < billing.timestamp

    # the handoff, with source and target
    handoff, = find(events, "agent.handoff")
    assert handoff.params == {"from_agent": "Triage", "to_agent": "Billing"}
    assert handoff.agent_name == "Triage" and triage in ancestors(handoff, by_id)

    # tool calls and results, under the right agent
    calls = {e.action: e for e in find(events, "agent.tool_call")}
    assert set(calls) == {"lookup_customer", "issue_refund", "get_invoice"}
    assert calls["lookup_customer"].params == {"email": "ann@example.com"}
    assert calls["issue_refund"].params == {"order_id": "A1", "amount": 50}
    assert calls["lookup_customer"].agent_name == "Triage"
    assert triage in ancestors(calls["lookup_customer"], by_id)
    for name in ("issue_refund", "get_invoice"):
        assert calls[name].agent_name == "Billing" and billing in ancestors(calls[name], by_id)
    results = {e.action: e for e in find(events, "agent.tool_result")}
    assert set(results) == {"lookup_customer", "get_invoice"}
    assert results["get_invoice"].result == {"order_id": "A1", "total": 50.0}
    assert results["lookup_customer"].parent_event_id == calls["lookup_customer"].event_id

    # the tool error
    error, = find(events, "agent.error")
    assert error.parent_event_id == calls["issue_refund"].event_id
    assert error.agent_name == "Billing" and error.action == "issue_refund"
    assert error.error_type and "Error running tool" in (error.error or "")
    assert "issue_refund" in (error.error or "")

    # LLM responses and token usage: two Triage calls, three Billing calls
    llm = find(events, "agent.llm_response")
    assert sorted(e.agent_name for e in llm) == ["Billing"] * 3 + ["Triage"] * 2
    assert all((e.model, e.prompt_tokens, e.completion_tokens, e.token_count)
               == ("scripted-gpt", 100, 20, 120) for e in llm)
    usage = find(events, "agent.token_usage")
    assert sorted(e.parent_event_id or "" for e in usage) == sorted(e.event_id for e in llm)
    assert {e.source for e in events} == {"support-desk"}
