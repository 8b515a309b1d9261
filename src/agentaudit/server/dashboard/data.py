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
from agentaudit.server.dashboard.pg_queries import PG_DATA_SQL
from agentaudit.server.dashboard.rollup import Rollups, merge
from agentaudit.server.dashboard.rollup import _empty as rollup_empty
from agentaudit.store.base import EventQuery
from agentaudit.store.rows import SELECT_COLUMNS, event_from_row

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = [
    "ALERT_TYPES",
    "WINDOWS",
    "TraceFilter",
    "agent_view",
    "agents",
    "alerts",
    "erased_payloads",
    "overview",
    "register",
    "search_traces",
    "trace_stats",
]

# Overview windows: name -> (seconds, bucket seconds) — 15 to 30 buckets each.
WINDOWS: dict[str, tuple[int, int]] = {
    "15m": (900, 60), "1h": (3600, 120), "6h": (21600, 900), "24h": (86400, 3600),
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
    "dash_trace_stats": (
        _TRACE_STATS_COLUMNS + "WHERE trace_id IN (SELECT value FROM json_each(:ids)) "
        "AND +tenant = :tenant GROUP BY trace_id LIMIT :limit"),
    "dash_traces_of": (
        "SELECT trace_id FROM events WHERE trace_id = :ref AND +tenant = :tenant "
        "UNION SELECT trace_id FROM events WHERE task_id = :ref AND +tenant = :tenant "
        "AND trace_id IS NOT NULL LIMIT :limit"),
    "dash_trace_summary": (
        "SELECT count(*) AS events, sum(event_type = 'agent.error') AS errors, "
        "sum(event_type = 'agent.human_intervention' AND action = 'escalation') AS escalations, "
        "min(timestamp - coalesce(duration_ms, 0) / 1000.0) AS start, min(timestamp) AS first, "
        "max(timestamp) AS end, sum(cost_usd) AS cost_usd, "
        "group_concat(DISTINCT task_id) AS task_ids, group_concat(DISTINCT agent_name) AS agents "
        "FROM events WHERE trace_id IN (SELECT value FROM json_each(:ids)) "
        "AND +tenant = :tenant LIMIT :limit"),
    # The whole trace as (row id, event id, parent) in time order — small rows, one pass — and
    # then only the rows of the page shown.
    "dash_trace_tree": (
        "SELECT id, event_id, parent_event_id FROM events WHERE trace_id IN (SELECT value FROM "
        "json_each(:ids)) AND +tenant = :tenant ORDER BY timestamp, seq LIMIT :limit"),
    "dash_trace_rows": (
        f"SELECT {', '.join(SELECT_COLUMNS)} FROM events WHERE id IN (SELECT value FROM "
        "json_each(:rowids)) ORDER BY timestamp, seq LIMIT :limit"),
    "dash_trace_marks": (
        f"SELECT {', '.join(SELECT_COLUMNS)} FROM events WHERE trace_id IN (SELECT value FROM "
        "json_each(:ids)) AND +tenant = :tenant "
        "AND event_type IN ('agent.handoff', 'agent.error') ORDER BY timestamp, seq "
        "LIMIT :limit"),
    "dash_erased": (
        "SELECT event_id, erased FROM events WHERE trace_id IN (SELECT value FROM "
        "json_each(:ids)) AND +tenant = :tenant AND erased IS NOT NULL LIMIT :limit"),
}


def register(templates: dict[str, str], pg_templates: dict[str, str]) -> None:
    """Add the dashboard's named aggregations to each backend's (SQLite's text and
    PostgreSQL's, ``pg_queries``)."""
    from agentaudit.store import _pg_sql, _sqlite_sql

    assert templates.keys() == pg_templates.keys(), "a query without its PostgreSQL text"
    _sqlite_sql.register_aggregations(templates)
    _pg_sql.register_aggregations(pg_templates)


register(_SQL, PG_DATA_SQL)


def _agg(store: Store, name: str, tenant: str, since: float | None, until: float | None,
         agent: str | None = None, limit: int = 20, **params: Any) -> list[dict[str, Any]]:
    return store.aggregate(name, tenant, since, until, agent, limit, **params)


def _bucket_label(ts: float, step: int) -> str:
    iso = iso_time(ts) or ""
    if step >= 86400:
        return iso[5:10]
    if step >= 3600:
        return iso[5:13].replace("T", " ") + "h"
    return iso[11:16]


def window_bounds(window: str, now: float | None = None) -> tuple[float, float, int, int]:
    """(since, until, step, buckets) of an overview window: ``buckets`` steps ending with the
    current (partial) one, so that every bucket is a whole step."""
    seconds, step = WINDOWS[window]
    until = time.time() if now is None else now
    buckets = seconds // step
    since = (until // step) * step - (buckets - 1) * step
    return since, until, step, buckets


def period_bounds(since: float, until: float) -> tuple[float, float, int, int]:
    """A free period aligned to the rollups' buckets, in about 30 steps."""
    size = Rollups.bucket_size(since, until)
    since = (since // size) * size
    span = until - since
    step = next((s for s in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)
                 if s >= size and span / s <= 40), 86400 * (int(span // (86400 * 40)) + 1))
    since = (since // step) * step if step % size == 0 else since
    return since, until, step, max(1, int(-(-(until - since) // step)))


class _Period:
    """Figures of a period folded from rollup cells."""

    def __init__(self, buckets: int) -> None:
        self.series = [{"events": 0, "errors": 0, "handoffs": 0, "escalations": 0,
                        "cost_usd": 0.0} for _ in range(buckets)]
        self.agents: dict[str, dict[str, Any]] = {}
        self.tools: dict[str, list[Any]] = {}
        self.decisions: dict[str, list[Any]] = {}
        self.error_types: dict[str, int] = {}
        self.handoffs_out: dict[str, int] = {}
        self.handoffs_in: dict[str, int] = {}
        self.alerts = 0
        self.total = rollup_empty()

    def add(self, index: int, key: tuple[str, str, str | None, str | None], s: list[Any],
            agent: str | None) -> None:
        name, kind, action, error_type = key
        if kind == EventType.HANDOFF and action == agent and name != agent:
            self.handoffs_in[name] = self.handoffs_in.get(name, 0) + s[0]
        if agent is not None and name != agent:
            return
        n = s[0]
        b = self.series[index] if 0 <= index < len(self.series) else None
        if b is not None:
            b["events"] += n
            b["cost_usd"] += s[1]
        a = self.agents.setdefault(name, {"agent_name": name, "events": 0, "invocations": 0,
                                          "errors": 0, "tool_calls": 0, "_ms": 0.0, "_n": 0,
                                          "cost_usd": 0.0, "last_seen": None})
        a["events"] += n
        a["cost_usd"] += s[1]
        if s[11] is not None and (a["last_seen"] is None or s[11] > a["last_seen"]):
            a["last_seen"] = s[11]
        merge(self.total, s)
        self._by_kind(kind, action, error_type, s, a, b)

    def _by_kind(self, kind: str, action: str | None, error_type: str | None, s: list[Any],
                 a: dict[str, Any], b: dict[str, Any] | None) -> None:
        n = s[0]
        if kind == EventType.INVOCATION:
            a["invocations"] += n
        elif kind == EventType.ERROR:
            a["errors"] += n
            if b is not None:
                b["errors"] += n
            self.error_types[error_type or "Unknown"] = self.error_types.get(
                error_type or "Unknown", 0) + n
            if action:
                self._tool(action)[1] += n
        elif kind == EventType.TOOL_CALL:
            a["tool_calls"] += n
            if action:
                self._tool(action)[0] += n
        elif kind == EventType.TOOL_RESULT:
            a["_ms"] += s[2]
            a["_n"] += s[3]
            if action:
                merge_latency(self._tool(action), s)
        elif kind == EventType.HANDOFF:
            if b is not None:
                b["handoffs"] += n
            if action:
                self.handoffs_out[action] = self.handoffs_out.get(action, 0) + n
        elif kind == EventType.HUMAN_INTERVENTION and action == "escalation":
            if b is not None:
                b["escalations"] += n
        elif kind == EventType.DECISION:
            d = self.decisions.setdefault(action or "decision", rollup_empty())
            merge(d, s)
        elif kind in ALERT_TYPES:
            self.alerts += n

    def merge_from(self, o: _Period, index: int) -> None:
        """Add a one-bucket period ``o`` (a rollup bucket's summary) at bucket ``index``."""
        if 0 <= index < len(self.series):
            b, ob = self.series[index], o.series[0]
            for k in ("events", "errors", "handoffs", "escalations", "cost_usd"):
                b[k] += ob[k]
        for name, oa in o.agents.items():
            a = self.agents.get(name)
            if a is None:
                self.agents[name] = dict(oa)
                continue
            for k in ("events", "invocations", "errors", "tool_calls", "_ms", "_n", "cost_usd"):
                a[k] += oa[k]
            if oa["last_seen"] is not None and (a["last_seen"] is None
                                                or oa["last_seen"] > a["last_seen"]):
                a["last_seen"] = oa["last_seen"]
        for name, ot in o.tools.items():
            t = self._tool(name)
            t[0] += ot[0]
            t[1] += ot[1]
            merge_latency(t, [0, 0, ot[2], ot[3], ot[4]])
        for name, od in o.decisions.items():
            merge(self.decisions.setdefault(name, rollup_empty()), od)
        for counts, other in ((self.error_types, o.error_types),
                              (self.handoffs_out, o.handoffs_out)):
            for k, n in other.items():
                counts[k] = counts.get(k, 0) + n
        self.alerts += o.alerts
        merge(self.total, o.total)

    def _tool(self, name: str) -> list[Any]:
        return self.tools.setdefault(name, [0, 0, 0.0, 0, None])  # calls, errors, ms, n, max

    def agent_rows(self) -> list[dict[str, Any]]:
        rows = []
        for a in sorted(self.agents.values(), key=lambda a: -a["events"]):
            row = {k: v for k, v in a.items() if not k.startswith("_")}
            row["avg_tool_ms"] = a["_ms"] / a["_n"] if a["_n"] else None
            rows.append(row)
        return rows

    def tool_rows(self) -> list[dict[str, Any]]:
        rows = [{"tool": t, "calls": v[0], "errors": v[1],
                 "avg_latency_ms": v[2] / v[3] if v[3] else None, "max_latency_ms": v[4]}
                for t, v in self.tools.items() if v[0] or v[3]]
        return sorted(rows, key=lambda r: (-r["calls"], r["tool"]))


def merge_latency(tool: list[Any], s: list[Any]) -> None:
    tool[2] += s[2]
    tool[3] += s[3]
    if s[4] is not None and (tool[4] is None or s[4] > tool[4]):
        tool[4] = s[4]


def _one_bucket(cells: dict[Any, list[Any]]) -> dict[str, Any]:
    """A rollup bucket folded once: all agents, each agent, and the handoffs between agents."""
    whole = _Period(1)
    per_agent: dict[str, _Period] = {}
    pairs: dict[tuple[str, str], int] = {}
    for key, s in cells.items():
        whole.add(0, key, s, None)
        per_agent.setdefault(key[0], _Period(1)).add(0, key, s, key[0])
        if key[1] == EventType.HANDOFF and key[2]:
            pairs[(key[0], key[2])] = pairs.get((key[0], key[2]), 0) + s[0]
    return {"all": whole, "agents": per_agent, "pairs": pairs}


def _fold(rollups: Rollups, store: Store, tenant: str, since: float, until: float, step: int,
          buckets: int, agent: str | None = None) -> _Period:
    """The period's figures (of one agent, or all), from bucket summaries kept until their
    bucket changes."""
    period = _Period(buckets)
    for index, summary in rollups.summaries(store, tenant, since, until, step, _one_bucket):
        if agent is None:
            period.merge_from(summary["all"], index)
            continue
        mine = summary["agents"].get(agent)
        if mine is not None:
            period.merge_from(mine, index)
        for (src, target), n in summary["pairs"].items():
            if target == agent and src != agent:
                period.handoffs_in[src] = period.handoffs_in.get(src, 0) + n
    for i, b in enumerate(period.series):
        b["start"] = since + i * step
        b["label"] = _bucket_label(b["start"], step)
    return period


def overview(rollups: Rollups, store: Store, tenant: str, window: str,
             now: float | None = None) -> dict[str, Any]:
    """The seed's ``recent_activity`` for a window: totals, series, top agents and tools."""
    since, until, step, buckets = window_bounds(window, now)
    p = _fold(rollups, store, tenant, since, until, step, buckets)
    events = p.total[0]
    errors = sum(b["errors"] for b in p.series)
    agents = p.agent_rows()
    return {
        "window": window, "since": since, "until": until, "step": step,
        "events": events, "events_per_second": events / max(1.0, until - since),
        "agents_active": len(agents), "errors": errors,
        "error_rate": errors / events if events else 0.0,
        "handoffs": sum(b["handoffs"] for b in p.series),
        "escalations": sum(b["escalations"] for b in p.series),
        "cost_usd": p.total[1], "alerts": p.alerts, "series": p.series,
        "top_agents": agents[:10],
        "cost_by_agent": sorted(((a["agent_name"], float(a["cost_usd"])) for a in agents),
                                key=lambda x: -x[1])[:10],
        "top_tools": p.tool_rows()[:10],
    }


def agents(rollups: Rollups, store: Store, tenant: str, since: float, until: float
           ) -> tuple[list[dict[str, Any]], float]:
    """Per agent: events, invocations, tool calls, errors, cost, last seen; and the aligned
    start of the period."""
    since, until, step, buckets = period_bounds(since, until)
    return _fold(rollups, store, tenant, since, until, step, buckets).agent_rows(), since


def agent_view(rollups: Rollups, store: Store, tenant: str, agent: str, since: float,
               until: float) -> dict[str, Any] | None:
    """What one agent did in a period (the keys of ``query.agent_overview``), or None."""
    since, until, step, buckets = period_bounds(since, until)
    p = _fold(rollups, store, tenant, since, until, step, buckets, agent)
    row = p.agents.get(agent)
    if row is None:
        return None
    dec_total = rollup_empty()
    for d in p.decisions.values():
        merge(dec_total, d)
    events = row["events"]
    return {
        "agent": agent, "since": since, "until": until, "events": events,
        "invocations": row["invocations"], "errors": row["errors"],
        "error_rate": row["errors"] / events if events else 0.0,
        "handoffs": sum(b["handoffs"] for b in p.series),
        "escalations": sum(b["escalations"] for b in p.series),
        "tools": p.tool_rows()[:50], "series": p.series,
        "decisions": {
            "count": dec_total[0],
            "avg_confidence": dec_total[5] / dec_total[6] if dec_total[6] else None,
            "low_confidence": dec_total[8],
            "by_action": sorted(({"decision": k, "count": d[0],
                                  "avg_confidence": d[5] / d[6] if d[6] else None,
                                  "min_confidence": d[7]} for k, d in p.decisions.items()),
                                key=lambda r: -r["count"])[:20]},
        "errors_by_type": dict(sorted(p.error_types.items(), key=lambda x: -x[1])),
        "handoffs_out": dict(sorted(p.handoffs_out.items(), key=lambda x: -x[1])),
        "handoffs_in": dict(sorted(p.handoffs_in.items(), key=lambda x: -x[1])),
        "cost": {"cost_usd": p.total[1], "prompt_tokens": p.total[9],
                 "completion_tokens": p.total[10]},
    }


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


def _events(rows: list[dict[str, Any]]) -> list[AuditEvent]:
    return [event_from_row(tuple(r.values())) for r in rows]


def trace_ids_of(store: Store, tenant: str, ref: str) -> list[str]:
    """The trace ids of a trace id or task id (empty when the tenant has neither)."""
    if store.query(EventQuery(tenant=tenant, trace_id=ref, limit=1)).data:
        return [ref]
    return [r["trace_id"] for r in _agg(store, "dash_traces_of", tenant, None, None,
                                        limit=10_000, ref=ref)]


def trace_view(store: Store, tenant: str, ref: str, page: int, per_page: int
               ) -> dict[str, Any] | None:
    """One page of a trace (by trace or task id) and what the whole trace says, without
    loading all of its events: figures in SQL, handoffs and errors, then ``per_page`` events."""
    ids = trace_ids_of(store, tenant, ref)
    if not ids:
        return None
    bound = json.dumps(ids)
    head = _agg(store, "dash_trace_summary", tenant, None, None, limit=1, ids=bound)[0]
    tree = _agg(store, "dash_trace_tree", tenant, None, None, limit=10_000_000, ids=bound)
    total = len(tree)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    wanted = [r["id"] for r in tree[(page - 1) * per_page: page * per_page]]
    if page > 1:
        wanted.append(tree[0]["id"])  # the first event starts the handoff path
    rows = _events(_agg(store, "dash_trace_rows", tenant, None, None, limit=len(wanted),
                        rowids=json.dumps(wanted)))
    first = rows[:1]
    shown = rows if page == 1 else [ev for ev in rows if ev.event_id != tree[0]["event_id"]]
    marks = _events(_agg(store, "dash_trace_marks", tenant, None, None, limit=100_000,
                         ids=bound))
    parents = {r["event_id"]: r["parent_event_id"] for r in tree}
    return {"trace_ids": ids, "head": head, "events": total, "page": page, "pages": pages,
            "shown": shown, "first": first, "marks": marks, "parents": parents,
            "erased": erased_payloads(store, tenant, ids)}


def erased_payloads(store: Store, tenant: str, trace_ids: Sequence[str]) -> dict[str, str]:
    """Event id -> why its payload was erased, for the erased events of these traces."""
    if not trace_ids:
        return {}
    rows = _agg(store, "dash_erased", tenant, None, None, limit=1_000_000,
                ids=json.dumps(list(trace_ids)))
    return {r["event_id"]: str(r["erased"]) for r in rows}


def alerts(rollups: Rollups, store: Store, tenant: str, cursor: str | None = None,
           limit: int = 50, since: float | None = None) -> tuple[list[AuditEvent], str | None]:
    """``agent.security`` and ``agent.compliance`` events, newest first: the rollups say which
    hours hold any, and only those hours are read."""
    before = float(cursor.rsplit(":", 1)[0]) if cursor else None  # ValueError: not a cursor
    found: list[AuditEvent] = []
    for hour in rollups.hours_with(store, tenant, ALERT_TYPES):
        lo, hi = hour * 3600.0, hour * 3600.0 + 3600.0
        if since is not None and hi <= since:
            break
        if before is not None and lo > before:
            continue
        page = store.query(EventQuery(tenant=tenant, event_types=list(ALERT_TYPES),
                                      since=lo if since is None else max(lo, since), until=hi,
                                      newest_first=True, limit=limit + 1 - len(found),
                                      cursor=cursor))
        found.extend(page.data)
        if len(found) > limit:
            return found[:limit], _cursor(found[limit - 1])
    return found, None
