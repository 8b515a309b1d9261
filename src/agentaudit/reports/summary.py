"""``report summary``: the seed's summary of a period, computed in SQL.

One aggregation (``rpt_profile``) gives, per agent and per day (or hour), the counts and sums the
summary needs; totals, top agents and the activity series are sums of its few rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentaudit.query import iso_time
from agentaudit.reports._sql import Scope, fnum, inum, rate, usd
from agentaudit.reports.period import Period, buckets_json, day_bounds
from agentaudit.store._sqlite_reports import PROFILE_FIELDS

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["Profile", "profile", "summary_report", "top_agents", "totals"]

Bounds = list[tuple[str, float, float]]
_EXTREMES = {"first_ts": min, "last_ts": max}


def _add(into: dict[str, Any], values: dict[str, Any]) -> None:
    for k, v in values.items():
        if v is None:
            continue
        if k in _EXTREMES:
            into[k] = v if into.get(k) is None else _EXTREMES[k](into[k], v)
        else:
            into[k] = into.get(k, 0) + v


@dataclass
class Profile:
    """The period's figures per agent, per bucket and in total."""

    bounds: Bounds
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)


def profile(scope: Scope, bounds: Bounds) -> Profile:
    """Per-agent, per-bucket figures (``PROFILE_FIELDS``) of the scope, summed up."""
    prof = Profile(bounds, buckets=[{} for _ in bounds])
    rows = scope.rows("rpt_profile", limit=1_000_000, bounds=buckets_json(bounds))
    for r in rows:
        values = dict(zip(PROFILE_FIELDS, json.loads(r["m"]), strict=True))
        if not values["events"]:
            continue
        _add(prof.agents.setdefault(r["agent"], {}), values)
        _add(prof.buckets[inum(r["bucket"])], values)
        _add(prof.total, values)
    return prof


def top_agents(prof: Profile, limit: int = 10) -> list[dict[str, Any]]:
    """The most active agents: invocations, errors, average invocation duration, cost."""
    out = []
    for name, a in prof.agents.items():
        finishes = inum(a.get("finishes"))
        out.append({
            "agent": name,
            "invocations": inum(a.get("invocations")),
            "events": inum(a.get("events")),
            "errors": inum(a.get("errors")),
            "error_rate": rate(inum(a.get("errors")), inum(a.get("events"))),
            "tool_calls": inum(a.get("tool_calls")),
            "decisions": inum(a.get("decisions")),
            "handoffs": inum(a.get("handoffs")),
            # of completed invocations: the closing `finish` decision carries the duration
            "avg_duration_ms": (fnum(a["finish_ms"] / finishes, 1)
                                if finishes and a.get("finish_ms") is not None else None),
            "tokens": inum(a.get("tokens")),
            "cost_usd": usd(a.get("cost_usd")),
        })
    out.sort(key=lambda a: (-a["invocations"], -a["events"], a["agent"]))
    return out[:limit]


def activity_series(prof: Profile) -> list[dict[str, Any]]:
    """Events, errors, escalations and cost per bucket (empty buckets included)."""
    return [{"bucket": label, "events": inum(b.get("events")), "errors": inum(b.get("errors")),
             "escalations": inum(b.get("escalations")), "cost_usd": usd(b.get("cost_usd"))}
            for (label, _, _), b in zip(prof.bounds, prof.buckets, strict=True)]


def totals(scope: Scope, prof: Profile) -> dict[str, Any]:
    """The period's counts."""
    t = prof.total
    events, errors = inum(t.get("events")), inum(t.get("errors"))
    traces = inum(scope.one("rpt_traces").get("traces"))
    escalations = inum(t.get("escalations"))
    return {
        "total_events": events,
        "total_errors": errors,
        "error_rate": rate(errors, events),
        "total_handoffs": inum(t.get("handoffs")),
        "human_interventions": inum(t.get("human_interventions")),
        "human_escalations": escalations,
        "escalation_rate": rate(escalations, traces),
        "agents_active": len(prof.agents),
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
    agents_active, top_agents``), extended with escalations, traces, tokens, recorded cost and
    activity per day (in the period's zone)."""
    scope = Scope(store, tenant, period, agent)
    prof = profile(scope, day_bounds(period))
    data: dict[str, Any] = {"report": "summary", "tenant": tenant, "agent": agent,
                            "period": period.to_dict()}
    data.update(totals(scope, prof))
    data["top_agents"] = top_agents(prof, top)
    data["by_day"] = activity_series(prof)
    return data
