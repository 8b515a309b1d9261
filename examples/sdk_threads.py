"""Plain Python agents recorded with the agentaudit SDK, several tickets at once.

A support desk: the Router agent reads each ticket, decides where it goes and hands it off to
Billing or Shipping. Billing asks the FraudCheck agent (a decorated function) before refunding;
refunds above 100 fail at the payment gateway and are escalated to a human. Shipping asks two
carriers in parallel threads. Tickets are worked on by a pool of four threads; every ticket is
one trace.

    AGENTAUDIT_DB=desk.db python examples/sdk_threads.py
    agentaudit log --db desk.db
    agentaudit trace --db desk.db <trace id printed below>

No network and no API key: the "model" is a rule, the tools are local functions.
"""

from __future__ import annotations

import contextvars
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from agentaudit import AuditLogger

# One logger per process; the store comes from AGENTAUDIT_DB (default ./agentaudit.db).
audit = AuditLogger(source="support-desk", version="1.0")


class PaymentGatewayError(RuntimeError):
    """The payment provider refused the refund."""


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    customer: str
    text: str
    order_id: str
    amount: float = 0.0


TICKETS = [
    Ticket("T-1", "ann", "Please refund order A1, it arrived broken", "A1", 40.0),
    Ticket("T-2", "bob", "Where is my parcel? Order B7", "B7"),
    Ticket("T-3", "cyd", "Refund A3: wrong size", "A3", 250.0),  # the gateway refuses: > 100
    Ticket("T-4", "dee", "My parcel for C2 is late", "C2"),
    Ticket("T-5", "eve", "refund for A5 please", "A5", 15.5),
    Ticket("T-6", "fay", "parcel D9 never came", "D9"),
    Ticket("T-7", "gus", "Refund A7, charged twice", "A7", 120.0),  # refused too
    Ticket("T-8", "hal", "tracking for E4?", "E4"),
]


# -- tools: each call is an agent.tool_call + agent.tool_result (or agent.error) ------------

@audit.tool()
def lookup_order(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "status": "delivered", "paid": True}


@audit.tool()
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    if amount > 100:
        raise PaymentGatewayError(f"gateway refused refund of {amount:.2f} for {order_id}")
    return {"order_id": order_id, "refunded": amount}


@audit.tool()
def score_risk(customer: str, amount: float) -> float:
    return 0.9 if amount > 200 else 0.1


@audit.tool("carrier_status")
def ask_carrier(carrier: str, order_id: str) -> dict[str, str]:
    return {"carrier": carrier, "order_id": order_id,
            "status": "in transit" if carrier == "DHL" else "unknown"}


# -- agents ------------------------------------------------------------------------------

@audit.agent("FraudCheck", name="check refund risk")
def fraud_check(ticket: Ticket) -> bool:
    """A sub-agent: its invocation nests under the caller's step in the same trace."""
    return score_risk(ticket.customer, ticket.amount) < 0.5


def billing(agent: Any, ticket: Ticket) -> str:
    """Billing works inside the trace the Router handed the ticket to."""
    lookup_order(ticket.order_id)
    if not fraud_check(ticket):
        agent.decision("deny refund", reasoning="fraud risk too high", confidence=0.8)
        return "refund denied"
    try:
        issue_refund(ticket.order_id, ticket.amount)
    except PaymentGatewayError as e:
        agent.human("escalation", by="oncall@example.com", reason=str(e))
        return "escalated to a human"
    agent.decision("refund approved", confidence=0.95)
    return f"refunded {ticket.amount:.2f}"


def shipping(agent: Any, ticket: Ticket) -> str:
    """Asks two carriers in parallel; each thread runs in a copy of the trace's context."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(contextvars.copy_context().run, ask_carrier, c, ticket.order_id)
                   for c in ("DHL", "UPS")]
        answers = [f.result() for f in futures]
    found = [a for a in answers if a["status"] != "unknown"]
    agent.decision("answer customer", reasoning=f"{len(found)} carrier(s) know the parcel",
                   confidence=0.7 if found else 0.3)
    return found[0]["status"] if found else "unknown"


def route(ticket: Ticket) -> tuple[str, str]:
    """The Router: classify the ticket (a rule standing in for a model) and hand it off."""
    with audit.trace(f"ticket {ticket.ticket_id}", agent="Router", session_id=ticket.customer,
                     user_id=ticket.customer, task_id=ticket.ticket_id,
                     params={"text": ticket.text}) as t:
        target = "Billing" if "refund" in ticket.text.lower() else "Shipping"
        t.llm_response("gpt-4o-mini", output={"intent": target.lower()},
                       prompt_tokens=120, completion_tokens=8)
        t.decision(f"route to {target}", reasoning="keyword classification", confidence=0.9)
        with t.handoff(target, context_summary=ticket.text) as agent:
            answer = (billing if target == "Billing" else shipping)(agent, ticket)
            agent.result = answer
        t.result = answer
        return t.trace_id, answer


def main() -> int:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(route, TICKETS))
    for ticket, (trace_id, answer) in zip(TICKETS, results, strict=True):
        print(f"{ticket.ticket_id}  trace {trace_id}  {answer}")
    ok = audit.flush(30)
    stats = audit.stats()
    audit.close()
    print(f"{stats.written} events stored in {os.environ.get('AGENTAUDIT_DB', 'agentaudit.db')}"
          f" (dropped {stats.dropped}, failed {stats.failed})")
    return 0 if ok and not stats.dropped and not stats.failed else 1


if __name__ == "__main__":
    sys.exit(main())
