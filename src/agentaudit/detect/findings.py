"""The "security findings" of the compliance report: firings stored in the period."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentaudit.detect.rules import severity_rank
from agentaudit.query import iso_time

if TYPE_CHECKING:
    from agentaudit.reports._sql import Scope

__all__ = ["security_findings"]


def security_findings(scope: Scope, latest: int = 10) -> dict[str, Any]:
    """Counts of firings by rule and severity, and the latest ``latest`` with evidence."""
    import agentaudit.store._sqlite_alerts  # noqa: F401  (registers the aggregations)

    by_rule = scope.rows("sec_findings_by_rule", limit=100)
    rows = scope.rows("sec_findings_latest", limit=latest)
    for r in by_rule:
        r["last"] = iso_time(r.pop("last_ts"))
    for r in rows:
        r["time"] = iso_time(r.pop("timestamp"))
    by_rule.sort(key=lambda r: (-severity_rank(r["severity"])
                                if r["severity"] in ("info", "low", "medium", "high",
                                                     "critical") else 1, -r["count"]))
    severities: dict[str, int] = {}
    for r in by_rule:
        severities[r["severity"]] = severities.get(r["severity"], 0) + int(r["count"])
    return {"total": sum(int(r["count"]) for r in by_rule), "by_severity": severities,
            "by_rule": by_rule, "latest": rows}
