"""report agent NAME: one agent's invocations, tools, decisions, handoffs, errors, cost."""

from __future__ import annotations

import pytest

from agentaudit.exceptions import NotFound
from agentaudit.reports import agent_report
from agentaudit.reports.period import Period
from reports.store_builder import T0, Scenario


def test_support(scenario: Scenario, whole: Period) -> None:
    r = agent_report(scenario.store, "default", "Support", whole)
    assert (r["events"], r["invocations"], r["human_interventions"]) == (10, 1, 1)
    assert [(t["tool"], t["calls"]) for t in r["tools"]] == [("get_order", 1),
                                                             ("process_refund", 1)]
    d = r["decisions"]  # the closing `finish` is not a decision
    assert (d["count"], d["avg_confidence"], d["low_confidence"]) == (1, 0.4, 1)
    assert d["confidence_distribution"] == {"<0.5": 1, "0.5-0.7": 0, "0.7-0.9": 0, ">=0.9": 0,
                                            "none": 0}
    assert [x["decision"] for x in d["by_action"]] == ["refund_done"]
    assert (r["handoffs_in"], r["handoffs_out"]) == ({}, {"Code": 1})
    assert r["cost"]["total_cost_usd"] == 0.02
    assert r["errors"]["total_errors"] == 0


def test_billing_handoffs_in_and_errors(scenario: Scenario, whole: Period) -> None:
    r = agent_report(scenario.store, "default", "Billing", whole)
    assert r["handoffs_in"] == {"Router": 1}
    assert r["errors"]["error_types"] == {"TimeoutError": 1}
    assert r["errors"]["error_rate"] == 0.1
    assert r["cost"]["by_model"][0]["key"] == "gpt-4o"
    assert r["decisions"]["count"] == 0


def test_unknown_agent(scenario: Scenario, whole: Period) -> None:
    with pytest.raises(NotFound, match="no agent named 'Nobody'"):
        agent_report(scenario.store, "default", "Nobody", whole)
    with pytest.raises(NotFound, match="has no events between"):
        agent_report(scenario.store, "default", "Support", Period(T0 - 10, T0))
