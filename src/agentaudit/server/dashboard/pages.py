"""The dashboard's reading pages: overview, live feed, traces, one trace, agents, alerts.

Handlers are plain functions (FastAPI runs them in its thread pool) over pooled read-only
connections, like the query API; every query runs in the viewer's tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from agentaudit.events import EventType
from agentaudit.exceptions import StoreError
from agentaudit.query import (
    InvalidTime,
    event_status,
    handoff_path,
    iso_time,
    parse_time,
    timeline,
)
from agentaudit.server.auth import Principal
from agentaudit.server.dashboard import charts, data
from agentaudit.server.dashboard.session import page_headers, viewer
from agentaudit.server.dashboard.templating import render
from agentaudit.server.sse import Subscription, feed_item, stream
from agentaudit.store.base import EventQuery

__all__ = ["TRACE_PAGE_EVENTS", "router"]

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
TRACE_PAGE_EVENTS = 100
_KNOWN_TYPES = [t.value for t in EventType]


@contextmanager
def _store(request: Request) -> Iterator[Any]:
    with request.app.state.collector.pool.store() as store:
        yield store


def _text(request: Request, name: str, limit: int = 256) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value[:limit] or None


def _time(request: Request, name: str, problems: list[str]) -> float | None:
    text = _text(request, name, 64)
    if text is None:
        return None
    try:
        return parse_time(text)
    except InvalidTime as e:
        problems.append(f"{name}: {e}")
        return None


def _rollups(request: Request) -> Any:
    return request.app.state.dashboard_rollups


def not_found(request: Request, principal: Principal, what: str) -> HTMLResponse:
    return render(request, "not_found.html.j2", status_code=404, principal=principal,
                  title="Not found", what=what)


@router.get("/")
def overview_page(request: Request, principal: Viewer) -> Response:
    window = request.query_params.get("window", "24h")
    if window not in data.WINDOWS:
        window = "24h"
    with _store(request) as store:
        ov = data.overview(_rollups(request), store, principal.tenant, window)
        recent_alerts, _ = data.alerts(_rollups(request), store, principal.tenant, limit=5,
                                       since=ov["since"])
    step_name = {60: "minute", 120: "2 min", 900: "15 min", 3600: "hour", 21600: "6 hours",
                 86400: "day"}[ov["step"]]
    return render(request, "overview.html.j2", principal=principal, title="Overview", ov=ov,
                  windows=list(data.WINDOWS), alerts=recent_alerts,
                  activity=charts.activity_chart(ov["series"],
                                                 f"Events and errors per {step_name}"),
                  cost_chart=charts.bar_chart(ov["cost_by_agent"], "Cost by agent (USD)",
                                              fmt=lambda v: f"${v:,.4f}", color="#27ae60"))


@router.get("/live")
def live_page(request: Request, principal: Viewer) -> Response:
    agent, kind = _text(request, "agent"), _text(request, "type")
    errors_only = request.query_params.get("errors_only") in ("1", "on", "true")
    types = [kind] if kind in _KNOWN_TYPES else None
    with _store(request) as store:
        page = store.query(EventQuery(tenant=principal.tenant, agent=agent, event_types=types,
                                      errors_only=errors_only, newest_first=True, limit=50))
    return render(request, "live.html.j2", principal=principal, title="Live feed",
                  rows=[feed_item(ev) for ev in page.data], agent=agent or "", kind=kind or "",
                  errors_only=errors_only, types=_KNOWN_TYPES)


@router.get("/live/stream")
async def live_stream(request: Request, principal: Viewer) -> StreamingResponse:
    """The live feed for the page's EventSource (cookie-authenticated ``/v1/stream``)."""
    collector = request.app.state.collector
    kind = _text(request, "type")
    sub = Subscription(principal.tenant, _text(request, "agent"),
                       [kind] if kind in _KNOWN_TYPES else None,
                       request.query_params.get("errors_only") in ("1", "on", "true"))
    return StreamingResponse(stream(collector.broadcaster, sub, collector.settings.sse_heartbeat),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/traces")
def traces_page(request: Request, principal: Viewer) -> Response:
    problems: list[str] = []
    status = _text(request, "status")
    f = data.TraceFilter(ref=_text(request, "ref"), session_id=_text(request, "session_id"),
                         agent=_text(request, "agent"), user_id=_text(request, "user_id"),
                         status=status if status in ("ok", "error") else None,
                         since=_time(request, "since", problems),
                         until=_time(request, "until", problems))
    cursor = _text(request, "cursor", 64)
    rows: list[dict[str, Any]] = []
    next_cursor = None
    if not problems:
        with _store(request) as store:
            try:
                rows, next_cursor = data.search_traces(store, principal.tenant, f, cursor)
            except StoreError:  # a cursor not made by this page
                problems.append("cursor: not a cursor of this page")
    params = {k: request.query_params.get(k, "") for k in
              ("ref", "session_id", "agent", "user_id", "status", "since", "until")}
    return render(request, "traces.html.j2", principal=principal, title="Traces", rows=rows,
                  next_cursor=next_cursor, params=params, problems=problems,
                  status_code=400 if problems else 200, first_page=cursor is None)


def _depths(parents: dict[str, str | None]) -> dict[str, int]:
    """Each event's depth in the parent/child tree (0 for roots)."""
    depth: dict[str, int] = {}
    for event_id in parents:
        chain: list[str] = []
        node: str | None = event_id
        while node is not None and node not in depth and len(chain) < 10_000:
            chain.append(node)
            node = parents.get(node)
        base = depth.get(node, -1) if node is not None else -1
        for i, n in enumerate(reversed(chain)):
            depth[n] = base + 1 + i
    return depth


@router.get("/traces/{ref}")
def trace_page(request: Request, principal: Viewer, ref: str) -> Response:
    if len(ref) > 1024:
        return not_found(request, principal, "trace")
    try:
        page = int(request.query_params.get("page", "1"))
    except ValueError:
        page = 1
    with _store(request) as store:
        view = data.trace_view(store, principal.tenant, ref, page, TRACE_PAGE_EVENTS)
    if view is None:
        return not_found(request, principal, f"trace {ref}")
    head, shown, marks = view["head"], view["shown"], view["marks"]
    path = handoff_path(view["first"] + [ev for ev in marks if ev.event_type == EventType.HANDOFF])
    failing_agents = {ev.agent_name for ev in marks if ev.event_type == EventType.ERROR}
    depth = _depths(view["parents"])
    agents = list(dict.fromkeys([*path, *sorted((head["agents"] or "").split(","))]))
    rows = [(row, ev, depth.get(ev.event_id, 0), view["erased"].get(ev.event_id))
            for row, ev in zip(timeline(shown), shown, strict=True)]
    summary = {**head, "trace_ids": view["trace_ids"],
               "task_ids": sorted(filter(None, (head["task_ids"] or "").split(","))),
               "start": iso_time(head["first"]),
               "duration_ms": (head["end"] - head["start"]) * 1000.0}
    return render(request, "trace.html.j2", principal=principal, title=f"Trace {ref}", ref=ref,
                  summary=summary, rows=rows, page=view["page"], pages=view["pages"],
                  per_page=TRACE_PAGE_EVENTS, handoff=path, erased_count=len(view["erased"]),
                  failing_tools=sorted({ev.action for ev in marks
                                        if ev.event_type == EventType.ERROR and ev.action}),
                  graph=charts.agent_graph(agents, charts.handoff_edges(marks), failing_agents),
                  waterfall=charts.waterfall(shown, head["start"], head["end"]))


@router.get("/evidence/{ref}")
def evidence(request: Request, principal: Viewer, ref: str) -> Response:
    """Where a piece of evidence (an event id or a trace id) is shown: its trace."""
    with _store(request) as store:
        ev = store.get_event(principal.tenant, ref[:1024])
        if ev is not None and ev.trace_id:
            return RedirectResponse(f"/traces/{ev.trace_id}#ev-{ev.event_id}", status_code=303,
                                    headers=page_headers())
        if store.query(EventQuery(tenant=principal.tenant, trace_id=ref[:1024], limit=1)).data:
            return RedirectResponse(f"/traces/{ref}", status_code=303, headers=page_headers())
    return not_found(request, principal, f"evidence {ref}")


def _period(request: Request, default: str = "7d") -> tuple[float, float, str, list[str]]:
    problems: list[str] = []
    text = request.query_params.get("since", default) or default
    since = _time(request, "since", problems) if "since" in request.query_params else None
    until = _time(request, "until", problems) or parse_time("now")
    if since is None:
        since = parse_time(default)
    if since >= until:
        problems.append("since is not before until")
    return since, until, text, problems


@router.get("/agents")
def agents_page(request: Request, principal: Viewer) -> Response:
    since, until, text, problems = _period(request)
    rows: list[dict[str, Any]] = []
    if not problems:
        with _store(request) as store:
            rows, since = data.agents(_rollups(request), store, principal.tenant, since, until)
    return render(request, "agents.html.j2", principal=principal, title="Agents", rows=rows,
                  since=text, start=iso_time(since), problems=problems,
                  status_code=400 if problems else 200)


@router.get("/agents/{name}")
def agent_page(request: Request, principal: Viewer, name: str) -> Response:
    since, until, text, problems = _period(request)
    if problems:
        return render(request, "agents.html.j2", principal=principal, title="Agents", rows=[],
                      since=text, start=None, problems=problems, status_code=400)
    name = name[:1024]
    with _store(request) as store:
        ov = data.agent_view(_rollups(request), store, principal.tenant, name, since, until)
        if ov is None:
            return not_found(request, principal, f"agent {name} (in the last {text})")
        recent_errors = store.query(EventQuery(tenant=principal.tenant, agent=name,
                                               errors_only=True, since=ov["since"],
                                               until=until, newest_first=True, limit=10)).data
    return render(request, "agent.html.j2", principal=principal, title=f"Agent {name}",
                  name=name, ov=ov, since=text, start=iso_time(ov["since"]),
                  handoffs_in=ov["handoffs_in"], errors=recent_errors,
                  activity=charts.activity_chart(ov["series"], "Events and errors over time"),
                  tools_chart=charts.bar_chart([(t["tool"], t["calls"]) for t in ov["tools"]],
                                               "Tool calls"))


@router.get("/alerts")
def alerts_page(request: Request, principal: Viewer) -> Response:
    cursor = _text(request, "cursor", 64)
    try:
        with _store(request) as store:
            rows, next_cursor = data.alerts(_rollups(request), store, principal.tenant, cursor)
    except (ValueError, StoreError):  # a cursor not made by this page
        return render(request, "message.html.j2", status_code=400, principal=principal,
                      title="Alerts", message="cursor: not a cursor of this page")
    return render(request, "alerts.html.j2", principal=principal, title="Alerts",
                  rows=[(ev, event_status(ev)) for ev in rows], next_cursor=next_cursor)
