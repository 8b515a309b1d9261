"""Reading: events, traces, agents, the live stream, health and metrics.

Every query runs in the caller's tenant: an id of another tenant is simply not found (404, so
that nobody learns it exists). Handlers are plain functions (FastAPI runs them in its thread
pool) using pooled read-only connections.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from agentaudit.events import EventType, event_to_dict
from agentaudit.query import InvalidTime, parse_time, timeline, trace_graph, trace_summary
from agentaudit.server.auth import Principal, require
from agentaudit.server.collector import Collector
from agentaudit.server.errors import ApiError
from agentaudit.server.models import AgentsPage, ErrorBody, EventPage, Health, TraceView
from agentaudit.server.sse import Subscription, stream
from agentaudit.store.base import EventQuery

__all__ = ["router"]

router = APIRouter(tags=["query"])
_encode = msgspec.json.Encoder().encode
_CURSOR = re.compile(r"^\d{1,12}(\.\d{1,20})?(e[+-]?\d{1,3})?:\d{1,19}$")
_KNOWN_TYPES = frozenset(t.value for t in EventType)
_ERRORS = {400: {"model": ErrorBody, "description": "Invalid parameters"},
           401: {"model": ErrorBody, "description": "Missing, invalid or revoked API key"},
           403: {"model": ErrorBody, "description": "The key may not read"}}

Reader = Annotated[Principal, Depends(require("read"))]
Text = Annotated[str | None, Query(max_length=1024)]
Since = Annotated[str | None, Query(max_length=64, description=(
    "From this time on: 30s, 15m, 1h, 7d, 2w ago, an ISO date or datetime (UTC), or epoch "
    "seconds"))]
Until = Annotated[str | None, Query(max_length=64, description="Before this time (as since)")]
Types = Annotated[list[str] | None, Query(alias="type", description=(
    "Event types: tool_call, decision, error, audit.key_created, … (repeat or comma-separate)"))]


def _json(data: Any) -> Response:
    return Response(_encode(data), media_type="application/json")


def _time(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except InvalidTime as e:
        raise ApiError(400, f"{name}: {e}") from e


def _period(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    start, end = _time("since", since), _time("until", until)
    if start is not None and end is not None and start >= end:
        raise ApiError(400, "since is not before until")
    return start, end


def _event_types(values: list[str] | None) -> list[str] | None:
    """``type`` values as full event type names (``tool_call`` → ``agent.tool_call``)."""
    types: list[str] = []
    for value in values or ():
        for name in filter(None, (v.strip() for v in value.split(","))):
            full = name if "." in name else f"agent.{name}"
            if full not in _KNOWN_TYPES and not re.fullmatch(r"audit\.[a-z][a-z0-9_.]{0,63}", full):
                raise ApiError(400, f"unknown event type {name!r}")
            types.append(full)
    return types or None


@router.get("/v1/events", summary="List events", response_model=None,
            responses={200: {"model": EventPage}, **_ERRORS})
def list_events(request: Request, principal: Reader, agent: Text = None,
                event_type: Types = None, since: Since = None, until: Until = None,
                trace_id: Text = None, session_id: Text = None, user_id: Text = None,
                task_id: Text = None, errors_only: bool = False,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, Query(max_length=64, description=(
                    "next_cursor of the previous page"))] = None,
                order: Literal["asc", "desc"] = "desc") -> Response:
    """Events of your tenant, newest first by default, filtered as `agentaudit log`; follow
    `next_cursor` for the next page."""
    start, end = _period(since, until)
    if cursor is not None and not _CURSOR.match(cursor):
        raise ApiError(400, "cursor: not a cursor returned by this API")
    q = EventQuery(tenant=principal.tenant, agent=agent, event_types=_event_types(event_type),
                   since=start, until=end, trace_id=trace_id, session_id=session_id,
                   user_id=user_id, task_id=task_id, errors_only=errors_only, limit=limit,
                   newest_first=order == "desc", cursor=cursor)
    collector: Collector = request.app.state.collector
    with collector.pool.store() as store:
        page = store.query(q)
    return _json({"data": [event_to_dict(ev) for ev in page.data],
                  "next_cursor": page.next_cursor})


@router.get("/v1/traces/{trace_id}", summary="Trace a task", response_model=None,
            responses={200: {"model": TraceView},
                       404: {"model": ErrorBody, "description": "No such trace in your tenant"},
                       **_ERRORS})
def get_trace(request: Request, principal: Reader,
              trace_id: Annotated[str, Path(max_length=1024)]) -> Response:
    """Every event of a trace (by trace id or task id) as a timeline and a parent/child graph."""
    collector: Collector = request.app.state.collector
    with collector.pool.store() as store:
        events = store.trace_events(principal.tenant, trace_id)
    if not events:
        raise ApiError(404, "no such trace")
    return _json({"trace_id": trace_id, "summary": trace_summary(events),
                  "timeline": [row.to_dict() for row in timeline(events)],
                  "graph": trace_graph(events)})


@router.get("/v1/agents", summary="Agents and their activity", response_model=None,
            responses={200: {"model": AgentsPage}, **_ERRORS})
def list_agents(request: Request, principal: Reader,
                since: Annotated[str | None, Query(max_length=64, description=(
                    "From this time on (default 7d ago); forms as for /v1/events"))] = "7d",
                until: Until = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """Per agent: events, invocations, errors, tool calls, average tool latency, cost, last seen
    (computed in SQL)."""
    start, end = _period(since, until)
    collector: Collector = request.app.state.collector
    with collector.pool.store() as store:
        rows = store.aggregate("agents", principal.tenant, start, end, None, limit)
    return _json({"data": rows})


@router.get("/v1/stream", summary="Live feed (Server-Sent Events)", response_model=None,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "`event: audit` messages whose `data` is JSON with "
                                            "timestamp, agent, type, action, status, duration, "
                                            "trace_id, event_id; a `: heartbeat` comment every "
                                            "15 s"},
                       **_ERRORS})
async def live_stream(request: Request, principal: Reader, agent: Text = None,
                      event_type: Types = None, errors_only: bool = False) -> StreamingResponse:
    """New events of your tenant as they are committed."""
    collector: Collector = request.app.state.collector
    sub = Subscription(principal.tenant, agent, _event_types(event_type), errors_only)
    return StreamingResponse(stream(collector.broadcaster, sub, collector.settings.sse_heartbeat),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _backend(url: str) -> str:
    from agentaudit.store import sqlite_path

    return "sqlite" if sqlite_path(url) is not None else "postgresql"


@router.get("/healthz", summary="Liveness", tags=["operations"], response_model=None,
            responses={200: {"model": Health}})
def healthz(request: Request) -> Response:
    """`ok` while the collector accepts work; needs no key."""
    from agentaudit import __version__

    collector: Collector = request.app.state.collector
    return _json({"status": "ok", "version": __version__, "backend": _backend(collector.settings.db),
                  "auth": not collector.settings.auth_disabled,
                  "queue_events": collector.writer.pending_events, "time": time.time(),
                  "worker": getattr(request.app.state, "worker", 0)})


@router.get("/metrics", summary="Prometheus metrics", tags=["operations"], response_model=None,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format 0.0.4"}, **_ERRORS})
def metrics(request: Request, principal: Reader) -> Response:
    """Ingested, rejected and duplicate events, queue depth, commit latency (needs a read key
    unless authentication is disabled)."""
    collector: Collector = request.app.state.collector
    return Response(collector.metrics.render(),
                    media_type="text/plain; version=0.0.4; charset=utf-8")
