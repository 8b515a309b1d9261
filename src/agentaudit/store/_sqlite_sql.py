"""SQLite schema, migrations and query text for ``SQLiteStore``."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from agentaudit.events import AuditEvent
from agentaudit.exceptions import StoreError
from agentaudit.store import _sqlite_rollup as rollup
from agentaudit.store.base import EventQuery, parse_cursor
from agentaudit.store.rows import COLUMNS

# Named migrations, applied in order, each in its own transaction, recorded in schema_migrations.
MIGRATIONS: list[tuple[str, str]] = [
    ("0001_events", """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            agent_name TEXT NOT NULL,
            trace_id TEXT,
            parent_event_id TEXT,
            task_id TEXT,
            session_id TEXT,
            user_id TEXT,
            action TEXT,
            source TEXT,
            model TEXT,
            version TEXT,
            error_type TEXT,
            timestamp REAL NOT NULL,
            day INTEGER GENERATED ALWAYS AS (CAST(timestamp / 86400 AS INTEGER)) VIRTUAL,
            duration_ms REAL,
            confidence REAL,
            token_count INTEGER,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd REAL,
            tier TEXT NOT NULL,
            payload BLOB,
            salt BLOB,
            payload_sha256 BLOB,
            leaf_hash BLOB,
            erased TEXT
        );
        CREATE UNIQUE INDEX ux_events_tenant_event ON events (tenant, event_id);
        CREATE UNIQUE INDEX ux_events_tenant_seq ON events (tenant, seq);
        CREATE INDEX ix_events_tenant_time ON events (tenant, timestamp, seq);
        CREATE INDEX ix_events_trace ON events (trace_id);
        CREATE INDEX ix_events_task ON events (task_id) WHERE task_id IS NOT NULL;
        CREATE INDEX ix_events_session ON events (session_id) WHERE session_id IS NOT NULL;
        CREATE INDEX ix_events_agent_time ON events (tenant, agent_name, timestamp);
        CREATE INDEX ix_events_errors ON events (tenant, timestamp) WHERE event_type = 'agent.error';
        CREATE TABLE log_state (
            tenant TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            frontier BLOB
        );
        CREATE TABLE checkpoints (
            tenant TEXT NOT NULL,
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            note TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (tenant, size)
        );
        CREATE TABLE merkle_tiles (
            tenant TEXT NOT NULL,
            idx INTEGER NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY (tenant, idx)
        );
        CREATE TABLE log_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        INSERT INTO log_meta (key, value) VALUES ('log_id', lower(hex(randomblob(8))));
    """),
    ("0002_user_index", """
        CREATE INDEX ix_events_user ON events (user_id) WHERE user_id IS NOT NULL;
    """),
    ("0003_api_keys", """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
            name TEXT,
            key_hash BLOB NOT NULL,
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE INDEX ix_api_keys_tenant ON api_keys (tenant);
    """),
    ("0004_retention", """
        CREATE TABLE legal_holds (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            reason TEXT NOT NULL,
            trace_id TEXT,
            session_id TEXT,
            agent_name TEXT,
            user_id TEXT,
            from_ts REAL,
            to_ts REAL,
            created_at REAL NOT NULL,
            created_by TEXT,
            released_at REAL,
            released_by TEXT
        );
        CREATE INDEX ix_legal_holds_tenant ON legal_holds (tenant, released_at);
        CREATE TABLE erasures (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('retention', 'erasure')),
            selector TEXT,
            reason TEXT NOT NULL,
            at REAL NOT NULL,
            erased INTEGER NOT NULL,
            payload_bytes INTEGER NOT NULL,
            refused_held INTEGER NOT NULL,
            audit_event_id TEXT
        );
        CREATE INDEX ix_erasures_tenant_at ON erasures (tenant, at);
        CREATE TABLE compacted_leaves (
            tenant TEXT NOT NULL,
            seq INTEGER NOT NULL,
            leaf_hash BLOB NOT NULL,
            PRIMARY KEY (tenant, seq)
        ) WITHOUT ROWID;
        CREATE TABLE compactions (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            before_ts REAL NOT NULL,
            from_seq INTEGER NOT NULL,
            to_seq INTEGER NOT NULL,
            at REAL NOT NULL,
            audit_event_id TEXT
        );
        ALTER TABLE events ADD COLUMN erased_at REAL;
        CREATE INDEX ix_events_erased ON events (tenant, erased_at) WHERE erased_at IS NOT NULL;
    """),
    # Alerts of the detection rules (agentaudit.store._sqlite_alerts). Numbered 0005: 0004 is
    # taken by retention; migrations are applied by name, so the gap is harmless.
    ("0005_alerts", """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            event_id TEXT NOT NULL,
            rule TEXT NOT NULL,
            severity TEXT NOT NULL,
            kind TEXT NOT NULL,
            agent_name TEXT,
            trace_id TEXT,
            title TEXT NOT NULL,
            explanation TEXT NOT NULL,
            evidence TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            occurrences INTEGER NOT NULL DEFAULT 1,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acked')),
            acked_by TEXT,
            acked_at REAL,
            ack_note TEXT
        );
        CREATE UNIQUE INDEX ux_alerts_event ON alerts (tenant, event_id);
        CREATE INDEX ix_alerts_open ON alerts (tenant, dedup_key) WHERE status = 'open';
        CREATE INDEX ix_alerts_time ON alerts (tenant, last_seen);
        CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts (id),
            sink TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('delivered', 'dead', 'rate_limited')),
            attempts INTEGER NOT NULL,
            last_error TEXT,
            payload TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX ix_alert_deliveries_alert ON alert_deliveries (alert_id);
    """),
    # Hourly rollups, open work and the partial indexes the reports read (_sqlite_rollup),
    # filled from the rows already stored.
    ("0006_report_rollups", rollup.MIGRATION),
]
ROLLUPS_MIGRATION = "0006_report_rollups"


def is_initialised(db: sqlite3.Connection) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    return row is not None


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this file lacks; return the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
               "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {r[0] for r in db.execute("SELECT name FROM schema_migrations")}
    applied = []
    for name, script in MIGRATIONS:
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                db.execute("ROLLBACK")  # another process got there first
                continue
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    known = {n for n, _ in MIGRATIONS}
    unknown = done - known
    if unknown:
        raise StoreError(f"database has migrations this version does not know: {sorted(unknown)}; "
                         "upgrade agentaudit")
    return applied



INSERT_EVENT = (f"INSERT INTO events ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in COLUMNS)})")


def insert_events(db: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Inside a write transaction: store event rows and fold them into the report rollups."""
    after = rollup.last_id(db)
    db.executemany(INSERT_EVENT, rows)
    rollup.after_insert(db, after)


def has_rollups(db: sqlite3.Connection) -> bool:
    """Whether the file has the report rollups (a read-only store may predate them)."""
    return db.execute("SELECT 1 FROM schema_migrations WHERE name = ?",
                      (ROLLUPS_MIGRATION,)).fetchone() is not None


def load_log_state(db: sqlite3.Connection, tenant: str) -> tuple[int, bytes | None]:
    row = db.execute("SELECT size, frontier FROM log_state WHERE tenant = ?", (tenant,)).fetchone()
    return (0, None) if row is None else (int(row[0]), row[1])


def last_checkpoint(db: sqlite3.Connection, tenant: str) -> tuple[int, float]:
    row = db.execute("SELECT size, created_at FROM checkpoints WHERE tenant = ? "
                     "ORDER BY size DESC LIMIT 1", (tenant,)).fetchone()
    return (0, 0.0) if row is None else (int(row[0]), float(row[1]))


def insert_checkpoint(db: sqlite3.Connection, tenant: str, size: int, root: bytes, note: str,
                      created_at: float) -> None:
    db.execute("INSERT OR IGNORE INTO checkpoints (tenant, size, root, note, created_at) "
               "VALUES (?, ?, ?, ?, ?)", (tenant, size, root, note, created_at))


def save_tiles(db: sqlite3.Connection, tiles: list[tuple[str, int, bytes]]) -> None:
    if tiles:
        db.executemany("INSERT OR REPLACE INTO merkle_tiles (tenant, idx, hash) VALUES (?, ?, ?)",
                       tiles)


def log_id(db: sqlite3.Connection) -> str:
    return str(db.execute("SELECT value FROM log_meta WHERE key = 'log_id'").fetchone()[0])


def save_log_state(db: sqlite3.Connection, states: dict[str, tuple[int, bytes | None]]) -> None:
    db.executemany(
        "INSERT INTO log_state (tenant, size, frontier) VALUES (?, ?, ?) "
        "ON CONFLICT (tenant) DO UPDATE SET size = excluded.size, frontier = excluded.frontier",
        [(t, size, frontier) for t, (size, frontier) in states.items()],
    )


def filter_new(db: sqlite3.Connection, events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """The events whose (tenant, event_id) is not stored yet."""
    existing: set[tuple[str, str]] = set()
    for i in range(0, len(events), 400):
        chunk = events[i : i + 400]
        marks = ", ".join("(?, ?)" for _ in chunk)
        params = [x for ev in chunk for x in (ev.tenant, ev.event_id)]
        existing.update(db.execute(
            f"SELECT tenant, event_id FROM events WHERE (tenant, event_id) IN (VALUES {marks})",
            params,
        ).fetchall())
    return [ev for ev in events if (ev.tenant, ev.event_id) not in existing]


def where_clause(q: EventQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and named parameters of an ``EventQuery`` (tenant always first)."""
    # With a selective filter (trace, session, task, user) the unary + keeps SQLite from
    # choosing the tenant+time index, which would walk the whole tenant.
    selective = any(v is not None for v in (q.trace_id, q.session_id, q.task_id, q.user_id))
    parts = ["+tenant = :tenant" if selective else "tenant = :tenant"]
    params: dict[str, Any] = {"tenant": q.tenant}
    for column, value in (("agent_name", q.agent), ("trace_id", q.trace_id),
                          ("session_id", q.session_id), ("task_id", q.task_id),
                          ("user_id", q.user_id)):
        if value is not None:
            parts.append(f"{column} = :{column}")
            params[column] = value
    if q.event_types:
        names = [f"type{i}" for i in range(len(q.event_types))]
        parts.append(f"event_type IN ({', '.join(':' + n for n in names)})")
        params.update(zip(names, (str(t) for t in q.event_types), strict=True))
    if q.errors_only:
        parts.append("event_type = 'agent.error'")
    if q.since is not None:
        parts.append("timestamp >= :since")
        params["since"] = q.since
    if q.until is not None:
        parts.append("timestamp < :until")
        params["until"] = q.until
    if q.after_seq is not None:
        parts.append("seq > :after_seq")
        params["after_seq"] = q.after_seq
    if q.cursor:
        params["cursor_ts"], params["cursor_seq"] = parse_cursor(q.cursor)
        parts.append("(timestamp, seq) < (:cursor_ts, :cursor_seq)" if q.newest_first
                     else "(timestamp, seq) > (:cursor_ts, :cursor_seq)")
    return " WHERE " + " AND ".join(parts), params


def _period(tenant: str, since: float | None, until: float | None,
            agent: str | None) -> tuple[str, dict[str, Any]]:
    return where_clause(EventQuery(tenant=tenant, since=since, until=until, agent=agent))


# Named aggregations. Each is computed entirely in SQL over the period's rows: ``{w}`` is the
# period's WHERE clause; parameters are named (``:tenant``, ``:since``, ``:until``, ``:agent_name``,
# ``:limit`` and whatever extra parameters the caller passes).
_AGGREGATIONS: dict[str, str] = {
    "event_types": "SELECT event_type, count(*) AS events FROM events{w} "
                   "GROUP BY event_type ORDER BY events DESC, event_type LIMIT :limit",
    "agents": "SELECT agent_name, count(*) AS events, "
              "sum(event_type = 'agent.invocation') AS invocations, "
              "sum(event_type = 'agent.error') AS errors, "
              "sum(event_type = 'agent.tool_call') AS tool_calls, "
              "avg(CASE WHEN event_type = 'agent.tool_result' THEN duration_ms END) AS avg_tool_ms, "
              "coalesce(sum(cost_usd), 0) AS cost_usd, max(timestamp) AS last_seen "
              "FROM events{w} GROUP BY agent_name ORDER BY events DESC, agent_name LIMIT :limit",
    "tools": "SELECT action AS tool, count(*) AS calls, "
             "avg(duration_ms) AS avg_latency_ms, max(duration_ms) AS max_latency_ms "
             "FROM events{w} AND event_type = 'agent.tool_result' "
             "GROUP BY action ORDER BY calls DESC, action LIMIT :limit",
    "tool_errors": "SELECT action AS tool, count(*) AS errors FROM events{w} "
                   "AND event_type = 'agent.error' AND action IS NOT NULL "
                   "GROUP BY action ORDER BY errors DESC, action LIMIT :limit",
    "error_types": "SELECT coalesce(error_type, 'Unknown') AS error_type, count(*) AS count "
                   "FROM events{w} AND event_type = 'agent.error' "
                   "GROUP BY 1 ORDER BY count DESC, 1 LIMIT :limit",
    "errors_by_agent": "SELECT agent_name, count(*) AS count FROM events{w} "
                       "AND event_type = 'agent.error' GROUP BY agent_name "
                       "ORDER BY count DESC, agent_name LIMIT :limit",
    "error_messages": "SELECT coalesce(error_type, 'Unknown') AS error_type, "
                      "json_extract(payload, '$.error') AS message, count(*) AS count "
                      "FROM events{w} AND event_type = 'agent.error' "
                      "GROUP BY 1, 2 ORDER BY count DESC, 1, 2 LIMIT :limit",
    "decisions": "SELECT action AS decision, count(*) AS count, avg(confidence) AS avg_confidence, "
                 "min(confidence) AS min_confidence FROM events{w} "
                 "AND event_type = 'agent.decision' GROUP BY action ORDER BY count DESC, action LIMIT :limit",
    "handoffs_out": "SELECT json_extract(payload, '$.params.to_agent') AS agent, count(*) AS count "
                    "FROM events{w} AND event_type = 'agent.handoff' GROUP BY 1 "
                    "ORDER BY count DESC, 1 LIMIT :limit",
    "totals": "SELECT count(*) AS events, sum(event_type = 'agent.error') AS errors, "
              "sum(event_type = 'agent.handoff') AS handoffs, "
              "sum(event_type = 'agent.human_intervention') AS human_interventions, "
              "count(DISTINCT agent_name) AS agents, count(DISTINCT trace_id) AS traces, "
              "coalesce(sum(prompt_tokens), 0) AS prompt_tokens, "
              "coalesce(sum(completion_tokens), 0) AS completion_tokens, "
              "coalesce(sum(cost_usd), 0) AS cost_usd, "
              "min(timestamp) AS first_ts, max(timestamp) AS last_ts FROM events{w} LIMIT :limit",
    # Calls, failures and latency per tool; an error counts for a tool when its action names a
    # tool that was called in the period (the SDK's ToolCall errors carry the tool's name).
    "tool_usage": "SELECT action AS tool, sum(event_type = 'agent.tool_call') AS calls, "
                  "sum(event_type = 'agent.error') AS errors, "
                  "avg(CASE WHEN event_type = 'agent.tool_result' THEN duration_ms END) "
                  "AS avg_latency_ms, "
                  "max(CASE WHEN event_type = 'agent.tool_result' THEN duration_ms END) "
                  "AS max_latency_ms FROM events{w} AND action IS NOT NULL AND event_type IN "
                  "('agent.tool_call', 'agent.tool_result', 'agent.error') "
                  "GROUP BY action HAVING calls > 0 ORDER BY calls DESC, action LIMIT :limit",
    "errors_by_tool": "SELECT action AS tool, sum(event_type = 'agent.error') AS count "
                      "FROM events{w} AND action IS NOT NULL AND event_type IN "
                      "('agent.tool_call', 'agent.error') GROUP BY action "
                      "HAVING sum(event_type = 'agent.tool_call') > 0 AND count > 0 "
                      "ORDER BY count DESC, action LIMIT :limit",
    "decision_totals": "SELECT count(*) AS decisions, count(confidence) AS with_confidence, "
                       "avg(confidence) AS avg_confidence, "
                       "coalesce(sum(confidence < 0.5), 0) AS low_confidence "
                       "FROM events{w} AND event_type = 'agent.decision' LIMIT :limit",
    "max_seq": "SELECT max(seq) AS max_seq FROM events{w} LIMIT :limit",
}

# The same aggregations answered from the report rollups (_sqlite_rolled_reports), for stores
# that have them.
_ROLLED: dict[str, str] = {}


def aggregation_names() -> list[str]:
    return sorted(_AGGREGATIONS)


def register_aggregations(templates: dict[str, str]) -> None:
    """Add named aggregations (report modules register theirs at import)."""
    _AGGREGATIONS.update(templates)


def register_rolled(templates: dict[str, str]) -> None:
    """Add rollup versions of registered aggregations (same names, same answers)."""
    unknown = set(templates) - set(_AGGREGATIONS)
    if unknown:
        raise StoreError(f"rollup templates without a plain one: {sorted(unknown)}")
    _ROLLED.update(templates)


def aggregation(name: str, tenant: str, since: float | None, until: float | None,
                agent: str | None, limit: int, extra: dict[str, Any] | None = None,
                rolled: bool = False) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of aggregation ``name``; with ``rolled``, from the report
    rollups when it has a rollup version."""
    try:
        template = _AGGREGATIONS[name]
    except KeyError as e:
        known = ", ".join(sorted(_AGGREGATIONS))
        raise StoreError(f"unknown aggregation {name!r}; known: {known}") from e
    where, params = _period(tenant, since, until, agent)
    params["limit"] = limit
    if extra:
        params.update(extra)
    if rolled and name in _ROLLED:
        template = _ROLLED[name]
        params.setdefault("agent_name", agent)
        bounds = (json.loads(params["bounds"]) if params.get("bounds") is not None
                  else [[since, until]])
        params["rolled"], params["raw"] = rollup.split(bounds)
        params["since"] = -rollup.FAR if since is None else since
        params["until"] = rollup.FAR if until is None else until
    return template.format(w=where), params
