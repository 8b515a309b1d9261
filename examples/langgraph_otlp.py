"""A LangGraph multi-agent graph on a fake chat model, instrumented with OpenInference
(openinference-instrumentation-langchain), exported over OTLP/HTTP to ``agentaudit serve``.

Two agents are two graph nodes. Triage looks the customer up and hands off to Billing with the
``transfer_to_billing`` tool (the handoff-tool convention of langgraph-supervisor and
langgraph-swarm) and a ``Command(goto="billing")``; Billing's refund tool fails (the payment
gateway is down), then it fetches the invoice and answers.

    agentaudit serve --db audit.db &
    agentaudit keys create --db audit.db --tenant acme --scope ingest   # prints aa_…
    export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces
    export OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-api-key=aa_…"
    python examples/langgraph_otlp.py
    agentaudit log --db audit.db --tenant acme

No network but the collector and no API key: the models are langchain-core's
``GenericFakeChatModel`` answering from a script.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

FINAL_ANSWER = "The refund failed; here is your invoice for A1."
USAGE = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}


@tool
def lookup_customer(email: str) -> dict[str, str]:
    """Find the customer with this email."""
    return {"customer_id": "C-42", "email": email}


@tool
def transfer_to_billing(reason: str) -> str:
    """Hand the conversation over to the Billing agent."""
    return "Transferred to Billing"


@tool
def issue_refund(order_id: str, amount: float) -> str:
    """Refund an order."""
    raise RuntimeError(f"payment gateway down, cannot refund {order_id}")


@tool
def get_invoice(order_id: str) -> dict[str, Any]:
    """The invoice of an order."""
    return {"order_id": order_id, "total": 50.0}


def _call(name: str, args: dict[str, Any], n: int) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{n}"}],
                     usage_metadata=USAGE)  # type: ignore[arg-type]


def scripted(*replies: AIMessage) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(replies))


def run_tool(tools: dict[str, BaseTool], call: dict[str, Any]) -> ToolMessage:
    """Run one tool call; a failing tool is told to the model as an error message."""
    try:
        result = tools[call["name"]].invoke(call["args"])
    except Exception as e:  # the span records the exception; the agent carries on
        return ToolMessage(content=f"error: {e}", tool_call_id=call["id"], status="error")
    return ToolMessage(content=str(result), tool_call_id=call["id"])


def agent_node(name: str, model: GenericFakeChatModel, tools: list[BaseTool],
               handoffs: dict[str, str]) -> Any:
    """A graph node that runs its model and tools until it answers or hands off."""
    by_name = {t.name: t for t in tools}

    def node(state: MessagesState) -> Command[Any]:
        messages: list[BaseMessage] = []
        while True:
            reply = model.invoke([*state["messages"], *messages])
            messages.append(reply)
            if not isinstance(reply, AIMessage) or not reply.tool_calls:
                return Command(goto=END, update={"messages": messages})
            for call in reply.tool_calls:
                messages.append(run_tool(by_name, dict(call)))
                if call["name"] in handoffs:
                    return Command(goto=handoffs[call["name"]], update={"messages": messages})

    node.__name__ = name
    return node


def build_graph() -> Any:
    triage = agent_node("triage", scripted(
        _call("lookup_customer", {"email": "ann@example.com"}, 1),
        _call("transfer_to_billing", {"reason": "refund request"}, 2),
    ), [lookup_customer, transfer_to_billing], {"transfer_to_billing": "billing"})
    billing = agent_node("billing", scripted(
        _call("issue_refund", {"order_id": "A1", "amount": 50}, 3),
        _call("get_invoice", {"order_id": "A1"}, 4),
        AIMessage(content=FINAL_ANSWER, usage_metadata=USAGE),  # type: ignore[arg-type]
    ), [issue_refund, get_invoice], {})
    graph = StateGraph(MessagesState)
    graph.add_node("triage", triage, destinations=("billing", END))
    graph.add_node("billing", billing, destinations=(END,))
    graph.add_edge(START, "triage")
    return graph.compile(name="support-graph")


def main() -> int:
    if not os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                          os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        print("set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces "
              "(and start `agentaudit serve`)", file=sys.stderr)
        return 2
    provider = TracerProvider(resource=Resource.create({"service.name": "support-graph"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        state = build_graph().invoke(
            {"messages": [HumanMessage("Refund order A1 for ann@example.com")]},
            config={"configurable": {"thread_id": "conversation-42"}})
    finally:
        instrumentor.uninstrument()
        provider.shutdown()  # sends every span before we exit
    print(state["messages"][-1].content)
    return 0


if __name__ == "__main__":
    sys.exit(main())
