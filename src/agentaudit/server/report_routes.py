"""``GET /v1/reports/{type}``: the reports of ``agentaudit report`` over HTTP.

The parameters are the CLI's: the period (``from``/``since``, ``to``/``until``), ``agent``,
``tz``, ``date`` (daily), ``top`` (cost), ``trace_id`` (forensics) and ``format`` (json by
default; md, html or csv). The tenant is the read key's. Policies and price tables are the
server's built-in ones: a client never names a file on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from agentaudit.exceptions import ConfigError, NotFound
from agentaudit.query import InvalidTime, parse_time
from agentaudit.server.collector import Collector
from agentaudit.server.errors import ApiError
from agentaudit.server.models import ErrorBody
from agentaudit.server.query_routes import _ERRORS, Reader

__all__ = ["REPORT_TYPES", "router"]

router = APIRouter(tags=["reports"])

REPORT_TYPES = ("summary", "tool-usage", "errors", "compliance", "daily", "cost", "agent",
                "forensics")
ReportType = Literal["summary", "tool-usage", "errors", "compliance", "daily", "cost", "agent",
                     "forensics"]
_MEDIA = {"json": "application/json", "md": "text/markdown; charset=utf-8",
          "html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}
_TIME_HELP = ("30s, 15m, 1h, 7d, 2w ago, an ISO date or datetime (UTC), or epoch seconds")
Time = Annotated[str | None, Query(max_length=64)]
Builder = Callable[[Any], dict[str, Any]]


def _one_of(name: str, a: str | None, b: str | None, other: str) -> str | None:
    if a is not None and b is not None and a != b:
        raise ApiError(400, f"give {name} or {other}, not both")
    return a if a is not None else b


def _builder(kind: str, tenant: str, since: str | None, until: str | None, agent: str | None,
             tz: str | None, date: str | None, top: int, trace_id: str | None) -> Builder:
    """A function of the store that builds report ``kind``; raises ``AuditError`` for bad
    parameters before any store is touched."""
    from agentaudit import reports as r

    if kind in ("daily", "forensics") and (since is not None or until is not None):
        raise ApiError(400, f"the {kind} report takes "
                            f"{'date' if kind == 'daily' else 'trace_id'}, not from/to")
    if kind == "forensics":
        if not trace_id:
            raise ApiError(400, "the forensics report needs trace_id (a trace id or task id)")
        return lambda s: r.forensics_report(s, tenant, trace_id)
    if kind == "daily":
        day = r.parse_date(date, tz)
        policy = r.default_policy()
        return lambda s: r.daily_report(s, tenant, day, tz, agent, policy)
    if date is not None:
        raise ApiError(400, "date applies to the daily report only; use from and to")
    if kind == "agent" and not agent:
        raise ApiError(400, "the agent report needs agent (the agent's name)")
    for name, value in (("from", since), ("to", until)):
        if value is not None:
            try:
                parse_time(value)
            except InvalidTime as e:
                raise ApiError(400, f"{name}: {e}") from e
    period = r.resolve_period(since, until, default="24h", tz=tz)
    if kind == "summary":
        return lambda s: r.summary_report(s, tenant, period, agent)
    if kind == "tool-usage":
        return lambda s: r.tool_usage_report(s, tenant, period, agent)
    if kind == "errors":
        return lambda s: r.errors_report(s, tenant, period, agent)
    if kind == "compliance":
        policy = r.default_policy()
        return lambda s: r.compliance_report(s, tenant, period, agent, policy)
    if kind == "cost":
        prices = r.load_prices(None)
        return lambda s: r.cost_report(s, tenant, period, agent, prices, top)
    assert kind == "agent" and agent
    return lambda s: r.agent_report(s, tenant, agent, period)


@router.get("/v1/reports/{report_type}", summary="A report", response_model=None,
            responses={200: {"content": {m: {"schema": {"type": "object"} if f == "json"
                                                    else {"type": "string"}}
                                         for f, m in _MEDIA.items()},
                             "description": "The report: JSON (its data, the source of truth), "
                                            "Markdown, a self-contained HTML page, or CSV of "
                                            "its main table"},
                       404: {"model": ErrorBody,
                             "description": "No such trace or agent in your tenant"},
                       **_ERRORS})
def get_report(
    request: Request, principal: Reader,
    report_type: Annotated[ReportType, Path(description="summary, tool-usage, errors, "
                                            "compliance, daily, cost, agent or forensics")],
    from_: Annotated[str | None, Query(alias="from", max_length=64, description=(
        f"Start of the period: {_TIME_HELP}. Default: 24h before `to`."))] = None,
    since: Annotated[str | None, Query(max_length=64, description="Same as `from`")] = None,
    to: Annotated[str | None, Query(max_length=64, description=(
        "End of the period (same forms). Default: now."))] = None,
    until: Annotated[str | None, Query(max_length=64, description="Same as `to`")] = None,
    agent: Annotated[str | None, Query(max_length=1024, description=(
        "Only this agent's events; the agent report's subject (required there)"))] = None,
    tz: Annotated[str | None, Query(max_length=64, description=(
        "IANA time zone of day boundaries (Europe/Berlin). Default: UTC"))] = None,
    date: Annotated[str | None, Query(max_length=32, description=(
        "daily only: YYYY-MM-DD, today or yesterday (in tz). Default: today"))] = None,
    top: Annotated[int, Query(ge=1, le=1000, description="cost only: rows per breakdown")] = 10,
    trace_id: Annotated[str | None, Query(max_length=1024, description=(
        "forensics only: a trace id or a task id"))] = None,
    format: Annotated[Literal["json", "md", "html", "csv"], Query(description=(
        "json (default), md, html or csv"))] = "json",
) -> Response:
    """A report over your tenant's events, as `agentaudit report TYPE` prints it. `compliance`
    answers 200 whether or not the period is compliant (see its `compliant` field)."""
    from agentaudit.reports.render import render

    start = _one_of("from", from_, since, "since")
    end = _one_of("to", to, until, "until")
    try:
        build = _builder(report_type, principal.tenant, start, end, agent, tz, date, top,
                         trace_id)
        collector: Collector = request.app.state.collector
        with collector.pool.store() as store:
            data = build(store)
    except NotFound as e:
        raise ApiError(404, str(e)) from e
    except ApiError:
        raise
    except ConfigError as e:  # unreadable time or date, empty period, unknown zone
        raise ApiError(400, str(e)) from e
    return Response(render(data, format), media_type=_MEDIA[format])
