"""Pydantic models that describe request and response bodies in /openapi.json.

They document the API; they are not on the hot path: ingest bodies are parsed with msgspec and
validated by ``agentaudit.events``, and responses are encoded with msgspec.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AgentRow", "AgentsPage", "ErrorBody", "EventIn", "EventOut", "EventPage", "Health",
    "IngestResult", "KeyCreate", "KeyCreated", "KeyInfo", "KeyList", "OtlpResponse", "OtlpStatus",
    "Rejection", "TraceView",
]

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_TENANT = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


_TYPE = (r"^(agent\.(invocation|reasoning|tool_call|tool_result|decision|llm_response|error|"
         r"handoff|human_intervention|token_usage|feedback|security|compliance)"
         r"|audit\.[a-z][a-z0-9_.]{0,63})$")
_OPTIONAL_NOT_NULL = ("event_id", "timestamp", "tenant")


def _not_nullable(schema: dict[str, Any]) -> None:
    """Fields that may be omitted but not sent as null (the collector fills them in)."""
    for name in _OPTIONAL_NOT_NULL:
        schema["properties"][name].pop("default", None)


def _text(description: str | None = None) -> Any:
    return Field(None, max_length=1024, description=description)


class EventIn(BaseModel):
    """An audit event as sent to ``POST /v1/events`` (see docs/formats.md). Omitted
    ``event_id`` and ``timestamp`` are set by the collector; ``tenant`` is the API key's."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_not_nullable)

    event_type: str = Field(pattern=_TYPE, description="agent.* (EventType) or audit.* type",
                            examples=["agent.tool_call"])
    agent_name: str = Field(min_length=1, max_length=1024)
    event_id: str = Field(None, pattern=_UUID,  # type: ignore[assignment]
                          description="UUID (v7 preferred); ingest is idempotent on it")
    timestamp: float = Field(None, gt=0, lt=32503680000,  # type: ignore[assignment]
                             description="UTC epoch seconds")
    tenant: str = Field(None, pattern=_TENANT,  # type: ignore[assignment]
                        description="must be the API key's tenant when given")
    task_id: str | None = _text()
    session_id: str | None = _text()
    action: str | None = _text()
    params: dict[str, Any] | None = None
    result: Any = None
    reasoning: str | None = None
    confidence: float | None = Field(None, ge=0, le=1)
    source: str | None = _text()
    parent_event_id: str | None = _text()
    trace_id: str | None = _text()
    duration_ms: float | None = Field(None, ge=0, le=1e12)
    token_count: int | None = Field(None, ge=0, lt=2**53)
    model: str | None = _text()
    version: str | None = _text()
    error: str | None = None
    error_type: str | None = _text()
    user_id: str | None = _text()
    prompt_tokens: int | None = Field(None, ge=0, lt=2**53)
    completion_tokens: int | None = Field(None, ge=0, lt=2**53)
    cost_usd: float | None = Field(None, ge=0, le=1e12)
    tags: dict[str, str] | None = None
    tier: Literal["debug", "info", "compliance", "critical"] | None = None


class EventOut(BaseModel):
    """A stored event: every field by its seed name, ``seq`` and ``leaf_hash`` set by the store."""

    event_type: str
    agent_name: str
    event_id: str
    task_id: str | None
    session_id: str | None
    action: str | None
    params: dict[str, Any] | None
    result: Any
    reasoning: str | None
    confidence: float | None
    source: str | None
    parent_event_id: str | None
    trace_id: str | None
    timestamp: float
    duration_ms: float | None
    token_count: int | None
    model: str | None
    version: str | None
    error: str | None
    error_type: str | None
    tenant: str
    user_id: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    tags: dict[str, str] | None
    tier: str | None
    seq: int | None
    leaf_hash: str | None


class EventBatch(BaseModel):
    events: list[EventIn]


class Rejection(BaseModel):
    index: int = Field(description="position of the event in the request body")
    error: str = Field(description="why it was refused, naming the field")


class IngestResult(BaseModel):
    accepted: int = Field(description="events newly stored")
    duplicates: int = Field(description="events already stored (same event_id): stored once")
    rejected: list[Rejection]


class ErrorBody(BaseModel):
    error: str = Field(description="the reason, for people")


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at "
                                                "the end")


class TimelineRowModel(BaseModel):
    time: str
    agent: str
    action: str
    details: str
    duration: float | None
    status: Literal["ok", "warning", "error"]
    event_id: str
    parent_event_id: str | None
    event_type: str
    trace_id: str | None


class GraphNode(BaseModel):
    id: str
    agent: str
    type: str
    action: str
    status: str
    timestamp: str | None


class GraphEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    type: Literal["child", "handoff"]


class TraceGraph(BaseModel):
    trace_ids: list[str]
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    handoff_path: list[str]


class TraceView(BaseModel):
    trace_id: str
    summary: dict[str, Any]
    timeline: list[TimelineRowModel]
    graph: TraceGraph


class AgentRow(BaseModel):
    agent_name: str
    events: int
    invocations: int | None
    errors: int | None
    tool_calls: int | None
    avg_tool_ms: float | None
    cost_usd: float | None
    last_seen: float | None


class AgentsPage(BaseModel):
    data: list[AgentRow]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    backend: str
    auth: bool
    queue_events: int
    time: float
    worker: int = Field(0, description="The worker process that answered (`serve --workers N`: "
                        "0 .. N-1; always 0 with one).")


class KeyCreate(BaseModel):
    scope: Literal["ingest", "read", "admin"]
    name: str | None = Field(None, max_length=200)


class KeyInfo(BaseModel):
    id: str
    tenant: str
    scope: Literal["ingest", "read", "admin"]
    name: str | None
    created_at: float
    revoked_at: float | None


class KeyCreated(KeyInfo):
    key: str = Field(description="the secret: shown once, stored only as a SHA-256 hash")


class KeyList(BaseModel):
    data: list[KeyInfo]


class OtlpPartialSuccess(BaseModel):
    rejectedSpans: str | int = Field(description="int64, a string in protobuf JSON")
    errorMessage: str


class OtlpResponse(BaseModel):
    """ExportTraceServiceResponse (JSON form; protobuf when the request was protobuf)."""

    partialSuccess: OtlpPartialSuccess | None = None


class OtlpStatus(BaseModel):
    """google.rpc.Status (JSON form; protobuf when the request was protobuf)."""

    code: int
    message: str
