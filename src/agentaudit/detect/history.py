"""The rules' view of stored history, and ``detect_history``: the rules over a past period.

``StoreHistory`` answers the engine's warm-up questions with a few indexed SQL queries of the
store (SQLite or PostgreSQL, ``agentaudit.store._alerts``). ``detect_history`` streams a period in time
order through a fresh engine whose baselines are warmed from what came before the period, and
returns what would have fired: nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from agentaudit.detect.engine import DetectionEngine
from agentaudit.detect.firing import Firing
from agentaudit.detect.rules import RuleSet
from agentaudit.events import AuditEvent
from agentaudit.store.base import EventQuery

if TYPE_CHECKING:
    from agentaudit.store.base import Store

__all__ = ["StoreHistory", "detect_history"]


class StoreHistory:
    """``History`` over a store (its own connection; reads only). A store that keeps no
    detection history (``alerts_of`` is None) leaves the rules to start cold."""

    def __init__(self, store: Store) -> None:
        from agentaudit.store._alerts import alerts_of

        self.store = store
        self._alerts = alerts_of(store)

    def agent_history(self, tenant: str, agent: str, since: float, before: float,
                      bucket_seconds: int) -> dict[str, Any]:
        if self._alerts is None:
            return {}
        return self._alerts.agent_history(tenant, agent, since, before, bucket_seconds)

    def day_spend(self, tenant: str, agent: str, day_start: float,
                  before: float) -> tuple[float, int]:
        if self._alerts is None:
            return 0.0, 0
        return self._alerts.day_spend(tenant, agent, day_start, before)

    def trace_events_of(self, tenant: str, trace_id: str, event_type: str,
                        before: float) -> list[AuditEvent]:
        page = self.store.query(EventQuery(tenant=tenant, trace_id=trace_id,
                                           event_types=[event_type], until=before, limit=500))
        return page.data

    def last_stop(self, tenant: str, agent: str, before: float, stop_actions: list[str],
                  resume_actions: list[str]) -> tuple[float, str] | None:
        if self._alerts is None:
            return None
        return self._alerts.last_stop(tenant, agent, before, stop_actions, resume_actions)


def _pages(store: Store, q: EventQuery, size: int) -> Iterator[list[AuditEvent]]:
    page: list[AuditEvent] = []
    for ev in store.iter_events(q, batch_size=size):
        page.append(ev)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def detect_history(store: Store, tenant: str, since: float, until: float | None = None,
                   rules: RuleSet | None = None,
                   progress: Callable[[int], None] | None = None) -> tuple[list[Firing],
                                                                          DetectionEngine]:
    """What the rules would have fired over ``[since, until)`` (nothing is written)."""
    engine = DetectionEngine(rules, StoreHistory(store))
    q = EventQuery(tenant=tenant, since=since, until=until)
    firings: list[Firing] = []
    for page in _pages(store, q, 5000):
        firings.extend(engine.evaluate(page, cutoff=since))
        if progress is not None:
            progress(len(page))
    return firings, engine
