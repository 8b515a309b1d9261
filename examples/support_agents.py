"""The OpenAI Agents SDK workflow shared by ``openai_agents_otlp.py`` and
``openai_agents_inprocess.py``: Triage looks the customer up and hands off to Billing, whose
refund tool fails (the payment gateway is down) before it fetches the invoice.

No network and no API key: each agent talks to ``ScriptedModel``, which implements the SDK's
``Model`` interface and answers every call with the next step of a script (a tool call, a
handoff or a reply), recording a generation span with token usage as the SDK's own models do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from agents import (
    Agent,
    ModelResponse,
    RunConfig,
    Runner,
    Usage,
    function_tool,
    set_trace_processors,
)
from agents.models.interface import Model, ModelTracing
from agents.tracing import generation_span
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

HANDOFF = "<handoff>"
Step = tuple[str, Any]  # ("call", (tool name, arguments)) or ("say", text)
FINAL_ANSWER = "The refund failed; here is your invoice for A1."


class ScriptedModel(Model):
    """Answers each model call with the next scripted step."""

    def __init__(self, name: str, steps: list[Step]) -> None:
        self.name, self.steps, self.calls = name, list(steps), 0

    async def get_response(self, system_instructions: str | None, input: Any,
                           model_settings: Any, tools: list[Any], output_schema: Any,
                           handoffs: list[Any], tracing: ModelTracing, *,
                           previous_response_id: str | None = None,
                           conversation_id: str | None = None,
                           prompt: Any = None) -> ModelResponse:
        self.calls += 1
        kind, what = self.steps.pop(0)
        if kind == "call":
            tool, args = what
            name = handoffs[0].tool_name if tool == HANDOFF else tool
            item: Any = ResponseFunctionToolCall(
                id=f"fc_{self.name}_{self.calls}", call_id=f"call_{self.name}_{self.calls}",
                name=name, arguments=json.dumps(args), type="function_call",
                status="completed")
        else:
            item = ResponseOutputMessage(
                id=f"msg_{self.name}_{self.calls}", type="message", role="assistant",
                status="completed",
                content=[ResponseOutputText(text=what, type="output_text", annotations=[])])
        with generation_span(model="scripted-gpt", model_config={"temperature": 0},
                             input=[{"role": "user", "content": str(input)[:200]}],
                             output=[item.model_dump()],
                             usage={"input_tokens": 100, "output_tokens": 20},
                             disabled=tracing.is_disabled()):
            pass
        return ModelResponse(output=[item], response_id=None, usage=Usage(
            requests=1, input_tokens=100, output_tokens=20, total_tokens=120))

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the scripted model does not stream")
        yield  # pragma: no cover


@function_tool
def lookup_customer(email: str) -> dict[str, str]:
    """Find the customer with this email."""
    return {"customer_id": "C-42", "email": email}


@function_tool
def issue_refund(order_id: str, amount: float) -> str:
    """Refund an order."""
    raise RuntimeError(f"payment gateway down, cannot refund {order_id}")


@function_tool
def get_invoice(order_id: str) -> dict[str, Any]:
    """The invoice of an order."""
    return {"order_id": order_id, "total": 50.0}


def build_agents() -> Agent[Any]:
    billing = Agent(name="Billing", instructions="Handle refunds.",
                    tools=[issue_refund, get_invoice],
                    model=ScriptedModel("billing", [
                        ("call", ("issue_refund", {"order_id": "A1", "amount": 50})),
                        ("call", ("get_invoice", {"order_id": "A1"})),
                        ("say", FINAL_ANSWER)]))
    return Agent(name="Triage", instructions="Route the customer.", tools=[lookup_customer],
                 handoffs=[billing],
                 model=ScriptedModel("triage", [
                     ("call", ("lookup_customer", {"email": "ann@example.com"})),
                     ("call", (HANDOFF, {}))]))


def run_support_workflow(tracer_provider: Any) -> str:
    """Run the workflow with OpenInference instrumentation writing to ``tracer_provider``."""
    import asyncio

    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    # The SDK's default trace processor exports to OpenAI's platform; this run records only
    # through OpenTelemetry (the instrumentor registers its own processor).
    set_trace_processors([])
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        result = asyncio.run(Runner.run(build_agents(), "Refund order A1 for ann@example.com",
                                        run_config=RunConfig(workflow_name="Support workflow")))
    finally:
        instrumentor.uninstrument()
    return str(result.final_output)
