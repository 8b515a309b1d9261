"""examples/sdk_threads.py: plain Python agents on the SDK, eight tickets on four threads."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.examples.runner import ancestors, clean_env, find, run_example, stored


def test_sdk_threads_records_every_ticket_as_one_trace(home: Path) -> None:
    db = home / "desk.db"
    out = run_example("sdk_threads.py", clean_env(home, AGENTAUDIT_DB=str(db)), home / "work")
    assert "(dropped 0, failed 0)" in out
    events = stored(db)
    by_id = {e.event_id: e for e in events}
    assert all(e.source == "support-desk" and e.version == "1.0" for e in events)

    # one trace per ticket, each with one root (the Router's invocation) and intact links
    traces: dict[str, list] = {}
    for e in events:
        traces.setdefault(e.trace_id or "", []).append(e)
    assert sorted(e.task_id for e in find(events, "invocation", lambda e: e.agent_name == "Router")
                  ) == [f"T-{i}" for i in range(1, 9)]
    assert len(traces) == 8
    for trace in traces.values():
        roots = [e for e in trace if e.parent_event_id is None]
        assert len(roots) == 1 and roots[0].agent_name == "Router"
        assert all(e.parent_event_id in by_id for e in trace if e is not roots[0])
        assert {e.task_id for e in trace} == {roots[0].task_id}  # the context followed threads

    # agents and handoffs
    assert {e.agent_name for e in events} == {"Router", "Billing", "Shipping", "FraudCheck"}
    handoffs = Counter((e.params or {}).get("to_agent") for e in find(events, "handoff"))
    assert handoffs == {"Billing": 4, "Shipping": 4}
    for e in find(events, "invocation", lambda e: e.agent_name in ("Billing", "Shipping")):
        assert by_id[e.parent_event_id or ""].event_type == "agent.handoff"
    for e in find(events, "invocation", lambda e: e.agent_name == "FraudCheck"):
        assert "Billing" in {a.agent_name for a in ancestors(e, by_id)}

    # tools (decorated functions), attributed to the agent that called them
    calls = Counter((e.agent_name, e.action) for e in find(events, "tool_call"))
    assert calls == {("Billing", "lookup_order"): 4, ("FraudCheck", "score_risk"): 4,
                     ("Billing", "issue_refund"): 3, ("Shipping", "carrier_status"): 8}
    carrier = find(events, "tool_call", lambda e: e.action == "carrier_status")
    assert {(e.params or {}).get("carrier") for e in carrier} == {"DHL", "UPS"}
    for e in carrier:  # called from pool threads, still under the Shipping invocation
        assert by_id[e.parent_event_id or ""].agent_name == "Shipping"
    assert len(find(events, "tool_result")) == 4 + 4 + 2 + 8

    # the failing refund: one error under its tool call, then a human escalation
    error, = find(events, "error")
    assert error.error_type == "PaymentGatewayError" and error.task_id == "T-7"
    assert by_id[error.parent_event_id or ""].action == "issue_refund"
    escalation, = find(events, "human_intervention")
    assert escalation.task_id == "T-7" and (escalation.params or {})["kind"] == "escalation"
    denied = find(events, "decision", lambda e: e.action == "deny refund")
    assert [e.task_id for e in denied] == ["T-3"]
    assert sum(e.token_count or 0 for e in find(events, "llm_response")) == 8 * 128
