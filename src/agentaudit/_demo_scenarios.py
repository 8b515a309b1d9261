"""The demo's scenarios: Router triages each user message and hands off to a specialist.

Each handler runs inside the receiving agent's trace and returns an outcome (``resolved``,
``refunded``, ``denied``, ``needs_info``, ``escalated``) that the Router reports back.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from agentaudit._demo_sim import Simulation, ValidationError
from agentaudit.sdk.context import Trace
from agentaudit.sdk.logger import AuditLogger

__all__ = ["Ticket", "ordinary_trace"]

APPROVERS = ("alice", "bob", "carol")
ONCALL = {"Support": "oncall-support", "Billing": "oncall-billing",
          "Research": "oncall-research", "Code": "oncall-platform"}
KB = (("KB-112", "Refunds for duplicate or mistaken charges", "What happens if I'm charged twice?"),
      ("KB-204", "Return window and conditions", "How long do I have to return an item?"),
      ("KB-087", "Shipping times by region", "How long does shipping to Canada take?"),
      ("KB-311", "Changing your billing address", "How do I change my billing address?"),
      ("KB-045", "Resetting two-factor authentication", "I lost my phone, how do I reset 2FA?"),
      ("KB-150", "Cancelling or pausing a subscription", "Can I pause my subscription?"))
TOPICS = ("EU AI Act obligations for general-purpose AI providers",
          "SOC 2 evidence requirements for LLM applications",
          "usage-based pricing of competing APIs",
          "PostgreSQL partitioning for append-only logs",
          "OpenTelemetry GenAI semantic conventions",
          "carrier delays in the EU this quarter")
SITES = ("eur-lex.europa.eu", "www.aicpa-cima.com", "opentelemetry.io", "www.postgresql.org",
         "arxiv.org", "news.ycombinator.com", "www.reuters.com", "docs.stripe.com")
CODE_TASKS = (("fix flaky test test_checkout_timeout", "tests/test_checkout.py"),
              ("add pagination to GET /v1/orders", "src/orders/api.py"),
              ("retry payment client calls with jittered backoff", "src/payments/client.py"),
              ("handle a missing customer email in the notifier", "src/notify/email.py"),
              ("bump cryptography to 43.0.1", "requirements.txt"))
CARRIERS = ("UPS", "DHL", "FedEx", "USPS")


@dataclass
class Ticket:
    """What the user asked for, as the Router and the specialists see it."""

    user_id: str
    customer_id: str
    order_id: str
    amount: float
    channel: str
    topic: int  # picks the KB article, research topic or code task


def _conf(s: Simulation, low: float = 0.55) -> float:
    """A confidence: mostly high, sometimes shaky."""
    return round(low + (0.99 - low) * (1.0 - s.rng.random() ** 3), 3)


def _failed(s: Simulation, t: Trace, tool: str, err: Exception, model: str) -> str:
    """After a tool failed for good: ask the user to fix their input, or escalate to a human."""
    if isinstance(err, ValidationError):
        t.decision("ask_user_for_details", reasoning=f"{tool} rejected the request ({err}); "
                   "asking the user to correct it.", confidence=_conf(s, 0.7))
        s.llm(t, model, 1900, 70, "I couldn't complete that: some details look wrong. "
              "Could you double-check them and send them again?")
        return "needs_info"
    t.decision("escalate_to_human", reasoning=f"{tool} still failing after retries "
               f"({type(err).__name__}: {err}); handing over to on-call.",
               confidence=_conf(s, 0.75))
    t.human(kind="escalation", by=ONCALL[t.agent],
            reason=f"{tool} unavailable: {type(err).__name__} after 3 attempts")
    s.llm(t, model, 1700, 60, "Sorry, our systems are slow right now. A specialist has your "
          "request and will follow up shortly.")
    return "escalated"


# -- specialists ---------------------------------------------------------------------------------

def order_status(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    model = "claude-3-5-haiku" if rng.random() < 0.55 else "gpt-4o-mini"
    if rng.random() < 0.5:
        t.reasoning(f"User asks where {k.order_id} is. Look up the customer, then the order and "
                    "its shipment before answering.")
    ok, r = s.tool(t, "lookup_customer", {"user_id": k.user_id},
                   {"customer_id": k.customer_id, "tier": rng.choice(("free", "plus", "pro"))})
    if not ok:
        return _failed(s, t, "lookup_customer", r, model)
    s.think()
    status = rng.choice(("shipped", "shipped", "shipped", "processing", "delivered"))
    carrier = rng.choice(CARRIERS)
    ok, r = s.tool(t, "get_order", {"order_id": k.order_id},
                   {"order_id": k.order_id, "status": status, "total": k.amount,
                    "carrier": carrier})
    if not ok:
        return _failed(s, t, "get_order", r, model)
    eta = f"{rng.randrange(1, 6)} business days"
    if status == "shipped":
        ok, r = s.tool(t, "track_shipment", {"carrier": carrier,
                                              "tracking_number": f"1Z{rng.getrandbits(40):010X}"},
                       {"last_scan": rng.choice(("Leipzig hub", "Memphis hub", "out for delivery")),
                        "eta": eta}, retries=1)
        if not ok:
            eta = "unknown"
    s.think()
    s.llm(t, model, 2200, 140, f"Your order {k.order_id} is {status}"
          + (f" with {carrier}; estimated delivery in {eta}." if status == "shipped" else "."))
    return "resolved"


def refund(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    model = "claude-3-5-haiku" if rng.random() < 0.55 else "gpt-4o-mini"
    ok, r = s.tool(t, "lookup_customer", {"user_id": k.user_id},
                   {"customer_id": k.customer_id, "tier": rng.choice(("plus", "pro"))})
    if not ok:
        return _failed(s, t, "lookup_customer", r, model)
    ok, r = s.tool(t, "get_order", {"order_id": k.order_id},
                   {"order_id": k.order_id, "status": "delivered", "total": k.amount,
                    "days_since_delivery": rng.randrange(1, 45)})
    if not ok:
        return _failed(s, t, "get_order", r, model)
    s.tool(t, "search_kb", {"query": "refund policy", "top_k": 3},
           {"articles": ["KB-112", "KB-204"]})
    s.think()
    eligible = rng.random() < 0.85
    if not eligible:
        t.decision("refund_denied", reasoning="Order is outside the 30-day return window "
                   "(KB-204) and not a duplicate charge (KB-112).", confidence=_conf(s, 0.7))
        s.llm(t, model, 2300, 120, "I'm sorry, this order is outside our 30-day return window.")
        return "denied"
    t.decision("refund_eligible", reasoning="Within the 30-day return window (KB-204); "
               "customer in good standing.", confidence=_conf(s, 0.65))
    s.think()
    with t.handoff("Billing", context_summary=f"Refund ${k.amount:.2f} for {k.order_id}",
                   reason="Refunds are executed by Billing") as b:
        outcome = billing_refund(s, b, k)
        b.result = {"outcome": outcome}
    s.think()
    s.llm(t, model, 2300, 110, f"Your refund of ${k.amount:.2f} for {k.order_id}: {outcome}.")
    return outcome


def billing_refund(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    t.reasoning(f"Refund ${k.amount:.2f} on {k.order_id}; amounts of $150 or more need a "
                "human approval first.")
    s.llm(t, "gpt-4o", 1800, 90, metered_only=True)
    if k.amount >= 150:
        s.human_wait()
        approver = rng.choice(APPROVERS)
        if rng.random() < 0.1:
            t.human(kind="rejection", by=approver, reason="Customer already received a "
                    "replacement for this order")
            s.llm(t, "gpt-4o", 1600, 60, "Refund rejected by a reviewer.")
            return "denied"
        t.human(kind="approval", by=approver, reason=f"Refund of ${k.amount:.2f} verified "
                "against the order history")
    ok, r = s.tool(t, "process_refund", {"order_id": k.order_id, "amount": k.amount,
                                         "currency": "USD", "reason": "customer_request"},
                   {"refund_id": f"re_{rng.getrandbits(48):012x}", "status": "succeeded"})
    if not ok:
        return _failed(s, t, "process_refund", r, "gpt-4o")
    s.tool(t, "send_email", {"to": k.user_id, "template": "refund_issued"},
           {"message_id": f"<{rng.getrandbits(40):010x}@mail.example.com>"}, retries=1)
    return "refunded"


def invoice(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    ok, r = s.tool(t, "lookup_customer", {"user_id": k.user_id},
                   {"customer_id": k.customer_id, "plan": rng.choice(("monthly", "annual"))})
    if not ok:
        return _failed(s, t, "lookup_customer", r, "gpt-4o")
    inv = f"INV-{rng.randrange(2024000, 2025999)}"
    failed_payment = rng.random() < 0.35
    ok, r = s.tool(t, "get_invoice", {"customer_id": k.customer_id, "invoice_id": inv},
                   {"invoice_id": inv, "amount": k.amount,
                    "status": "payment_failed" if failed_payment else "paid"})
    if not ok:
        return _failed(s, t, "get_invoice", r, "gpt-4o")
    if failed_payment:
        t.decision("retry_payment", reasoning=f"{inv} failed on the first attempt; the card on "
                   "file was updated since.", confidence=_conf(s, 0.6))
        s.human_wait(45)
        t.human(kind="confirmation", by=k.user_id, reason=f"User confirmed charging "
                f"${k.amount:.2f} to the card on file")
        ok, r = s.tool(t, "charge_card", {"customer_id": k.customer_id, "amount": k.amount,
                                          "invoice_id": inv},
                       {"charge_id": f"ch_{rng.getrandbits(48):012x}", "status": "succeeded"})
        if not ok:
            return _failed(s, t, "charge_card", r, "gpt-4o")
    s.think()
    s.llm(t, "gpt-4o", 1900, 130, f"Invoice {inv} for ${k.amount:.2f} is "
          + ("now paid." if failed_payment else "paid; here is the breakdown."))
    return "resolved"


def kb_question(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    model = "claude-3-5-haiku" if rng.random() < 0.55 else "gpt-4o-mini"
    article = KB[k.topic % len(KB)]
    for _ in range(1 + (rng.random() < 0.4)):
        s.llm(t, "claude-3-5-haiku", 700, 25, metered_only=True)  # rewrite as a search query
        s.tool(t, "search_kb", {"query": article[2], "top_k": 5},
               {"articles": [article[0]], "score": round(0.6 + rng.random() * 0.38, 3)})
    t.decision("answer_from_kb", reasoning=f"{article[0]} ({article[1]}) answers the question.",
               confidence=_conf(s, 0.5))
    s.llm(t, model, 2600, 180, f"Here is how that works (see {article[0]}: {article[1]}).")
    return "resolved"


def account_update(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    model = "gpt-4o-mini"
    ok, r = s.tool(t, "lookup_customer", {"user_id": k.user_id}, {"customer_id": k.customer_id})
    if not ok:
        return _failed(s, t, "lookup_customer", r, model)
    field = rng.choice(("billing_address", "phone", "email"))
    ok, r = s.tool(t, "update_customer", {"customer_id": k.customer_id, "field": field},
                   {"updated": [field]})
    if not ok:
        return _failed(s, t, "update_customer", r, model)
    s.tool(t, "send_email", {"to": k.user_id, "template": "account_changed"},
           {"message_id": f"<{rng.getrandbits(40):010x}@mail.example.com>"}, retries=1)
    s.llm(t, model, 1800, 80, f"Done: your {field.replace('_', ' ')} is updated.")
    return "resolved"


def research(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    topic = TOPICS[k.topic % len(TOPICS)]
    t.reasoning(f"Research '{topic}': search, read the best sources, summarise with citations.")
    s.llm(t, "claude-sonnet-4", 2500, 200, metered_only=True)
    sources = 0
    for q in range(1 + (rng.random() < 0.5)):
        ok, _ = s.tool(t, "web_search", {"query": topic if q == 0 else f"{topic} 2025"},
                       {"results": 10})
        if not ok:
            continue
        for _ in range(rng.randrange(1, 4)):
            url = f"https://{rng.choice(SITES)}/{rng.getrandbits(32):08x}"
            ok, _ = s.tool(t, "fetch_url", {"url": url},
                           {"status": 200, "bytes": rng.randrange(8_000, 400_000)}, retries=1)
            sources += ok
    if sources:  # chunk and embed what was read, to cite passages
        s.llm(t, "text-embedding-3-small", sources * rng.randrange(8000, 30000), 0,
              metered_only=True)
    s.think()
    t.decision("sources_sufficient" if sources >= 2 else "answer_with_caveats",
               reasoning=f"{sources} sources read; " + ("they agree on the main points."
                                                       if sources >= 2 else "coverage is thin."),
               confidence=_conf(s, 0.6 if sources >= 2 else 0.35))
    s.llm(t, "claude-sonnet-4", 9000 if sources else 3000, 700,
          f"Summary of {topic} from {sources} sources, with citations.")
    return "resolved"


def code_change(s: Simulation, t: Trace, k: Ticket) -> str:
    rng = s.rng
    task, path = CODE_TASKS[k.topic % len(CODE_TASKS)]
    model = "claude-sonnet-4" if rng.random() < 0.75 else "gpt-4o"
    t.reasoning(f"Task: {task}. Read {path}, write a patch, run the tests, open a PR.")
    s.tool(t, "read_file", {"path": path}, {"lines": rng.randrange(40, 900)})
    for attempt in range(2):
        s.llm(t, model, 5000, 900, f"--- a/{path}\n+++ b/{path}\n@@ patch for: {task} @@")
        ok, r = s.tool(t, "write_file", {"path": path}, {"bytes": rng.randrange(500, 30_000)})
        if not ok:
            return _failed(s, t, "write_file", r, model)
        ok, r = s.tool(t, "run_tests", {"path": "tests/", "args": "-q"},
                       {"passed": rng.randrange(80, 400),
                        "failed": 0 if attempt or rng.random() < 0.75 else 1}, retries=1)
        if not ok:
            return _failed(s, t, "run_tests", r, model)
        if r["failed"] == 0:
            break
        t.reasoning("One test failed; the patch missed an edge case. Revising.")
    if "payments" in path or rng.random() < 0.25:
        s.human_wait(600)
        t.human(kind="approval", by=rng.choice(("dana", "erin")),
                reason=f"Reviewed the diff to {path}; OK to open a PR")
    ok, r = s.tool(t, "create_pull_request", {"title": task, "base": "main"},
                   {"number": rng.randrange(1200, 4800)})
    if not ok:
        return _failed(s, t, "create_pull_request", r, model)
    t.decision("pull_request_opened", reasoning="Tests pass and the change is reviewed.",
               confidence=_conf(s, 0.6))
    return "resolved"


Handler = Callable[[Simulation, Trace, Ticket], str]
# (weight, intent, agent, handler, what the user typed)
SCENARIOS: tuple[tuple[float, str, str, Handler, str], ...] = (
    (0.22, "order_status", "Support", order_status, "Where is my order {order}?"),
    (0.15, "refund", "Support", refund, "I'd like a refund for order {order}, it arrived damaged."),
    (0.11, "billing", "Billing", invoice, "Why was my card charged ${amount}?"),
    (0.17, "how_to", "Support", kb_question, "{question}"),
    (0.09, "account", "Support", account_update, "Please update my contact details."),
    (0.14, "research", "Research", research, "Can you research {topic} for the team?"),
    (0.12, "code", "Code", code_change, "Please {task}."),
)
_CUM: list[float] = []
for _w, *_ in SCENARIOS:
    _CUM.append((_CUM[-1] if _CUM else 0.0) + _w)


def ordinary_trace(s: Simulation, audit: AuditLogger, *, trace_id: str, task_id: str,
                   session_id: str, user_id: str, channel: str) -> None:
    """One user message: Router classifies it, decides, hands off, and reports back."""
    rng = s.rng
    x = rng.random() * _CUM[-1]
    i = min(bisect.bisect_right(_CUM, x), len(_CUM) - 1)
    _, intent, agent, handler, text = SCENARIOS[i]
    k = Ticket(user_id, f"cus_{rng.getrandbits(32):08x}", f"ORD-{rng.randrange(100000, 999999)}",
               round(min(rng.lognormvariate(4.2, 0.8), 2500.0), 2), channel,
               rng.randrange(60))
    message = text.format(order=k.order_id, amount=f"{k.amount:.2f}",
                          question=KB[k.topic % len(KB)][2],
                          topic=TOPICS[k.topic % len(TOPICS)],
                          task=CODE_TASKS[k.topic % len(CODE_TASKS)][0])
    model = "gpt-4o-mini" if rng.random() < 0.85 else "claude-3-5-haiku"
    with audit.trace("handle user message", agent="Router", session_id=session_id,
                     user_id=user_id, task_id=task_id, trace_id=trace_id,
                     params={"message": message, "channel": channel}) as t:
        s.think()
        if rng.random() < 0.6:
            t.reasoning(f"Message looks like a {intent.replace('_', ' ')} request; {agent} "
                        "handles those.")
        s.llm(t, model, 950, 40, {"intent": intent, "route": agent.lower()})
        if s.schema_error(t, model, "missing required field 'route'"):
            s.llm(t, model, 1000, 40, {"intent": intent, "route": agent.lower()})
        conf = _conf(s, 0.45)
        t.decision(f"route_to_{agent.lower()}", reasoning=f"Intent '{intent}' maps to {agent}.",
                   confidence=conf)
        if conf < 0.6:
            s.human_wait(90)
            t.human(kind="confirmation", by="support-lead",
                    reason=f"Low routing confidence ({conf:.2f}); routing to {agent} confirmed")
        s.think()
        with t.handoff(agent, context_summary=f"{intent.replace('_', ' ')}: {message}",
                       reason=f"{agent} owns {intent.replace('_', ' ')} requests") as child:
            outcome = handler(s, child, k)
            child.result = {"outcome": outcome}
        s.think()
        t.result = {"outcome": outcome, "handled_by": agent}
        if rng.random() < 0.35:
            s.advance(5 + rng.random() * 120)
            good = outcome in ("resolved", "refunded")
            score = rng.choice((4, 5, 5, 5)) if good else rng.choice((1, 2, 2, 3))
            comment = rng.choice(("Thanks, that was quick!", "Helpful.", "Perfect")) if good \
                else rng.choice(("Still waiting for a real answer.", "Not what I asked.",
                                 "Took too long."))
            t.feedback(score=score, comment=comment, by=user_id)
