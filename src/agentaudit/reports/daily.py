"""``report daily``: the seed's "Agent Audit Summary — {date}" for one calendar day.

Overview, top agents, error summary with percentages and the compliance checks of the policy,
plus activity per hour, for the day in ``--tz`` (UTC by default).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from agentaudit.reports._sql import Scope, inum, rate
from agentaudit.reports.compliance import compliance_report
from agentaudit.reports.period import day_period, hour_bounds
from agentaudit.reports.policy import Policy
from agentaudit.reports.summary import activity_series, profile, top_agents, totals

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["daily_report"]

STATUS_ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌"}


def _errors(scope: Scope, total_errors: int) -> dict[str, Any]:
    by_type = scope.rows("error_types", limit=10)
    messages = scope.rows("error_messages", limit=5)
    return {
        "total_errors": total_errors,
        "error_types": [{"error_type": r["error_type"], "count": inum(r["count"]),
                         "percent": round(rate(inum(r["count"]), total_errors) * 100, 1)}
                        for r in by_type],
        "most_common_errors": [{"error_type": r["error_type"], "message": r["message"],
                                "count": inum(r["count"])} for r in messages],
    }


def daily_report(store: Store, tenant: str, day: date, tz: str | None = None,
                 agent: str | None = None, policy: Policy | None = None,
                 now: float | None = None) -> dict[str, Any]:
    """The day's overview, top agents, errors (with percentages) and compliance checks."""
    period = day_period(day, tz)
    scope = Scope(store, tenant, period, agent)
    prof = profile(scope, hour_bounds(period))
    overview = totals(scope, prof)
    compliance = compliance_report(store, tenant, period, agent, policy, now=now)
    checks = [{"name": c["name"], "title": c["title"], "status": c["status"],
               "icon": STATUS_ICONS[c["status"]], "value": c["value"],
               "threshold": c["threshold"], "unit": c["unit"], "recommendation": c["recommendation"],
               "evidence": c["evidence"]} for c in compliance["checks"]]
    return {
        "report": "daily",
        "title": f"Agent Audit Summary — {day.isoformat()}",
        "date": day.isoformat(),
        "tenant": tenant,
        "agent": agent,
        "period": period.to_dict(),
        "overview": overview,
        "top_agents": top_agents(prof, 10),
        "errors": _errors(scope, overview["total_errors"]),
        "by_hour": activity_series(prof),
        "compliance": {"compliant": compliance["compliant"], "policy": compliance["policy"],
                       "checks": checks, "recommendations": compliance["recommendations"]},
    }
