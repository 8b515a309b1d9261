"""examples/openai_agents_otlp.py and openai_agents_inprocess.py: one OpenAI Agents SDK run
(scripted model, OpenInference), once over OTLP/HTTP to a collector, once in-process."""

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

require("agents")
require("openinference.instrumentation.openai_agents")

FINAL = "The refund failed; here is your invoice for A1."


def check_support_run(events: list) -> None:
    """The workflow of examples/support_agents.py, reconstructed as one trace."""
    assert {e.trace_id for e in events} and len({e.trace_id for e in events}) == 1
    by_id = {e.event_id: e for e in events}
    roots = [e for e in events if e.parent_event_id is None]
    assert [(r.event_type, r.action) for r in roots] == [("agent.invocation", "Support workflow")]
    assert all(e.parent_event_id in by_id for e in events if e is not roots[0])
    assert {e.source for e in events} == {"support-desk"}

    triage, = find(events, "invocation", lambda e: e.agent_name == "Triage")
    billing, = find(events, "invocation", lambda e: e.agent_name == "Billing")
    handoff, = find(events, "handoff")
    assert handoff.params == {"from_agent": "Triage", "to_agent": "Billing"}
    assert triage in ancestors(handoff, by_id)

    calls = {e.action: e for e in find(events, "tool_call")}
    assert set(calls) == {"lookup_customer", "issue_refund", "get_invoice"}
    assert calls["issue_refund"].params == {"order_id": "A1", "amount": 50}
    assert triage in ancestors(calls["lookup_customer"], by_id)
    assert billing in ancestors(calls["get_invoice"], by_id)
    assert {e.action for e in find(events, "tool_result")} == {"lookup_customer", "get_invoice"}

    error, = find(events, "error")
    assert error.parent_event_id == calls["issue_refund"].event_id
    assert error.agent_name == "Billing" and "issue_refund" in (error.error or "")
    assert len(find(events, "llm_response")) == 5
    assert sum(e.token_count or 0 for e in find(events, "token_usage")) == 5 * 120


def test_openai_agents_over_otlp_to_serve(home: Path, collector: Collector) -> None:
    env = clean_env(home, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector.url + "/v1/traces",
                    OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"x-api-key={collector.ingest_key}")
    assert run_example("openai_agents_otlp.py", env, home / "work").strip() == FINAL
    check_support_run(stored(collector.db, collector.tenant))
    assert not stored(collector.db, "default")  # the key's tenant, nowhere else


def test_openai_agents_otlp_needs_an_endpoint(home: Path) -> None:
    import subprocess
    import sys

    from tests.examples.runner import EXAMPLES

    proc = subprocess.run([sys.executable, str(EXAMPLES / "openai_agents_otlp.py")],
                          env=clean_env(home), cwd=home / "work", capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in proc.stderr


def test_openai_agents_in_process(home: Path) -> None:
    db = home / "inprocess.db"
    out = run_example("openai_agents_inprocess.py", clean_env(home, AGENTAUDIT_DB=str(db)),
                      home / "work")
    assert out.splitlines()[0] == FINAL and "(failed 0, dropped 0)" in out
    check_support_run(stored(db))
