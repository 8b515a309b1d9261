"""Governance and exfiltration rules: each fires on its pattern and stays quiet otherwise."""

from __future__ import annotations

from agentaudit.events import AuditEvent

from .helpers import T0, engine, ev


def _handoff(src: str, dst: str, ts: float, trace: str = "trace-1") -> AuditEvent:
    return ev("handoff", agent=src, ts=ts, trace_id=trace, action=f"handoff to {dst}",
              params={"from_agent": src, "to_agent": dst})


# -- approval ------------------------------------------------------------------------------------

def test_approval_required_tool_without_approval_fires() -> None:
    eng = engine("approval_required")
    call = ev("tool_call", agent="Billing", action="process_refund",
              params={"order_id": "ORD-1", "amount": 400})
    [f] = eng.evaluate([call])
    assert f.rule == "approval_required" and f.kind == "compliance"
    assert f.evidence == [call.event_id]
    assert "amount = 400" in f.explanation and f.to_event().event_type == "agent.compliance"


def test_approval_earlier_in_the_trace_or_small_amount_does_not_fire() -> None:
    eng = engine("approval_required")
    approval = ev("human_intervention", agent="Billing", action="approval",
                  params={"kind": "approval", "by": "alice"})
    call = ev("tool_call", agent="Billing", ts=T0 + 5, action="process_refund",
              params={"amount": 400})
    small = ev("tool_call", agent="Billing", ts=T0 + 6, trace_id="other",
               action="process_refund", params={"amount": 20})
    other_tool = ev("tool_call", agent="Billing", ts=T0 + 7, trace_id="t3",
                    action="get_invoice", params={"amount": 9999})
    assert eng.evaluate([call, approval, small, other_tool]) == []  # sorted by time first


def test_approval_in_another_trace_does_not_count() -> None:
    eng = engine("approval_required")
    approval = ev("human_intervention", trace_id="A", params={"kind": "approval", "by": "bo"})
    call = ev("tool_call", ts=T0 + 1, trace_id="B", action="transfer_funds",
              params={"amount": 1000})
    assert [f.rule for f in eng.evaluate([approval, call])] == ["approval_required"]


def test_a_rejection_is_not_an_approval() -> None:
    eng = engine("approval_required")
    rejection = ev("human_intervention", params={"kind": "rejection", "by": "bo"})
    call = ev("tool_call", ts=T0 + 1, action="delete_customer", params={"customer": "c1"})
    assert len(eng.evaluate([rejection, call])) == 1  # no amount param: needs an approval


# -- repeated rejections -------------------------------------------------------------------------

def _rejection(ts: float, trace: str = "trace-1", by: str = "alice") -> AuditEvent:
    return ev("human_intervention", agent="Billing", ts=ts, trace_id=trace, action="rejection",
              params={"kind": "rejection", "by": by})


def test_repeated_rejections_in_a_trace_fire_once() -> None:
    eng = engine("repeated_rejections")
    events = [_rejection(T0), _rejection(T0 + 60, by="bob"), _rejection(T0 + 120)]
    firings = eng.evaluate(events)
    assert len(firings) == 1
    f = firings[0]
    assert f.evidence == [events[1].event_id, events[0].event_id]
    assert "2 times" in f.explanation and f.occurrences == 2  # the third counted, not re-fired


def test_single_rejections_in_different_traces_or_outside_the_window_do_not_fire() -> None:
    eng = engine("repeated_rejections")
    assert eng.evaluate([_rejection(T0, "a"), _rejection(T0 + 1, "b")]) == []
    eng = engine("repeated_rejections")
    assert eng.evaluate([_rejection(T0), _rejection(T0 + 7200)]) == []


def test_agent_scope_counts_across_traces() -> None:
    eng = engine("repeated_rejections", repeated_rejections={"scope": "agent", "count": 3})
    firings = eng.evaluate([_rejection(T0 + i, f"t{i}") for i in range(3)])
    assert len(firings) == 1 and "agent Billing" in firings[0].explanation


# -- budget --------------------------------------------------------------------------------------

def test_budget_warns_then_fires_when_exceeded_once_per_day() -> None:
    eng = engine("budget", budget={"daily_cost_usd": 10.0, "daily_tokens": 0})
    spend = [ev("llm_response", agent="Research", ts=T0 + i, cost_usd=3.0, model="gpt-4o",
                prompt_tokens=100, completion_tokens=10) for i in range(5)]
    firings = eng.evaluate(spend)
    assert [(f.details["level"], f.severity) for f in firings] == [("warning", "low"),
                                                                   ("exceeded", "high")]
    assert firings[1].evidence == [spend[3].event_id]  # 12 USD > 10
    assert "120%" in firings[1].explanation
    more = [ev("llm_response", agent="Research", ts=T0 + 10, cost_usd=5.0)]
    assert eng.evaluate(more) == []  # the same day: already told


def test_budget_below_threshold_and_per_agent_budgets() -> None:
    eng = engine("budget", budget={"daily_cost_usd": 10.0, "daily_tokens": 0,
                                   "agents": {"Research": {"daily_cost_usd": 100.0}}})
    spend = [ev("llm_response", agent="Research", ts=T0 + i, cost_usd=3.0) for i in range(5)]
    assert eng.evaluate(spend) == []
    tokens = engine("budget", budget={"daily_tokens": 1000, "daily_cost_usd": 0.0})
    assert [f.details["metric"] for f in tokens.evaluate(
        [ev("token_usage", ts=T0 + i, prompt_tokens=300, completion_tokens=100)
         for i in range(3)])] == ["daily_tokens", "daily_tokens"]


# -- handoff loops -------------------------------------------------------------------------------

def test_handoff_loop_a_b_a_fires_with_the_path() -> None:
    eng = engine("handoff_loop")
    hops = [_handoff("Router", "Support", T0), _handoff("Support", "Billing", T0 + 1),
            _handoff("Billing", "Support", T0 + 2), _handoff("Support", "Billing", T0 + 3)]
    firings = eng.evaluate(hops)
    assert len(firings) == 1
    f = firings[0]
    assert f.details["path"] == ["Router", "Support", "Billing", "Support", "Billing"]
    assert f.details["returns"] == 2
    assert f.evidence[0] == hops[3].event_id and set(f.evidence) == {h.event_id for h in hops}


def test_one_return_is_allowed_by_default_and_max_returns_zero_flags_it() -> None:
    hops = [_handoff("A", "B", T0), _handoff("B", "A", T0 + 1)]
    assert engine("handoff_loop").evaluate(hops) == []
    strict = engine("handoff_loop", handoff_loop={"max_returns": 0})
    assert [f.rule for f in strict.evaluate(hops)] == ["handoff_loop"]


def test_a_chain_without_returns_and_loops_in_separate_traces_do_not_fire() -> None:
    eng = engine("handoff_loop")
    chain = [_handoff("Router", "Support", T0), _handoff("Support", "Billing", T0 + 1),
             _handoff("Billing", "Ledger", T0 + 2)]
    split = [_handoff("A", "B", T0, "x"), _handoff("B", "A", T0 + 1, "y"),
             _handoff("A", "B", T0 + 2, "z")]
    assert eng.evaluate(chain + split) == []


# -- acting after stop ---------------------------------------------------------------------------

def _stop(agent: str, ts: float, action: str = "stop") -> AuditEvent:
    return ev("human_intervention", agent="oncall", ts=ts, action="override",
              params={"kind": "override", "by": "dana", "action": action,
                      "target_agent": agent})


def test_acting_after_stop_fires_and_links_the_stop() -> None:
    eng = engine("acting_after_stop")
    stop = _stop("Code", T0)
    inflight = ev("tool_call", agent="Code", ts=T0 + 2, action="git_push")
    late = ev("tool_call", agent="Code", ts=T0 + 60, action="deploy")
    firings = eng.evaluate([stop, inflight, late])
    assert len(firings) == 1
    assert firings[0].evidence == [late.event_id, stop.event_id]
    assert firings[0].severity == "critical"


def test_no_firing_after_resume_or_for_other_agents() -> None:
    eng = engine("acting_after_stop")
    events = [_stop("Code", T0), ev("tool_call", agent="Support", ts=T0 + 30),
              _stop("Code", T0 + 40, "resume"), ev("tool_call", agent="Code", ts=T0 + 60)]
    assert eng.evaluate(events) == []


# -- exfiltration --------------------------------------------------------------------------------

def test_exfiltration_of_redacted_or_raw_sensitive_data_to_external_tool_fires() -> None:
    eng = engine("exfiltration")
    masked = ev("tool_call", action="http_post", params={"body": "card [CARD] ok"},
                tags={"redacted": "card:1"})
    raw = ev("tool_call", action="upload", ts=T0 + 1, trace_id="t2",
             params={"to": "https://paste.example", "text": "contact jane.doe@example.org"},
             tags={"external": "true"})
    firings = eng.evaluate([masked, raw])
    assert [f.details["kinds"] for f in firings] == [{"card": 1}, {"email": 1}]
    assert all(f.severity == "critical" for f in firings)
    assert "jane.doe" not in repr([f.to_dict() for f in firings])  # kinds only, never values


def test_no_exfiltration_for_internal_tools_or_clean_params() -> None:
    eng = engine("exfiltration")
    internal = ev("tool_call", action="lookup_customer", params={"email": "jane@example.org"})
    clean = ev("tool_call", action="send_email", ts=T0 + 1,
               params={"to": "user-00012", "template": "refund_issued"})
    assert eng.evaluate([internal, clean]) == []


# -- feedback loop guard -------------------------------------------------------------------------

def test_firings_are_never_inspected_again() -> None:
    eng = engine(None)
    call = ev("tool_call", agent="Billing", action="process_refund", params={"amount": 900})
    [f] = eng.evaluate([call])
    again = f.to_event()
    assert again.source == "agentaudit.detect" and again.parent_event_id == call.event_id
    assert eng.evaluate([again]) == []
    assert eng.stats["events"] == 1


def test_state_is_warmed_from_the_store_after_a_restart(backend: str) -> None:
    """A new engine (a restarted collector) still knows the approval, the handoff chain and
    the stop recorded before it started."""
    from agentaudit.detect import DetectionEngine, StoreHistory
    from agentaudit.store import open_store

    before = [ev("human_intervention", agent="Billing", trace_id="T", action="approval",
                 params={"kind": "approval", "by": "alice"}),
              _handoff("A", "B", T0 + 1, "L"), _handoff("B", "A", T0 + 2, "L"),
              _stop("Code", T0 + 3)]
    after = [ev("tool_call", agent="Billing", ts=T0 + 10, trace_id="T",
                action="process_refund", params={"amount": 900}),
             _handoff("A", "B", T0 + 11, "L"),
             ev("tool_call", agent="Code", ts=T0 + 60, action="deploy")]
    with open_store(backend) as store:
        store.append_batch(before)
        store.append_batch(after)
        firings = DetectionEngine(history=StoreHistory(store)).evaluate(after)
    assert sorted(f.rule for f in firings) == ["acting_after_stop", "handoff_loop"]
    loop = next(f for f in firings if f.rule == "handoff_loop")
    assert loop.details["path"] == ["A", "B", "A", "B"]
