"""Spans to audit events: one builder per kind of span (docs/otlp-mapping.md is the table)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agentaudit.events import AuditEvent, EventType
from agentaudit.ingest._otlp_spans import (
    SpanView,
    handoff_agents,
    langgraph_agent,
    langgraph_meta,
    langgraph_node,
    span_event_id,
)

__all__ = ["Resolver", "build_events"]

AGENT_KEYS = ("agent.name", "gen_ai.agent.name")
SESSION_KEYS = ("session.id", "gen_ai.conversation.id")
USER_KEYS = ("user.id", "enduser.id")
MODEL_KEYS = ("llm.model_name", "gen_ai.response.model", "gen_ai.request.model")
PROVIDER_KEYS = ("llm.provider", "gen_ai.provider.name", "llm.system", "gen_ai.system")
PROMPT_KEYS = ("llm.token_count.prompt", "gen_ai.usage.input_tokens",
               "gen_ai.usage.prompt_tokens")
COMPLETION_KEYS = ("llm.token_count.completion", "gen_ai.usage.output_tokens",
                   "gen_ai.usage.completion_tokens")
TOOL_KEYS = ("tool.name", "gen_ai.tool.name")
ARGUMENT_KEYS = ("gen_ai.tool.call.arguments", "input.value")
RESULT_KEYS = ("gen_ai.tool.call.result", "output.value")
INPUT_KEYS = ("input.value", "gen_ai.input.messages", "gen_ai.prompt")
OUTPUT_KEYS = ("output.value", "gen_ai.output.messages", "gen_ai.completion")
_MAX_NAME = 1024
_MAX_STACK = 16_384
_MAX_NS = 32503680000 * 10**9  # year 3000
_MAX_DEPTH = 64  # deeper JSON in an attribute stays a string
_OP_PREFIXES = ("invoke_agent ", "create_agent ", "execute_tool ", "agent_handoff ")
_OP_NAMES = frozenset(p.strip() for p in _OP_PREFIXES)


class Resolver:
    """Answers questions about a span's ancestors among the spans of one request."""

    def __init__(self, views: list[SpanView]) -> None:
        self._by_id = {(v.trace_id, v.span_id): v for v in views}

    def ancestors(self, v: SpanView) -> list[SpanView]:
        out: list[SpanView] = []
        seen = {v.span_id}
        pid = v.parent_id
        while pid and pid not in seen and (p := self._by_id.get((v.trace_id, pid))):
            out.append(p)
            seen.add(pid)
            pid = p.parent_id
        return out

    def parent_event_id(self, v: SpanView) -> str | None:
        """The primary event of the nearest mapped ancestor; a parent outside the request is
        assumed mapped (its id is computable without seeing it)."""
        pid = v.parent_id
        seen = {v.span_id}
        while pid and pid not in seen:
            p = self._by_id.get((v.trace_id, pid))
            if p is None or p.kind is not None:
                return span_event_id(v.trace_id, pid)
            seen.add(pid)
            pid = p.parent_id
        return None

    def agent_name(self, v: SpanView, above: list[SpanView]) -> str:
        """The span's own agent, else the nearest agent span ``above`` it, else its LangGraph
        top-level node, else service.name."""
        own = own_agent(v)
        if own:
            return own
        for p in above:
            if p.kind == "agent" and (name := own_agent(p)):
                return name
        return _clip(langgraph_agent(v.attrs) or v.service or "unknown_service")

    def merge_repeated_agents(self) -> None:
        """A LangGraph subgraph used as a node makes two spans of the same node (the node and
        the subgraph's run), both read as agents: the inner one becomes a chain step, so that
        the node is one agent invocation."""
        for v in self._by_id.values():
            if v.kind != "agent" or langgraph_node(v.attrs) is None or v.parent_id is None:
                continue
            parent = self._by_id.get((v.trace_id, v.parent_id))
            if (parent is not None and parent.kind == "agent" and parent.name == v.name
                    and _graph_place(parent) == _graph_place(v)):
                v.kind = "chain"

    @staticmethod
    def inherited(v: SpanView, above: list[SpanView], keys: tuple[str, ...]) -> str | None:
        """The first of ``keys`` set on the span or, failing that, on its nearest ancestor."""
        for s in (v, *above):
            if (value := first(s.attrs, keys)) is not None:
                return _clip(str(value))
        return None


def _graph_place(v: SpanView) -> tuple[Any, Any]:
    """Where in a LangGraph run a span is: its node and checkpoint namespace."""
    meta = langgraph_meta(v.attrs) or {}
    return meta.get("langgraph_node"), meta.get("langgraph_checkpoint_ns")


def own_agent(v: SpanView) -> str | None:
    """The agent a span names for itself (agent spans fall back to graph.node.id, span name)."""
    name = first(v.attrs, AGENT_KEYS)
    if name is None and v.kind == "agent":
        stripped = _strip_op(v.name)
        name = v.attrs.get("graph.node.id") or (None if stripped in _OP_NAMES else stripped)
    return _clip(str(name)) if name not in (None, "") else None


def build_events(v: SpanView, ctx: Resolver, tenant: str) -> list[AuditEvent]:
    """Every audit event of one mapped span, primary event first."""
    if v.kind is None:
        return []
    base = _base(v, ctx, tenant)
    events = _BUILDERS[v.kind](v, base)
    events.extend(_errors(v, base, events[0]))
    return events


def _base(v: SpanView, ctx: Resolver, tenant: str) -> dict[str, Any]:
    tags = {"otel.span_id": v.span_id, "otel.span_name": v.name[:200], "otel.kind": v.kind or ""}
    if v.service:
        tags["otel.service.name"] = v.service
    if v.scope:
        tags["otel.scope"] = v.scope[:200]
    if (provider := first(v.attrs, PROVIDER_KEYS)) is not None:
        tags["gen_ai.provider"] = str(provider)[:200]
    version = v.resource.get("service.version")
    above = ctx.ancestors(v)
    return {
        "tenant": tenant, "trace_id": v.trace_id, "agent_name": ctx.agent_name(v, above),
        "session_id": ctx.inherited(v, above, SESSION_KEYS),
        "user_id": ctx.inherited(v, above, USER_KEYS),
        "source": v.service, "version": _clip(str(version)) if version is not None else None,
        "tags": tags, "parent_event_id": ctx.parent_event_id(v),
    }


def _event(v: SpanView, base: dict[str, Any], role: str, event_type: str,
           **fields: Any) -> AuditEvent:
    data = {**base, "tags": dict(base["tags"]), **fields}
    if role != "span" and "parent_event_id" not in fields:
        data["parent_event_id"] = span_event_id(v.trace_id, v.span_id)
    return AuditEvent(event_id=span_event_id(v.trace_id, v.span_id, role),
                      event_type=event_type, **data)


def _times(v: SpanView) -> tuple[float, float, float | None]:
    end_ns = v.end_ns or v.start_ns
    duration = (end_ns - v.start_ns) / 1e6 if v.end_ns else None
    return v.start_ns / 1e9, end_ns / 1e9, duration


def _agent(v: SpanView, base: dict[str, Any]) -> list[AuditEvent]:
    start, _end, duration = _times(v)
    params = _params(payload(v.attrs, INPUT_KEYS), "input")
    handed_from = v.attrs.get("graph.node.parent_id")
    if handed_from:
        params = {**(params or {}), "handoff_from": str(handed_from)}
    return [_event(v, base, "span", EventType.INVOCATION, action=_clip(v.name) or "invoke_agent",
                   params=params, result=payload(v.attrs, OUTPUT_KEYS), timestamp=start,
                   duration_ms=duration, model=_model(v))]


def _tool(v: SpanView, base: dict[str, Any]) -> list[AuditEvent]:
    start, end, duration = _times(v)
    name = _clip(str(first(v.attrs, TOOL_KEYS) or _strip_op(v.name) or v.kind))
    args = payload(v.attrs, ARGUMENT_KEYS)
    if args is None and (schema := payload(v.attrs, ("tool.parameters",))) is not None:
        args = {"tool_parameters": schema}
    events = [_event(v, base, "span", EventType.TOOL_CALL, action=name,
                     params=_params(args, "arguments"), timestamp=start)]
    if not v.error:
        events.append(_event(v, base, "result", EventType.TOOL_RESULT, action=name,
                             result=payload(v.attrs, RESULT_KEYS), timestamp=end,
                             duration_ms=duration))
    return events


def _handoff(v: SpanView, base: dict[str, Any]) -> list[AuditEvent]:
    start, _end, duration = _times(v)
    src, dst = handoff_agents(v)
    src = _clip(src) if src else base["agent_name"]
    params = {"from_agent": src, "to_agent": _clip(dst) if dst else None}
    return [_event(v, base, "span", EventType.HANDOFF, agent_name=src,
                   action=_clip(f"handoff to {dst}" if dst else "handoff"), params=params,
                   timestamp=start, duration_ms=duration)]


def _llm(v: SpanView, base: dict[str, Any]) -> list[AuditEvent]:
    _start, end, duration = _times(v)
    prompt, completion = count(v.attrs, PROMPT_KEYS), count(v.attrs, COMPLETION_KEYS)
    total = count(v.attrs, ("llm.token_count.total",))
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    cost = _cost(v.attrs.get("llm.cost.total"))
    usage = {"model": _model(v), "prompt_tokens": prompt, "completion_tokens": completion,
             "token_count": total, "cost_usd": cost, "timestamp": end}
    action = "embeddings" if v.kind == "embedding" else "llm_response"
    events = [_event(v, base, "span", EventType.LLM_RESPONSE, action=action,
                     params=_params(payload(v.attrs, INPUT_KEYS), "input"),
                     result=payload(v.attrs, OUTPUT_KEYS), duration_ms=duration, **usage)]
    if total is not None:
        events.append(_event(v, base, "usage", EventType.TOKEN_USAGE, action="token_usage", **usage))
    return events


def _decision(v: SpanView, base: dict[str, Any]) -> list[AuditEvent]:
    start, _end, duration = _times(v)
    name = v.attrs.get("gen_ai.guardrail.name") or _strip_op(v.name) or v.kind
    result = payload(v.attrs, OUTPUT_KEYS)
    if "gen_ai.guardrail.triggered" in v.attrs:
        result = {"triggered": v.attrs["gen_ai.guardrail.triggered"], "output": result}
    return [_event(v, base, "span", EventType.DECISION, action=_clip(f"{v.kind}: {name}"),
                   params=_params(payload(v.attrs, INPUT_KEYS), "input"), result=result,
                   timestamp=start, duration_ms=duration)]


def _reasoning(v: SpanView, base: dict[str, Any]) -> list[AuditEvent]:
    start, _end, duration = _times(v)
    return [_event(v, base, "span", EventType.REASONING, action=_clip(v.name) or "chain",
                   params=_params(payload(v.attrs, INPUT_KEYS), "input"),
                   result=payload(v.attrs, OUTPUT_KEYS), timestamp=start, duration_ms=duration)]


def _errors(v: SpanView, base: dict[str, Any], primary: AuditEvent) -> list[AuditEvent]:
    """One agent.error per ``exception`` span event; else one for an ERROR status."""
    _start, end, _duration = _times(v)
    action, parent = primary.action, primary.event_id
    out = []
    for i, (when_ns, a) in enumerate(v.exceptions):
        stack = a.get("exception.stacktrace")
        out.append(_event(
            v, base, f"exception:{i}", EventType.ERROR, action=action, parent_event_id=parent,
            error_type=_clip(str(a.get("exception.type") or "Exception")),
            error=str(a.get("exception.message") or v.status_message or ""),
            params={"stacktrace": str(stack)[-_MAX_STACK:]} if stack else None,
            timestamp=when_ns / 1e9 if 0 < when_ns < _MAX_NS else end))
    if v.error and not out:
        error_type = v.attrs.get("error.type") or "SpanError"
        result = payload(v.attrs, RESULT_KEYS) if v.kind == "tool" else None
        out.append(_event(v, base, "error", EventType.ERROR, action=action, parent_event_id=parent,
                          error_type=_clip(str(error_type)),
                          error=v.status_message or f"{error_type}", result=result,
                          timestamp=end))
    return out


_BUILDERS: dict[str, Callable[[SpanView, dict[str, Any]], list[AuditEvent]]] = {
    "agent": _agent, "tool": _tool, "retriever": _tool, "reranker": _tool,
    "handoff": _handoff, "llm": _llm, "embedding": _llm, "guardrail": _decision,
    "evaluator": _decision, "chain": _reasoning,
}


def first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        value = attrs.get(k)
        if value is not None and value != "":
            return value
    return None


def payload(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first present value, JSON-decoded when it is a JSON object or array in a string."""
    value = first(attrs, keys)
    if isinstance(value, str) and value[:1] in ("{", "[") and value[-1:] in ("}", "]"):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return value
        if len(value) <= 2 * _MAX_DEPTH or _depth_within(decoded, _MAX_DEPTH):
            return decoded
        return value
    return value


def _depth_within(value: Any, limit: int) -> bool:
    """True when ``value`` nests at most ``limit`` containers deep (checked without recursion)."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        level = [c for x in level
                 for c in (x.values() if isinstance(x, dict) else x if isinstance(x, list) else ())
                 if isinstance(c, dict | list)]
        if not level:
            return True
    return False


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value < 1e12 else None  # NaN fails both comparisons


def count(attrs: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """A token count as a non-negative int (OTLP may carry it as int, double or string)."""
    for k in keys:
        value = attrs.get(k)
        if isinstance(value, bool) or value is None:
            continue
        try:
            n = int(float(value)) if isinstance(value, str) else int(value)
        except (TypeError, ValueError, OverflowError):
            continue
        if 0 <= n < 2**53:
            return n
    return None


def _model(v: SpanView) -> str | None:
    model = first(v.attrs, MODEL_KEYS)
    return _clip(str(model)) if model is not None else None


def _params(value: Any, key: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return value if isinstance(value, dict) else {key: value}


def _strip_op(name: str) -> str:
    for prefix in _OP_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):].strip()
    return name


def _clip(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 1] + "…"

