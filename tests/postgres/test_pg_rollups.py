"""The report rollups of the PostgreSQL store (migration 0006): every report answers the same from
the rollups as from the rows, for any period or zone, whatever order batches arrive in and
whichever collector wrote them; an older database gets them filled by the migration."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from agentaudit import reports as R
from agentaudit.events import AuditEvent
from agentaudit.store import open_store
from agentaudit.store.postgres import PostgresStore
from pg_server import PgServer
from reports.store_builder import T0
from reports.test_rollups import (
    HOUR,
    NOW,
    PERIODS,
    _all,
    _both,
    _events,
    assert_open_work_follows_closers,
)

from .conftest import before_0007


def _stored(url: str, events: list[AuditEvent], batch: int = 250) -> PostgresStore:
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    for i in range(0, len(events), batch):
        store.append_batch(events[i:i + batch])
    return store


def _day_cells(store: PostgresStore) -> dict[Any, Any]:
    """The day cells, float sums rounded (their order of addition differs by path)."""
    rows = store.connection.execute("SELECT * FROM rollup_day").fetchall()
    return {tuple(r[:7]): tuple(round(v, 6) if isinstance(v, float) else v for v in r[7:])
            for r in rows}


def stored_template(server: PgServer, events: list[AuditEvent], batch: int = 250
                    ) -> Iterator[str]:
    """The name of a new database holding ``events`` appended in batches of ``batch`` (the
    body of a module-scoped fixture: tests get copies of it, ``PgServer.copy_of``)."""
    name = server.new_database()
    _stored(server.url(name), events, batch).close()
    yield name
    server.drop_database(name)


@pytest.fixture(scope="module")
def mixed_template(postgres_server: PgServer) -> Iterator[str]:
    """~3,000 events over 30 hours in shuffled batches (closers may come before openers),
    stored once: each test gets a copy of this database (``mixed``)."""
    rng = random.Random(7)
    events = _events(rng, 3000, T0 - 1200, 30 * HOUR)
    rng.shuffle(events)
    yield from stored_template(postgres_server, events)


@pytest.fixture
def mixed_url(postgres_server: PgServer, mixed_template: str) -> Iterator[str]:
    """A database of its own holding the stored workload."""
    with postgres_server.copy_of(mixed_template) as url:
        yield url


def opened(url: str) -> Iterator[PostgresStore]:
    """The store at ``url``, closed after the test (the body of a store fixture)."""
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    yield store
    store.close()


@pytest.fixture
def mixed(mixed_url: str) -> Iterator[PostgresStore]:
    yield from opened(mixed_url)


@pytest.mark.parametrize("name", list(PERIODS))
def test_rolled_reports_equal_plain_ones(mixed: PostgresStore, name: str) -> None:
    rolled, plain = _both(mixed, PERIODS[name])  # type: ignore[arg-type]
    assert rolled == plain
    if name == "whole":
        s = rolled["summary"]
        assert s["total_events"] > 2500 and s["total_errors"] > 0 and s["total_handoffs"] > 0
        completion = next(c for c in rolled["compliance"]["checks"]
                          if c["name"] == "invocation_completion")
        assert completion["details"]["unfinished_invocations"] > 0
        assert completion["details"]["orphaned_handoffs"] > 0


def test_tool_percentiles_at_every_small_count(pg_url: str) -> None:
    """The rolled percentiles (nearest rank, read from the latency index from the bottom or
    the top) equal percentile_disc's for 1..40 timed calls of a tool, ties and all."""
    rng = random.Random(3)
    events = [AuditEvent(event_type=rng.choice(["agent.tool_result", "agent.error"]),
                         agent_name="A", action=f"tool-{n:02d}", timestamp=T0 + rng.random() * 7200,
                         duration_ms=float(rng.randint(1, 12)))
              for n in range(1, 41) for _ in range(n)]
    events += [AuditEvent(event_type="agent.tool_call", agent_name="A", action=f"tool-{n:02d}",
                          timestamp=T0 + 3000.0) for n in range(1, 41)]  # the report's tools
    store = _stored(pg_url, events)
    try:
        for period in (PERIODS["whole"], R.Period(T0 + 1000.5, T0 + 5000.25)):
            rolled, plain = _both(store, period)  # type: ignore[arg-type]
            assert rolled["tools"] == plain["tools"]
        tools = rolled["tools"]["tool_breakdown"]  # the ragged period: some tools are empty
        assert len(tools) >= 30 and all(t["p99_latency_ms"] is not None for t in tools)
    finally:
        store.close()


def test_rolled_reports_equal_plain_ones_for_one_agent(mixed: PostgresStore) -> None:
    rolled, plain = _both(mixed, PERIODS["ragged"], agent="Billing")  # type: ignore[arg-type]
    assert rolled == plain
    assert rolled["summary"]["total_events"] > 0


def test_reports_read_the_rollup(mixed: PostgresStore) -> None:
    """The rolled path really reads the cells: change one and the answer changes."""
    period = PERIODS["aligned hours"]
    before = R.summary_report(mixed, "default", period)["total_events"]
    mixed.connection.execute(
        "UPDATE rollup SET events = events + 1000 WHERE ctid = (SELECT min(ctid) FROM rollup "
        "WHERE hour >= %s AND hour < %s)", (int(period.since // 3600), int(period.until // 3600)))
    assert R.summary_report(mixed, "default", period)["total_events"] == before + 1000
    mixed.use_rollups = False
    assert R.summary_report(mixed, "default", period)["total_events"] == before


def test_reports_read_the_day_cells(mixed: PostgresStore) -> None:
    """A period's whole UTC days are read from ``rollup_day`` (migration 0010), its other
    whole hours from ``rollup``: change a cell of either and the answer changes."""
    from agentaudit.store._pg_rollup import split_days

    period = PERIODS["whole"]
    days = json.loads(split_days(json.dumps([[0, int(period.since // 3600),
                                              int(period.until // 3600)]]))[0])
    assert len(days) == 1 and days[0][2] - days[0][1] == 1  # the scenario holds a whole day
    before = R.summary_report(mixed, "default", period)["total_events"]
    conn = mixed.connection
    conn.execute("UPDATE rollup_day SET events = events + 1000 WHERE ctid = (SELECT min(ctid) "
                 "FROM rollup_day WHERE day = %s)", (days[0][1],))
    assert R.summary_report(mixed, "default", period)["total_events"] == before + 1000
    conn.execute("UPDATE rollup SET events = events + 7 WHERE ctid = (SELECT min(ctid) "
                 "FROM rollup WHERE hour >= %s AND hour < %s)", (days[0][1] * 24, days[0][2] * 24))
    assert R.summary_report(mixed, "default", period)["total_events"] == before + 1000
    conn.execute("UPDATE rollup SET events = events + 7 WHERE ctid = (SELECT min(ctid) "
                 "FROM rollup WHERE hour >= %s AND hour < %s)",
                 (int(period.since // 3600) + 1, days[0][1] * 24))
    assert R.summary_report(mixed, "default", period)["total_events"] == before + 1007


def test_split_days_covers_the_hours_once() -> None:
    from agentaudit.store._pg_rollup import split_days

    rng = random.Random(3)
    for _ in range(500):
        a = rng.randrange(1, 500)
        b = a + rng.randrange(1, 200)
        days, hours = (json.loads(x) for x in split_days(json.dumps([[4, a, b]])))
        covered = [h for _, d0, d1 in days for h in range(d0 * 24, d1 * 24)]
        covered += [h for _, h0, h1 in hours for h in range(h0, h1)]
        assert sorted(covered) == list(range(a, b)), (a, b)
        assert all(i == 4 for i, _, _ in days + hours) and len(hours) <= 2


def test_sqlite_and_postgresql_rollups_agree(pg_url: str, tmp_path: Any) -> None:
    """The same events in the same batches give the same rolled reports on both backends."""
    rng = random.Random(7)
    events = _events(rng, 3000, T0 - 1200, 30 * HOUR)
    rng.shuffle(events)
    lite, pg = open_store(str(tmp_path / "a.db")), _stored(pg_url, events)
    try:
        for i in range(0, len(events), 250):  # as _stored did: the same seq order
            lite.append_batch(events[i:i + 250])
        for period in (PERIODS["whole"], PERIODS["ragged"], PERIODS["half-hour zone"]):
            assert _all(lite, period) == _all(pg, period)  # type: ignore[arg-type]
    finally:
        lite.close()
        pg.close()


def test_open_work_follows_closers_whenever_they_arrive(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        assert_open_work_follows_closers(store)
    finally:
        store.close()


def test_concurrent_collectors_keep_the_rollups_exact(pg_url: str) -> None:
    """Two stores (two collectors) appending interleaved batches of one tenant at once."""
    rng = random.Random(11)
    events = _events(rng, 4000, T0, 20 * HOUR)
    rng.shuffle(events)
    open_store(pg_url).close()  # migrate once
    halves = [events[0::2], events[1::2]]
    errors: list[BaseException] = []

    def run(part: list[AuditEvent]) -> None:
        try:
            _stored(pg_url, part, batch=100).close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = open_store(pg_url)
    try:
        for table in ("rollup", "rollup_day"):
            total = store.connection.execute(  # type: ignore[attr-defined]
                f"SELECT sum(events) FROM {table}").fetchone()[0]
            assert total == len(events), table
        rolled, plain = _both(store, PERIODS["whole"])  # type: ignore[arg-type]
        assert rolled == plain
    finally:
        store.close()


def test_migration_fills_the_rollups_of_an_older_database(mixed: PostgresStore,
                                                          mixed_url: str) -> None:
    expected = _all(mixed, PERIODS["ragged"])  # type: ignore[arg-type]
    whole = _all(mixed, PERIODS["whole"])  # type: ignore[arg-type]
    cells = mixed.connection.execute("SELECT count(*), sum(events) FROM rollup").fetchone()
    day_cells = _day_cells(mixed)
    mixed.close()
    with psycopg.connect(mixed_url, autocommit=True) as conn:
        before_0007(conn)
        conn.execute("DROP TABLE rollup, closers, open_work; DROP INDEX ix_events_latency; "
                     "DELETE FROM schema_migrations WHERE name = '0006_report_rollups'")
    old = open_store(mixed_url, create=False, readonly=True)
    try:
        assert not old.use_rollups  # type: ignore[attr-defined]
        assert _all(old, PERIODS["ragged"]) == expected  # type: ignore[arg-type]
    finally:
        old.close()
    store = open_store(mixed_url)
    try:
        assert store.use_rollups  # type: ignore[attr-defined]
        assert store.connection.execute(  # type: ignore[attr-defined]
            "SELECT count(*), sum(events) FROM rollup").fetchone() == cells
        # the day cells summed from the hourly ones are those ingest kept
        assert _day_cells(store) == day_cells  # type: ignore[arg-type]
        assert _all(store, PERIODS["ragged"]) == expected  # type: ignore[arg-type]
        assert _all(store, PERIODS["whole"]) == whole  # type: ignore[arg-type]
    finally:
        store.close()


def test_absurd_but_valid_numbers_never_fail_ingest(pg_url: str) -> None:
    big = [AuditEvent(event_type="agent.llm_response", agent_name="A", model="m",
                      prompt_tokens=2**53 - 1, completion_tokens=2**53 - 1, cost_usd=1e12,
                      timestamp=T0 + i % 60) for i in range(3000)]
    store = _stored(pg_url, big, batch=3000)
    try:
        assert store.connection.execute(
            "SELECT sum(events), sum(recorded_usd) FROM rollup").fetchone() == (
            3000, 3000 * 10**12)
    finally:
        store.close()


def test_rebuild_recomputes_what_ingest_kept(mixed: PostgresStore) -> None:
    """A tenant's rebuilt rollups are those its batches kept (cells, open work, closers),
    whatever order the batches came in; float sums only up to their order of addition."""
    import math

    from agentaudit.store._pg_rollup import rebuild

    conn = mixed.connection

    def state() -> dict[str, Any]:
        cells = {tuple(r[:7]): r[7:] for r in conn.execute("SELECT * FROM rollup")}
        return {"rollup": cells, "days": _day_cells(mixed),
                **{t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                   for t in ("closers", "open_work")}}

    before = state()
    assert all(before.values())
    conn.execute("DELETE FROM rollup WHERE ctid = (SELECT min(ctid) FROM rollup)")
    conn.execute("DELETE FROM open_work WHERE ctid = (SELECT min(ctid) FROM open_work)")
    conn.execute("DELETE FROM rollup_day WHERE ctid = (SELECT min(ctid) FROM rollup_day)")
    rebuild(conn, "default")
    after = state()
    assert after["closers"] == before["closers"] and after["open_work"] == before["open_work"]
    assert after["days"] == before["days"] and len(before["days"]) > 10
    assert after["rollup"].keys() == before["rollup"].keys()
    for key, values in before["rollup"].items():
        for was, now in zip(values, after["rollup"][key], strict=True):
            assert (was == now if not isinstance(was, float)
                    else math.isclose(was, now, rel_tol=1e-12)), key


def test_the_approval_check_reads_the_interventions(pg_url: str) -> None:
    """The rolled approval check finds approvals in ``interventions``: remove them there and
    every listed call is unapproved; the rows still answer the same as before."""
    events: list[AuditEvent] = []
    for i in range(40):
        trace, ts = f"refund-{i}", T0 + 600.0 * i
        if i % 4:  # three in four are approved first, some by an earlier day's approval
            events.append(AuditEvent(event_type="agent.human_intervention", agent_name="Human",
                                     action="approval", trace_id=trace, params={"by": f"u{i % 3}"},
                                     timestamp=ts - (3 * 86400.0 if i % 2 else 5.0)))
        events.append(AuditEvent(event_type="agent.tool_call", agent_name="Billing",
                                 action="process_refund", trace_id=trace, timestamp=ts,
                                 params={"amount": 500}))
    store = _stored(pg_url, events, batch=7)
    period = R.Period(T0 - 4 * 86400.0, T0 + 86400.0)

    def approval() -> dict[str, Any]:
        report = R.compliance_report(store, "default", period, now=NOW)
        return next(c for c in report["checks"] if c["name"] == "tool_approval")

    try:
        before = approval()
        assert before["details"]["approved"] == 30 and before["value"] == 10
        assert set(before["details"]["approvers"]) == {"u0", "u1", "u2"}
        store.connection.execute("DELETE FROM interventions")
        after = approval()
        assert after["details"]["approved"] == 0 and after["value"] == 40
        store.use_rollups = False
        assert approval() == before
    finally:
        store.close()


def _rows_read(conn: Any) -> int:
    """Rows of the event and payload partitions read so far: by sequential scans, and index
    entries read by index scans (index-only ones included), from the statistics this
    connection has flushed."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    parts = "relname ~ '^(events|event_payloads)_d[0-9]+$'"
    return int(conn.execute(
        f"SELECT (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables WHERE {parts})"
        f" + (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes WHERE {parts})"
    ).fetchone()[0])


def test_a_batch_reads_its_own_rows_not_the_store(mixed: PostgresStore) -> None:
    """Folding a batch into the rollups and facts reads a bounded number of stored rows per
    new row, whatever the store holds, with or without planner statistics (the copy is
    usually not analyzed yet: a plan chosen without them used to read the whole tenant for
    each open invocation; one chosen with them, a whole partition per batch)."""
    batch = _events(random.Random(8), 25, T0 - 1200, 30 * HOUR)
    conn = mixed.connection
    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.execute("SET enable_material = off")  # the session's own setting is kept
    before = _rows_read(conn)
    mixed.append_batch(batch)
    read = _rows_read(conn) - before
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == stored + len(batch)
    assert read <= 40 * len(batch) < stored / 2, (read, stored)  # was 438,223
    assert [conn.execute(f"SHOW {p}").fetchone()[0] for p in (  # put back after the batch
        "enable_hashjoin", "enable_mergejoin", "enable_seqscan", "enable_material")] == [
        "on", "on", "on", "off"]


def test_errors_read_their_trace_not_the_tool(mixed: PostgresStore) -> None:
    """A batch of errors reads a bounded number of rows for each: the look-up of its next call
    goes through its trace, not through every call of its tool in the window (as the planner
    chose once autovacuum had left statistics and a visibility map: 5,856 rows for these 25
    errors, against 413)."""
    errors = [AuditEvent(event_type="agent.error", agent_name="Billing", action="search",
                         trace_id=f"trace-{i:06d}", timestamp=T0 - 1100 + i,
                         error="timed out", error_type="TimeoutError") for i in range(25)]
    conn = mixed.connection
    conn.execute("VACUUM ANALYZE")  # statistics and a visibility map: as autovacuum leaves it
    calls = conn.execute("SELECT count(*) FROM events WHERE action = 'search' "
                         "AND event_type = 'agent.tool_call'").fetchone()[0]
    before = _rows_read(conn)
    mixed.append_batch(errors)
    read = _rows_read(conn) - before
    assert read <= 40 * len(errors) < len(errors) * calls / 4, (read, calls)
