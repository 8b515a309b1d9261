"""What the dashboard pages show, computed in SQL through the store's named aggregations.

Period figures (overview, agents) are aggregations over the tenant+time index; per-trace figures
use the trace index. Nothing here loads a period's events into Python: the trace list pages
through events with the store's cursor and then aggregates the few traces it found.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentaudit.events import AuditEvent, EventType
from agentaudit.query import iso_time
from agentaudit.store.base import EventQuery

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = [
    "ALERT_TYPES",
    "WINDOWS",
    "TraceFilter",
    "agent_activity",
    "alerts",
    "erased_payloads",
    "handoffs_in",
    "overview",
    "search_traces",
    "trace_stats",
]

# Overview windows: name -> (seconds, bucket seconds) — about 24 to 30 buckets each.
WINDOWS: dict[str, tuple[int, int]] = {
    "15m": (900, 30), "1h": (3600, 120), "6h": (21600, 900), "24h": (86400, 3600),
    "7d": (604800, 21600), "30d": (2592000, 86400),
}
ALERT_TYPES = (EventType.SECURITY.value, EventType.COMPLIANCE.value)
_TRACE_STATS_COLUMNS = (
    "SELECT trace_id, min(timestamp) AS start, max(timestamp) AS end, count(*) AS events, "
    "sum(event_type = 'agent.error') AS errors, sum(event_type = 'agent.handoff') AS handoffs, "
    "group_concat(DISTINCT agent_name) AS agents, coalesce(sum(cost_usd), 0) AS cost_usd, "
    "max(task_id) AS task_id, max(session_id) AS session_id, max(user_id) AS user_id, "
    "min(CASE WHEN parent_event_id IS NULL THEN coalesce(action, event_type) END) AS root "
    "FROM events ")
_SQL: dict[str, str] = {
    "dash_series": (
        "SELECT CAST((timestamp - :since) / :step AS INTEGER) AS bucket, count(*) AS events, "
        "sum(event_type = 'agent.error') AS errors, sum(event_type = 'agent.handoff') AS handoffs, "
        "sum(event_type = 'agent.human_intervention' AND action = 'escalation') AS escalations, "
        "coalesce(sum(cost_usd), 0) AS cost_usd FROM events{w} "
        "GROUP BY bucket ORDER BY bucket LIMIT :limit"),
    "dash_trace_stats": (
        _TRACE_STATS_COLUMNS + "WHERE trace_id IN (SELECT value FROM json_each(:ids)) "
        "AND +tenant = :tenant GROUP BY trace_id LIMIT :limit"),
    "dash_traces_of": (
        "SELECT trace_id FROM events WHERE trace_id = :ref AND +tenant = :tenant "
        "UNION SELECT trace_id FROM events WHERE task_id = :ref AND +tenant = :tenant "
        "AND trace_id IS NOT NULL LIMIT :limit"),
    "dash_erased": (
        "SELECT event_id, erased FROM events WHERE trace_id IN (SELECT value FROM "
        "json_each(:ids)) AND +tenant = :tenant AND erased IS NOT NULL LIMIT :limit"),
    "dash_handoffs_in": (
        "SELECT agent_name AS agent, count(*) AS count FROM events "
        "WHERE tenant = :tenant AND timestamp >= :since AND timestamp < :until "
        "AND event_type = 'agent.handoff' "
        "AND json_extract(payload, '$.params.to_agent') = :target "
        "GROUP BY agent_name ORDER BY count DESC LIMIT :limit"),
    "dash_alert_count": (
        "SELECT count(*) AS alerts FROM events{w} "
        "AND event_type IN ('agent.security', 'agent.compliance') LIMIT :limit"),
}
_registered = False


def _register() -> None:
    global _registered
    if not _registered:
        from agentaudit.store._sqlite_sql import register_aggregations

        register_aggregations(_SQL)
        _registered = True


def _agg(store: Store, name: str, tenant: str, since: float | None, until: float | None,
         agent: str | None = None, limit: int = 20, **params: Any) -> list[dict[str, Any]]:
    _register()
    return store.aggregate(name, tenant, since, until, agent, limit, **params)


def _series(store: Store, tenant: str, since: float, until: float, step: int,
            agent: str | None = None) -> list[dict[str, Any]]:
    """Per-bucket counts, with empty buckets filled in (``label`` is the bucket's start)."""
    rows = {int(r["bucket"]): r for r in _agg(store, "dash_series", tenant, since, until, agent,
                                              limit=10_000, step=step)}
    count = max(1, int((until - since + step - 1) // step))
    out = []
    for i in range(count):
        r = rows.get(i, {})
        start = since + i * step
        out.append({"start": start, "label": _bucket_label(start, step),
                    "events": int(r.get("events") or 0), "errors": int(r.get("errors") or 0),
                    "handoffs": int(r.get("handoffs") or 0),
                    "escalations": int(r.get("escalations") or 0),
                    "cost_usd": float(r.get("cost_usd") or 0.0)})
    return out


def _bucket_label(ts: float, step: int) -> str:
    iso = iso_time(ts) or ""
    if step >= 86400:
        return iso[5:10]
    if step >= 3600:
        return iso[5:13].replace("T", " ") + "h"
    return iso[11:16]


def overview(store: Store, tenant: str, window: str, now: float | None = None) -> dict[str, Any]:
    """The seed's ``recent_activity`` for a window: totals, series, top agents and tools."""
    seconds, step = WINDOWS[window]
    until = time.time() if now is None else now
    since = until - seconds
    series = _series(store, tenant, since, until, step)
    agents = _agg(store, "agents", tenant, since, until, limit=1000)
    tools = _agg(store, "tools", tenant, since, until, limit=10)
    tool_errors = {r["tool"]: int(r["errors"]) for r in
                   _agg(store, "tool_errors", tenant, since, until, limit=100)}
    alert_rows = _agg(store, "dash_alert_count", tenant, since, until, limit=1)
    events = sum(b["events"] for b in series)
    errors = sum(b["errors"] for b in series)
    return {
        "window": window, "since": since, "until": until, "step": step,
        "events": events, "events_per_second": events / seconds,
        "agents_active": len(agents), "errors": errors,
        "error_rate": errors / events if events else 0.0,
        "handoffs": sum(b["handoffs"] for b in series),
        "escalations": sum(b["escalations"] for b in series),
        "cost_usd": sum(b["cost_usd"] for b in series),
        "alerts": int(alert_rows[0]["alerts"] or 0) if alert_rows else 0,
        "series": series,
        "top_agents": agents[:10],
        "cost_by_agent": sorted(((a["agent_name"], float(a["cost_usd"] or 0)) for a in agents),
                                key=lambda x: -x[1])[:10],
        "top_tools": [{**t, "errors": tool_errors.get(t["tool"], 0)} for t in tools],
    }


def agent_activity(store: Store, tenant: str, agent: str, since: float, until: float
                   ) -> list[dict[str, Any]]:
    """One agent's events and errors over the period, in about 30 buckets."""
    span = until - since
    step = next((s for s in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400) if span / s <= 40),
                86400 * max(1, int(span // (86400 * 40)) + 1))
    return _series(store, tenant, since, until, step, agent)


def handoffs_in(store: Store, tenant: str, agent: str, since: float, until: float
                ) -> dict[str, int]:
    """Who handed work to ``agent`` in the period, and how often."""
    rows = _agg(store, "dash_handoffs_in", tenant, since, until, limit=20, target=agent)
    return {str(r["agent"]): int(r["count"]) for r in rows}


# -- traces --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TraceFilter:
    """The trace search form. ``ref`` is a trace id or a task id; ``status`` ok or error."""

    ref: str | None = None
    session_id: str | None = None
    agent: str | None = None
    user_id: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None

    def query_string(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v not in (None, "")}


def trace_stats(store: Store, tenant: str, trace_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Header figures of the given traces, in the order given."""
    if not trace_ids:
        return []
    rows = _agg(store, "dash_trace_stats", tenant, None, None, limit=len(trace_ids),
                ids=json.dumps(list(trace_ids)))
    by_id = {r["trace_id"]: r for r in rows}
    out = []
    for tid in trace_ids:
        r = by_id.get(tid)
        if r is None:
            continue
        out.append({**r, "agents": sorted(set((r["agents"] or "").split(","))),
                    "status": "error" if r["errors"] else "ok",
                    "start_iso": iso_time(r["start"]),
                    "duration_ms": (r["end"] - r["start"]) * 1000.0})
    return out


def search_traces(store: Store, tenant: str, f: TraceFilter, cursor: str | None = None,
                  page_size: int = 25) -> tuple[list[dict[str, Any]], str | None]:
    """Traces matching ``f``, newest first, one page at a time (cursor: the store's event
    cursor after the last trace shown)."""
    if f.ref:
        ids = [r["trace_id"] for r in _agg(store, "dash_traces_of", tenant, None, None,
                                            limit=page_size, ref=f.ref)]
        return _keep(trace_stats(store, tenant, ids), f), None
    q = EventQuery(tenant=tenant, agent=f.agent, session_id=f.session_id, user_id=f.user_id,
                   since=f.since, until=f.until, newest_first=True, limit=200, cursor=cursor,
                   errors_only=f.status == "error",
                   event_types=None if f.status == "error" else [EventType.INVOCATION.value])
    ids: list[str] = []
    next_cursor: str | None = None
    for _ in range(10):  # at most 2,000 events scanned per page
        page = store.query(q)
        for i, ev in enumerate(page.data):
            if ev.trace_id and ev.trace_id not in ids:
                ids.append(ev.trace_id)
                if len(ids) == page_size:
                    next_cursor = _cursor(page.data[i]) if (
                        i + 1 < len(page.data) or page.next_cursor) else None
                    return _keep(trace_stats(store, tenant, ids), f), next_cursor
        if not page.next_cursor:
            break
        q.cursor = next_cursor = page.next_cursor
    return _keep(trace_stats(store, tenant, ids), f), next_cursor


def _cursor(ev: AuditEvent) -> str:
    return f"{ev.timestamp!r}:{ev.seq}"


def _keep(rows: list[dict[str, Any]], f: TraceFilter) -> list[dict[str, Any]]:
    if f.status in ("ok", "error"):
        return [r for r in rows if r["status"] == f.status]
    return rows


def erased_payloads(store: Store, tenant: str, trace_ids: Sequence[str]) -> dict[str, str]:
    """Event id -> why its payload was erased, for the erased events of these traces."""
    if not trace_ids:
        return {}
    rows = _agg(store, "dash_erased", tenant, None, None, limit=1_000_000,
                ids=json.dumps(list(trace_ids)))
    return {r["event_id"]: str(r["erased"]) for r in rows}


def alerts(store: Store, tenant: str, cursor: str | None = None, limit: int = 50,
           since: float | None = None) -> tuple[list[AuditEvent], str | None]:
    """``agent.security`` and ``agent.compliance`` events, newest first."""
    page = store.query(EventQuery(tenant=tenant, event_types=list(ALERT_TYPES), since=since,
                                  newest_first=True, limit=limit, cursor=cursor))
    return page.data, page.next_cursor
