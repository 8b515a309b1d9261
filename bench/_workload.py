"""A realistic workload for the benchmarks: traces of 20 events of a support agent.

``log_trace`` writes one trace through the public SDK (context managers, so every event carries
trace, parent, session, user and task); ``build_trace`` builds the same 20 events as
``AuditEvent`` objects for the paths that bypass the SDK (``append_batch``, bare SQL).
"""

from __future__ import annotations

from typing import Any

from agentaudit.events import AuditEvent, EventType, new_event_id

EVENTS_PER_TRACE = 20
TOOLS = ("get_order", "get_customer", "search_kb", "check_policy", "get_payment",
         "issue_refund", "send_email")
MODEL = "gpt-4o-2024-08-06"
REASONING = ("The customer reports that order {order} arrived damaged. Policy RP-7 allows a "
             "refund within 30 days when the damage is documented; the photos are attached, so "
             "I will verify the order and the payment before deciding.")
OUTPUT = ("I'm sorry your order {order} arrived damaged. I have checked the purchase and the "
          "photos you sent, and I am issuing a full refund of 42.50 EUR to your original "
          "payment method; you will see it within 3-5 business days.")


def _ids(k: int) -> tuple[str, str, str, str]:
    return f"o-{k:08d}", f"user-{k % 5000:05d}", f"sess-{k // 3:010x}", f"task-{k:010x}"


def _tool_params(name: str, order: str, user: str) -> dict[str, Any]:
    return {"order_id": order, "customer_id": user, "tool": name, "limit": 10}


def _tool_result(order: str) -> dict[str, Any]:
    return {"status": "ok", "order_id": order, "items": [1, 2, 3], "amount": 42.5,
            "currency": "EUR"}


def log_trace(audit: Any, k: int) -> None:
    """Log trace number ``k`` (20 events) through the SDK's context managers."""
    order, user, session, task = _ids(k)
    with audit.trace(f"refund request {order}", agent="Support", session_id=session,
                     user_id=user, task_id=task,
                     params={"task": f"Customer {user} asks for a refund of {order}",
                             "channel": "web"}) as t:
        t.reasoning(REASONING.format(order=order))
        for name in TOOLS:
            with t.tool_call(name, _tool_params(name, order, user)) as call:
                call.result = _tool_result(order)
        t.llm_response(MODEL, OUTPUT.format(order=order), prompt_tokens=812,
                       completion_tokens=143, cost_usd=0.00346)
        t.reasoning("Damage documented and within 30 days: the refund is allowed by RP-7.")
        t.decision("approve_refund", reasoning="policy RP-7 applies", confidence=0.87)
        t.result = {"refunded": 42.5, "order_id": order}


def build_trace(k: int, ts: float, tenant: str = "default") -> list[AuditEvent]:
    """The 20 events of trace number ``k`` (what ``log_trace`` records), starting at ``ts``."""
    order, user, session, task = _ids(k)
    trace_id = new_event_id().replace("-", "")
    common = {"trace_id": trace_id, "session_id": session, "user_id": user, "task_id": task,
              "tenant": tenant}
    events: list[AuditEvent] = []

    def add(event_type: str, parent: str | None, **fields: Any) -> str:
        ev = AuditEvent(event_id=new_event_id(), event_type=event_type, agent_name="Support",
                        parent_event_id=parent, timestamp=ts + len(events) * 0.05,
                        **common, **fields)
        events.append(ev)
        return ev.event_id

    root = add(EventType.INVOCATION, None, action=f"refund request {order}",
               params={"task": f"Customer {user} asks for a refund of {order}", "channel": "web"})
    add(EventType.REASONING, root, reasoning=REASONING.format(order=order))
    for name in TOOLS:
        call = add(EventType.TOOL_CALL, root, action=name,
                   params=_tool_params(name, order, user))
        add(EventType.TOOL_RESULT, call, action=name, result=_tool_result(order),
            duration_ms=48.2)
    add(EventType.LLM_RESPONSE, root, action="llm_response", model=MODEL,
        result=OUTPUT.format(order=order), prompt_tokens=812, completion_tokens=143,
        token_count=955, cost_usd=0.00346)
    add(EventType.REASONING, root,
        reasoning="Damage documented and within 30 days: the refund is allowed by RP-7.")
    add(EventType.DECISION, root, action="approve_refund", reasoning="policy RP-7 applies",
        confidence=0.87)
    add(EventType.DECISION, root, action="finish", result={"refunded": 42.5, "order_id": order},
        duration_ms=980.0)
    return events


def build_events(n: int, ts: float, first_trace: int = 0) -> list[AuditEvent]:
    """``n`` events (a multiple of 20 is exact) in traces of 20, one trace a second from ``ts``."""
    out: list[AuditEvent] = []
    k = first_trace
    while len(out) < n:
        out.extend(build_trace(k, ts + k))
        k += 1
    del out[n:]
    return out
