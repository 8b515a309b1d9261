"""report tool-usage: calls, errors, error rate and nearest-rank latency percentiles."""

from __future__ import annotations

from agentaudit.reports import tool_usage_report
from agentaudit.reports.period import Period
from reports.store_builder import T0, Scenario, Writer


def test_breakdown(scenario: Scenario, whole: Period) -> None:
    r = tool_usage_report(scenario.store, "default", whole)
    assert (r["total_tool_calls"], r["total_tool_errors"], r["tools_used"]) == (5, 1, 2)
    assert r["error_rate"] == 0.2
    refund, order = r["tool_breakdown"]
    # process_refund: durations 30000 (the timeout), 500, 700 -> sorted 500, 700, 30000
    assert refund == {"tool": "process_refund", "calls": 3, "errors": 1,
                      "error_rate": round(1 / 3, 6), "avg_latency_ms": 10400.0,
                      "p50_latency_ms": 700.0, "p95_latency_ms": 30000.0,
                      "p99_latency_ms": 30000.0, "max_latency_ms": 30000.0, "timed_calls": 3}
    assert (order["tool"], order["calls"], order["errors"]) == ("get_order", 2, 0)
    assert (order["p50_latency_ms"], order["p95_latency_ms"], order["avg_latency_ms"]) == (
        100.0, 300.0, 200.0)


def test_nearest_rank_percentiles(writer: Writer) -> None:
    for i in range(1, 21):  # 20 calls of 1..20 ms, written in a shuffled order
        ms = float((i * 7) % 20 + 1)
        call = writer.add("tool_call", "A", T0 + i, action="t", trace_id="1" * 32)
        writer.add("tool_result", "A", T0 + i + 0.5, action="t", duration_ms=ms,
                   parent_event_id=call, trace_id="1" * 32)
    store = writer.close()
    (t,) = tool_usage_report(store, "default", Period(T0, T0 + 100))["tool_breakdown"]
    # rank ceil(p/100 * 20): p50 -> 10, p95 -> 19, p99 -> 20
    assert (t["p50_latency_ms"], t["p95_latency_ms"], t["p99_latency_ms"]) == (10.0, 19.0, 20.0)
    assert (t["calls"], t["avg_latency_ms"], t["max_latency_ms"]) == (20, 10.5, 20.0)
    store.close()


def test_one_call_and_empty_period(writer: Writer) -> None:
    call = writer.add("tool_call", "A", T0, action="only", trace_id="2" * 32)
    writer.add("tool_result", "A", T0 + 1, action="only", duration_ms=42.0,
               parent_event_id=call, trace_id="2" * 32)
    store = writer.close()
    (t,) = tool_usage_report(store, "default", Period(T0, T0 + 10))["tool_breakdown"]
    assert (t["p50_latency_ms"], t["p95_latency_ms"], t["p99_latency_ms"]) == (42.0, 42.0, 42.0)
    empty = tool_usage_report(store, "default", Period(T0 + 10, T0 + 20))
    assert (empty["total_tool_calls"], empty["tool_breakdown"], empty["error_rate"]) == (0, [], 0.0)
    store.close()


def test_agent_filter(scenario: Scenario, whole: Period) -> None:
    r = tool_usage_report(scenario.store, "default", whole, agent="Support")
    assert [(t["tool"], t["calls"]) for t in r["tool_breakdown"]] == [("get_order", 1),
                                                                      ("process_refund", 1)]
