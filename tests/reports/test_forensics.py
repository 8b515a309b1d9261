"""forensics: the demo's refund incident and a trace the test wrote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentaudit.demo import run_demo
from agentaudit.exceptions import NotFound
from agentaudit.reports import forensics_report, render
from agentaudit.store import Store, open_store
from reports.store_builder import Scenario

DEMO_NOW = 1773136800.0  # 2026-03-10T10:00:00Z


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    run_demo(str(path), traces=30, now=DEMO_NOW, integrity=False)
    store = open_store(str(path), create=False)
    yield store
    store.close()


def test_refund_incident(demo: Store) -> None:
    r = forensics_report(demo, "default", "refund-incident")
    assert r["task_ids"] == ["refund-incident"] and r["handoff_path"] == [
        "Router", "Support", "Billing"]
    c = r["root_cause"]
    first = c["first_failure"]
    assert (first["tool"], first["error_type"], first["agent"]) == (
        "process_refund", "TimeoutError", "Billing")
    assert first["error"] == "process_refund timed out after 30s"
    assert c["repeated_failures"] == [{"tool": "process_refund", "failures": 2,
                                       "error_types": ["TimeoutError"]}]
    assert c["circuit_breaker"]["decision"] == "open_circuit_breaker"
    assert c["circuit_breaker"]["params"]["cooldown_s"] == 300
    assert c["fallback"]["tool"] == "queue_manual_refund"
    assert c["escalation"]["by"] == "oncall-billing"
    assert c["summary"] == (
        "process_refund failed 2 times (TimeoutError: process_refund timed out after 30s); "
        "Billing opened a circuit breaker, fell back to queue_manual_refund, escalated to "
        "oncall-billing.")
    i = r["impact"]
    assert (i["agents"], i["agents_with_errors"], i["users"]) == (
        ["Router", "Support", "Billing"], ["Billing"], ["user-00042"])
    assert i["time_in_failed_calls_ms"] == 60000.0
    assert i["outcome"] == "escalated" and i["cost_usd"] > 0
    assert any("idempotent" in rec for rec in r["recommendations"])
    assert r["status"] == "degraded"
    icons = [row["icon"] for row in r["timeline"]]
    assert icons.count("❌") == 2 and icons.count("⚠️") == 1
    md = render(r, "md")
    assert "| Time | Agent | Action | Duration | Status | Details |" in md
    assert "❌" in md and "## Root cause" in md


def test_scenario_trace_and_task(scenario: Scenario) -> None:
    by_task = forensics_report(scenario.store, "default", "task-1")
    by_trace = forensics_report(scenario.store, "default", "a" * 32)
    assert by_task["timeline"] == by_trace["timeline"] and by_task["events"] == 14
    c = by_trace["root_cause"]
    assert c["first_failure"]["event_id"] == scenario["e1"]
    assert c["repeated_failures"] == [] and c["circuit_breaker"] is None
    assert c["fallback"] is None and c["escalation"] is None
    assert c["summary"] == ("process_refund failed (TimeoutError: process_refund timed out "
                            "after 30s).")
    assert by_trace["impact"]["users"] == ["u1"]
    clean = forensics_report(scenario.store, "default", "task-3")
    assert clean["root_cause"]["summary"] == "No failure was recorded in this trace."
    assert clean["recommendations"] == [
        "No failure or risk signal in this trace; nothing to change."]


def test_unknown_trace(scenario: Scenario) -> None:
    with pytest.raises(NotFound, match="no trace or task 'nope'"):
        forensics_report(scenario.store, "default", "nope")

