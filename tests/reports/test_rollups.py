"""The report rollups (migration 0006): every report answers the same from the rollups as from
the rows, for any period or zone; the rollups follow ingest in any arrival order, a migration
of an older store, compaction, and a store opened read-only without them."""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentaudit import reports as R
from agentaudit.demo import run_demo
from agentaudit.events import AuditEvent
from agentaudit.reports.period import Period
from agentaudit.store import open_store
from agentaudit.store._sqlite_rollup import GRAIN, split
from agentaudit.store.sqlite import SQLiteStore
from reports.store_builder import T0

NOW = T0 + 40 * 3600.0
T = TypeVar("T")
HOUR = 3600.0


def _all(store: SQLiteStore, period: Period, agent: str | None = None) -> dict[str, Any]:
    return {
        "summary": R.summary_report(store, "default", period, agent),
        "tools": R.tool_usage_report(store, "default", period, agent),
        "errors": R.errors_report(store, "default", period, agent),
        "compliance": R.compliance_report(store, "default", period, agent, now=NOW),
        "cost": R.cost_report(store, "default", period, agent),
    }


def rolled_and_plain(store: Any, answer: Callable[[], T]) -> tuple[T, T]:
    """``answer()`` from the rollups, then from the rows (the store keeps its rollups)."""
    assert store.use_rollups
    rolled = answer()
    store.use_rollups = False
    try:
        plain = answer()
    finally:
        store.use_rollups = True
    return rolled, plain


def _both(store: SQLiteStore, period: Period, agent: str | None = None
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    return rolled_and_plain(store, lambda: _all(store, period, agent))


def _events(rng: random.Random, n: int, start: float, span: float) -> list[AuditEvent]:
    """Traces with every kind of event the reports read, at random times (ragged hours),
    including metered events of a model without a price, recorded costs and unended work."""
    out: list[AuditEvent] = []
    while len(out) < n:
        ts = start + rng.random() * span
        trace = f"trace-{len(out):06d}"
        agent = rng.choice(["Router", "Billing", "Support"])
        inv = AuditEvent(event_type="agent.invocation", agent_name=agent, action="task",
                         trace_id=trace, timestamp=ts, tags={"n": len(out)})
        out.append(inv)
        for k in range(rng.randint(1, 4)):
            tool = rng.choice(["get_order", "process_refund", "search"])
            ts += rng.random() * 30
            tag = rng.choice([True, "yes", "False", 1, 0, None])
            out.append(AuditEvent(event_type="agent.tool_call", agent_name=agent, action=tool,
                                  trace_id=trace, parent_event_id=inv.event_id, timestamp=ts,
                                  params={"amount": rng.choice([10, 500]),
                                          **({"purpose": "refund"} if k % 2 else {})},
                                  tags={} if tag is None else {"data_access": tag,
                                                               "resource": "orders"}))
            ts += rng.random() * 5
            if rng.random() < 0.2:
                out.append(AuditEvent(event_type="agent.error", agent_name=agent, action=tool,
                                      trace_id=trace, parent_event_id=inv.event_id,
                                      timestamp=ts, duration_ms=rng.random() * 900,
                                      error="timed out", error_type="TimeoutError"))
            else:
                out.append(AuditEvent(event_type="agent.tool_result", agent_name=agent,
                                      action=tool, trace_id=trace, timestamp=ts,
                                      parent_event_id=inv.event_id,
                                      duration_ms=round(rng.random() * 400, 1) + k))
        model = rng.choice(["gpt-4o", "claude-sonnet-4", "house-model", None])
        out.append(AuditEvent(event_type="agent.llm_response", agent_name=agent, model=model,
                              trace_id=trace, parent_event_id=inv.event_id, timestamp=ts + 1,
                              prompt_tokens=rng.randint(10, 5000),
                              completion_tokens=rng.choice([None, rng.randint(1, 900)]),
                              cost_usd=rng.choice([None, 0.0001 * rng.randint(1, 99)]),
                              user_id=f"user-{rng.randint(1, 9)}", task_id=f"task-{len(out) % 7}"))
        if rng.random() < 0.1:
            out.append(AuditEvent(event_type="agent.human_intervention", agent_name="Human",
                                  action=rng.choice(["approval", "escalation"]), trace_id=trace,
                                  timestamp=ts + 2, params={"by": "alice"}))
        if rng.random() < 0.15:
            out.append(AuditEvent(event_type="agent.handoff", agent_name=agent,
                                  action="handoff to Support", trace_id=trace,
                                  parent_event_id=inv.event_id, timestamp=ts + 3))
        if rng.random() < 0.9:  # one in ten never ends
            out.append(AuditEvent(event_type="agent.decision", agent_name=agent,
                                  action="finish", trace_id=trace, timestamp=ts + 4,
                                  parent_event_id=inv.event_id, duration_ms=ts + 4 - inv.timestamp))
    return out


@pytest.fixture
def mixed(db_path: Path) -> SQLiteStore:
    """~3,000 events over 30 hours from T0 - 20 min, stored in shuffled batches (closers may
    arrive before their openers)."""
    rng = random.Random(7)
    events = _events(rng, 3000, T0 - 1200, 30 * HOUR)
    rng.shuffle(events)
    store = open_store(str(db_path))
    for i in range(0, len(events), 250):
        store.append_batch(events[i:i + 250])
    yield store
    store.close()


PERIODS = {
    "whole": Period(T0 - 2 * HOUR, T0 + 40 * HOUR),
    "aligned hours": Period(T0 + HOUR, T0 + 9 * HOUR),
    "ragged": Period(T0 + 1234.5, T0 + 20 * HOUR + 17.25),
    "inside one hour": Period(T0 + 5 * HOUR + 60, T0 + 5 * HOUR + 1800),
    "half-hour zone": Period(T0 - 1800, T0 + 24 * HOUR - 1800, tz="Asia/Kolkata"),
    "empty": Period(T0 + 100 * HOUR, T0 + 101 * HOUR),
}


@pytest.mark.parametrize("name", list(PERIODS))
def test_rolled_reports_equal_plain_ones(mixed: SQLiteStore, name: str) -> None:
    period = PERIODS[name]
    rolled, plain = _both(mixed, period)
    assert rolled == plain
    if name == "whole":  # the scenario has what the comparison needs to mean something
        s = rolled["summary"]
        assert s["total_events"] > 2500 and s["total_errors"] > 0 and s["total_handoffs"] > 0
        completion = next(c for c in rolled["compliance"]["checks"]
                          if c["name"] == "invocation_completion")
        details = completion["details"]
        assert details["unfinished_invocations"] > 0 and details["orphaned_handoffs"] > 0
        assert rolled["tools"]["tool_breakdown"][0]["p95_latency_ms"] is not None
        models = {r["key"] for r in rolled["cost"]["by_model"]}
        assert {"house-model", None} <= models
        access = next(c for c in rolled["compliance"]["checks"]
                      if c["name"] == "data_access_logging")
        assert access["details"]["calls"] > 100 and access["value"] > 0


def test_rolled_reports_equal_plain_ones_for_one_agent(mixed: SQLiteStore) -> None:
    rolled, plain = _both(mixed, PERIODS["ragged"], agent="Billing")
    assert rolled == plain
    assert rolled["summary"]["total_events"] > 0


def test_reports_read_the_rollup(mixed: SQLiteStore) -> None:
    """The rolled path really reads the rollup cells: change one and the answer changes."""
    period = PERIODS["aligned hours"]
    before = R.summary_report(mixed, "default", period)["total_events"]
    db = mixed.connection
    db.execute("UPDATE rollup SET events = events + 1000 WHERE rowid = (SELECT min(rowid) "
               "FROM rollup WHERE hour >= ? AND hour < ?)",
               (int(period.since // GRAIN), int(period.until // GRAIN)))
    assert R.summary_report(mixed, "default", period)["total_events"] == before + 1000
    mixed.use_rollups = False
    assert R.summary_report(mixed, "default", period)["total_events"] == before


def test_demo_workload_reports_agree(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    run_demo(str(path), events=6000, days=2, now=T0 + 48 * HOUR)
    store = open_store(str(path), create=False)
    try:
        for period in (Period(T0 - HOUR, T0 + 50 * HOUR), Period(T0 + 999.9, T0 + 30 * HOUR)):
            rolled, plain = _both(store, period)
            assert rolled == plain
            assert rolled["summary"]["total_events"] > 1000
    finally:
        store.close()


# -- open work in any arrival order ------------------------------------------------------------

def _open(store: Any) -> list[tuple[str, str]]:
    return [tuple(r) for r in store.connection.execute(
        "SELECT kind, event_id FROM open_work ORDER BY kind, event_id")]


def assert_open_work_follows_closers(store: Any) -> None:
    """Openers and closers stored in every order (a closer first, an opener later closed, an
    error that is not the opener's own): ``open_work`` always holds exactly the open ones and
    the reports agree with the rows. Shared with the PostgreSQL test."""
    inv = AuditEvent(event_type="agent.invocation", agent_name="A", trace_id="t1", timestamp=T0)
    late = AuditEvent(event_type="agent.invocation", agent_name="A", trace_id="t2",
                      timestamp=T0, action="x")
    finish = AuditEvent(event_type="agent.decision", agent_name="A", action="finish",
                        trace_id="t1", parent_event_id=inv.event_id, timestamp=T0 + 5)
    other_error = AuditEvent(event_type="agent.error", agent_name="A", action="y",
                             trace_id="t2", parent_event_id=late.event_id, timestamp=T0 + 6)
    own_error = AuditEvent(event_type="agent.error", agent_name="A", action="x", trace_id="t2",
                           parent_event_id=late.event_id, timestamp=T0 + 7)
    wrong_trace = AuditEvent(event_type="agent.invocation", agent_name="B", trace_id="t9",
                             timestamp=T0 + 8)
    handoff = AuditEvent(event_type="agent.handoff", agent_name="A", trace_id="t1",
                         timestamp=T0 + 1, parent_event_id=inv.event_id)
    received = AuditEvent(event_type="agent.invocation", agent_name="B", trace_id="t1",
                          parent_event_id=handoff.event_id, timestamp=T0 + 2)
    store.append_batch([finish])  # the closer first
    assert _open(store) == []
    store.append_batch([inv, late, handoff])
    assert _open(store) == [("orphaned_handoff", handoff.event_id),
                            ("unfinished_invocation", late.event_id)]
    store.append_batch([other_error, wrong_trace])  # not late's own error: still open
    assert ("unfinished_invocation", late.event_id) in _open(store)
    store.append_batch([own_error, received])
    assert _open(store) == sorted([("unfinished_invocation", received.event_id),
                                   ("unfinished_invocation", wrong_trace.event_id)])
    rolled, plain = _both(store, Period(T0 - 60, T0 + 60))
    assert rolled == plain


def test_open_work_follows_closers_whenever_they_arrive(db_path: Path) -> None:
    store = open_store(str(db_path))
    try:
        assert_open_work_follows_closers(store)
    finally:
        store.close()


# -- older stores, compaction, read-only ---------------------------------------------------------

def _make_old(path: Path) -> None:
    """Turn a store back into one from before migration 0006."""
    db = sqlite3.connect(path)
    db.executescript("""
        DROP TABLE rollup; DROP TABLE open_work; DROP TABLE tagged_calls;
        DROP INDEX ix_events_latency; DROP INDEX ix_events_tool_calls;
        DROP INDEX ix_events_cost_trace; DROP INDEX ix_events_cost_task;
        DROP INDEX ix_events_cost_user; DROP INDEX ix_events_findings;
        DROP INDEX ix_events_trace; CREATE INDEX ix_events_trace ON events (trace_id);
        DROP INDEX ix_events_errors;
        CREATE INDEX ix_events_errors ON events (tenant, timestamp)
            WHERE event_type = 'agent.error';
        DELETE FROM schema_migrations WHERE name = '0006_report_rollups';
    """)
    db.close()


def test_migration_fills_the_rollups_of_an_older_store(mixed: SQLiteStore, db_path: Path
                                                       ) -> None:
    expected = _all(mixed, PERIODS["ragged"])
    cells = mixed.connection.execute("SELECT count(*), sum(events) FROM rollup").fetchone()
    mixed.close()
    _make_old(db_path)
    old = open_store(str(db_path), create=False, readonly=True)
    try:
        assert not old.use_rollups  # read-only: not migrated, the rows answer
        assert _all(old, PERIODS["ragged"]) == expected
    finally:
        old.close()
    store = open_store(str(db_path), create=False)
    try:
        assert store.use_rollups
        assert store.connection.execute(
            "SELECT count(*), sum(events) FROM rollup").fetchone() == cells
        assert _all(store, PERIODS["ragged"]) == expected
    finally:
        store.close()


def test_compaction_rebuilds_the_rollups(db_path: Path) -> None:
    from tests.retention.helpers import DAY, TODAY, event
    from tests.retention.helpers import NOW as RNOW

    from agentaudit.retention import apply_retention, compact_before, load_config

    policy = load_config().policy("default")
    store = open_store(str(db_path))
    try:
        store.append_batch([event(t, TODAY - age) for age in range(800, 0, -40)
                            for t in ("debug", "critical")])
        apply_retention(store, policy, now=RNOW)
        whole = Period(RNOW - 900 * DAY, RNOW + DAY)
        before = R.summary_report(store, "default", whole)["total_events"]
        result = compact_before(store, policy, (TODAY - 740) * DAY, now=RNOW)
        dropped = result.to_seq - result.from_seq
        assert dropped == 4
        rolled, plain = _both(store, whole)
        assert rolled == plain
        # the compaction's own audit event is added, the dropped envelopes are gone
        assert rolled["summary"]["total_events"] == before - dropped + 1
    finally:
        store.close()


# -- the split of a period into hours and edges --------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.floats(-1e7, 3e9, allow_nan=False), st.floats(0, 5e5, allow_nan=False))
def test_split_covers_each_bucket_exactly_once(lo: float, width: float) -> None:
    hi = lo + width
    rolled, raw = (json.loads(x) for x in split([[lo, hi]]))
    pieces = sorted([(a * GRAIN, b * GRAIN) for _, a, b in rolled] + [(x, y) for _, x, y in raw])
    if hi <= lo:
        assert pieces == []
        return
    assert pieces[0][0] == lo and pieces[-1][1] == hi
    for (_, end), (start, _) in zip(pieces, pieces[1:], strict=False):
        assert end == start
    for _, a, b in rolled:
        assert 1 <= a < b and a * GRAIN >= lo and b * GRAIN <= hi
    assert all(math.isfinite(x) for p in pieces for x in p)


# -- the data-access check reads the tagged calls only -------------------------------------------

def _access(store: SQLiteStore, tag: str = "data_access") -> dict[str, Any]:
    from agentaudit.reports.policy import parse_policy

    policy = parse_policy({"checks": {"data_access_logging": {"tag": tag}}})
    report = R.compliance_report(store, "default", PERIODS["whole"], policy=policy, now=NOW)
    return next(c for c in report["checks"] if c["name"] == "data_access_logging")


def test_data_access_reads_the_calls_tagged_calls_names(mixed: SQLiteStore) -> None:
    found = _access(mixed)
    assert found["details"]["calls"] > 100
    # the rolled check really reads tagged_calls: without its rows it sees no tagged call
    mixed.connection.execute("DELETE FROM tagged_calls")
    assert _access(mixed)["details"]["calls"] == 0
    mixed.use_rollups = False
    assert _access(mixed) == found


def test_data_access_with_a_tag_that_is_a_json_path(mixed: SQLiteStore) -> None:
    """tagged_calls knows top-level tag names only: a tag like ``a.b`` (nested in the JSON)
    makes the check read every call, and it still agrees with the plain one."""
    rolled, plain = [], []
    for flag, out in ((True, rolled), (False, plain)):
        mixed.use_rollups = flag
        out.append(_access(mixed, "data_access.x"))
        out.append(_access(mixed, "resource"))
    mixed.use_rollups = True
    assert rolled == plain
    assert rolled[1]["details"]["calls"] == 0  # "orders" is not a true value


def test_erasure_forgets_the_tags_of_erased_calls(mixed: SQLiteStore) -> None:
    from agentaudit.retention import erase

    db = mixed.connection
    trace = db.execute(
        "SELECT e.trace_id FROM tagged_calls t JOIN events e ON e.id = t.event "
        "ORDER BY e.id LIMIT 1").fetchone()[0]
    tagged = db.execute("SELECT count(*) FROM tagged_calls t JOIN events e ON e.id = t.event "
                        "WHERE e.trace_id = ?", (trace,)).fetchone()[0]
    assert tagged > 0
    erase(mixed, "default", reason="gdpr", trace=trace)
    assert db.execute("SELECT count(*) FROM tagged_calls t JOIN events e ON e.id = t.event "
                      "WHERE e.trace_id = ?", (trace,)).fetchone()[0] == 0
    rolled, plain = _both(mixed, PERIODS["whole"])
    assert rolled == plain


def test_absurd_but_valid_numbers_never_fail_ingest(db_path: Path) -> None:
    """The rollup sums of one batch must not overflow into an error that would roll the batch
    back: 3,000 events at the validator's limits (tokens 2^53 - 1, cost $10^12) store fine."""
    store = open_store(str(db_path))
    try:
        big = [AuditEvent(event_type="agent.llm_response", agent_name="A", model="m",
                          prompt_tokens=2**53 - 1, completion_tokens=2**53 - 1, cost_usd=1e12,
                          timestamp=T0 + i % 60) for i in range(3000)]
        assert store.append_batch(big).accepted == 3000
        db = store.connection
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3000
        assert db.execute("SELECT sum(events), sum(recorded_usd) FROM rollup").fetchone() == (
            3000, 3000 * 10**12)
    finally:
        store.close()
