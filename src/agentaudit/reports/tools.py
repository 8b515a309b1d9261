"""``report tool-usage``: calls, errors, error rate and latency percentiles per tool.

Latency is the ``duration_ms`` of a tool's finished calls: its ``agent.tool_result`` events and
the ``agent.error`` events of failed calls (a timeout counts with the time it took).
Percentiles are nearest-rank: p-th percentile of n sorted values = the value at rank
``ceil(p/100 · n)``; computed in SQL with the ``cume_dist()`` window function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentaudit.reports._sql import Scope, fnum, inum, rate
from agentaudit.reports.period import Period

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["tool_breakdown", "tool_usage_report"]


def tool_breakdown(scope: Scope, limit: int = 100) -> list[dict[str, Any]]:
    """One row per tool (an action called with agent.tool_call), most called first."""
    calls = {r["tool"]: inum(r["calls"]) for r in scope.rows("rpt_tool_calls", limit=100_000)}
    errors = {r["tool"]: inum(r["errors"]) for r in scope.rows("rpt_tool_errors", limit=100_000)}
    latency = {r["tool"]: r for r in scope.rows("rpt_tool_latency", limit=100_000)}
    out = []
    for tool, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]:
        lat = latency.get(tool, {})
        out.append({
            "tool": tool,
            "calls": n,
            "errors": errors.get(tool, 0),
            "error_rate": rate(errors.get(tool, 0), n),
            "avg_latency_ms": fnum(lat.get("avg_ms"), 1),
            "p50_latency_ms": fnum(lat.get("p50_ms"), 1),
            "p95_latency_ms": fnum(lat.get("p95_ms"), 1),
            "p99_latency_ms": fnum(lat.get("p99_ms"), 1),
            "max_latency_ms": fnum(lat.get("max_ms"), 1),
            "timed_calls": inum(lat.get("timed")),
        })
    return out


def tool_usage_report(store: Store, tenant: str, period: Period, agent: str | None = None,
                      limit: int = 100) -> dict[str, Any]:
    """The seed's tool usage (``total_tool_calls, tool_breakdown[tool, calls, errors,
    error_rate, avg_latency_ms]``) with p50/p95/p99 and max latency per tool."""
    scope = Scope(store, tenant, period, agent)
    breakdown = tool_breakdown(scope, limit)
    calls = sum(t["calls"] for t in breakdown)
    errors = sum(t["errors"] for t in breakdown)
    return {
        "report": "tool-usage",
        "tenant": tenant,
        "agent": agent,
        "period": period.to_dict(),
        "total_tool_calls": calls,
        "total_tool_errors": errors,
        "error_rate": rate(errors, calls),
        "tools_used": len(breakdown),
        "percentile_method": "nearest-rank",
        "tool_breakdown": breakdown,
    }
