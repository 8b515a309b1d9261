"""Report rollups of a SQLite store: hourly figures and the open work, kept with the events.

The reports of a whole month must not read a month of rows. Two tables, written in the same
transaction as the events they summarise (so a reader's snapshot always agrees with the rows):

* ``rollup`` — per tenant, hour (``CAST(timestamp / 3600 AS INTEGER)``), agent, event type,
  action (NULL for invocations, whose action is free text), model and root flag (an invocation
  without a parent): the number of events and the sums, minimums and maximums the reports read
  (``FACTS``). A period is answered from the whole hours it covers plus the events of its ragged
  edges, read one by one (``split``), so every answer is exact, whatever the period or zone.
* ``open_work`` — the invocations that have not ended (no ``finish`` decision or error of their
  own as a child) and the handoffs that no invocation received, as of the stored events: each
  opener is added when it is stored unless its closer is already there, and removed when its
  closer arrives (in any order: spans can come late).

Compaction, which drops envelopes, rebuilds both for its tenant (``rebuild``); erasure keeps
every column they read. ``agentaudit.store._sqlite_rolled_reports`` holds the report templates
that read them; the plain templates (``_sqlite_reports``) remain the reference and serve stores
without these tables (opened read-only before migration ``0006_report_rollups``).
"""

from __future__ import annotations

import sqlite3

from agentaudit.store._rollup_shared import FAR, GRAIN, split

__all__ = ["FACTS", "FAR", "GRAIN", "METERED", "MIGRATION", "TOKENS", "after_insert", "dollars",
           "last_id", "pico_rest", "rebuild", "split"]


# An event's tokens, and whether it is metered (carries tokens or a cost); unqualified columns.
TOKENS = "coalesce(token_count, coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0))"
METERED = ("(prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL "
           "OR token_count IS NOT NULL OR cost_usd IS NOT NULL)")
_PT = "coalesce(prompt_tokens, CASE WHEN completion_tokens IS NULL THEN token_count END, 0)"
_CT = "coalesce(completion_tokens, 0)"


def dollars(usd: str) -> str:
    """The whole dollars of a non-negative amount (SQL integer)."""
    return f"CAST({usd} AS INTEGER)"


def pico_rest(usd: str) -> str:
    """The pico-dollars beyond the whole dollars of a non-negative amount, rounded (SQL)."""
    return f"CAST(({usd} - CAST({usd} AS INTEGER)) * 1e12 + 0.5 AS INTEGER)"


_ACTION = "CASE WHEN event_type = 'agent.invocation' THEN NULL ELSE action END"
_ROOT = "(event_type = 'agent.invocation' AND parent_event_id IS NULL)"
KEYS = ("agent_name", "event_type", "action", "model", "root")
# Rollup column -> (the value of one event row, how rollup cells combine: sum (of integers),
# nsum (of integers, NULL while every value is NULL, as SQL's sum), fsum (the same of floats),
# min or max). Integer sums are taken with total(), which never raises: an overflowing sum of
# absurd (yet valid) values must not fail the ingest transaction.
_MEASURES: dict[str, tuple[str, str]] = {
    "events": ("1", "sum"),
    "dur_sum": ("duration_ms", "fsum"),
    "dur_n": ("(duration_ms IS NOT NULL)", "sum"),
    "dur_min": ("duration_ms", "min"),
    "dur_max": ("duration_ms", "max"),
    "cost_sum": ("cost_usd", "fsum"),
    "recorded_usd": (dollars("cost_usd"), "nsum"),
    "recorded_pico": (pico_rest("cost_usd"), "nsum"),
    "tokens": (TOKENS, "sum"),
    "prompt_sum": ("prompt_tokens", "nsum"),
    "completion_sum": ("completion_tokens", "nsum"),
    "pt_sum": (_PT, "sum"),
    "ct_sum": (_CT, "sum"),
    "metered": (METERED, "sum"),
    "first_ts": ("timestamp", "min"),
    "last_ts": ("timestamp", "max"),
}
_SQL_AGG = {"sum": "CAST(total({x}) AS INTEGER)",
            "nsum": "CASE WHEN count({x}) > 0 THEN CAST(total({x}) AS INTEGER) END",
            "fsum": "sum({x})", "min": "min({x})", "max": "max({x})"}


def _combine(col: str, how: str) -> str:
    """``col = …`` for an upsert: the stored cell combined with the incoming one."""
    mine, new = f"rollup.{col}", f"excluded.{col}"
    if how == "sum":
        return f"{col} = {mine} + {new}"
    if how in ("nsum", "fsum"):
        return f"{col} = CASE WHEN {new} IS NULL THEN {mine} WHEN {mine} IS NULL THEN {new} " \
               f"ELSE {mine} + {new} END"
    return f"{col} = {how}(coalesce({mine}, {new}), coalesce({new}, {mine}))"


_CONFLICT_KEY = "tenant, hour, agent_name, event_type, coalesce(action, x''), " \
                "coalesce(model, x''), root"
_FILL = (
    f"INSERT INTO rollup (tenant, hour, {', '.join(KEYS)}, {', '.join(_MEASURES)}) "
    f"SELECT tenant, CAST(timestamp / {GRAIN} AS INTEGER) AS hour, agent_name, event_type, "
    f"{_ACTION} AS action, model, {_ROOT} AS root, "
    + ", ".join(_SQL_AGG[how].format(x=expr) for expr, how in _MEASURES.values())
    + " FROM events WHERE {where} GROUP BY tenant, hour, agent_name, event_type, "
    f"coalesce({_ACTION}, x''), coalesce(model, x''), root "
    f"ON CONFLICT ({_CONFLICT_KEY}) DO UPDATE SET "
    + ", ".join(_combine(c, how) for c, (_, how) in _MEASURES.items()))

# An opener is open while no closer of it is stored: for an invocation its `finish` decision or
# its own error (same action) as a child, for a handoff the invocation it started (a child).
_CLOSES = ("CASE {o}.{kind} WHEN {inv} THEN ({c}.event_type = 'agent.decision' "
           "AND {c}.action = 'finish') OR ({c}.event_type = 'agent.error' "
           "AND {c}.action IS {o}.action) ELSE {c}.event_type = 'agent.invocation' END")
_OPEN = (
    "INSERT OR IGNORE INTO open_work (tenant, event_id, kind, trace_id, action, agent_name, "
    "timestamp, seq) SELECT n.tenant, n.event_id, CASE n.event_type WHEN 'agent.invocation' "
    "THEN 'unfinished_invocation' ELSE 'orphaned_handoff' END, n.trace_id, n.action, "
    "n.agent_name, n.timestamp, n.seq FROM events n WHERE {where} "
    "AND n.event_type IN ('agent.invocation', 'agent.handoff') AND NOT EXISTS (SELECT 1 "
    "FROM events e WHERE e.trace_id = n.trace_id AND +e.tenant = n.tenant "
    "AND e.parent_event_id = n.event_id AND "
    + _CLOSES.format(o="n", kind="event_type", inv="'agent.invocation'", c="e") + ")")
_CLOSE = (
    "DELETE FROM open_work WHERE (tenant, event_id) IN (SELECT o.tenant, o.event_id "
    "FROM events c JOIN open_work o ON o.tenant = c.tenant AND o.event_id = c.parent_event_id "
    "WHERE c.id > ? AND c.event_type IN ('agent.decision', 'agent.error', 'agent.invocation') "
    "AND c.trace_id = o.trace_id AND "
    + _CLOSES.format(o="o", kind="kind", inv="'unfinished_invocation'", c="c") + ")")

# The tool calls whose tags hold a true value ("true", 1, "yes"), per tag: the data-access check
# reads the payloads of these (and of the calls of its listed tools) instead of every call's.
# Derived from the payload, so erasure removes an event's rows (_sqlite_retention). Payloads are
# BLOBs of JSON text: read as TEXT, which SQLite 3.45+ would not take a BLOB for (JSONB).
_TAGGED = (
    "INSERT OR IGNORE INTO tagged_calls (tenant, tag, event) SELECT e.tenant, t.key, e.id "
    "FROM events e, json_each(CAST(e.payload AS TEXT), '$.tags') t WHERE {where} "
    "AND e.event_type = 'agent.tool_call' AND e.payload IS NOT NULL "
    "AND instr(e.payload, CAST('\"tags\"' AS BLOB)) > 0 AND json_valid(CAST(e.payload AS TEXT)) "
    "AND lower(t.value) IN ('true', '1', 'yes')")

MIGRATION = f"""
    CREATE TABLE rollup (
        tenant TEXT NOT NULL,
        hour INTEGER NOT NULL,
        agent_name TEXT NOT NULL,
        event_type TEXT NOT NULL,
        action TEXT,
        model TEXT,
        root INTEGER NOT NULL,
        events INTEGER NOT NULL,
        dur_sum REAL,
        dur_n INTEGER NOT NULL,
        dur_min REAL,
        dur_max REAL,
        cost_sum REAL,
        recorded_usd INTEGER,
        recorded_pico INTEGER,
        tokens INTEGER NOT NULL,
        prompt_sum INTEGER,
        completion_sum INTEGER,
        pt_sum INTEGER NOT NULL,
        ct_sum INTEGER NOT NULL,
        metered INTEGER NOT NULL,
        first_ts REAL NOT NULL,
        last_ts REAL NOT NULL
    );
    CREATE UNIQUE INDEX ux_rollup_cell ON rollup ({_CONFLICT_KEY});
    CREATE TABLE open_work (
        tenant TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        trace_id TEXT,
        action TEXT,
        agent_name TEXT NOT NULL,
        timestamp REAL NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (tenant, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX ix_open_work_time ON open_work (tenant, timestamp, seq);
    CREATE TABLE tagged_calls (
        tenant TEXT NOT NULL,
        tag TEXT NOT NULL,
        event INTEGER NOT NULL,
        PRIMARY KEY (tenant, tag, event)
    ) WITHOUT ROWID;
    CREATE INDEX ix_events_latency ON events (tenant, action, duration_ms, timestamp, agent_name,
        event_type)
        WHERE event_type IN ('agent.tool_result', 'agent.error') AND duration_ms IS NOT NULL;
    CREATE INDEX ix_events_tool_calls ON events (tenant, timestamp, seq, action, agent_name)
        WHERE event_type = 'agent.tool_call';
    CREATE INDEX ix_events_cost_trace ON events (tenant, trace_id, timestamp, agent_name, model,
        prompt_tokens, completion_tokens, token_count, cost_usd, task_id, user_id)
        WHERE {METERED};
    CREATE INDEX ix_events_cost_task ON events (tenant, task_id, timestamp, agent_name, model,
        prompt_tokens, completion_tokens, token_count, cost_usd)
        WHERE {METERED};
    CREATE INDEX ix_events_cost_user ON events (tenant, user_id, timestamp, agent_name, model,
        prompt_tokens, completion_tokens, token_count, cost_usd)
        WHERE {METERED};
    DROP INDEX ix_events_errors;
    CREATE INDEX ix_events_errors ON events (tenant, timestamp, seq, action, trace_id, event_id,
        agent_name, error_type, event_type) WHERE event_type = 'agent.error';
    DROP INDEX ix_events_trace;
    CREATE INDEX ix_events_trace ON events (trace_id, event_type, action, timestamp, seq, tenant);
    CREATE INDEX ix_events_findings ON events (tenant, timestamp, seq)
        WHERE event_type IN ('agent.security', 'agent.compliance');
    {_FILL.format(where="1")};
    {_OPEN.format(where="1")};
    {_TAGGED.format(where="1")}
"""


def last_id(db: sqlite3.Connection) -> int:
    """The newest row id (rows inserted after this call get larger ones)."""
    return int(db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


# What each append runs on its new rows (``id > ?``), in this order.
_AFTER_INSERT = (_FILL.format(where="id > ?"), _OPEN.format(where="n.id > ?"), _CLOSE,
                 _TAGGED.format(where="e.id > ?"))


def after_insert(db: sqlite3.Connection, after: int) -> None:
    """Inside the write transaction that stored the rows ``id > after``: fold them into the
    rollup, the open work and the tagged calls."""
    for statement in _AFTER_INSERT:
        db.execute(statement, (after,))


def rebuild(db: sqlite3.Connection, tenant: str) -> None:
    """Inside a write transaction: recompute the tenant's rollup, open work and tagged calls
    from its rows (after compaction dropped some)."""
    db.execute("DELETE FROM rollup WHERE tenant = ?", (tenant,))
    db.execute("DELETE FROM open_work WHERE tenant = ?", (tenant,))
    db.execute("DELETE FROM tagged_calls WHERE tenant = ?", (tenant,))
    db.execute(_FILL.format(where="tenant = ?"), (tenant,))
    db.execute(_OPEN.format(where="n.tenant = ?"), (tenant,))
    db.execute(_TAGGED.format(where="e.tenant = ?"), (tenant,))


# The facts of a period: rollup cells of its whole hours and single-event rows of its edges,
# with the same columns (KEYS, then the measures), and ``i``, the bucket index. Templates put it
# after ``WITH`` and aggregate ``f``; they read :rolled, :raw, :tenant and :agent_name.
_ONE = ", ".join(f"{expr} AS {col}" for col, (expr, _) in _MEASURES.items())
FACTS = (
    "ru(i, a, b) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]') FROM json_each(:rolled)), "
    "rr(i, lo, hi) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]') FROM json_each(:raw)), "
    f"f AS (SELECT ru.i AS i, {', '.join('r.' + k for k in KEYS)}, "
    f"{', '.join('r.' + c for c in _MEASURES)} FROM ru CROSS JOIN rollup r "
    "ON r.tenant = :tenant AND r.hour >= ru.a AND r.hour < ru.b "
    "AND (:agent_name IS NULL OR r.agent_name = :agent_name) "
    f"UNION ALL SELECT rr.i, agent_name, event_type, {_ACTION}, model, {_ROOT}, {_ONE} "
    "FROM rr CROSS JOIN events e ON e.tenant = :tenant AND e.timestamp >= rr.lo "
    "AND e.timestamp < rr.hi AND (:agent_name IS NULL OR e.agent_name = :agent_name))")
