"""Query text of ``PostgresStore``: migrations runner, filters and named aggregations.

Templates are written with ``:name`` parameters, as the SQLite ones are, and turned into
psycopg's ``%(name)s`` once (``to_psycopg``). They return the same Python types SQLite returns
for the same rows (integers for counts and integer sums, floats for averages), so that reports
built on either backend are equal; parameters that may be NULL carry an explicit cast.
"""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from typing import Any

from agentaudit.exceptions import StoreError
from agentaudit.store._pg_payload_facts import payload_json
from agentaudit.store._pg_rollup import split_days
from agentaudit.store._pg_schema import MIGRATIONS
from agentaudit.store._rollup_shared import FAR, split
from agentaudit.store.base import SAMPLE_STEP, EventQuery, parse_cursor
from agentaudit.store.rows import SECONDS_PER_DAY

__all__ = ["aggregation", "applied_migrations", "day_of", "migrate", "register_aggregations",
           "to_psycopg", "where_clause"]

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def to_psycopg(sql: str) -> str:
    """``:name`` parameters as ``%(name)s``; a literal ``%`` doubled."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def day_of(timestamp: float) -> int:
    """The UTC day (since the epoch) of a timestamp: the partition key."""
    return int(timestamp // SECONDS_PER_DAY)


# -- migrations ----------------------------------------------------------------------------------

def applied_migrations(conn: Any) -> set[str] | None:
    """Names of the applied migrations; None when the schema has no agentaudit tables."""
    row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if row[0] is None:
        return None
    return {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}


def migrate(conn: Any) -> list[str]:
    """Apply the migrations the database lacks, in one transaction; return their names."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('agentaudit.migrate', 0))")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                     "(name text PRIMARY KEY, applied_at double precision NOT NULL)")
        done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        unknown = done - {n for n, _ in MIGRATIONS}
        if unknown:
            raise StoreError(f"database has migrations this version does not know: "
                             f"{sorted(unknown)}; upgrade agentaudit")
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        applied = []
        for name, script in MIGRATIONS:
            if name in done:
                continue
            conn.execute(script.replace("{schema}", _ident(schema)))
            conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                         (name, time.time()))
            applied.append(name)
    return applied


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- filters -------------------------------------------------------------------------------------

def where_clause(q: EventQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (``:name`` parameters) and parameters of an ``EventQuery``."""
    parts = ["tenant = :tenant"]
    params: dict[str, Any] = {"tenant": q.tenant}
    for column, value in (("agent_name", q.agent), ("trace_id", q.trace_id),
                          ("session_id", q.session_id), ("task_id", q.task_id),
                          ("user_id", q.user_id)):
        if value is not None:
            parts.append(f"{column} = :{column}")
            params[column] = value
    if q.event_types:
        parts.append("event_type = ANY(:event_types)")
        params["event_types"] = [str(t) for t in q.event_types]
    if q.errors_only:
        parts.append("event_type = 'agent.error'")
    if q.since is not None:
        parts.append("timestamp >= :since")
        params["since"] = float(q.since)
    if q.until is not None:
        parts.append("timestamp < :until")
        params["until"] = float(q.until)
    if q.since is not None or q.until is not None:
        # the partition key, so that the planner skips the days outside the period
        if q.since is not None:
            parts.append("day >= :since_day")
            params["since_day"] = day_of(q.since)
        if q.until is not None:
            parts.append("day <= :until_day")
            params["until_day"] = day_of(q.until)
    if q.after_seq is not None:
        parts.append("seq > :after_seq")
        params["after_seq"] = q.after_seq
    if q.cursor:
        params["cursor_ts"], params["cursor_seq"] = parse_cursor(q.cursor)
        parts.append("(timestamp, seq) < (:cursor_ts, :cursor_seq)" if q.newest_first
                     else "(timestamp, seq) > (:cursor_ts, :cursor_seq)")
    return " WHERE " + " AND ".join(parts), params


# -- named aggregations --------------------------------------------------------------------------


# the payload row ``p`` of the envelope row ``e`` (the day names its partition)
SAME_ROW = "p.tenant = e.tenant AND p.day = e.day AND p.seq = e.seq"


def payload_of(path: str) -> str:
    """``payload_json(path)`` of the payload row of the envelope row ``e``, looked up per row:
    the lookup names the row's day, so it reads one partition of ``event_payloads`` (a join
    with ``events_v`` gets no day bound on the payload side and may read every partition)."""
    return f"(SELECT {payload_json(path, 'p')} FROM event_payloads p WHERE {SAME_ROW})"


def _n(cond: str) -> str:
    """SQLite's ``sum(cond)``: the count of rows where cond holds, NULL over no rows."""
    return f"sum(({cond})::int)"


def _is(kind: str) -> str:
    """``sum(event_type = 'agent.<kind>')``."""
    return _n(f"event_type = 'agent.{kind}'")


# The same aggregations answered from the report rollups (_pg_rolled_reports).
_ROLLED: dict[str, str] = {}

# ``{w}`` is the period's WHERE clause. Templates that read payloads look each one up per row
# (``payload_of``) rather than join ``events_v``, whose join bounds no payload partition.
_AGGREGATIONS: dict[str, str] = {
    "event_types": "SELECT event_type, count(*) AS events FROM events{w} "
                   "GROUP BY event_type ORDER BY events DESC, event_type LIMIT :limit",
    "agents": "SELECT agent_name, count(*) AS events, "
              f"{_is('invocation')} AS invocations, "
              f"{_is('error')} AS errors, "
              f"{_is('tool_call')} AS tool_calls, "
              "avg(CASE WHEN event_type = 'agent.tool_result' THEN duration_ms END) AS avg_tool_ms, "
              "coalesce(sum(cost_usd), 0) AS cost_usd, max(timestamp) AS last_seen "
              "FROM events{w} GROUP BY agent_name ORDER BY events DESC, agent_name LIMIT :limit",
    "tools": "SELECT action AS tool, count(*) AS calls, "
             "avg(duration_ms) AS avg_latency_ms, max(duration_ms) AS max_latency_ms "
             "FROM events{w} AND event_type = 'agent.tool_result' "
             "GROUP BY action ORDER BY calls DESC, action NULLS FIRST LIMIT :limit",
    "tool_errors": "SELECT action AS tool, count(*) AS errors FROM events{w} "
                   "AND event_type = 'agent.error' AND action IS NOT NULL "
                   "GROUP BY action ORDER BY errors DESC, action NULLS FIRST LIMIT :limit",
    "error_types": "SELECT coalesce(error_type, 'Unknown') AS error_type, count(*) AS count "
                   "FROM events{w} AND event_type = 'agent.error' "
                   "GROUP BY 1 ORDER BY count DESC, 1 LIMIT :limit",
    "errors_by_agent": "SELECT agent_name, count(*) AS count FROM events{w} "
                       "AND event_type = 'agent.error' GROUP BY agent_name "
                       "ORDER BY count DESC, agent_name LIMIT :limit",
    "error_messages": "SELECT coalesce(error_type, 'Unknown') AS error_type, "
                      f"{payload_of('error')} AS message, count(*) AS count "
                      "FROM events e{w} AND event_type = 'agent.error' "
                      "GROUP BY 1, 2 ORDER BY count DESC, 1, 2 NULLS FIRST LIMIT :limit",
    "decisions": "SELECT action AS decision, count(*) AS count, avg(confidence) AS avg_confidence, "
                 "min(confidence) AS min_confidence FROM events{w} "
                 "AND event_type = 'agent.decision' GROUP BY action "
                 "ORDER BY count DESC, action NULLS FIRST LIMIT :limit",
    "handoffs_out": f"SELECT {payload_of('params.to_agent')} AS agent, count(*) AS count "
                    "FROM events e{w} AND event_type = 'agent.handoff' GROUP BY 1 "
                    "ORDER BY count DESC, 1 NULLS FIRST LIMIT :limit",
    "totals": f"SELECT count(*) AS events, {_is('error')} AS errors, "
              f"{_is('handoff')} AS handoffs, "
              f"{_is('human_intervention')} AS human_interventions, "
              "count(DISTINCT agent_name) AS agents, count(DISTINCT trace_id) AS traces, "
              "coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens, "
              "coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens, "
              "coalesce(sum(cost_usd), 0) AS cost_usd, "
              "min(timestamp) AS first_ts, max(timestamp) AS last_ts FROM events{w} LIMIT :limit",
    "tool_usage": f"SELECT action AS tool, {_is('tool_call')} AS calls, "
                  f"{_is('error')} AS errors, "
                  "avg(CASE WHEN event_type = 'agent.tool_result' THEN duration_ms END) "
                  "AS avg_latency_ms, "
                  "max(CASE WHEN event_type = 'agent.tool_result' THEN duration_ms END) "
                  "AS max_latency_ms FROM events{w} AND action IS NOT NULL AND event_type IN "
                  "('agent.tool_call', 'agent.tool_result', 'agent.error') GROUP BY action "
                  f"HAVING {_is('tool_call')} > 0 "
                  "ORDER BY calls DESC, action NULLS FIRST LIMIT :limit",
    "errors_by_tool": f"SELECT action AS tool, {_is('error')} AS count "
                      "FROM events{w} AND action IS NOT NULL AND event_type IN "
                      "('agent.tool_call', 'agent.error') GROUP BY action "
                      f"HAVING {_is('tool_call')} > 0 "
                      f"AND {_is('error')} > 0 "
                      "ORDER BY count DESC, action NULLS FIRST LIMIT :limit",
    "decision_totals": "SELECT count(*) AS decisions, count(confidence) AS with_confidence, "
                       "avg(confidence) AS avg_confidence, "
                       f"coalesce({_n('confidence < 0.5')}, 0) AS low_confidence "
                       "FROM events{w} AND event_type = 'agent.decision' LIMIT :limit",
    "max_seq": "SELECT max(seq) AS max_seq FROM events{w} LIMIT :limit",
}


# Planner settings for one aggregation, set for its transaction only: where the best plan is an
# ordered index scan that stops at LIMIT but the planner cannot estimate the filter (``id %
# :stride``) and would rather sort the whole period.
PLANNER_SETTINGS: dict[str, dict[str, str]] = {}


def register_aggregations(templates: dict[str, str],
                          planner: dict[str, dict[str, str]] | None = None) -> None:
    """Add named aggregations (``_pg_reports`` registers the reports' at import)."""
    _AGGREGATIONS.update(templates)
    PLANNER_SETTINGS.update(planner or {})


def aggregation_names() -> list[str]:
    return sorted(_AGGREGATIONS)


def register_rolled(templates: dict[str, str]) -> None:
    """Add rollup versions of registered aggregations (same names, same answers)."""
    unknown = set(templates) - set(_AGGREGATIONS)
    if unknown:
        raise StoreError(f"rollup templates without a plain one: {sorted(unknown)}")
    _ROLLED.update(templates)


def aggregation(name: str, tenant: str, since: float | None, until: float | None,
                agent: str | None, limit: int, extra: dict[str, Any] | None = None,
                rolled: bool = False) -> tuple[str, dict[str, Any]]:
    """The psycopg text and parameters of aggregation ``name`` over the period; with
    ``rolled``, from the report rollups when it has a rollup version."""
    import agentaudit.store._pg_reports  # noqa: F401  (registers the report templates)
    import agentaudit.store._pg_rolled_reports  # noqa: F401  (and their rollup versions)

    try:
        template = _AGGREGATIONS[name]
    except KeyError as e:
        known = ", ".join(sorted(_AGGREGATIONS))
        raise StoreError(f"unknown aggregation {name!r}; known: {known}") from e
    where, params = where_clause(EventQuery(tenant=tenant, since=since, until=until,
                                            agent=agent))
    params["limit"] = limit
    params.setdefault("agent_name", None)
    params.setdefault("since", None)
    params.setdefault("until", None)
    if extra:
        params.update(extra)
    if rolled and name in _ROLLED:
        template = _ROLLED[name]
        bounds = (json.loads(params["bounds"]) if params.get("bounds") is not None
                  else [[since, until]])
        params["rolled"], params["raw"] = split(bounds)
        params["rolled_days"], params["rolled_hours"] = split_days(params["rolled"])
        params["since"] = -FAR if since is None else since
        params["until"] = FAR if until is None else until
    return to_psycopg(template.replace("{w}", where).replace("{sample}", _sample(params))), params


def _sample(params: dict[str, Any]) -> str:
    """``{sample}`` of a template: the predicate of ix_events_sample when the rows it samples
    (``id % :stride = 0``) are among those the index holds (``base.SAMPLE_STEP``)."""
    stride = int(params.get("stride") or 1)
    return f" AND id % {SAMPLE_STEP} = 0" if stride % SAMPLE_STEP == 0 else ""
