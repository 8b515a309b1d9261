"""examples/langgraph_otlp.py: a LangGraph graph of two agent nodes on a fake chat model,
instrumented with openinference-instrumentation-langchain, exported over OTLP to serve."""

from __future__ import annotations

from pathlib import Path

from tests.examples.runner import (
    Collector,
    ancestors,
    clean_env,
    find,
    require,
    run_example,
    stored,
)

require("langgraph")
require("openinference.instrumentation.langchain")


def test_langgraph_over_otlp_to_serve(home: Path, collector: Collector) -> None:
    env = clean_env(home, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector.url + "/v1/traces",
                    OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"x-api-key={collector.ingest_key}")
    out = run_example("langgraph_otlp.py", env, home / "work")
    assert out.strip() == "The refund failed; here is your invoice for A1."
    events = stored(collector.db, collector.tenant)
    by_id = {e.event_id: e for e in events}
    assert len({e.trace_id for e in events}) == 1
    assert {e.source for e in events} == {"support-graph"}
    assert {e.session_id for e in events} == {"conversation-42"}  # LangGraph's thread_id

    # each graph node that runs a model is an agent
    triage, = find(events, "invocation", lambda e: e.agent_name == "triage")
    billing, = find(events, "invocation", lambda e: e.agent_name == "billing")
    assert triage.timestamp < billing.timestamp

    # the transfer_to_billing tool is a handoff, not a tool call
    handoff, = find(events, "handoff")
    assert handoff.params == {"from_agent": "triage", "to_agent": "billing"}
    assert handoff.parent_event_id == triage.event_id

    calls = {e.action: e for e in find(events, "tool_call")}
    assert set(calls) == {"lookup_customer", "issue_refund", "get_invoice"}
    assert calls["lookup_customer"].agent_name == "triage"
    assert calls["issue_refund"].params == {"order_id": "A1", "amount": 50}
    for name in ("issue_refund", "get_invoice"):
        assert calls[name].agent_name == "billing" and billing in ancestors(calls[name], by_id)
    results = {e.action: e for e in find(events, "tool_result")}
    assert set(results) == {"lookup_customer", "get_invoice"}
    assert results["get_invoice"].result == {"order_id": "A1", "total": 50.0}

    error, = find(events, "error")
    assert error.parent_event_id == calls["issue_refund"].event_id
    assert error.error_type == "RuntimeError" and "payment gateway down" in (error.error or "")

    llm = find(events, "llm_response")
    assert sorted(e.agent_name for e in llm) == ["billing"] * 3 + ["triage"] * 2
    assert sum(e.token_count or 0 for e in find(events, "token_usage")) == 5 * 120
