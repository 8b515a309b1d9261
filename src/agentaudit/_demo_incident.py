"""The refund incident every demo contains (``agentaudit trace refund-incident``).

A user asks for a refund of a duplicate charge. Router hands off to Support, Support to Billing;
``process_refund`` times out twice, Billing opens a circuit breaker, queues a manual refund and
escalates to the billing on-call, and the user is told what happens next. The timeline and
content are fixed; only the ids depend on the seed.
"""

from __future__ import annotations

from agentaudit._demo_sim import Simulation, cost_usd
from agentaudit.sdk.context import Trace
from agentaudit.sdk.logger import AuditLogger

__all__ = ["INCIDENT_TASK_ID", "refund_incident"]

INCIDENT_TASK_ID = "refund-incident"
ORDER = "ORD-784512"
AMOUNT = 249.99
CHARGES = ["ch_3PqX2aLkd81", "ch_3PqX2bMzq44"]


def _llm(s: Simulation, t: Trace, model: str, prompt: int, completion: int, seconds: float,
         output: object = None) -> None:
    s.advance(seconds)
    cost = cost_usd(model, prompt, completion)
    if output is None:
        t.token_usage(model, prompt, completion, cost_usd=cost, duration_ms=seconds * 1000)
    else:
        t.llm_response(model, output, prompt, completion, cost_usd=cost,
                       duration_ms=seconds * 1000)


def refund_incident(s: Simulation, audit: AuditLogger, *, at: float, trace_id: str,
                    session_id: str, user_id: str) -> None:
    """Write the incident trace starting at ``at`` (simulated time)."""
    s.sim.t = at
    message = (f"I was charged twice for order {ORDER}. Please refund the duplicate charge of "
               f"${AMOUNT}.")
    with audit.trace("handle user message", agent="Router", session_id=session_id,
                     user_id=user_id, task_id=INCIDENT_TASK_ID, trace_id=trace_id,
                     params={"message": message, "channel": "web"}) as router:
        s.advance(0.03)
        router.reasoning("Duplicate charge and refund request: Support checks eligibility, "
                         "Billing executes refunds.")
        _llm(s, router, "gpt-4o-mini", 1012, 38, 0.71, {"intent": "refund", "route": "support"})
        router.decision("route_to_support", reasoning="Intent 'refund' maps to Support.",
                        confidence=0.94)
        s.advance(0.02)
        with router.handoff("Support", context_summary=f"refund: duplicate charge on {ORDER}",
                            reason="Support owns refund requests") as support:
            s.advance(0.02)
            with support.tool_call("lookup_customer", {"user_id": user_id}) as call:
                s.advance(0.087)
                call.result = {"customer_id": "cus_7f3a9c21", "tier": "pro"}
            with support.tool_call("get_order", {"order_id": ORDER}) as call:
                s.advance(0.142)
                call.result = {"order_id": ORDER, "status": "delivered", "total": AMOUNT,
                               "charges": CHARGES}
            with support.tool_call("search_kb", {"query": "duplicate charge refund",
                                                 "top_k": 3}) as call:
                s.advance(0.38)
                call.result = {"articles": ["KB-112"]}
            support.decision("refund_eligible", reasoning=f"Two captured charges {CHARGES[0]} "
                             f"and {CHARGES[1]} for the same order; KB-112 allows an immediate "
                             "refund of duplicate charges.", confidence=0.97)
            s.advance(0.03)
            with support.handoff("Billing", context_summary=f"Refund duplicate charge "
                                 f"{CHARGES[1]} (${AMOUNT}) on {ORDER}",
                                 reason="Refunds are executed by Billing") as billing:
                _billing(s, billing)
                billing.result = {"outcome": "escalated", "ticket": "RF-20931"}
            support.result = {"outcome": "escalated"}
            s.advance(0.04)
        reply = (f"I'm sorry about the double charge. Our payment provider is not responding "
                 f"right now, so your refund of ${AMOUNT} for {ORDER} has been queued for our "
                 "billing team (ticket RF-20931). You'll get a confirmation email within "
                 "24 hours.")
        _llm(s, router, "gpt-4o-mini", 1450, 72, 1.12, reply)
        router.result = {"outcome": "escalated", "handled_by": "Support", "reply": reply}


def _billing(s: Simulation, b: Trace) -> None:
    s.advance(0.03)
    b.reasoning(f"Refund duplicate charge {CHARGES[1]} of ${AMOUNT}; at $150 or more a "
                "human approval is required first.")
    _llm(s, b, "gpt-4o", 1830, 95, 1.4)
    s.advance(212.0)
    b.human(kind="approval", by="alice",
            reason="Duplicate capture confirmed in the payment dashboard")
    params = {"order_id": ORDER, "charge_id": CHARGES[1], "amount": AMOUNT, "currency": "USD",
              "reason": "duplicate"}
    for attempt in range(2):
        try:
            with b.tool_call("process_refund", params):
                s.advance(30.0)
                raise TimeoutError("process_refund timed out after 30s")
        except TimeoutError:
            s.advance(2.0 * (attempt + 1))  # backoff before the next attempt
    b.decision("open_circuit_breaker",
               reasoning="process_refund timed out on 2 of 2 attempts (60s in total); the payment "
                         "provider looks degraded. Opening the circuit breaker for "
                         "process_refund for 5 minutes so that a late success cannot refund "
                         "twice, and falling back to the manual refund queue.",
               confidence=0.86, params={"tool": "process_refund", "failures": 2,
                                        "cooldown_s": 300})
    with b.tool_call("queue_manual_refund", params) as call:
        s.advance(0.27)
        call.result = {"ticket": "RF-20931", "queue": "billing-manual", "sla_hours": 24}
    s.advance(0.04)
    b.human(kind="escalation", by="oncall-billing",
            reason=f"process_refund timed out twice (payment provider degraded); refund of "
                   f"${AMOUNT} for {ORDER} queued manually as RF-20931 and must be processed "
                   "within 24h. Check that the provider did not execute either attempt.")
    _llm(s, b, "gpt-4o", 2100, 120, 1.9, "Refund queued manually as RF-20931 after "
         "process_refund timeouts; on-call billing notified.")
