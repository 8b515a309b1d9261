"""report summary: exact counts on a store the test wrote, empty periods, one event, --tz."""

from __future__ import annotations

from datetime import UTC, datetime

from agentaudit.reports import resolve_period, summary_report
from agentaudit.reports.period import Period
from reports.store_builder import T0, Scenario, Writer


def test_counts_rates_and_top_agents(scenario: Scenario, whole: Period) -> None:
    r = summary_report(scenario.store, "default", whole)
    assert r["period"] == {"from": "2026-03-10T09:00:00.000Z", "to": "2026-03-11T10:00:00.000Z",
                           "tz": "UTC"}
    assert (r["total_events"], r["total_errors"], r["total_handoffs"]) == (26, 1, 2)
    assert r["error_rate"] == round(1 / 26, 6)
    assert (r["human_interventions"], r["human_escalations"], r["traces"]) == (2, 1, 3)
    assert r["escalation_rate"] == round(1 / 3, 6)
    assert (r["agents_active"], r["invocations"], r["tool_calls"], r["decisions"]) == (4, 4, 5, 2)
    assert (r["prompt_tokens"], r["completion_tokens"]) == (3050, 650)
    assert r["cost_usd"] == 0.03  # recorded cost only; `report cost` prices tokens
    assert [a["agent"] for a in r["top_agents"]] == ["Billing", "Support", "Router", "Research"]
    billing = r["top_agents"][0]
    assert billing == {"agent": "Billing", "invocations": 1, "events": 10, "errors": 1,
                       "error_rate": 0.1, "tool_calls": 3, "decisions": 0, "handoffs": 0,
                       "avg_duration_ms": 35000.0, "tokens": 1100, "cost_usd": 0.01}
    assert r["top_agents"][2]["avg_duration_ms"] == 39000.0
    assert r["top_agents"][3]["avg_duration_ms"] is None  # Research never finished
    assert r["by_day"] == [
        {"bucket": "2026-03-10", "events": 26, "errors": 1, "escalations": 1, "cost_usd": 0.03},
        {"bucket": "2026-03-11", "events": 0, "errors": 0, "escalations": 0, "cost_usd": 0.0}]
    assert (r["first_event"], r["last_event"]) == ("2026-03-10T10:00:00.000Z",
                                                   "2026-03-10T12:00:01.000Z")


def test_agent_filter(scenario: Scenario, whole: Period) -> None:
    r = summary_report(scenario.store, "default", whole, agent="Support")
    assert (r["total_events"], r["total_errors"], r["total_handoffs"]) == (10, 0, 1)
    assert [a["agent"] for a in r["top_agents"]] == ["Support"]


def test_empty_period(scenario: Scenario) -> None:
    r = summary_report(scenario.store, "default", Period(T0 - 7200, T0 - 3600))
    assert (r["total_events"], r["total_errors"], r["error_rate"], r["traces"]) == (0, 0, 0.0, 0)
    assert r["top_agents"] == []
    assert r["first_event"] is None
    assert [d["events"] for d in r["by_day"]] == [0]


def test_other_tenant_is_empty(scenario: Scenario, whole: Period) -> None:
    assert summary_report(scenario.store, "acme", whole)["total_events"] == 0


def test_one_event(writer: Writer) -> None:
    writer.add("invocation", "Solo", T0, trace_id="d" * 32, action="ping")
    store = writer.close()
    r = summary_report(store, "default", Period(T0, T0 + 1))
    assert (r["total_events"], r["traces"], r["agents_active"], r["invocations"]) == (1, 1, 1, 1)
    assert r["top_agents"][0]["agent"] == "Solo"
    store.close()


def test_period_is_half_open_and_days_follow_tz(writer: Writer) -> None:
    late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC).timestamp()
    writer.add("invocation", "A", late, trace_id="e" * 32)            # 00:30 in Berlin, 11 March
    writer.add("invocation", "A", late + 3600, trace_id="f" * 32)     # 01:30 in Berlin
    writer.add("invocation", "A", late + 7200, trace_id="0" * 32)     # excluded: == --to
    store = writer.close()
    utc = summary_report(store, "default", Period(late - 1800, late + 7200))
    assert utc["total_events"] == 2
    assert [(d["bucket"], d["events"]) for d in utc["by_day"]] == [("2026-03-10", 1),
                                                                   ("2026-03-11", 1)]
    berlin = summary_report(store, "default", Period(late - 1800, late + 7200, "Europe/Berlin"))
    assert [(d["bucket"], d["events"]) for d in berlin["by_day"]] == [("2026-03-11", 2)]
    store.close()


def test_resolve_period_defaults_to_24h() -> None:
    p = resolve_period(None, None, now=T0)
    assert (p.since, p.until) == (T0 - 86400, T0)
    p = resolve_period("7d", "2026-03-10", now=T0)
    assert p.until == datetime(2026, 3, 10, tzinfo=UTC).timestamp()
    assert p.since == T0 - 7 * 86400
