"""``GET /v1/alerts``: the alerts of the detection rules in your tenant (docs/detection.md),
for dashboards and on-call tools. Acknowledging is ``agentaudit alerts ack``."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from agentaudit.query import InvalidTime, parse_time
from agentaudit.server.auth import Principal, require
from agentaudit.server.collector import Collector
from agentaudit.server.errors import ApiError
from agentaudit.server.models import ErrorBody

__all__ = ["router"]

router = APIRouter(tags=["alerts"])
_encode = msgspec.json.Encoder().encode


class AlertOut(BaseModel):
    id: int
    tenant: str
    event_id: str = Field(description="the agent.security / agent.compliance event of the firing")
    rule: str
    severity: str
    kind: str
    agent_name: str | None
    trace_id: str | None
    title: str
    explanation: str
    evidence: list[str] = Field(description="ids of the evidence events, the triggering first")
    dedup_key: str
    occurrences: int = Field(description="firings of this incident (repeats included)")
    first_seen: float
    last_seen: float
    status: Literal["open", "acked"]
    acked_by: str | None
    acked_at: float | None
    ack_note: str | None


class AlertPage(BaseModel):
    data: list[AlertOut]


@router.get("/v1/alerts", summary="Alerts of the detection rules", response_model=None,
            responses={200: {"model": AlertPage},
                       400: {"model": ErrorBody, "description": "Invalid parameters"},
                       401: {"model": ErrorBody, "description": "Missing or invalid API key"},
                       403: {"model": ErrorBody, "description": "The key may not read"},
                       501: {"model": ErrorBody,
                             "description": "This store backend does not keep alerts"}})
def list_alerts(request: Request, principal: Annotated[Principal, Depends(require("read"))],
                status: Literal["open", "acked", "all"] = "open",
                since: Annotated[str | None, Query(max_length=64, description=(
                    "Only alerts seen from this time on (forms as for /v1/events)"))] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """Alerts of your tenant, most recently seen first: one per incident."""
    from agentaudit.store._alerts import NOT_SUPPORTED, alerts_of

    try:
        start = parse_time(since) if since is not None else None
    except InvalidTime as e:
        raise ApiError(400, f"since: {e}") from e
    collector: Collector = request.app.state.collector
    with collector.pool.store() as store:
        kept = alerts_of(store)
        if kept is None:
            raise ApiError(501, NOT_SUPPORTED)
        alerts = kept.list_alerts(principal.tenant, None if status == "all" else status, start,
                                  limit)
    return Response(_encode({"data": [a.to_dict() for a in alerts]}),
                    media_type="application/json")
