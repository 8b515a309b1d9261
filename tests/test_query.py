"""The query layer: time parsing, timelines, trace graphs and the SQL-built summaries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentaudit.events import AuditEvent, EventType
from agentaudit.exceptions import AuditError, ConfigError, NotFound
from agentaudit.query import (
    InvalidTime,
    agent_overview,
    error_summary,
    event_details,
    event_status,
    graph_to_dot,
    graph_to_mermaid,
    iso_time,
    parse_time,
    timeline,
    trace_graph,
    trace_summary,
    truncate,
)
from agentaudit.sdk.logger import AuditLogger
from agentaudit.store import open_store

NOW = 1_800_000_000.0


# -- parse_time ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("1h", 3600), ("24h", 86400), ("7d", 7 * 86400),
    ("2w", 14 * 86400), ("1.5h", 5400), (" 10M ", 600), ("0s", 0),
])
def test_relative_times_count_back_from_now(text: str, seconds: float) -> None:
    assert parse_time(text, now=NOW) == NOW - seconds


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T10:00:00Z", datetime(2026, 11, 1, 10, tzinfo=UTC)),
    ("2026-11-01T10:00:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
    ("2026-11-01T12:00:00+02:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
    ("2026-11-01 10:00:00.250Z", datetime(2026, 11, 1, 10, 0, 0, 250000, tzinfo=UTC)),
])
def test_iso_dates_and_datetimes_are_utc(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected.timestamp()


def test_epoch_seconds_and_now() -> None:
    assert parse_time("1730419200") == 1730419200.0
    assert parse_time("1730419200.5") == 1730419200.5
    assert parse_time("now", now=NOW) == NOW


@pytest.mark.parametrize("bad", ["", "yesterday", "1y", "-1h", "2026-13-01", "10:00",
                                 "99999999999999", "1h ago", "2026-11-01T25:00"])
def test_unreadable_times_raise_an_error_naming_the_value(bad: str) -> None:
    with pytest.raises(InvalidTime) as info:
        parse_time(bad, now=NOW)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, AuditError)
    assert isinstance(info.value, ValueError)


@given(st.integers(min_value=0, max_value=32_000_000_000_000))
def test_iso_time_round_trips_through_parse_time(ms: int) -> None:
    ts = ms / 1000
    text = iso_time(ts)
    assert text is not None and text.endswith("Z") and "." in text
    assert abs(parse_time(text) - ts) < 0.0011


def test_iso_time_has_milliseconds() -> None:
    assert iso_time(1730455200.1234) == "2024-11-01T10:00:00.123Z"
    assert iso_time(None) is None


# -- events written by the SDK -------------------------------------------------------------------

def write_refund_story(db: Path) -> dict[str, Any]:
    """Router → Support → Billing with a tool call, a low-confidence decision, an escalation and
    a failed tool call; plus a lone error outside any trace. Returns the trace ids."""
    audit = AuditLogger(str(db))
    with audit.trace("refund", agent="Router", session_id="s1", user_id="u1",
                     task_id="task-1") as t:
        ids: dict[str, Any] = {"trace": t.trace_id}
        t.reasoning("customer wants a refund")
        with t.tool_call("get_order", {"id": 1}) as c:
            c.result = {"status": "delivered", "amount": 20}
        with t.handoff("Support", context_summary="check policy") as s:
            s.decision("maybe", confidence=0.4)
            s.human("escalation", by="alice", reason="unsure")
            with s.handoff("Billing", context_summary="refund order 1") as b:
                try:
                    with b.tool_call("refund", {"order": 1}):
                        raise TimeoutError("payments API timed out")
                except TimeoutError:
                    pass
                b.decision("approve", confidence=0.9, reasoning="within policy")
    ids["error"] = audit.log_error("Billing", ValueError("bad amount"), {"order": 1})
    audit.flush()
    audit.close()
    return ids


@pytest.fixture
def story(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    db = tmp_path / "audit.db"
    return db, write_refund_story(db)


@pytest.fixture
def trace_events(story: tuple[Path, dict[str, Any]]) -> list[AuditEvent]:
    db, ids = story
    with open_store(str(db), create=False) as store:
        return store.trace_events("default", ids["trace"])


def test_timeline_rows_describe_each_event(trace_events: list[AuditEvent]) -> None:
    rows = timeline(trace_events)
    assert [r.action for r in rows] == [
        "invocation refund", "reasoning", "tool_call get_order", "tool_result get_order",
        "handoff to Support", "invocation check policy", "decision maybe",
        "human_intervention escalation", "handoff to Billing", "invocation refund order 1",
        "tool_call refund", "error refund", "decision approve", "decision finish",
        "decision finish", "decision finish",
    ]
    by_action = {r.action: r for r in rows}
    assert by_action["tool_call get_order"].details == "id=1"
    assert by_action["tool_result get_order"].details == "→ status=delivered, amount=20"
    assert by_action["handoff to Support"].details == "Router → Support: check policy"
    assert by_action["human_intervention escalation"].details == "escalation by alice: unsure"
    assert by_action["decision approve"].details == "approve (confidence 0.90): within policy"
    assert by_action["error refund"].details == "TimeoutError: payments API timed out"
    assert by_action["reasoning"].details == "customer wants a refund"
    assert [r.status for r in rows].count("error") == 1
    assert by_action["decision maybe"].status == "warning"
    assert by_action["human_intervention escalation"].status == "warning"
    assert by_action["decision approve"].status == "ok"
    assert by_action["tool_result get_order"].duration is not None
    assert by_action["tool_call get_order"].duration is None
    assert all(r.time.endswith("Z") and len(r.time) == 24 for r in rows)
    first = rows[0]
    assert first.event_type == "agent.invocation" and first.parent_event_id is None
    assert rows[1].parent_event_id == first.event_id
    assert set(first.to_dict()) == {"time", "agent", "action", "details", "duration", "status",
                                    "event_id", "parent_event_id", "event_type", "trace_id"}


def test_trace_graph_links_parents_children_and_handoffs(trace_events: list[AuditEvent]) -> None:
    g = trace_graph(trace_events)
    assert g["handoff_path"] == ["Router", "Support", "Billing"]
    assert len(g["nodes"]) == 16
    assert set(g["nodes"][0]) == {"id", "agent", "type", "action", "status", "timestamp"}
    assert len(g["edges"]) == 15  # every event but the root has its parent in the trace
    handoffs = [e for e in g["edges"] if e["type"] == "handoff"]
    nodes = {n["id"]: n for n in g["nodes"]}
    assert [(nodes[e["from"]]["agent"], nodes[e["to"]]["agent"]) for e in handoffs] == [
        ("Router", "Support"), ("Support", "Billing")]
    assert {e["type"] for e in g["edges"]} == {"child", "handoff"}
    assert [n["status"] for n in g["nodes"]].count("error") == 1


def test_mermaid_and_dot_render_the_graph(trace_events: list[AuditEvent]) -> None:
    g = trace_graph(trace_events)
    mermaid = graph_to_mermaid(g)
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart TD"
    assert sum(" --> " in ln for ln in lines) == 13
    assert sum("==>|handoff|" in ln for ln in lines) == 2
    assert any(ln.strip().startswith("class ") and ln.endswith(" error") for ln in lines)
    dot = graph_to_dot(g)
    assert dot.startswith("digraph trace {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == 15
    assert dot.count('[style=bold, label="handoff"]') == 2
    assert "color=red" in dot


def test_graph_labels_are_escaped() -> None:
    ev = AuditEvent(event_type=EventType.TOOL_CALL, agent_name='Evil "agent" <x>',
                    action='say "hi"\\', trace_id="t")
    g = trace_graph([ev])
    assert '"]' not in graph_to_mermaid(g).splitlines()[1][:-2]
    assert "#quot;" in graph_to_mermaid(g)
    dot = graph_to_dot(g)
    assert 'Evil \\"agent\\" <x>' in dot and 'say \\"hi\\"\\\\' in dot


def test_trace_summary_counts(trace_events: list[AuditEvent]) -> None:
    s = trace_summary(trace_events)
    assert s["events"] == 16 and s["errors"] == 1 and s["warnings"] == 2
    assert s["agents"] == ["Router", "Support", "Billing"]
    assert s["task_ids"] == ["task-1"] and len(s["trace_ids"]) == 1
    assert s["duration_ms"] >= 0


def test_long_values_are_truncated() -> None:
    ev = AuditEvent(event_type=EventType.REASONING, agent_name="A", reasoning="word " * 1000)
    assert len(event_details(ev)) == 120 and event_details(ev).endswith("…")
    big = AuditEvent(event_type=EventType.TOOL_CALL, agent_name="A", action="t",
                     params={f"k{i}": "v" * 500 for i in range(500)})
    assert len(event_details(big)) <= 120
    result = AuditEvent(event_type=EventType.TOOL_RESULT, agent_name="A", action="t",
                        result=list(range(100_000)))
    assert len(event_details(result)) <= 120
    assert truncate("a\nb\tc", 10) == "a b c"
    assert truncate("abcdef", 4) == "abc…"


@pytest.mark.parametrize(("fields", "status"), [
    ({"event_type": EventType.ERROR}, "error"),
    ({"event_type": EventType.DECISION, "confidence": 0.49}, "warning"),
    ({"event_type": EventType.DECISION, "confidence": 0.5}, "ok"),
    ({"event_type": EventType.DECISION}, "ok"),
    ({"event_type": EventType.HUMAN_INTERVENTION, "action": "escalation"}, "warning"),
    ({"event_type": EventType.HUMAN_INTERVENTION, "action": "approval"}, "ok"),
    ({"event_type": EventType.TOOL_CALL, "action": "retry_payment"}, "warning"),
    ({"event_type": EventType.TOOL_CALL, "action": "pay", "params": {"attempt": 2}}, "warning"),
    ({"event_type": EventType.TOOL_CALL, "action": "pay", "params": {"attempt": 1}}, "ok"),
    ({"event_type": EventType.TOOL_CALL, "action": "pay", "tags": {"retry": "true"}}, "warning"),
])
def test_event_status(fields: dict[str, Any], status: str) -> None:
    assert event_status(AuditEvent(agent_name="A", **fields)) == status


def test_human_and_handoff_details_without_trace_helpers() -> None:
    human = AuditEvent(event_type=EventType.HUMAN_INTERVENTION, agent_name="Billing",
                       action="approval", params={"kind": "approval", "by": "alice"})
    assert event_details(human) == "approval by alice"
    handoff = AuditEvent(event_type=EventType.HANDOFF, agent_name="Router",
                         action="handoff to Billing")
    assert event_details(handoff) == "Router → Billing"
    usage = AuditEvent(event_type=EventType.TOKEN_USAGE, agent_name="A", model="gpt-4o",
                       prompt_tokens=10, completion_tokens=5, cost_usd=0.5)
    assert event_details(usage) == "gpt-4o · 10+5 tokens · $0.5000"


# -- summaries built in SQL ----------------------------------------------------------------------

class AggregatesOnly:
    """A store that answers only ``aggregate``: proves a summary never loads events."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def aggregate(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._store.aggregate(*args, **kwargs)


def test_error_summary_uses_the_seed_keys(story: tuple[Path, dict[str, Any]]) -> None:
    db, _ = story
    with open_store(str(db), create=False) as store:
        s = error_summary(AggregatesOnly(store), "default", None, None)  # type: ignore[arg-type]
    assert s["total_events"] == 17
    assert s["total_errors"] == 2
    assert s["error_rate"] == pytest.approx(2 / 17)
    assert s["error_types"] == {"TimeoutError": 1, "ValueError": 1}
    assert s["errors_by_agent"] == {"Billing": 2}
    assert s["errors_by_tool"] == {"refund": 1}
    assert sorted((e["error_type"], e["message"], e["count"]) for e in s["most_common_errors"]) \
        == [("TimeoutError", "payments API timed out", 1), ("ValueError", "bad amount", 1)]


def test_error_summary_of_an_empty_period(story: tuple[Path, dict[str, Any]]) -> None:
    db, _ = story
    with open_store(str(db), create=False) as store:
        s = error_summary(store, "default", parse_time("2100-01-01"), None, agent="Billing")
    assert (s["total_events"], s["total_errors"], s["error_rate"]) == (0, 0, 0.0)
    assert s["error_types"] == {} and s["most_common_errors"] == []


def test_agent_overview(story: tuple[Path, dict[str, Any]]) -> None:
    db, _ = story
    with open_store(str(db), create=False) as store:
        ov = agent_overview(AggregatesOnly(store), "default", "Support", None, None)  # type: ignore[arg-type]
        billing = agent_overview(store, "default", "Billing", None, None)
    assert ov["events"] == 5  # invocation, decision, escalation, handoff, finish
    assert ov["invocations"] == 1
    assert ov["handoffs"] == 1 and ov["handoffs_out"] == {"Billing": 1}
    assert ov["human_interventions"] == 1
    assert ov["decisions"]["count"] == 2
    assert ov["decisions"]["avg_confidence"] == pytest.approx(0.4)
    assert ov["decisions"]["low_confidence"] == 1
    assert ov["errors"] == 0 and ov["errors_by_type"] == {}
    assert billing["tools"] == [{"tool": "refund", "calls": 1, "errors": 1,
                                 "avg_latency_ms": None, "max_latency_ms": None}]
    assert billing["errors_by_type"] == {"TimeoutError": 1, "ValueError": 1}
    assert billing["traces"] == 2


def test_agent_overview_of_unknown_agents(story: tuple[Path, dict[str, Any]]) -> None:
    db, _ = story
    with open_store(str(db), create=False) as store:
        with pytest.raises(NotFound, match="no agent named 'Nobody'"):
            agent_overview(store, "default", "Nobody", None, None)
        with pytest.raises(NotFound, match="has no events between"):
            agent_overview(store, "default", "Router", parse_time("2100-01-01"), None)
        with pytest.raises(NotFound):
            agent_overview(store, "other-tenant", "Router", None, None)
