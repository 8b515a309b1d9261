"""Reading OTLP spans: ids, attributes, and which convention says what kind of step a span is.

The classification table lives here (``classify``); docs/otlp-mapping.md describes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from agentaudit.integrity._hash import short_sha256

__all__ = ["SpanView", "any_value", "attributes", "classify", "handoff_agents", "langgraph_agent",
           "langgraph_meta", "langgraph_node", "langgraph_node_kind", "read_spans",
           "span_event_id"]

OI_KIND = "openinference.span.kind"
GENAI_OP = "gen_ai.operation.name"
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_HANDOFF_NAME = re.compile(r"^handoff to (.+)$", re.IGNORECASE)
# handoff tools of langgraph-supervisor / langgraph-swarm: transfer_to_X, transfer_back_to_X
_TRANSFER_TOOL = re.compile(r"^transfer_(?:back_)?to_(.+)$")

# openinference.span.kind -> our kind (None: recognised but not mappable)
_OI_KINDS: dict[str, str | None] = {
    "AGENT": "agent", "CHAIN": "chain", "LLM": "llm", "TOOL": "tool", "RETRIEVER": "retriever",
    "EMBEDDING": "embedding", "RERANKER": "reranker", "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator", "PROMPT": "chain", "UNKNOWN": None,
}
# gen_ai.operation.name -> our kind
_GENAI_OPS: dict[str, str] = {
    "invoke_agent": "agent", "create_agent": "agent", "execute_tool": "tool", "chat": "llm",
    "text_completion": "llm", "generate_content": "llm", "response": "llm",
    "embeddings": "embedding", "retrieval": "retriever", "invoke_workflow": "chain",
    "handoff": "handoff", "agent_handoff": "handoff", "guardrail_check": "guardrail",
}
# attributes that make an un-typed span a model call (older GenAI instrumentations)
_GENAI_LLM_HINTS = ("gen_ai.request.model", "gen_ai.response.model", "gen_ai.system",
                    "gen_ai.provider.name")


def span_event_id(trace_id: str, span_id: str, role: str = "span") -> str:
    """The event id of ``role`` of span ``span_id`` (hex) in trace ``trace_id`` (hex).

    A UUIDv8 (RFC 9562) holding the first 122 bits of sha256(``otlp:trace:span:role``): the same
    span always yields the same ids, so a retried export stores nothing twice, and a child can
    name its parent's primary event (role ``span``) without having seen the parent.
    """
    h = short_sha256(f"otlp:{trace_id}:{span_id}:{role}".encode()).hexdigest()
    # version nibble := 8; the variant nibble's top bits := 10 (8, 9, a or b)
    return f"{h[:8]}-{h[8:12]}-8{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


@dataclass(slots=True)
class SpanView:
    """One span as plain Python values, with the resource and scope it came under."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    attrs: dict[str, Any]
    start_ns: int
    end_ns: int
    error: bool
    status_message: str
    exceptions: list[tuple[int, dict[str, Any]]]
    service: str | None
    resource: dict[str, Any]
    scope: str
    kind: str | None = None
    problem: str | None = None

    def label(self) -> str:
        return f"span {self.span_id or '?'} ({self.name[:80]!r}) of trace {self.trace_id or '?'}"


def any_value(v: AnyValue) -> Any:
    """The Python value of an OTLP ``AnyValue`` (bytes become hex)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in kvs:
        out[kv.key] = any_value(kv.value)
    return out


def read_spans(request: ExportTraceServiceRequest) -> list[SpanView]:
    """Every span of ``request``, classified; unusable ones carry a ``problem``."""
    views: list[SpanView] = []
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        service = resource.get("service.name")
        service = str(service) if service not in (None, "") else None
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for span in ss.spans:
                views.append(_view(span, resource, service, scope))
    return views


def _view(span: Span, resource: dict[str, Any], service: str | None, scope: str) -> SpanView:
    parent = span.parent_span_id
    v = SpanView(
        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
        parent_id=parent.hex() if parent and any(parent) else None,
        name=span.name, attrs=attributes(span.attributes),
        start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
        error=span.status.code == Status.STATUS_CODE_ERROR, status_message=span.status.message,
        exceptions=[(e.time_unix_nano, attributes(e.attributes)) for e in span.events
                    if e.name == "exception"],
        service=service, resource=resource, scope=scope)
    v.problem = _id_problem(span) or _time_problem(v)
    if v.problem is None:
        v.kind, v.problem = classify(v.name, v.attrs)
    return v


def _id_problem(span: Span) -> str | None:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"trace id must be 16 bytes and not all zero (got {len(span.trace_id)} bytes)"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span id must be 8 bytes and not all zero (got {len(span.span_id)} bytes)"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"parent span id must be 8 bytes (got {len(span.parent_span_id)} bytes)"
    return None


def _time_problem(v: SpanView) -> str | None:
    if not 0 < v.start_ns < 32503680000 * 10**9:
        return "start time is missing or not between 1970 and 3000"
    if v.end_ns and v.end_ns < v.start_ns:
        return "end time is before start time"
    return None


def classify(name: str, attrs: dict[str, Any]) -> tuple[str | None, str | None]:
    """(kind, None) for a mappable span, else (None, why not). See docs/otlp-mapping.md."""
    op = attrs.get(GENAI_OP)
    op = op.strip().lower() if isinstance(op, str) else None
    oi = attrs.get(OI_KIND)
    oi = oi.strip().upper() if isinstance(oi, str) else None
    if (op in ("handoff", "agent_handoff") or "gen_ai.handoff.to_agent" in attrs
            or (oi in (None, "TOOL") and _HANDOFF_NAME.match(name))
            or (oi == "TOOL" and _TRANSFER_TOOL.match(str(attrs.get("tool.name") or name)))):
        return "handoff", None
    if oi in ("CHAIN", "AGENT") and (graph_kind := langgraph_node_kind(name, attrs)):
        return graph_kind, None
    if oi is not None:
        if oi not in _OI_KINDS:
            return None, f"unknown {OI_KIND} {oi!r}"
        kind = _OI_KINDS[oi]
        return (kind, None) if kind else (None, f"{OI_KIND} is {oi}")
    if op is not None:
        if op in _GENAI_OPS:
            return _GENAI_OPS[op], None
        return None, f"unknown {GENAI_OP} {op!r}"
    if any(k in attrs for k in _GENAI_LLM_HINTS):
        return "llm", None
    return None, f"not an agent span (no {OI_KIND} or {GENAI_OP})"


def langgraph_meta(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The LangGraph metadata of a LangChain span (OpenInference ``metadata`` JSON with
    ``langgraph_node``), or None."""
    raw = attrs.get("metadata")
    if not (isinstance(raw, str) and '"langgraph_node"' in raw):
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    node = meta.get("langgraph_node") if isinstance(meta, dict) else None
    return meta if isinstance(node, str) and node else None


def langgraph_node(attrs: dict[str, Any]) -> str | None:
    """The LangGraph node a span ran in."""
    meta = langgraph_meta(attrs)
    return str(meta["langgraph_node"]) if meta else None


def langgraph_agent(attrs: dict[str, Any]) -> str | None:
    """The top-level graph node a LangGraph span runs under: the first segment of
    ``langgraph_checkpoint_ns`` (``billing:…|agent:…`` → ``billing``), else its node."""
    meta = langgraph_meta(attrs)
    if meta is None:
        return None
    ns = meta.get("langgraph_checkpoint_ns")
    top = ns.split("|", 1)[0].split(":", 1)[0] if isinstance(ns, str) and ns else ""
    node = top or str(meta["langgraph_node"])
    return None if node == "tools" or node.startswith("__") else node


def langgraph_node_kind(name: str, attrs: dict[str, Any]) -> str | None:
    """For the span of a LangGraph node itself (its name is its ``langgraph_node``): ``agent``
    for a node of the top-level graph, ``chain`` for a node nested in a subgraph (a step of the
    top-level node's agent, such as the prebuilt ReAct agent's ``agent``/``model`` node). None
    for other spans, the prebuilt ToolNode ``tools`` and LangGraph's ``__start__``-style
    nodes."""
    meta = langgraph_meta(attrs)
    if meta is None or name != meta["langgraph_node"] or name == "tools" or name.startswith("__"):
        return None
    ns = meta.get("langgraph_checkpoint_ns")
    return "chain" if isinstance(ns, str) and "|" in ns else "agent"


def handoff_agents(v: SpanView) -> tuple[str | None, str | None]:
    """(from_agent, to_agent) as the span states them (either may be unknown)."""
    a = v.attrs
    tool = _TRANSFER_TOOL.match(str(a.get("tool.name") or v.name))
    if tool and a.get(OI_KIND) == "TOOL" and "gen_ai.handoff.to_agent" not in a:
        return _text(a.get("gen_ai.handoff.from_agent")), tool.group(1).strip()
    src = _text(a.get("gen_ai.handoff.from_agent"))
    dst = _text(a.get("gen_ai.handoff.to_agent"))
    m = _HANDOFF_NAME.match(v.name)
    if a.get(OI_KIND) is not None or m:
        # OpenInference (openai-agents): "handoff to X", input.value = from, output.value = to
        src = src or _text(a.get("input.value"))
        dst = dst or _text(a.get("output.value"))
    if dst is None and m:
        dst = m.group(1).strip()
    return src, dst


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)
