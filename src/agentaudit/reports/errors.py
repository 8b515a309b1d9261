"""``report errors``: error types, messages, errors by agent and tool, and suggested actions.

The keys are the seed's (as ``agentaudit.query.error_summary`` names them), computed from the
errors index and the tool calls rather than a pass over every event; this module adds bursts,
retries without backoff and repeated failures of one tool (all computed in SQL) and turns them
into suggested actions with rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentaudit.query import iso_time
from agentaudit.reports._sql import Scope, inum, rate
from agentaudit.reports.period import Period

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["ErrorRules", "errors_report", "suggested_actions"]


@dataclass(frozen=True)
class ErrorRules:
    """Thresholds of the error analysis."""

    burst_bucket_s: int = 300          # errors are counted per 5-minute bucket
    burst_min_errors: int = 10         # a burst has at least this many errors in a bucket
    burst_factor: float = 3.0          # ... and at least 3x the period's mean per bucket
    min_backoff_s: float = 0.1         # a retry sooner than this after a failure has no backoff
    retry_window_s: float = 300.0      # the next call of a tool within this is a retry
    repeated_failures: int = 3         # this many failures of one tool in one trace
    evidence: int = 10                 # ids listed per finding


# Rules keyed by error type: the seed's three and a few more.
_TYPE_ACTIONS = {
    "TimeoutError": "Increase the timeout of {tools} or add a circuit breaker; check the "
                    "health of the service behind it.",
    "RateLimitError": "Add exponential backoff with jitter to {tools} and request a higher "
                      "quota; spread bursts of calls.",
    "ValidationError": "Validate inputs before calling {tools} (schemas, constrained "
                       "decoding) and fix the prompts that produce invalid arguments.",
    "ConnectionError": "Retry {tools} with backoff and alert on the dependency's availability.",
    "PermissionError": "Check the credentials and scopes used by {tools}.",
    "KeyError": "Handle missing fields in the data {tools} return.",
}


def _buckets(scope: Scope, rules: ErrorRules) -> float:
    return max(1.0, scope.period.seconds / rules.burst_bucket_s)


def _bursts(facts: list[dict[str, Any]], scope: Scope, rules: ErrorRules,
            total_errors: int) -> list[dict[str, Any]]:
    threshold = max(rules.burst_min_errors,
                    int(rules.burst_factor * total_errors / _buckets(scope, rules)) + 1)
    types_of: dict[int, dict[str, int]] = {}
    for r in facts:
        if r["kind"] == "bucket":
            types_of.setdefault(inum(r["k1"]), {})[r["k2"]] = inum(r["n"])
    found = ({"start": iso_time(k * rules.burst_bucket_s), "seconds": rules.burst_bucket_s,
              "errors": n, "error_types": types}
             for k, types in types_of.items() if (n := sum(types.values())) >= threshold)
    out = sorted(found, key=lambda b: (-b["errors"], b["start"]))[:10]
    for b in out:
        b["error_types"] = dict(sorted(b["error_types"].items(), key=lambda kv: -kv[1]))
        b["threshold"] = threshold
    return out


def _retries(scope: Scope, rules: ErrorRules) -> list[dict[str, Any]]:
    return [{
        "tool": r["tool"], "retries": inum(r["retries"]),
        "without_backoff": inum(r["without_backoff"]),
        "avg_wait_s": None if r["avg_wait_s"] is None else round(r["avg_wait_s"], 3),
        "min_wait_s": None if r["min_wait_s"] is None else round(r["min_wait_s"], 3),
        "evidence": (r["evidence"] or "").split(",") if r["evidence"] else [],
    } for r in scope.rows("rpt_retries", limit=50, min_backoff_s=rules.min_backoff_s,
                          retry_window_s=rules.retry_window_s, ev=rules.evidence)]


def _repeated(facts: list[dict[str, Any]], rules: ErrorRules) -> list[dict[str, Any]]:
    by_tool: dict[str, list[tuple[int, str]]] = {}
    for r in facts:
        if r["kind"] == "repeated":
            by_tool.setdefault(r["k1"], []).append((inum(r["n"]), r["k2"]))
    out = [{"tool": tool, "traces": len(traces), "max_failures": max(n for n, _ in traces),
            "trace_ids": [t for _, t in sorted(traces, key=lambda x: (-x[0], x[1]))][
                : rules.evidence]} for tool, traces in by_tool.items()]
    return sorted(out, key=lambda r: (-r["traces"], r["tool"]))[:20]


def suggested_actions(data: dict[str, Any], rules: ErrorRules | None = None) -> list[str]:
    """Suggested actions from rules over an errors report's findings (most important first)."""
    rules = rules or ErrorRules()
    actions: list[str] = []
    tools_by_type: dict[str, list[str]] = {}
    for row in data.get("errors_by_type_and_tool", []):
        if row["tool"]:
            tools_by_type.setdefault(row["error_type"], []).append(row["tool"])
    for etype in data.get("error_types", {}):
        template = _TYPE_ACTIONS.get(etype)
        if template is None:
            continue
        tools = tools_by_type.get(etype, [])[:3]
        names = ", ".join(tools) if tools else "the failing tools"
        actions.append(f"{etype}: " + template.format(tools=names))
    for r in data.get("retries_without_backoff", []):
        if r["without_backoff"]:
            actions.append(f"{r['tool']} was retried {r['without_backoff']} time(s) less than "
                           f"{rules.min_backoff_s:g}s after a failure: add backoff between "
                           "attempts.")
    for r in data.get("repeated_failures", []):
        actions.append(f"{r['tool']} failed {rules.repeated_failures}+ times within one trace in "
                       f"{r['traces']} trace(s) (up to {r['max_failures']}): stop retrying "
                       "sooner (circuit breaker) and fall back or escalate.")
    for b in data.get("error_bursts", [])[:3]:
        top = max(b["error_types"], key=b["error_types"].get)
        actions.append(f"Error burst at {b['start']}: {b['errors']} errors in "
                       f"{b['seconds'] // 60} min (mostly {top}); check for an incident or a "
                       "degraded dependency at that time.")
    for tool in data.get("errors_by_tool", {}):
        share = data.get("tool_error_rates", {}).get(tool)
        if share is not None and share >= 0.2:
            actions.append(f"{tool} fails on {share:.0%} of calls: investigate it first.")
    if not actions and data.get("total_errors"):
        actions.append("Review the most common errors below; no rule matched them.")
    return actions


def _base(scope: Scope, facts: list[dict[str, Any]]) -> dict[str, Any]:
    """The seed's error summary keys (as ``agentaudit.query.error_summary`` names them)."""
    def of(kind: str) -> list[dict[str, Any]]:
        rows = [r for r in facts if r["kind"] == kind]
        return sorted(rows, key=lambda r: (-inum(r["n"]), str(r["k1"]), str(r["k2"])))

    total = inum(scope.one("rpt_count").get("events"))
    types = {str(r["k1"]): inum(r["n"]) for r in of("type")}
    errors = sum(types.values())
    calls = {r["tool"]: inum(r["calls"]) for r in scope.rows("rpt_tool_calls", limit=100_000)}
    by_tool: dict[str, int] = {}
    for r in of("tool_type"):
        if calls.get(r["k1"]):
            by_tool[r["k1"]] = by_tool.get(r["k1"], 0) + inum(r["n"])
    return {
        "total_events": total,
        "total_errors": errors,
        "error_rate": rate(errors, total),
        "error_types": types,
        "most_common_errors": [{"error_type": r["k1"], "message": r["k2"], "count": inum(r["n"])}
                               for r in of("message")],
        "errors_by_agent": {str(r["k1"]): inum(r["n"]) for r in of("agent")[:20]},
        "errors_by_tool": dict(sorted(by_tool.items(), key=lambda kv: (-kv[1], kv[0]))[:20]),
        "errors_by_type_and_tool": [
            {"tool": r["k1"], "error_type": r["k2"], "count": inum(r["n"]),
             "last_seen": iso_time(r["last_ts"])} for r in of("tool_type")[:50]],
        "tool_error_rates": {t: rate(n, calls[t]) for t, n in by_tool.items()},
    }


def errors_report(store: Store, tenant: str, period: Period, agent: str | None = None,
                  rules: ErrorRules | None = None) -> dict[str, Any]:
    """The seed's error summary (``total_errors, error_types, most_common_errors,
    errors_by_agent, suggested_actions``) with errors by tool, percentages, bursts, retries
    without backoff and repeated failures."""
    rules = rules or ErrorRules()
    scope = Scope(store, tenant, period, agent)
    data: dict[str, Any] = {"report": "errors", "tenant": tenant, "agent": agent,
                            "period": period.to_dict()}
    # burst_factor and buckets let a template drop the buckets below the threshold _bursts
    # applies (the rolled PostgreSQL one does; the others return every bucket from min_errors)
    facts = scope.rows("rpt_error_facts", limit=1_000_000, bucket_s=rules.burst_bucket_s,
                       min_errors=rules.burst_min_errors, min_failures=rules.repeated_failures,
                       burst_factor=rules.burst_factor, buckets=_buckets(scope, rules))
    data.update(_base(scope, facts))
    total = data["total_errors"]
    data["error_type_percentages"] = {k: rate(v, total) for k, v in data["error_types"].items()}
    data["error_bursts"] = _bursts(facts, scope, rules, total)
    data["retries_without_backoff"] = _retries(scope, rules) if total else []
    data["repeated_failures"] = _repeated(facts, rules)
    data["suggested_actions"] = suggested_actions(data, rules)
    return data
