"""Stores whose every event the test writes itself, through the SDK, with exact timestamps.

``scenario`` is the store most report tests read; its numbers are worked out in the comments of
``write_scenario`` and asserted exactly by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentaudit.events import AuditEvent
from agentaudit.sdk.logger import AuditLogger
from agentaudit.store import Store, open_store

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC).timestamp()  # a Tuesday, 10:00 UTC
NOW = T0 + 100_000.0


class Writer:
    """Writes events with readable, ordered ids (``…-000000000001``) and explicit times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # redaction off: the reports' PII check must find the PII that scenarios store on purpose
        self.audit = AuditLogger(str(path), batch_size=500, flush_interval=0.01, redact=False)
        self.n = 0

    def add(self, event_type: str, agent: str, ts: float, **fields: Any) -> str:
        self.n += 1
        event_id = f"00000000-0000-7000-8000-{self.n:012x}"
        kind = event_type if "." in event_type else f"agent.{event_type}"
        self.audit.log(AuditEvent(event_type=kind, agent_name=agent, event_id=event_id,
                                  timestamp=ts, **fields))
        return event_id

    def close(self) -> Store:
        assert self.audit.flush(timeout=30)
        self.audit.close()
        st = self.audit.stats()
        assert st.written == self.n and not st.failed and not st.dropped, st
        return open_store(str(self.path), create=False)


@dataclass
class Scenario:
    store: Store
    ids: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.ids[name]


def write_scenario(w: Writer) -> dict[str, str]:
    """Three traces. 26 events, 1 error, 2 handoffs, 2 human interventions (1 escalation),
    3 traces (root invocations), 4 agents, 4 invocations, 5 tool calls, 2 decisions (finish
    excluded)."""
    ids: dict[str, str] = {}

    def add(name: str, event_type: str, agent: str, dt: float, **f: Any) -> str:
        ids[name] = w.add(event_type, agent, T0 + dt, **f)
        return ids[name]

    # t1: Router -> Billing; an approved refund that times out once and is retried at once.
    t1 = dict(trace_id="a" * 32, task_id="task-1", session_id="s1", user_id="u1")
    i1 = add("i1", "invocation", "Router", 0, action="handle user message", **t1)
    add("d1", "decision", "Router", 1, action="route_to_billing", confidence=0.9,
        parent_event_id=i1, **t1)
    h1 = add("h1", "handoff", "Router", 2, action="handoff to Billing", parent_event_id=i1,
             params={"from_agent": "Router", "to_agent": "Billing",
                     "context_summary": "refund"}, **t1)
    i2 = add("i2", "invocation", "Billing", 3, action="refund", parent_event_id=h1, **t1)
    c1 = add("c1", "tool_call", "Billing", 4, action="get_order", parent_event_id=i2,
             params={"order_id": "ORD-12345678"}, **t1)
    add("r1", "tool_result", "Billing", 4.1, action="get_order", parent_event_id=c1,
        duration_ms=100.0, result={"status": "delivered"}, **t1)
    add("a1", "human_intervention", "Billing", 5, action="approval", parent_event_id=i2,
        params={"kind": "approval", "by": "alice"}, **t1)
    c2 = add("c2", "tool_call", "Billing", 6, action="process_refund", parent_event_id=i2,
             params={"amount": 200, "order_id": "ORD-12345678"}, **t1)
    add("e1", "error", "Billing", 36, action="process_refund", parent_event_id=c2,
        error="process_refund timed out after 30s", error_type="TimeoutError",
        duration_ms=30000.0, **t1)
    c3 = add("c3", "tool_call", "Billing", 36.05, action="process_refund", parent_event_id=i2,
             params={"amount": 200, "order_id": "ORD-12345678"}, **t1)
    add("r3", "tool_result", "Billing", 36.55, action="process_refund", parent_event_id=c3,
        duration_ms=500.0, **t1)
    add("l1", "llm_response", "Billing", 37, action="llm_response", model="gpt-4o",
        prompt_tokens=1000, completion_tokens=100, token_count=1100, cost_usd=0.01,
        parent_event_id=i2, **t1)
    add("f2", "decision", "Billing", 38, action="finish", duration_ms=35000.0,
        parent_event_id=i2, **t1)
    add("f1", "decision", "Router", 39, action="finish", duration_ms=39000.0,
        parent_event_id=i1, **t1)
    # t2: Support refunds without approval, escalates, and hands off to Code, who never runs.
    t2 = dict(trace_id="b" * 32, task_id="task-2", session_id="s2", user_id="u2")
    i3 = add("i3", "invocation", "Support", 3600, action="handle user message", **t2)
    c4 = add("c4", "tool_call", "Support", 3601, action="get_order", parent_event_id=i3, **t2)
    add("r4", "tool_result", "Support", 3601.3, action="get_order", parent_event_id=c4,
        duration_ms=300.0, **t2)
    c5 = add("c5", "tool_call", "Support", 3602, action="process_refund", parent_event_id=i3,
             params={"amount": 500}, **t2)
    add("r5", "tool_result", "Support", 3602.7, action="process_refund", parent_event_id=c5,
        duration_ms=700.0, **t2)
    add("d2", "decision", "Support", 3603, action="refund_done", confidence=0.4,
        parent_event_id=i3, **t2)
    add("x1", "human_intervention", "Support", 3604, action="escalation", parent_event_id=i3,
        params={"kind": "escalation", "by": "oncall"}, **t2)
    add("l2", "token_usage", "Support", 3605, action="token_usage", model="mystery-model",
        prompt_tokens=50, completion_tokens=50, token_count=100, cost_usd=0.02,
        parent_event_id=i3, **t2)
    add("h2", "handoff", "Support", 3605.5, action="handoff to Code", parent_event_id=i3,
        params={"from_agent": "Support", "to_agent": "Code"}, **t2)
    add("f3", "decision", "Support", 3606, action="finish", duration_ms=6000.0,
        parent_event_id=i3, **t2)
    # t3: Research starts, puts personal data in its payload, and never finishes.
    t3 = dict(trace_id="c" * 32, task_id="task-3", session_id="s3", user_id="u3")
    i4 = add("i4", "invocation", "Research", 7200, action="research",
             params={"task": "email jane.doe@example.com about card 4111 1111 1111 1111"}, **t3)
    add("l3", "llm_response", "Research", 7201, action="llm_response",
        model="claude-3-5-haiku", prompt_tokens=2000, completion_tokens=500, token_count=2500,
        parent_event_id=i4, **t3)
    return ids
