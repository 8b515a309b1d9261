"""report errors: the seed's keys, retries without backoff, repeated failures, bursts, rules."""

from __future__ import annotations

from agentaudit.reports import ErrorRules, errors_report
from agentaudit.reports.errors import suggested_actions
from agentaudit.reports.period import Period
from reports.store_builder import T0, Scenario, Writer


def test_seed_keys_and_counts(scenario: Scenario, whole: Period) -> None:
    r = errors_report(scenario.store, "default", whole)
    assert (r["total_errors"], r["total_events"]) == (1, 26)
    assert r["error_types"] == {"TimeoutError": 1}
    assert r["error_type_percentages"] == {"TimeoutError": 1.0}
    assert r["errors_by_agent"] == {"Billing": 1}
    assert r["errors_by_tool"] == {"process_refund": 1}
    assert r["tool_error_rates"] == {"process_refund": round(1 / 3, 6)}
    assert r["most_common_errors"] == [{"error_type": "TimeoutError", "count": 1,
                                        "message": "process_refund timed out after 30s"}]
    # c3 followed the timeout after 0.05 s: a retry without backoff, evidenced by the error
    (retry,) = r["retries_without_backoff"]
    assert retry == {"tool": "process_refund", "retries": 1, "without_backoff": 1,
                     "avg_wait_s": 0.05, "min_wait_s": 0.05, "evidence": [scenario["e1"]]}
    actions = r["suggested_actions"]
    assert actions[0].startswith("TimeoutError: Increase the timeout of process_refund")
    assert any("retried 1 time(s) less than 0.1s" in a for a in actions)
    assert any("process_refund fails on 33% of calls" in a for a in actions)
    assert r["error_bursts"] == [] and r["repeated_failures"] == []


def test_no_errors(scenario: Scenario) -> None:
    r = errors_report(scenario.store, "default", Period(T0 + 3600, T0 + 3700))
    assert (r["total_errors"], r["error_rate"], r["suggested_actions"]) == (0, 0.0, [])


def test_repeated_failures_and_bursts(writer: Writer) -> None:
    trace = "3" * 32
    failing = []
    for i in range(12):  # 12 rate-limit failures of one tool within one minute, in one trace
        call = writer.add("tool_call", "A", T0 + i * 5, action="web_search", trace_id=trace)
        failing.append(writer.add("error", "A", T0 + i * 5 + 1, action="web_search",
                                  parent_event_id=call, trace_id=trace,
                                  error_type="RateLimitError", error="429", duration_ms=1.0))
    store = writer.close()
    r = errors_report(store, "default", Period(T0, T0 + 3600), rules=ErrorRules(evidence=3))
    assert r["repeated_failures"] == [{"tool": "web_search", "traces": 1, "max_failures": 12,
                                       "trace_ids": [trace]}]
    (burst,) = r["error_bursts"]
    assert (burst["errors"], burst["error_types"]) == (12, {"RateLimitError": 12})
    assert burst["start"] == "2026-03-10T10:00:00.000Z"
    (retry,) = r["retries_without_backoff"]
    assert (retry["retries"], retry["without_backoff"]) == (11, 0)  # 4 s between attempts
    actions = " ".join(r["suggested_actions"])
    assert "RateLimitError: Add exponential backoff" in actions
    assert "web_search failed 3+ times within one trace in 1 trace(s)" in actions
    assert "Error burst at 2026-03-10T10:00:00.000Z: 12 errors in 5 min" in actions
    store.close()


def test_rules_without_store() -> None:
    data = {"error_types": {"ValidationError": 2, "WeirdError": 1}, "total_errors": 3,
            "errors_by_type_and_tool": [{"tool": "write_file", "error_type": "ValidationError",
                                         "count": 2, "last_seen": None}]}
    assert suggested_actions(data) == [
        "ValidationError: Validate inputs before calling write_file (schemas, constrained "
        "decoding) and fix the prompts that produce invalid arguments."]
    assert suggested_actions({"error_types": {"WeirdError": 1}, "total_errors": 1}) == [
        "Review the most common errors below; no rule matched them."]
