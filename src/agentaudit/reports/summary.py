"""``report summary``: the seed's summary of a period, computed in SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentaudit.query import iso_time
from agentaudit.reports._sql import Scope, fnum, inum, rate, usd
from agentaudit.reports.period import Period, buckets_json, day_bounds

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["activity_series", "summary_report", "top_agents", "totals"]


def top_agents(scope: Scope, limit: int = 10) -> list[dict[str, Any]]:
    """The most active agents: invocations, errors, average invocation duration, cost."""
    return [{
        "agent": r["agent"],
        "invocations": inum(r["invocations"]),
        "events": inum(r["events"]),
        "errors": inum(r["errors"]),
        "error_rate": rate(inum(r["errors"]), inum(r["events"])),
        "tool_calls": inum(r["tool_calls"]),
        "decisions": inum(r["decisions"]),
        "handoffs": inum(r["handoffs"]),
        "avg_duration_ms": fnum(r["avg_duration_ms"], 1),
        "tokens": inum(r["tokens"]),
        "cost_usd": usd(r["cost_usd"]),
    } for r in scope.rows("rpt_top_agents", limit=limit)]


def activity_series(scope: Scope, bounds: list[tuple[str, float, float]]
                    ) -> list[dict[str, Any]]:
    """Events, errors, escalations and cost per bucket (every bucket listed, empty ones too)."""
    found = {inum(r["bucket"]): r for r in scope.rows(
        "rpt_series", limit=len(bounds) + 1, bounds=buckets_json(bounds))}
    out = []
    for i, (label, _, _) in enumerate(bounds):
        r = found.get(i, {})
        out.append({"bucket": label, "events": inum(r.get("events")),
                    "errors": inum(r.get("errors")),
                    "escalations": inum(r.get("escalations")),
                    "cost_usd": usd(r.get("cost_usd"))})
    return out


def totals(scope: Scope) -> dict[str, Any]:
    """The period's counts, in one pass over its rows."""
    t = scope.one("rpt_totals")
    events, errors = inum(t.get("events")), inum(t.get("errors"))
    traces, escalations = inum(t.get("traces")), inum(t.get("escalations"))
    return {
        "total_events": events,
        "total_errors": errors,
        "error_rate": rate(errors, events),
        "total_handoffs": inum(t.get("handoffs")),
        "human_interventions": inum(t.get("human_interventions")),
        "human_escalations": escalations,
        "escalation_rate": rate(escalations, traces),
        "agents_active": inum(t.get("agents")),
        "traces": traces,
        "invocations": inum(t.get("invocations")),
        "tool_calls": inum(t.get("tool_calls")),
        "decisions": inum(t.get("decisions")),
        "prompt_tokens": inum(t.get("prompt_tokens")),
        "completion_tokens": inum(t.get("completion_tokens")),
        "cost_usd": usd(t.get("cost_usd")),
        "first_event": iso_time(t.get("first_ts")),
        "last_event": iso_time(t.get("last_ts")),
    }


def summary_report(store: Store, tenant: str, period: Period, agent: str | None = None,
                   top: int = 10) -> dict[str, Any]:
    """The seed's summary (``total_events, total_errors, error_rate, total_handoffs,
    agents_active, top_agents``), extended with escalations, traces, tokens, recorded cost,
    event types and activity per day (in the period's zone)."""
    scope = Scope(store, tenant, period, agent)
    data: dict[str, Any] = {"report": "summary", "tenant": tenant, "agent": agent,
                            "period": period.to_dict()}
    data.update(totals(scope))
    data["top_agents"] = top_agents(scope, top)
    data["event_types"] = {r["event_type"]: inum(r["count"])
                           for r in scope.rows("rpt_event_types", limit=50)}
    data["by_day"] = activity_series(scope, day_bounds(period))
    return data
