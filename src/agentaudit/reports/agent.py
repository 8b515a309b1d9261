"""``report agent NAME``: everything one agent did in a period.

Builds on ``agentaudit.query.agent_overview`` and adds tool latency percentiles, decisions by
confidence band (the closing ``finish`` decisions of invocations are not counted as decisions),
handoffs received, errors with suggested actions and cost by model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentaudit.query import agent_overview
from agentaudit.reports._sql import Scope, fnum, inum
from agentaudit.reports.cost import PriceTable, cost_report
from agentaudit.reports.period import Period
from agentaudit.reports.tools import tool_breakdown

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["CONFIDENCE_BANDS", "agent_report"]

CONFIDENCE_BANDS = ("<0.5", "0.5-0.7", "0.7-0.9", ">=0.9", "none")


def _decisions(scope: Scope) -> dict[str, Any]:
    bands = {r["band"]: inum(r["count"]) for r in scope.rows("rpt_confidence_bands", limit=10)}
    by_action = [{"decision": r["decision"], "count": inum(r["count"]),
                  "avg_confidence": fnum(r["avg_confidence"]),
                  "min_confidence": fnum(r["min_confidence"]),
                  "max_confidence": fnum(r["max_confidence"])}
                 for r in scope.rows("rpt_decisions", limit=50)]
    count = sum(bands.values())
    weighted = [(d["avg_confidence"], d["count"]) for d in by_action
                if d["avg_confidence"] is not None]
    known = sum(n for _, n in weighted)
    return {
        "count": count,
        "avg_confidence": round(sum(a * n for a, n in weighted) / known, 3) if known else None,
        "low_confidence": bands.get("<0.5", 0),
        "confidence_distribution": {b: bands.get(b, 0) for b in CONFIDENCE_BANDS},
        "by_action": by_action,
    }


def agent_report(store: Store, tenant: str, name: str, period: Period,
                 prices: PriceTable | None = None) -> dict[str, Any]:
    """Invocations, tools, decisions, handoffs in and out, errors and cost of agent ``name``.

    Raises ``NotFound`` when the agent has no events in the period.
    """
    base = agent_overview(store, tenant, name, period.since, period.until)
    scope = Scope(store, tenant, period, name)
    handoffs_in = {r["agent"]: inum(r["count"]) for r in scope.all_agents().rows(
        "rpt_handoffs_in", limit=50, target=name)}
    cost = cost_report(store, tenant, period, name, prices, top=5)
    from agentaudit.reports.errors import errors_report

    errors = errors_report(store, tenant, period, name)
    return {
        "report": "agent",
        "agent": name,
        "tenant": tenant,
        "period": period.to_dict(),
        "events": base["events"],
        "invocations": base["invocations"],
        "traces": base["traces"],
        "first_seen": base["first_seen"],
        "last_seen": base["last_seen"],
        "tools": tool_breakdown(scope, 50),
        "decisions": _decisions(scope),
        "handoffs_in": handoffs_in,
        "handoffs_out": base["handoffs_out"],
        "human_interventions": base["human_interventions"],
        "errors": {"total_errors": errors["total_errors"], "error_rate": errors["error_rate"],
                   "error_types": errors["error_types"],
                   "most_common_errors": errors["most_common_errors"],
                   "suggested_actions": errors["suggested_actions"]},
        "cost": {"total_cost_usd": cost["total_cost_usd"],
                 "prompt_tokens": cost["prompt_tokens"],
                 "completion_tokens": cost["completion_tokens"],
                 "by_model": cost["by_model"], "top_traces": cost["top_traces"]},
    }
