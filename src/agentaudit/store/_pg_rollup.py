"""Report rollups of a PostgreSQL store: hourly figures and the open work, kept with the events.

The same design as SQLite's (``_sqlite_rollup``, whose module text explains it): ``rollup`` holds
per tenant, hour, agent, event type, action (NULL for invocations), model and root flag the
counts and sums the reports read, and a period is answered from its whole hours plus the
events of its ragged edges (``FACTS``, with the split of ``_rollup_shared.split``);
``open_work`` holds the invocations that have not ended and the handoffs no invocation received.

What differs here:

* Each tenant's sequencer (the collector holding the tenant's advisory lock) folds its batch
  into these tables inside the batch transaction (``after_insert``), so concurrent collectors
  never race on a tenant's cells and a reader's snapshot always agrees with the rows.
* Finding a closer among the events would probe every day partition (hundreds of them), so the
  events that may close an opener (``finish`` decisions, errors, invocations with a parent) are
  also kept, by parent, in the unpartitioned ``closers``.
* ``rollup_day`` (migration 0010) holds the same cells per UTC day: ``FACTS`` reads a period's
  whole days from it (``split_days``), its other whole hours from ``rollup`` — at 10 million
  events over 71 days, 8,300 day cells instead of 180,000 hourly ones.
* Integer sums are ``numeric``: no valid event, however absurd its numbers, can make an ingest
  transaction fail on an overflow. Floats (durations, costs) are bounded by validation (10^12).
* Envelopes are never deleted (no compaction on PostgreSQL) and none of these columns is
  erasable, so retention and erasure leave the rollups as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentaudit.store import _pg_approval_facts, _pg_compliance_facts, _pg_cost_facts, _pg_errors
from agentaudit.store._pg_measures import metered, priced_tokens, recorded, tokens

__all__ = ["FACTS", "MIGRATION", "SPLIT", "TABLES", "after_insert", "day_migration", "grants",
           "metered", "priced_tokens", "rebuild", "recorded", "split_days", "tokens"]

TABLES = ("rollup", "closers", "open_work")

_C = 'COLLATE "C"'


_TOKENS, _METERED = tokens(), metered()
(_PT, _CT), (_DOLLARS, _PICO_REST) = priced_tokens(), recorded()
_HOUR = "floor(timestamp / 3600)::bigint"
_ACTION = "CASE WHEN event_type = 'agent.invocation' THEN NULL ELSE action END"
_ROOT = "(event_type = 'agent.invocation' AND parent_event_id IS NULL)"
KEYS = ("agent_name", "event_type", "action", "model", "root")

# column -> (type, the value of one event, how cells combine: sum (NOT NULL), nsum (NULL while
# every value is NULL, as SQL's sum), min or max)
_MEASURES: dict[str, tuple[str, str, str]] = {
    "events": ("bigint", "1::bigint", "sum"),
    "dur_sum": ("double precision", "duration_ms", "nsum"),
    "dur_n": ("bigint", "(duration_ms IS NOT NULL)::int::bigint", "sum"),
    "dur_min": ("double precision", "duration_ms", "min"),
    "dur_max": ("double precision", "duration_ms", "max"),
    "cost_sum": ("double precision", "cost_usd", "nsum"),
    "recorded_usd": ("numeric", f"({_DOLLARS})::numeric", "nsum"),
    "recorded_pico": ("numeric", f"({_PICO_REST})::numeric", "nsum"),
    "tokens": ("numeric", f"({_TOKENS})::numeric", "sum"),
    "prompt_sum": ("numeric", "prompt_tokens::numeric", "nsum"),
    "completion_sum": ("numeric", "completion_tokens::numeric", "nsum"),
    "pt_sum": ("numeric", f"({_PT})::numeric", "sum"),
    "ct_sum": ("numeric", f"({_CT})::numeric", "sum"),
    "metered": ("bigint", f"({_METERED})::int::bigint", "sum"),
    "first_ts": ("double precision", "timestamp", "min"),
    "last_ts": ("double precision", "timestamp", "max"),
}
_AGG = {"sum": "coalesce(sum({x}), 0)", "nsum": "sum({x})", "min": "min({x})",
        "max": "max({x})"}
_MERGE = {"sum": "rollup.{c} + excluded.{c}",
          "nsum": "coalesce(rollup.{c} + excluded.{c}, rollup.{c}, excluded.{c})",
          "min": "least(rollup.{c}, excluded.{c})",
          "max": "greatest(rollup.{c}, excluded.{c})"}
_CELL = f"tenant, hour, {', '.join(KEYS)}"
# the day cells (``rollup_day``, migration 0010): the same, per UTC day (floor(hour / 24))
_DAY = "floor(timestamp / 86400)::bigint"
_DAY_CELL = f"tenant, day, {', '.join(KEYS)}"


def _fill(source: str, table: str = "rollup", unit: str = _HOUR, cell: str = _CELL) -> str:
    """Fold the events of ``source`` (a table or subquery; unqualified columns) into their
    cells of ``table`` (the hourly ``rollup``, or ``rollup_day`` with ``unit`` and ``cell``
    of a day)."""
    time_column = cell.split(", ")[1]
    return (
        f"INSERT INTO {table} ({cell}, {', '.join(_MEASURES)}) "
        f"SELECT tenant, {unit} AS {time_column}, agent_name, event_type, {_ACTION} AS action, "
        f"model, {_ROOT} AS root, "
        + ", ".join(_AGG[how].format(x=expr) for _, expr, how in _MEASURES.values())
        + f" FROM {source} GROUP BY 1, 2, 3, 4, 5, 6, 7 "
        f"ON CONFLICT ({cell}) DO UPDATE SET "
        + ", ".join(f"{c} = " + _MERGE[how].format(c=c).replace("rollup.", f"{table}.")
                    for c, (_, _, how) in _MEASURES.items()))


def _fill_days(source: str) -> str:
    return _fill(source, "rollup_day", _DAY, _DAY_CELL)


# The events that may close an opener, and whether closer ``c`` closes opener ``o`` (an
# invocation: its ``finish`` decision or its own error, same action; a handoff: the invocation
# it started).


def _is_closer(a: str = "") -> str:
    """Whether the event (columns prefixed by ``a``) may close an opener."""
    return (f"{a}parent_event_id IS NOT NULL AND {a}trace_id IS NOT NULL AND ({a}event_type IN "
            f"('agent.error', 'agent.invocation') OR ({a}event_type = 'agent.decision' "
            f"AND {a}action = 'finish'))")


_CLOSES = ("CASE WHEN {inv} THEN (c.event_type = 'agent.decision' AND c.action = 'finish') "
           "OR (c.event_type = 'agent.error' AND c.action IS NOT DISTINCT FROM {o}.action) "
           "ELSE c.event_type = 'agent.invocation' END")


def _closers(source: str) -> str:
    return ("INSERT INTO closers (tenant, parent_event_id, trace_id, event_type, action) "
            f"SELECT tenant, parent_event_id, trace_id, event_type, action FROM {source} "
            f"WHERE {_is_closer()}")


def _openers(source: str) -> str:
    return (
        "INSERT INTO open_work (tenant, event_id, kind, trace_id, action, agent_name, "
        "timestamp, seq) SELECT n.tenant, n.event_id, CASE n.event_type WHEN "
        "'agent.invocation' THEN 'unfinished_invocation' ELSE 'orphaned_handoff' END, "
        f"n.trace_id, n.action, n.agent_name, n.timestamp, n.seq FROM {source} "
        "WHERE n.event_type IN ('agent.invocation', 'agent.handoff') AND NOT EXISTS "
        "(SELECT 1 FROM closers c WHERE c.tenant = n.tenant AND c.parent_event_id = n.event_id "
        "AND c.trace_id = n.trace_id AND "
        + _CLOSES.format(inv="n.event_type = 'agent.invocation'", o="n")
        + ") ON CONFLICT DO NOTHING")


def _close(source: str) -> str:
    return (f"DELETE FROM open_work o USING {source} WHERE c.tenant = o.tenant "
            "AND c.parent_event_id = o.event_id AND c.trace_id = o.trace_id AND "
            f"{_is_closer('c.')} AND "
            + _CLOSES.format(inv="o.kind = 'unfinished_invocation'", o="o"))


_MEASURE_COLUMNS = ",\n    ".join(f"{c} {t}" + (" NOT NULL" if how == "sum" else "")
                                  for c, (t, _, how) in _MEASURES.items())



def _cells_table(table: str, time_column: str) -> str:
    """The ``CREATE TABLE`` of cells per ``time_column`` (an hour or a day number)."""
    return f"""CREATE TABLE {table} (
    tenant text {_C} NOT NULL,
    {time_column} bigint NOT NULL,
    agent_name text {_C} NOT NULL,
    event_type text {_C} NOT NULL,
    action text {_C},
    model text {_C},
    root boolean NOT NULL,
    {_MEASURE_COLUMNS}
);"""


MIGRATION = f"""
{_cells_table("rollup", "hour")}
CREATE UNIQUE INDEX ux_rollup_cell ON rollup ({_CELL}) NULLS NOT DISTINCT;
CREATE TABLE closers (
    tenant text {_C} NOT NULL,
    parent_event_id text {_C} NOT NULL,
    trace_id text {_C} NOT NULL,
    event_type text {_C} NOT NULL,
    action text {_C}
);
CREATE INDEX ix_closers_parent ON closers (tenant, parent_event_id);
CREATE TABLE open_work (
    tenant text {_C} NOT NULL,
    event_id text {_C} NOT NULL,
    kind text {_C} NOT NULL,
    trace_id text {_C},
    action text {_C},
    agent_name text {_C} NOT NULL,
    timestamp double precision NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (tenant, event_id)
);
CREATE INDEX ix_open_work_time ON open_work (tenant, timestamp, seq);
CREATE INDEX ix_events_latency ON events (tenant, action, duration_ms)
    INCLUDE (timestamp, agent_name, day)
    WHERE event_type IN ('agent.tool_result', 'agent.error') AND duration_ms IS NOT NULL;
{_fill("events")};
{_closers("events")};
{_openers("events n")};
"""


def day_migration(ingest: str, reader: str) -> str:
    """``0010_rollup_days``: the day cells, summed from the hourly ones; the sequencer (ingest
    role) writes them, readers read them (row security is added beside)."""
    combine = {"sum": "sum({c})", "nsum": "sum({c})", "min": "min({c})", "max": "max({c})"}
    return f"""
{_cells_table("rollup_day", "day")}
CREATE UNIQUE INDEX ux_rollup_day_cell ON rollup_day ({_DAY_CELL}) NULLS NOT DISTINCT;
INSERT INTO rollup_day ({_DAY_CELL}, {', '.join(_MEASURES)})
    SELECT tenant, floor(hour / 24.0)::bigint, {', '.join(KEYS)}, """ + ", ".join(
        combine[how].format(c=c) for c, (_, _, how) in _MEASURES.items()) + f"""
    FROM rollup GROUP BY 1, 2, 3, 4, 5, 6, 7;
ANALYZE rollup_day;
REVOKE ALL ON rollup_day FROM PUBLIC;
GRANT INSERT, UPDATE ON rollup_day TO {ingest};
GRANT SELECT ON rollup_day TO {ingest}, {reader};
"""


def grants(ingest: str, reader: str) -> str:
    """Privileges of the rollup tables: the sequencer (ingest role, of which the retention role
    is a member) writes them, readers read them (row security is added beside)."""
    return (f"REVOKE ALL ON rollup, closers, open_work FROM PUBLIC; "
            f"GRANT INSERT, UPDATE ON rollup TO {ingest}; GRANT INSERT ON closers TO {ingest}; "
            f"GRANT INSERT, DELETE ON open_work TO {ingest}; "
            f"GRANT SELECT ON rollup, closers, open_work TO {ingest}, {reader};")


# Each batch's new rows: the seq range each tenant's sequencer gave it, in the batch's days
# (OFFSET 0: planned on their own, from the ranges, never merged into the statement's joins).
_NEW = ("(SELECT e.* FROM unnest(%(tenants)s::text[], %(lo)s::bigint[], %(hi)s::bigint[]) "
        "AS s(t, lo, hi) JOIN events e ON e.tenant = s.t AND e.seq >= s.lo AND e.seq <= s.hi "
        "AND e.day = ANY(%(days)s::int[]) OFFSET 0)")
# One row of the batch by (tenant, seq) from s(t, q, …): one index lookup (LIMIT keeps the lateral
# subquery from being merged into a join).
_ONE_ROW = ("CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.tenant = s.t AND e.seq = s.q "
            "AND e.day = ANY(%(days)s::int[]) LIMIT 1)")
# The batch's tool calls that carry tags (as (tenant, seq)): only their payloads are read.
_TAGGED = ("(SELECT e.* FROM unnest(%(tag_tenants)s::text[], %(tag_seqs)s::bigint[]) AS s(t, q) "
           f"{_ONE_ROW} e OFFSET 0)")
# The batch's metered events with a user, with it (as (tenant, seq, user)): no payload is read.
_USERS = ("(SELECT b.*, s.u AS user_id FROM unnest(%(user_tenants)s::text[], "
          "%(user_seqs)s::bigint[], %(user_ids)s::text[]) AS s(t, q, u) "
          f"{_ONE_ROW} b OFFSET 0)")
_AFTER_INSERT = (_fill(_NEW + " n"), _closers(_NEW + " n"), _openers(_NEW + " n"),
                 _close(_NEW + " c"), *_pg_errors.after_insert_statements(_NEW),
                 *_pg_compliance_facts.after_insert_statements(_NEW, _TAGGED),
                 _fill_days(_NEW + " n"))
# (these join sets of the batch's own rows with each other, where a hash join is right: they
# run with the session's plans; their reads of the big tables are the fenced _NEW and _USERS)
_AFTER_INSERT_OWN_PLANS = _pg_cost_facts.after_insert_statements(_NEW, _USERS)


# Every statement of ``after_insert`` joins the batch's few rows to big tables: by index, in a
# nested loop. Planner statistics cannot tell (a new day's partitions have none until autovacuum
# analyzes them, and a range of seqs looks like thousands of rows), and a hash join or a
# materialized scan reads whole partitions per batch: the cost of a batch then grows with the
# store (measured: 0.22 s for the first 250 events, 0.62 s at 3,000). Hence these plans off for
# them, inside the transaction only, and the settings it had put back before what follows.
_PLANS = ("enable_hashjoin", "enable_mergejoin", "enable_seqscan", "enable_material")
_BY_INDEX = ("WITH was AS MATERIALIZED (SELECT " + ", ".join(
    f"current_setting('{p}') AS {p}" for p in _PLANS) + ") SELECT " + ", ".join(
    _PLANS) + ", " + ", ".join(
    f"set_config('{p}', 'off', true)" for p in _PLANS) + " FROM was")
_RESTORE = "SELECT " + ", ".join(f"set_config('{p}', %s, true)" for p in _PLANS)


def after_insert(cur: Any, spans: dict[str, tuple[int, int]], days: Sequence[int],
                 tagged: Sequence[tuple[str, int]] = (),
                 users: Sequence[tuple[str, int, str]] = (),
                 approval: Sequence[Sequence[tuple[Any, ...]]] = ()) -> None:
    """Inside the batch transaction, after its rows are written: fold the rows of ``spans``
    (tenant -> first and last seq of the batch) stored in ``days`` into the rollups, the
    error facts (``_pg_errors``), the compliance facts (``_pg_compliance_facts``; ``tagged``:
    the (tenant, seq) of the batch's tool calls with a ``tags`` field), the cost facts
    (``_pg_cost_facts``; ``users``: the (tenant, seq, user_id) of its metered events with a
    user) and the approval facts (``_pg_approval_facts``: ``approval`` holds the rows of each
    of its ``INSERTS``, taken by ``facts_of``)."""
    params = {"tenants": list(spans), "lo": [lo for lo, _ in spans.values()],
              "hi": [hi for _, hi in spans.values()], "days": sorted(set(days)),
              "tag_tenants": [t for t, _ in tagged], "tag_seqs": [q for _, q in tagged],
              "user_tenants": [t for t, _, _ in users], "user_seqs": [q for _, q, _ in users],
              "user_ids": [u for _, _, u in users]}
    was = cur.execute(_BY_INDEX).fetchone()[:len(_PLANS)]
    for statement in _AFTER_INSERT:
        cur.execute(statement, params)
    cur.execute(_RESTORE, was)
    for statement in _AFTER_INSERT_OWN_PLANS:
        cur.execute(statement, params)
    for (statement, names), rows in zip(_pg_approval_facts.INSERTS, approval, strict=False):
        if rows:
            cur.execute(statement, {name: [r[i] for r in rows] for i, name in enumerate(names)})


def rebuild(conn: Any, tenant: str) -> None:
    """Recompute a tenant's rollups from its events, in one transaction holding the tenant's
    sequencer lock (no batch of it commits meanwhile): after events were written by a
    collector that did not keep them (``agentaudit db migrate --rebuild-rollups``), its
    error facts (``_pg_errors``), compliance facts (``_pg_compliance_facts``), cost facts
    (``_pg_cost_facts``) and approval facts (``_pg_approval_facts``)."""
    mine = "(SELECT * FROM events WHERE tenant = %(tenant)s)"
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     ("agentaudit.log:" + tenant,))
        for table in (*TABLES, "rollup_day"):
            conn.execute(f"DELETE FROM {table} WHERE tenant = %(tenant)s",  # type: ignore[arg-type]
                         {"tenant": tenant})
        for statement in (_fill(mine + " n"), _fill_days(mine + " n"), _closers(mine + " n"),
                          _openers(mine + " n"),
                          *_pg_errors.rebuild_statements(),
                          *_pg_compliance_facts.rebuild_statements(),
                          *_pg_cost_facts.rebuild_statements(),
                          *_pg_approval_facts.rebuild_statements()):
            conn.execute(statement, {"tenant": tenant})


# -- reading: a period as whole hours plus ragged edges (``_rollup_shared.split``) --------------

def split_days(rolled: str) -> tuple[str, str]:
    """``:rolled_days`` and ``:rolled_hours``: the whole hours of ``:rolled`` (``[bucket, first
    hour, end hour]``) as the whole days among them (``[bucket, first day, end day]``, read
    from ``rollup_day``) and the hours left at either end (read from ``rollup``)."""
    days: list[list[int]] = []
    hours: list[list[int]] = []
    for i, a, b in json.loads(rolled):
        first, end = -(-a // 24), b // 24
        if first >= end:
            hours.append([i, a, b])
            continue
        days.append([i, first, end])
        if a < first * 24:
            hours.append([i, a, first * 24])
        if end * 24 < b:
            hours.append([i, end * 24, b])
    return json.dumps(days), json.dumps(hours)


_ONE = ", ".join(f"{expr} AS {col}" for col, (_, expr, _) in _MEASURES.items())
_AGENT = 'CAST(:agent_name AS text) COLLATE "C"'
# Templates put it after ``WITH`` and aggregate ``f`` (KEYS, the measures, and ``i``, the
# bucket); they read :rolled, :raw, :tenant and :agent_name. The edge rows name their days, so
# only those partitions are read.
# ``ru``: the whole hours of each bucket, ``rr``: its ragged edges
SPLIT = (
    "ru(i, a, b) AS (SELECT (x.v ->> 0)::bigint, (x.v ->> 1)::bigint, (x.v ->> 2)::bigint "
    "FROM jsonb_array_elements(CAST(:rolled AS jsonb)) AS x(v)), "
    "rr(i, lo, hi) AS (SELECT (x.v ->> 0)::bigint, (x.v ->> 1)::float8, (x.v ->> 2)::float8 "
    "FROM jsonb_array_elements(CAST(:raw AS jsonb)) AS x(v))")
# ``rd``: the whole days of each bucket's whole hours (``rollup_day``), ``rh``: the rest of
# them (``split_days``)
_CELLS = f"{', '.join('r.' + k for k in KEYS)}, {', '.join('r.' + c for c in _MEASURES)}"
FACTS = (
    f"{SPLIT}, "
    "rd(i, a, b) AS (SELECT (x.v ->> 0)::bigint, (x.v ->> 1)::bigint, (x.v ->> 2)::bigint "
    "FROM jsonb_array_elements(CAST(:rolled_days AS jsonb)) AS x(v)), "
    "rh(i, a, b) AS (SELECT (x.v ->> 0)::bigint, (x.v ->> 1)::bigint, (x.v ->> 2)::bigint "
    "FROM jsonb_array_elements(CAST(:rolled_hours AS jsonb)) AS x(v)), "
    f"f AS (SELECT rd.i AS i, {_CELLS} FROM rd JOIN rollup_day r "
    "ON r.tenant = :tenant AND r.day >= rd.a AND r.day < rd.b "
    f"AND ({_AGENT} IS NULL OR r.agent_name = {_AGENT}) "
    f"UNION ALL SELECT rh.i, {_CELLS} FROM rh JOIN rollup r "
    "ON r.tenant = :tenant AND r.hour >= rh.a AND r.hour < rh.b "
    f"AND ({_AGENT} IS NULL OR r.agent_name = {_AGENT}) "
    f"UNION ALL SELECT rr.i, agent_name, event_type, {_ACTION}, model, {_ROOT}, {_ONE} "
    "FROM rr JOIN events e ON e.tenant = :tenant AND e.timestamp >= rr.lo "
    "AND e.timestamp < rr.hi AND e.day >= floor(greatest(rr.lo, 0) / 86400)::int "
    "AND e.day <= floor(least(rr.hi, 32503680000) / 86400)::int "
    f"AND ({_AGENT} IS NULL OR e.agent_name = {_AGENT}))")
