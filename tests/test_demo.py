from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentaudit._demo_sim import MODEL_PRICES, cost_usd
from agentaudit.demo import DemoResult, run_demo
from agentaudit.events import AuditEvent, event_to_dict
from agentaudit.exceptions import AuditError, ConfigError
from agentaudit.store import EventQuery, Store, open_store

NOW = 1_750_000_000.0 - 1_750_000_000.0 % 3600  # a fixed hour, so runs are comparable
DAYS = 7.0
AGENTS = {"Router", "Support", "Billing", "Research", "Code"}


def _demo(path: Path, **kwargs: Any) -> DemoResult:
    kwargs.setdefault("traces", 50)
    kwargs.setdefault("now", NOW)
    return run_demo(str(path), **kwargs)


def _all(store: Store, tenant: str = "default") -> list[AuditEvent]:
    return sorted(store.iter_events(EventQuery(tenant=tenant)), key=lambda e: e.seq or 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoResult, Store]]:
    """One small demo store shared by the read-only tests of this module."""
    base = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGENTAUDIT_SPOOL_DIR", str(base / "spool"))
        mp.setenv("XDG_STATE_HOME", str(base / "state"))
        mp.setenv("XDG_CONFIG_HOME", str(base / "config"))
        result = _demo(base / "demo.db")
        store = open_store(str(base / "demo.db"))
        try:
            yield result, store
        finally:
            store.close()


@pytest.fixture(scope="module")
def events(demo: tuple[DemoResult, Store]) -> list[AuditEvent]:
    return _all(demo[1])


@pytest.fixture(scope="module")
def by_trace(events: list[AuditEvent]) -> dict[str, list[AuditEvent]]:
    traces: dict[str, list[AuditEvent]] = defaultdict(list)
    for e in events:
        assert e.trace_id is not None
        traces[e.trace_id].append(e)
    return traces


def _comparable(e: AuditEvent) -> dict[str, Any]:
    d = event_to_dict(e)
    d.pop("leaf_hash")  # salted with fresh randomness by the store, by design
    return d


# -- determinism -----------------------------------------------------------------------------------

def test_same_seed_and_now_give_identical_events(tmp_path: Path,
                                                  events: list[AuditEvent]) -> None:
    _demo(tmp_path / "again.db")
    with open_store(str(tmp_path / "again.db")) as store:
        again = _all(store)
    assert [_comparable(e) for e in again] == [_comparable(e) for e in events]


def test_another_seed_gives_other_events(tmp_path: Path, events: list[AuditEvent]) -> None:
    _demo(tmp_path / "other.db", seed=7)
    with open_store(str(tmp_path / "other.db")) as store:
        other = _all(store)
    assert {e.event_id for e in other}.isdisjoint(e.event_id for e in events)
    assert [(e.event_type, e.action) for e in other] != [(e.event_type, e.action) for e in events]


# -- the shape of the workload ---------------------------------------------------------------------

def test_result_matches_the_store(demo: tuple[DemoResult, Store], events: list[AuditEvent],
                                  by_trace: dict[str, list[AuditEvent]]) -> None:
    result, _ = demo
    assert result.traces == 50 == len(by_trace)
    assert result.events == len(events)
    assert result.incident_task_id == "refund-incident"
    assert result.incident_trace_id in by_trace
    assert result.seconds > 0


def test_events_lie_in_the_period_and_ids_are_uuid7(events: list[AuditEvent]) -> None:
    assert all(NOW - DAYS * 86400 <= e.timestamp <= NOW for e in events)
    assert len({e.event_id for e in events}) == len(events)
    for e in events:
        assert e.event_id[14] == "7" and e.event_id[19] in "89ab"
        assert int(e.event_id[:8] + e.event_id[9:13], 16) == int(e.timestamp * 1000)


def test_traces_average_15_to_25_events(events: list[AuditEvent],
                                        by_trace: dict[str, list[AuditEvent]]) -> None:
    assert 15 <= len(events) / len(by_trace) <= 25


def test_about_four_percent_are_errors_of_realistic_kinds(demo: tuple[DemoResult, Store],
                                                          events: list[AuditEvent]) -> None:
    errors = [e for e in events if e.event_type == "agent.error"]
    assert 0.02 <= len(errors) / len(events) <= 0.06
    kinds = {r["error_type"] for r in demo[1].aggregate("error_types", "default", None, None)}
    assert {"TimeoutError", "RateLimitError", "ValidationError"} <= kinds
    assert all(e.error and e.action for e in errors)
    assert any(e.event_type == "agent.tool_call" and e.action == "process_refund"
               for e in events)


def test_all_agents_and_event_kinds_are_present(demo: tuple[DemoResult, Store],
                                                events: list[AuditEvent]) -> None:
    assert {e.agent_name for e in events} == AGENTS
    types = Counter(e.event_type for e in events)
    for t in ("agent.invocation", "agent.reasoning", "agent.tool_call", "agent.tool_result",
              "agent.decision", "agent.llm_response", "agent.error", "agent.handoff",
              "agent.human_intervention", "agent.token_usage", "agent.feedback"):
        assert types[t] > 0, t
    humans = {e.action for e in events if e.event_type == "agent.human_intervention"}
    assert {"approval", "escalation"} <= humans
    handoffs = {(e.params or {}).get("to_agent") for e in events if e.event_type == "agent.handoff"}
    assert handoffs <= AGENTS - {"Router"} and len(handoffs) >= 3
    totals = demo[1].aggregate("totals", "default", None, None)[0]
    assert totals["agents"] == 5 and totals["cost_usd"] > 0


def test_model_calls_carry_tokens_and_cost_from_the_price_table(events: list[AuditEvent]) -> None:
    calls = [e for e in events if e.event_type in ("agent.llm_response", "agent.token_usage")]
    assert {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "claude-3-5-haiku"} <= {
        e.model for e in calls}
    for e in calls:
        assert e.model in MODEL_PRICES
        assert e.prompt_tokens is not None and e.completion_tokens is not None
        assert e.token_count == e.prompt_tokens + e.completion_tokens
        assert e.cost_usd == cost_usd(e.model, e.prompt_tokens, e.completion_tokens)
        assert e.duration_ms is not None and e.duration_ms > 0


def test_tool_calls_have_latencies_and_decisions_have_confidence(
        events: list[AuditEvent]) -> None:
    results = [e for e in events if e.event_type == "agent.tool_result"]
    assert all(e.duration_ms is not None for e in results)
    latency: dict[str, list[float]] = defaultdict(list)
    for e in results:
        assert e.action is not None and e.duration_ms is not None
        latency[e.action].append(e.duration_ms)
    assert max(latency["run_tests"]) > 10 * max(latency["lookup_customer"])
    decisions = [e for e in events if e.event_type == "agent.decision" and e.action != "finish"]
    assert decisions and all(e.confidence is not None and 0 < e.confidence <= 1
                             for e in decisions)
    assert all(e.reasoning for e in decisions)


def test_every_trace_is_one_tree_with_one_identity(
        by_trace: dict[str, list[AuditEvent]]) -> None:
    for trace_id, evs in by_trace.items():
        ids = {e.event_id for e in evs}
        roots = [e for e in evs if e.parent_event_id is None]
        assert len(roots) == 1, trace_id
        assert roots[0].event_type == "agent.invocation" and roots[0].agent_name == "Router"
        assert all(e.parent_event_id in ids for e in evs if e is not roots[0])
        assert len({(e.task_id, e.session_id, e.user_id) for e in evs}) == 1
        assert all(e.trace_id == trace_id for e in evs)


def test_users_hold_sessions_of_several_traces(by_trace: dict[str, list[AuditEvent]]) -> None:
    sessions: dict[str, set[str]] = defaultdict(set)
    for trace_id, evs in by_trace.items():
        assert evs[0].session_id and evs[0].user_id
        sessions[evs[0].session_id].add(trace_id)
    assert max(len(t) for t in sessions.values()) >= 2
    assert len(sessions) < len(by_trace)


# -- the refund incident ---------------------------------------------------------------------------

def test_the_refund_incident(demo: tuple[DemoResult, Store]) -> None:
    result, store = demo
    evs = store.trace_events("default", "refund-incident")
    assert {e.trace_id for e in evs} == {result.incident_trace_id}
    assert NOW - 3 * 3600 < evs[0].timestamp < NOW - 3600

    timeouts = [e for e in evs if e.event_type == "agent.error"]
    assert [(e.agent_name, e.action, e.error_type, e.error) for e in timeouts] == [
        ("Billing", "process_refund", "TimeoutError", "process_refund timed out after 30s")] * 2
    assert all(e.duration_ms == pytest.approx(30_000) for e in timeouts)

    breaker = [e for e in evs if e.action == "open_circuit_breaker"]
    assert len(breaker) == 1 and breaker[0].event_type == "agent.decision"
    assert breaker[0].reasoning and breaker[0].confidence is not None
    assert breaker[0].timestamp > timeouts[-1].timestamp

    fallback = [e for e in evs if e.action == "queue_manual_refund"]
    assert [e.event_type for e in fallback] == ["agent.tool_call", "agent.tool_result"]
    escalation = [e for e in evs if e.event_type == "agent.human_intervention"
                  and e.action == "escalation"]
    assert len(escalation) == 1 and escalation[0].params == {"kind": "escalation",
                                                             "by": "oncall-billing"}
    assert escalation[0].reasoning and fallback[1].timestamp < escalation[0].timestamp

    handoffs = [(e.params or {}).get("to_agent") for e in evs if e.event_type == "agent.handoff"]
    assert handoffs == ["Support", "Billing"]
    last_reply = [e for e in evs if e.event_type == "agent.llm_response"][-1]
    assert last_reply.agent_name == "Router" and "RF-20931" in str(last_reply.result)

    ids = {e.event_id for e in evs}
    roots = [e for e in evs if e.parent_event_id is None]
    assert len(roots) == 1 and all(e.parent_event_id in ids for e in evs if e is not roots[0])
    assert {e.agent_name for e in evs} == {"Router", "Support", "Billing"}


# -- size, progress, tenants, arguments ------------------------------------------------------------

def test_events_budget_stops_within_one_trace(tmp_path: Path) -> None:
    n = 1500
    result = _demo(tmp_path / "n.db", events=n)
    with open_store(str(tmp_path / "n.db")) as store:
        evs = _all(store)
        assert store.trace_events("default", "refund-incident")
    assert len(evs) == result.events >= n
    last_trace = evs[-1].trace_id
    assert len(evs) - sum(e.trace_id == last_trace for e in evs) < n
    assert result.traces == len({e.trace_id for e in evs}) > 50  # `traces` is not the limit


def test_a_tiny_budget_still_holds_the_incident(tmp_path: Path) -> None:
    result = _demo(tmp_path / "tiny.db", events=10, traces=1)
    assert result.traces == 1 and result.events > 10
    with open_store(str(tmp_path / "tiny.db")) as store:
        assert store.trace_events("default", "refund-incident")


def test_progress_is_reported_about_every_percent(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    _demo(tmp_path / "p.db", traces=300, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (300, 300)
    assert 90 <= len(calls) <= 101
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_tenant(tmp_path: Path) -> None:
    result = _demo(tmp_path / "t.db", traces=5, tenant="acme")
    with open_store(str(tmp_path / "t.db")) as store:
        assert store.count(EventQuery(tenant="acme")) == result.events
        assert store.count(EventQuery(tenant="default")) == 0


@pytest.mark.parametrize("kwargs", [{"traces": 0}, {"events": 0}, {"days": 0}])
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        _demo(tmp_path / "bad.db", **kwargs)


def test_bad_tenant(tmp_path: Path) -> None:
    with pytest.raises(AuditError):
        _demo(tmp_path / "bad.db", tenant="no spaces please")
    assert not (tmp_path / "bad.db").exists()


def test_an_unusable_store_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(AuditError):
        _demo(tmp_path / "missing" / "dir" / "x.db", traces=100_000)
