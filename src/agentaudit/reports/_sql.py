"""How report modules call the store's named aggregations, and small number helpers."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agentaudit.reports.period import Period

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["Scope", "ensure_templates", "fnum", "inum", "rate", "usd"]


def ensure_templates() -> None:
    """Register the reports' SQL templates with the SQLite backend (idempotent)."""
    import agentaudit.store._sqlite_reports  # noqa: F401  (registers at import)
    import agentaudit.store._sqlite_rolled_reports  # noqa: F401


@dataclass(frozen=True)
class Scope:
    """What a report reads: a store, a tenant, a period and optionally one agent."""

    store: Store
    tenant: str
    period: Period
    agent: str | None = None

    def rows(self, name: str, limit: int = 20, **params: Any) -> list[dict[str, Any]]:
        """The rows of aggregation ``name`` over the scope."""
        ensure_templates()
        params.setdefault("agent_name", self.agent)  # templates joining per bucket read it
        return self.store.aggregate(name, self.tenant, self.period.since, self.period.until,
                                    self.agent, limit=limit, **params)

    def one(self, name: str, **params: Any) -> dict[str, Any]:
        """The single row of aggregation ``name`` (an empty dict when there is none)."""
        found = self.rows(name, limit=1, **params)
        return found[0] if found else {}

    def all_agents(self) -> Scope:
        """The same scope without the agent filter."""
        return replace(self, agent=None)


def inum(v: Any) -> int:
    """An integer from a SQL value (NULL is 0)."""
    return int(v or 0)


def fnum(v: Any, digits: int = 3) -> float | None:
    """A float rounded for reports (NULL stays None)."""
    return None if v is None else round(float(v), digits)


def usd(v: Any) -> float:
    """Dollars rounded to 1/10,000 of a cent (NULL is 0)."""
    return round(float(v or 0.0), 6)


def rate(part: int, whole: int) -> float:
    """``part / whole`` rounded to 6 places; 0.0 for an empty whole."""
    return round(part / whole, 6) if whole else 0.0
