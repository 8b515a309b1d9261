"""The error facts of a PostgreSQL store (migration 0007, ``_pg_errors``): the errors report
answers the same from them as from the rows whatever order errors and their retries arrive in;
an error's message is gone from them by every path that erases its payload; an older database
gets them filled by the migration."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest

from agentaudit import reports as R
from agentaudit.events import AuditEvent
from agentaudit.reports.errors import ErrorRules
from agentaudit.retention import erase
from agentaudit.store import open_store
from agentaudit.store._pg_errors import HORIZON_S, MESSAGE
from agentaudit.store._pg_sql import payload_json
from agentaudit.store.postgres import PostgresStore
from pg_server import PgServer
from reports.store_builder import T0
from reports.test_rollups import HOUR, PERIODS, _events, rolled_and_plain

from .conftest import before_0007
from .test_pg_rollups import _stored, opened, stored_template

DAY = 86400.0
WHOLE = R.Period(T0 - 4 * DAY, T0 + 4 * DAY)
MESSAGES = ["timed out", "connection refused", "HTTP 503 from upstream", "", None]


def _errors_workload(seed: int = 5) -> list[AuditEvent]:
    """The rollup tests' traces over three days, errors with assorted messages (none, empty
    and repeated ones), plus retries of each failed call a moment to a day and more later."""
    rng = random.Random(seed)
    events = _events(rng, 3000, T0 - DAY, 3 * DAY)
    out: list[AuditEvent] = []
    for ev in events:
        if ev.event_type != "agent.error":
            out.append(ev)
            continue
        ev = msgspec.structs.replace(ev, error=rng.choice(MESSAGES))
        out.append(ev)
        if rng.random() < 0.3:  # the tool fails again in this trace, up to hours later
            out += [msgspec.structs.replace(ev, event_id=AuditEvent(
                event_type="agent.error", agent_name="x").event_id,
                timestamp=ev.timestamp + rng.random() * 3 * HOUR) for _ in range(rng.randint(1, 3))]
        wait = rng.choice([0.0, 0.05, 2.0, 250.0, 400.0, HORIZON_S - 1, HORIZON_S + 5])
        if rng.random() < 0.6:
            out.append(AuditEvent(event_type="agent.tool_call", agent_name=ev.agent_name,
                                  action=ev.action, trace_id=ev.trace_id,
                                  timestamp=ev.timestamp + wait, params={"retry": True}))
    return out


@pytest.fixture(scope="module")
def errors_template(postgres_server: PgServer) -> Iterator[str]:
    """The workload in shuffled batches (retries often arrive before the errors they follow),
    stored once: each test gets a copy of this database (``errors``)."""
    events = _errors_workload()
    random.Random(9).shuffle(events)
    yield from stored_template(postgres_server, events, batch=200)


@pytest.fixture
def errors_url(postgres_server: PgServer, errors_template: str) -> Iterator[str]:
    """A database of its own holding the stored workload."""
    with postgres_server.copy_of(errors_template) as url:
        yield url


@pytest.fixture
def errors(errors_url: str) -> Iterator[PostgresStore]:
    yield from opened(errors_url)


def _errors_both(store: PostgresStore, period: R.Period, agent: str | None = None,
                 rules: ErrorRules | None = None) -> tuple[Any, Any]:
    return rolled_and_plain(store, lambda: R.errors_report(store, "default", period, agent,
                                                           rules))


def _expected_next_calls(store: PostgresStore) -> dict[int, float | None]:
    """Each error's next call within the horizon, looked up in the events (as the plain
    template does)."""
    rows = store.connection.execute(
        "SELECT e.seq, (SELECT min(c.timestamp) FROM events c WHERE c.tenant = e.tenant "
        "AND c.trace_id = e.trace_id AND c.event_type = 'agent.tool_call' "
        "AND c.action = e.action AND (c.timestamp, c.seq) > (e.timestamp, e.seq) "
        "AND c.timestamp <= e.timestamp + %s) FROM events e "
        "WHERE e.event_type = 'agent.error'", (HORIZON_S,)).fetchall()
    return {int(s): n for s, n in rows}


def _messages_of_live_payloads(store: PostgresStore) -> tuple[list[Any], list[Any]]:
    """(the rows of error_messages, the messages the errors' stored payloads hold)."""
    conn = store.connection
    kept = conn.execute("SELECT tenant, day, seq, message FROM error_messages "
                        "ORDER BY tenant, seq").fetchall()
    live = conn.execute(
        "SELECT e.tenant, e.day, e.seq, convert_from(p.payload, 'UTF8')::jsonb #>> '{error}' "
        "FROM events e JOIN event_payloads p ON p.tenant = e.tenant AND p.day = e.day "
        "AND p.seq = e.seq WHERE e.event_type = 'agent.error' AND p.payload IS NOT NULL "
        "AND convert_from(p.payload, 'UTF8')::jsonb #>> '{error}' IS NOT NULL "
        "ORDER BY e.tenant, e.seq").fetchall()
    return kept, live


@pytest.mark.parametrize("name", ["whole", "aligned hours", "ragged", "inside one hour",
                                  "half-hour zone", "empty"])
def test_rolled_errors_report_equals_the_plain_one(errors: PostgresStore, name: str) -> None:
    period = WHOLE if name == "whole" else PERIODS[name]
    rolled, plain = _errors_both(errors, period)
    assert rolled == plain
    if name in ("whole", "ragged"):
        assert rolled["repeated_failures"]
    if name == "whole":
        assert rolled["total_errors"] > 100
        retried = rolled["retries_without_backoff"]
        assert retried and any(r["without_backoff"] for r in retried)
        messages = {m["message"] for m in rolled["most_common_errors"]}
        assert {"timed out", "connection refused", ""} <= messages


def test_rolled_errors_report_for_one_agent_and_other_rules(errors: PostgresStore) -> None:
    rolled, plain = _errors_both(errors, PERIODS["ragged"], agent="Billing")
    assert rolled == plain and rolled["total_errors"] > 0
    rules = ErrorRules(burst_bucket_s=60, burst_min_errors=2, repeated_failures=2,
                       min_backoff_s=3.0, retry_window_s=30.0)
    rolled, plain = _errors_both(errors, WHOLE, rules=rules)
    assert rolled == plain and rolled["retries_without_backoff"]
    assert rolled["error_bursts"] and rolled["repeated_failures"]


def test_a_window_beyond_the_horizon_reads_the_events(errors: PostgresStore) -> None:
    """Retries later than the horizon are not kept; a longer window looks them up."""
    longer = ErrorRules(retry_window_s=HORIZON_S + 60)
    rolled, plain = _errors_both(errors, WHOLE, rules=longer)
    assert rolled == plain
    default, _ = _errors_both(errors, WHOLE, rules=ErrorRules(retry_window_s=HORIZON_S))
    assert sum(r["retries"] for r in rolled["retries_without_backoff"]) > sum(
        r["retries"] for r in default["retries_without_backoff"])


def test_next_call_is_kept_whatever_the_arrival_order(errors: PostgresStore) -> None:
    kept = dict(errors.connection.execute("SELECT seq, next_call FROM error_facts").fetchall())
    expected = _expected_next_calls(errors)
    assert kept == expected
    assert sum(v is not None for v in kept.values()) > 100
    assert sum(v is None for v in kept.values()) > 10


def test_messages_are_those_of_the_stored_payloads(errors: PostgresStore) -> None:
    assert payload_json("error", "p") == MESSAGE  # what the plain template reads
    kept, live = _messages_of_live_payloads(errors)
    assert kept == live and len(kept) > 100
    assert any(m == "" for *_k, m in kept)


def _day_alone(url: str, day: float) -> tuple[PostgresStore, str]:
    """A store whose day ``day`` holds one trace only (an error with a message, its retry)."""
    trace = "trace-alone"
    alone = [AuditEvent(event_type="agent.tool_call", agent_name="Billing", action="charge",
                        trace_id=trace, timestamp=day + 100.0),
             AuditEvent(event_type="agent.error", agent_name="Billing", action="charge",
                        trace_id=trace, timestamp=day + 101.0, error="card declined for alice",
                        error_type="PaymentError"),
             AuditEvent(event_type="agent.tool_call", agent_name="Billing", action="charge",
                        trace_id=trace, timestamp=day + 103.0)]
    return _stored(url, [*_errors_workload(), *alone], batch=200), trace


def test_every_erasure_path_erases_the_messages(pg_url: str) -> None:
    """Row by row (an erased trace among others), a whole day emptied at once (TRUNCATE) and a
    day of payloads dropped: each time the messages follow the payloads and the rolled report
    equals the plain one."""
    lonely_day = (T0 // DAY + 10) * DAY
    store, lonely = _day_alone(pg_url, lonely_day)
    conn = store.connection
    try:
        before, _ = _errors_both(store, WHOLE)
        # 1. row by row: one trace with errors, its day holds others
        trace = conn.execute("SELECT e.trace_id FROM error_messages m JOIN events e "
                             "ON e.tenant = m.tenant AND e.day = m.day AND e.seq = m.seq "
                             "WHERE m.message = 'timed out' LIMIT 1").fetchone()[0]
        done = erase(store, "default", reason="subject request", trace=trace)
        assert done.erased > 0
        kept, live = _messages_of_live_payloads(store)
        assert kept == live
        rolled, plain = _errors_both(store, WHOLE)
        assert rolled == plain and rolled["total_errors"] == before["total_errors"]
        # 2. the whole day at once (the day holds only that trace's payloads)
        day = int(lonely_day // DAY)
        assert conn.execute(f"SELECT count(*) FROM error_messages_d{day}").fetchone()[0] == 1
        erase(store, "default", reason="subject request", trace=lonely)
        assert conn.execute("SELECT reason FROM payload_days_dropped WHERE day = %s",
                            (day,)).fetchone() is not None  # the TRUNCATE path ran
        assert conn.execute(f"SELECT count(*) FROM error_messages_d{day}").fetchone()[0] == 0
        rolled, plain = _errors_both(store, R.Period(lonely_day, lonely_day + DAY))
        assert rolled == plain and rolled["total_errors"] == 1
        assert rolled["most_common_errors"][0]["message"] is None
        # 3. a day of payloads dropped
        first = int(conn.execute("SELECT min(day) FROM error_messages").fetchone()[0])
        assert store.drop_payload_day(first, "retention")
        assert conn.execute("SELECT to_regclass(%s)", (f"error_messages_d{first}",)
                            ).fetchone()[0] is None
        kept, live = _messages_of_live_payloads(store)
        assert kept == live
        rolled, plain = _errors_both(store, WHOLE)
        assert rolled == plain and rolled["total_errors"] == before["total_errors"]
        # late events of a dropped day get its partitions back, messages included
        store.append_batch([AuditEvent(event_type="agent.error", agent_name="A", action="x",
                                       timestamp=first * DAY + 5.0, error="late")])
        assert conn.execute("SELECT message FROM error_messages WHERE day = %s",
                            (first,)).fetchall() == [("late",)]
    finally:
        store.close()


def test_migration_fills_the_error_facts_of_an_older_database(errors: PostgresStore,
                                                              errors_url: str) -> None:
    expected = R.errors_report(errors, "default", WHOLE)
    facts = errors.connection.execute("SELECT * FROM error_facts ORDER BY seq").fetchall()
    messages = _messages_of_live_payloads(errors)[0]
    errors.close()
    with psycopg.connect(errors_url, autocommit=True) as conn:
        before_0007(conn)
    old = open_store(errors_url, create=False, readonly=True)
    try:
        assert not old.use_rollups  # type: ignore[attr-defined]
        assert R.errors_report(old, "default", WHOLE) == expected
    finally:
        old.close()
    store = open_store(errors_url)
    try:
        assert store.use_rollups  # type: ignore[attr-defined]
        conn = store.connection  # type: ignore[attr-defined]
        assert conn.execute("SELECT * FROM error_facts ORDER BY seq").fetchall() == facts
        assert _messages_of_live_payloads(store)[0] == messages  # type: ignore[arg-type]
        assert R.errors_report(store, "default", WHOLE) == expected
    finally:
        store.close()


def test_rebuild_recomputes_the_error_facts(errors: PostgresStore) -> None:
    from agentaudit.store import _pg_rollup

    conn = errors.connection
    facts = conn.execute("SELECT * FROM error_facts ORDER BY seq").fetchall()
    messages = _messages_of_live_payloads(errors)[0]
    conn.execute("UPDATE error_facts SET next_call = NULL")
    conn.execute("DELETE FROM error_messages WHERE seq % 2 = 0")
    _pg_rollup.rebuild(conn, "default")
    assert conn.execute("SELECT * FROM error_facts ORDER BY seq").fetchall() == facts
    assert _messages_of_live_payloads(errors)[0] == messages


def test_reports_read_the_error_facts(errors: PostgresStore) -> None:
    """The rolled path really reads each table: change one and its part of the answer
    changes (cells: the counts; facts: the retries; messages: the common errors)."""
    conn = errors.connection
    before = R.errors_report(errors, "default", WHOLE)
    conn.execute("UPDATE error_cells SET errors = errors + 1000 "
                 "WHERE ctid = (SELECT min(ctid) FROM error_cells)")
    conn.execute("UPDATE error_facts SET next_call = timestamp WHERE next_call IS NULL "
                 "AND action IS NOT NULL AND trace_id IS NOT NULL")
    conn.execute("UPDATE error_messages SET message = 'planted'")
    after = R.errors_report(errors, "default", WHOLE)
    assert after["total_errors"] == before["total_errors"] + 1000
    assert sum(r["retries"] for r in after["retries_without_backoff"]) > sum(
        r["retries"] for r in before["retries_without_backoff"])
    assert "planted" in {m["message"] for m in after["most_common_errors"]}
    errors.use_rollups = False
    assert R.errors_report(errors, "default", WHOLE) == before
