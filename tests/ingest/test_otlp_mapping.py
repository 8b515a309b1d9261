"""spans_to_events: both conventions, parent links in any order, deterministic ids, rejects."""

from __future__ import annotations

import hashlib
import json
import random
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.trace import Status, StatusCode

from agentaudit.events import AuditEvent, event_to_dict, validate_event
from agentaudit.exceptions import BadRequest
from agentaudit.ingest import (
    JSON,
    _otlp_map,
    _otlp_spans,
    decode_otlp_request,
    encode_otlp_json,
    span_event_id,
    spans_to_events,
)
from agentaudit.store import open_store

if TYPE_CHECKING:
    from tests.ingest.conftest import SpanRecorder

MAPPING_MD = Path(__file__).resolve().parents[2] / "docs" / "otlp-mapping.md"
OI = "openinference.span.kind"
OP = "gen_ai.operation.name"


def by_type(events: list[AuditEvent], event_type: str) -> list[AuditEvent]:
    return [e for e in events if e.event_type == event_type]


def one(events: list[AuditEvent], event_type: str, action: str | None = None) -> AuditEvent:
    found = [e for e in by_type(events, event_type) if action is None or e.action == action]
    assert len(found) == 1, (event_type, action, [e.action for e in by_type(events, event_type)])
    return found[0]


def openinference_run(recorder: SpanRecorder) -> None:
    """A triage agent calls a tool and a model, hands off to billing, whose tool raises."""
    t = recorder.tracer
    with t.start_as_current_span("Triage", attributes={
            OI: "AGENT", "agent.name": "Triage", "graph.node.id": "Triage",
            "input.value": "refund order A1", "session.id": "sess-1", "user.id": "alice"}):
        with t.start_as_current_span("lookup_customer", attributes={
                OI: "TOOL", "tool.name": "lookup_customer", "input.value": '{"email": "a@b.c"}',
                "output.value": '{"customer_id": "C-1"}',
                "tool.parameters": '{"type": "object"}'}):
            pass
        with t.start_as_current_span("response", attributes={
                OI: "LLM", "llm.model_name": "gpt-4o", "llm.token_count.prompt": "100",
                "llm.token_count.completion": 20, "llm.token_count.total": 120,
                "llm.provider": "openai", "output.value": "handing off"}):
            pass
        with t.start_as_current_span("input_guardrail", attributes={OI: "GUARDRAIL"}):
            pass
        with t.start_as_current_span("handoff to Billing", attributes={
                OI: "TOOL", "input.value": "Triage", "output.value": "Billing"}):
            pass
        with t.start_as_current_span("Billing", attributes={
                OI: "AGENT", "agent.name": "Billing", "graph.node.parent_id": "Triage"}):
            with t.start_as_current_span("turn", attributes={OI: "CHAIN"}):
                with t.start_as_current_span("issue_refund", attributes={
                        OI: "TOOL", "tool.name": "issue_refund",
                        "input.value": '{"order_id": "A1"}'}) as span:
                    span.record_exception(RuntimeError("payment gateway down"))
                    span.set_status(Status(StatusCode.ERROR, "payment gateway down"))


def test_openinference_spans(recorder: SpanRecorder) -> None:
    openinference_run(recorder)
    events, rejected = spans_to_events(recorder.request(), "acme")
    assert rejected == []
    ids = {e.event_id: e for e in events}
    triage = one(events, "agent.invocation", "Triage")
    billing = one(events, "agent.invocation", "Billing")
    assert triage.parent_event_id is None and triage.agent_name == "Triage"
    assert triage.params == {"input": "refund order A1"}
    assert (triage.session_id, triage.user_id, triage.tenant) == ("sess-1", "alice", "acme")
    assert billing.parent_event_id == triage.event_id
    assert billing.params == {"handoff_from": "Triage"}

    call = one(events, "agent.tool_call", "lookup_customer")
    result = one(events, "agent.tool_result", "lookup_customer")
    assert call.params == {"email": "a@b.c"} and result.result == {"customer_id": "C-1"}
    assert call.parent_event_id == triage.event_id and result.parent_event_id == call.event_id
    assert call.agent_name == result.agent_name == "Triage"
    assert result.duration_ms is not None and result.duration_ms >= 0
    assert result.timestamp >= call.timestamp
    assert call.session_id == "sess-1" and call.user_id == "alice"  # inherited from the agent

    llm = one(events, "agent.llm_response")
    usage = one(events, "agent.token_usage")
    assert (llm.model, llm.prompt_tokens, llm.completion_tokens, llm.token_count) == (
        "gpt-4o", 100, 20, 120)
    assert llm.result == "handing off" and llm.agent_name == "Triage"
    assert usage.parent_event_id == llm.event_id and usage.token_count == 120
    assert llm.tags is not None and llm.tags["gen_ai.provider"] == "openai"

    handoff = one(events, "agent.handoff")
    assert handoff.params == {"from_agent": "Triage", "to_agent": "Billing"}
    assert handoff.agent_name == "Triage" and handoff.action == "handoff to Billing"
    assert handoff.parent_event_id == triage.event_id

    guard = one(events, "agent.decision")
    assert guard.action == "guardrail: input_guardrail" and guard.agent_name == "Triage"

    turn = one(events, "agent.reasoning", "turn")
    refund = one(events, "agent.tool_call", "issue_refund")
    error = one(events, "agent.error")
    assert turn.parent_event_id == billing.event_id and refund.parent_event_id == turn.event_id
    assert refund.agent_name == error.agent_name == "Billing"
    assert (error.error_type, error.error) == ("RuntimeError", "payment gateway down")
    assert "payment gateway down" in error.params["stacktrace"]
    assert error.parent_event_id == refund.event_id and error.action == "issue_refund"
    assert by_type(events, "agent.tool_result") == [result]  # the failed tool has no result
    assert all(e.parent_event_id is None or e.parent_event_id in ids for e in events)


def test_resource_and_trace_fields(recorder: SpanRecorder) -> None:
    openinference_run(recorder)
    events, _ = spans_to_events(recorder.request(), "default")
    span = recorder.spans()[0]
    trace_hex = format(span.context.trace_id, "032x")
    for e in events:
        assert e.trace_id == trace_hex
        assert (e.source, e.version) == ("support-bot", "1.2.3")
        assert e.tags is not None and e.tags["otel.service.name"] == "support-bot"
        assert e.tags["otel.scope"] == "tests.ingest"
        assert re.fullmatch(r"[0-9a-f]{16}", e.tags["otel.span_id"])
        validate_event(e)
    first = min(recorder.spans(), key=lambda s: s.start_time or 0)
    root = one(events, "agent.invocation", "Triage")
    assert root.timestamp == pytest.approx((first.start_time or 0) / 1e9)


def genai_run(recorder: SpanRecorder) -> None:
    t = recorder.tracer
    with t.start_as_current_span("invoke_agent Planner", attributes={
            OP: "invoke_agent", "gen_ai.agent.name": "Planner",
            "gen_ai.conversation.id": "conv-9", "gen_ai.input.messages": '[{"role": "user"}]'}):
        with t.start_as_current_span("chat gpt-4.1", attributes={
                OP: "chat", "gen_ai.request.model": "gpt-4.1",
                "gen_ai.response.model": "gpt-4.1-2025", "gen_ai.usage.input_tokens": 30,
                "gen_ai.usage.output_tokens": 12, "gen_ai.provider.name": "openai",
                "gen_ai.output.messages": '[{"role": "assistant"}]'}):
            pass
        with t.start_as_current_span("execute_tool search", attributes={
                OP: "execute_tool", "gen_ai.tool.name": "search",
                "gen_ai.tool.call.arguments": '{"q": "flights"}',
                "gen_ai.tool.call.result": '["LH400"]'}):
            pass
        with t.start_as_current_span("execute_tool book", attributes={
                OP: "execute_tool", "gen_ai.tool.name": "book", "error.type": "TimeoutError",
                "gen_ai.tool.call.arguments": "not json"}) as span:
            span.set_status(Status(StatusCode.ERROR, "booking timed out"))
        with t.start_as_current_span("agent_handoff Booker", attributes={
                OP: "agent_handoff", "gen_ai.handoff.from_agent": "Planner",
                "gen_ai.handoff.to_agent": "Booker"}):
            pass
        with t.start_as_current_span("legacy completion", attributes={
                "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-3",
                "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3}):
            pass
        for op in ("embeddings", "retrieval", "invoke_workflow", "create_agent", "handoff"):
            with t.start_as_current_span(op, attributes={OP: op}):
                pass


def test_genai_spans(recorder: SpanRecorder) -> None:
    genai_run(recorder)
    events, rejected = spans_to_events(recorder.request(), "default")
    assert rejected == []
    agent = one(events, "agent.invocation", "invoke_agent Planner")
    assert agent.agent_name == "Planner" and agent.session_id == "conv-9"
    assert agent.params == {"input": [{"role": "user"}]}

    chat, legacy_llm = (e for e in by_type(events, "agent.llm_response")
                        if e.action == "llm_response")
    assert chat.model == "gpt-4.1-2025" and chat.agent_name == "Planner"
    assert legacy_llm.model == "claude-3" and legacy_llm.tags["gen_ai.provider"] == "anthropic"
    assert (chat.prompt_tokens, chat.completion_tokens, chat.token_count) == (30, 12, 42)
    assert chat.result == [{"role": "assistant"}] and chat.parent_event_id == agent.event_id
    legacy = [e for e in by_type(events, "agent.token_usage") if e.model == "claude-3"]
    assert [(e.prompt_tokens, e.completion_tokens) for e in legacy] == [(7, 3)]

    search = one(events, "agent.tool_call", "search")
    assert search.params == {"q": "flights"}
    assert one(events, "agent.tool_result", "search").result == ["LH400"]
    book = one(events, "agent.tool_call", "book")
    assert book.params == {"arguments": "not json"}
    error = one(events, "agent.error")
    assert (error.error_type, error.error, error.parent_event_id) == (
        "TimeoutError", "booking timed out", book.event_id)

    handoffs = by_type(events, "agent.handoff")
    assert [h.params for h in handoffs] == [
        {"from_agent": "Planner", "to_agent": "Booker"},
        {"from_agent": "Planner", "to_agent": None}]  # bare operation: target unknown
    assert one(events, "agent.llm_response", "embeddings").agent_name == "Planner"
    assert one(events, "agent.tool_call", "retrieval")
    assert one(events, "agent.reasoning", "invoke_workflow")
    assert one(events, "agent.invocation", "create_agent").agent_name == "Planner"


def test_same_request_twice_gives_identical_events(recorder: SpanRecorder) -> None:
    openinference_run(recorder)
    genai_run(recorder)
    request = recorder.request()
    first, _ = spans_to_events(request, "default")
    second, _ = spans_to_events(request, "default")
    via_json, _ = spans_to_events(decode_otlp_request(encode_otlp_json(request), JSON), "default")
    dump = [event_to_dict(e) for e in first]
    assert dump == [event_to_dict(e) for e in second] == [event_to_dict(e) for e in via_json]
    assert len({e.event_id for e in first}) == len(first)


def test_event_ids_are_uuidv8_from_trace_span_and_role() -> None:
    trace, span = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    got = uuid.UUID(span_event_id(trace, span))
    assert got.version == 8 and got.variant == uuid.RFC_4122
    digest = hashlib.sha256(f"otlp:{trace}:{span}:span".encode()).digest()[:16]
    mask = (1 << 128) - 1 ^ (0xF << 76) ^ (0x3 << 62)
    assert got.int & mask == int.from_bytes(digest) & mask
    assert span_event_id(trace, span) == str(got)
    assert span_event_id(trace, span, "result") != str(got)


def test_spans_in_any_order_keep_parent_links(recorder: SpanRecorder) -> None:
    openinference_run(recorder)
    spans = recorder.spans()
    expected = {e.event_id: e.parent_event_id for e in spans_to_events(
        recorder.request(spans), "default")[0]}
    for seed in range(5):
        shuffled = spans[:]
        random.Random(seed).shuffle(shuffled)
        got = spans_to_events(recorder.request(shuffled), "default")[0]
        assert {e.event_id: e.parent_event_id for e in got} == expected


def test_parent_link_without_seeing_the_parent(recorder: SpanRecorder) -> None:
    openinference_run(recorder)
    spans = recorder.spans()
    tool = next(s for s in spans if s.name == "lookup_customer")
    agent = next(s for s in spans if s.name == "Triage")
    (alone, *_), _ = spans_to_events(recorder.request([tool]), "default")
    parent_events, _ = spans_to_events(recorder.request([agent]), "default")
    assert alone.parent_event_id == parent_events[0].event_id
    assert alone.agent_name == "support-bot"  # its agent span was in another request


def test_unmappable_spans_are_rejected_and_skipped_in_links(recorder: SpanRecorder) -> None:
    t = recorder.tracer
    with t.start_as_current_span("agent", attributes={OI: "AGENT", "agent.name": "A"}):
        with t.start_as_current_span("GET /orders", attributes={"http.method": "GET"}):
            with t.start_as_current_span("tool", attributes={OI: "TOOL", "tool.name": "x"}):
                pass
        with t.start_as_current_span("mystery", attributes={OI: "UNKNOWN"}):
            pass
        with t.start_as_current_span("weird", attributes={OI: "BANANA"}):
            pass
        with t.start_as_current_span("speech", attributes={OP: "speech_generation"}):
            pass
    events, rejected = spans_to_events(recorder.request(), "default")
    assert len(rejected) == 4
    assert "('GET /orders')" in rejected[0] and "not an agent span" in rejected[0]
    assert "openinference.span.kind is UNKNOWN" in rejected[1]
    assert "unknown openinference.span.kind 'BANANA'" in rejected[2]
    assert "unknown gen_ai.operation.name 'speech_generation'" in rejected[3]
    span_ids = {format(s.context.span_id, "016x") for s in recorder.spans()}
    assert all(any(sid in msg for sid in span_ids) for msg in rejected)
    agent = one(events, "agent.invocation")
    assert one(events, "agent.tool_call").parent_event_id == agent.event_id  # skips GET


def _raw_span(**fields: Any) -> ExportTraceServiceRequest:
    span = Span(trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
                span_id=bytes.fromhex("eee19b7ec3c1b174"), name="raw",
                start_time_unix_nano=1_700_000_000_000_000_000,
                end_time_unix_nano=1_700_000_001_000_000_000)
    for key, value in fields.items():
        setattr(span, key, value)
    span.attributes.add(key=OI, value={"string_value": "AGENT"})
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        scope_spans=[ScopeSpans(spans=[span])])])


@pytest.mark.parametrize(("fields", "message"), [
    ({"trace_id": b"\x01\x02\x03"}, "trace id must be 16 bytes"),
    ({"trace_id": bytes(16)}, "trace id must be 16 bytes and not all zero"),
    ({"span_id": b""}, "span id must be 8 bytes"),
    ({"parent_span_id": b"\x01"}, "parent span id must be 8 bytes"),
    ({"start_time_unix_nano": 0}, "start time is missing"),
    ({"end_time_unix_nano": 5}, "end time is before start time"),
    ({"end_time_unix_nano": 2**63}, "'duration_ms': 7523372036854.775 is outside"),
])
def test_broken_spans_are_rejected(fields: dict[str, Any], message: str) -> None:
    events, rejected = spans_to_events(_raw_span(**fields), "default")
    assert events == [] and len(rejected) == 1 and message in rejected[0]


def test_agent_name_falls_back_to_service_name() -> None:
    events, _ = spans_to_events(_raw_span(), "default")
    assert events[0].agent_name == "raw"  # an agent span names itself by its span name
    request = _raw_span()
    request.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.string_value = "TOOL"
    request.resource_spans[0].resource.attributes.add(key="service.name",
                                                      value={"string_value": "svc"})
    events, _ = spans_to_events(request, "default")
    assert {e.agent_name for e in events} == {"svc"} and events[0].source == "svc"


def test_token_counts_of_any_type(recorder: SpanRecorder) -> None:
    with recorder.tracer.start_as_current_span("llm", attributes={
            OI: "LLM", "llm.token_count.prompt": 12.0, "llm.token_count.completion": "x",
            "gen_ai.usage.output_tokens": "8"}):
        pass
    llm = one(spans_to_events(recorder.request(), "default")[0], "agent.llm_response")
    assert (llm.prompt_tokens, llm.completion_tokens, llm.token_count) == (12, 8, 20)


def test_invalid_tenant_is_a_bad_request(recorder: SpanRecorder) -> None:
    with pytest.raises(BadRequest, match="invalid tenant"):
        spans_to_events(recorder.request(), "no spaces allowed")


def test_retried_export_is_stored_once(recorder: SpanRecorder, db_path: Path) -> None:
    openinference_run(recorder)
    events, _ = spans_to_events(recorder.request(), "default")
    again, _ = spans_to_events(recorder.request(), "default")
    with open_store(str(db_path)) as store:
        assert store.append_batch(events).accepted == len(events)
        assert store.append_batch(again).duplicates == len(events)
        stored = store.trace_events("default", events[0].trace_id or "")
    assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in events)


def test_every_mapped_attribute_is_documented() -> None:
    doc = MAPPING_MD.read_text(encoding="utf-8")
    keys = {k for name in dir(_otlp_map) if name.endswith("_KEYS")
            for k in getattr(_otlp_map, name)}
    keys |= set(_otlp_spans._GENAI_OPS) | set(_otlp_spans._OI_KINDS)
    keys |= set(_otlp_spans._GENAI_LLM_HINTS) | {OI, OP, "graph.node.parent_id",
                                                 "graph.node.id", "llm.cost.total"}
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert missing == []


def langgraph_run(recorder: SpanRecorder) -> None:
    """What openinference-instrumentation-langchain emits for a LangGraph graph: CHAIN spans per
    node with ``metadata.langgraph_node``, and a ``transfer_to_X`` handoff tool."""
    t = recorder.tracer

    def meta(node: str) -> str:
        return json.dumps({"langgraph_step": 1, "langgraph_node": node, "thread_id": "c-1"})

    with t.start_as_current_span("support-graph", attributes={OI: "CHAIN"}):
        with t.start_as_current_span("__start__", attributes={OI: "CHAIN",
                                                              "metadata": meta("__start__")}):
            pass
        with t.start_as_current_span("triage", attributes={OI: "CHAIN", "metadata": meta(
                "triage"), "session.id": "c-1"}):
            with t.start_as_current_span("GenericFakeChatModel", attributes={
                    OI: "LLM", "metadata": meta("triage"), "llm.token_count.prompt": 10}):
                pass
            with t.start_as_current_span("transfer_to_billing", attributes={
                    OI: "TOOL", "tool.name": "transfer_to_billing", "metadata": meta("triage"),
                    "input.value": "refund request"}):
                pass
        with t.start_as_current_span("billing", attributes={OI: "CHAIN",
                                                            "metadata": meta("billing")}):
            with t.start_as_current_span("route", attributes={OI: "CHAIN",
                                                              "metadata": meta("billing")}):
                pass
        with t.start_as_current_span("tools", attributes={OI: "CHAIN", "metadata": meta("tools")}):
            with t.start_as_current_span("get_invoice", attributes={
                    OI: "TOOL", "tool.name": "get_invoice", "metadata": meta("tools")}):
                pass


def test_langgraph_nodes_are_agents_and_transfer_tools_are_handoffs(
        recorder: SpanRecorder) -> None:
    langgraph_run(recorder)
    events, rejected = spans_to_events(recorder.request(), "default")
    assert rejected == []
    triage = one(events, "agent.invocation", "triage")
    billing = one(events, "agent.invocation", "billing")
    assert (triage.agent_name, billing.agent_name) == ("triage", "billing")
    assert len(by_type(events, "agent.invocation")) == 2  # not the graph, __start__ or tools
    for name in ("support-graph", "__start__", "tools", "route"):
        one(events, "agent.reasoning", name)
    assert one(events, "agent.reasoning", "route").agent_name == "billing"
    assert one(events, "agent.llm_response").agent_name == "triage"

    handoff = one(events, "agent.handoff")
    assert handoff.params == {"from_agent": "triage", "to_agent": "billing"}
    assert handoff.action == "handoff to billing" and handoff.agent_name == "triage"
    assert handoff.parent_event_id == triage.event_id
    assert [e.action for e in by_type(events, "agent.tool_call")] == ["get_invoice"]
    assert one(events, "agent.tool_call", "get_invoice").agent_name == "support-bot"


def test_a_transfer_tool_without_openinference_is_a_tool(recorder: SpanRecorder) -> None:
    with recorder.tracer.start_as_current_span("execute_tool transfer_to_billing", attributes={
            OP: "execute_tool", "gen_ai.tool.name": "transfer_to_billing"}):
        pass
    events, _ = spans_to_events(recorder.request(), "default")
    assert one(events, "agent.tool_call").action == "transfer_to_billing"


def test_langgraph_subgraph_agent_is_one_agent(recorder: SpanRecorder) -> None:
    """A prebuilt ReAct agent used as the node ``billing`` of a supervisor graph: the node span
    and the subgraph's own run span, inner ``agent`` (OpenInference AGENT) and ``tools`` nodes."""
    t = recorder.tracer

    def meta(node: str, ns: str) -> str:
        return json.dumps({"langgraph_node": node, "langgraph_checkpoint_ns": ns,
                           "langgraph_step": 1})

    outer = meta("billing", "billing:1")
    with t.start_as_current_span("supervisor-graph", attributes={OI: "CHAIN"}):
        with t.start_as_current_span("billing", attributes={OI: "CHAIN", "metadata": outer}):
            run = json.dumps({**json.loads(outer), "checkpoint_ns": "billing:1"})  # as LangGraph
            with t.start_as_current_span("billing", attributes={OI: "CHAIN", "metadata": run}):
                for step in (1, 2):
                    inner = meta("agent", f"billing:1|agent:{step}")
                    with t.start_as_current_span("agent", attributes={OI: "AGENT",
                                                                      "metadata": inner}):
                        with t.start_as_current_span("ChatModel", attributes={
                                OI: "LLM", "metadata": inner, "llm.token_count.prompt": 5}):
                            pass
                    if step == 1:
                        tools = meta("tools", "billing:1|tools:1")
                        with t.start_as_current_span("tools", attributes={OI: "CHAIN",
                                                                          "metadata": tools}):
                            with t.start_as_current_span("get_invoice", attributes={
                                    OI: "TOOL", "tool.name": "get_invoice",
                                    "metadata": tools}):
                                pass
    events, rejected = spans_to_events(recorder.request(), "default")
    assert rejected == []
    billing = one(events, "agent.invocation")  # one invocation, not four
    assert billing.agent_name == "billing" and billing.parent_event_id is not None
    assert len(by_type(events, "agent.reasoning")) == 1 + 1 + 2 + 1  # graph, run, 2× agent, tools
    assert {e.agent_name for e in events} - {"support-bot"} == {"billing"}
    assert [e.agent_name for e in by_type(events, "agent.llm_response")] == ["billing"] * 2
    assert one(events, "agent.tool_call", "get_invoice").agent_name == "billing"

    # the same spans exported one at a time: the LangGraph metadata still names the agent
    lone = [s for s in recorder.spans() if s.name == "ChatModel"][:1]
    alone, _ = spans_to_events(recorder.request(lone), "default")
    assert one(alone, "agent.llm_response").agent_name == "billing"
