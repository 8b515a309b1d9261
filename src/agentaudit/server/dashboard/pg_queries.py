"""PostgreSQL text of the dashboard's named aggregations (``data`` and ``rollup`` hold the SQLite
text and register both).

Each template returns the columns and Python types of its SQLite namesake. Differences of
dialect: ``count(*) FILTER`` for ``sum(cond)``, ``string_agg`` for ``group_concat``, ``jsonb``
arrays for ``json_each``, ``floor(x)::bigint`` for SQLite's truncating ``CAST(x AS INTEGER)``
(the same for the positive times of a log), the payload looked up in ``event_payloads`` by key.
Where SQLite passes row ids, PostgreSQL passes ``[day, seq]`` pairs: the partition key and the
primary key, so that a page of a trace reads only its rows' partitions.
"""

from __future__ import annotations

from agentaudit.store.rows import SELECT_COLUMNS

__all__ = ["PG_DATA_SQL", "PG_ROLLUP_SQL"]

_IDS = "ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(:ids AS jsonb))))"
_OF_TRACES = f"trace_id = {_IDS} AND tenant = :tenant"
_E_COLUMNS = ", ".join(f"e.{c}" for c in SELECT_COLUMNS)
_SELECT = ", ".join(SELECT_COLUMNS)


_ERROR = "event_type = 'agent.error'"
_HANDOFF = "event_type = 'agent.handoff'"


def _n(cond: str) -> str:
    return f"count(*) FILTER (WHERE {cond})"


PG_DATA_SQL: dict[str, str] = {
    "dash_trace_stats": (
        "SELECT trace_id, min(timestamp) AS start, max(timestamp) AS end, count(*) AS events, "
        f"{_n(_ERROR)} AS errors, "
        f"{_n(_HANDOFF)} AS handoffs, "
        "string_agg(DISTINCT agent_name, ',') AS agents, coalesce(sum(cost_usd), 0) AS cost_usd, "
        "max(task_id) AS task_id, max(session_id) AS session_id, max(user_id) AS user_id, "
        "min(CASE WHEN parent_event_id IS NULL THEN coalesce(action, event_type) END) AS root "
        f"FROM events_v WHERE {_OF_TRACES} GROUP BY trace_id LIMIT :limit"),
    "dash_traces_of": (
        "SELECT trace_id FROM events WHERE trace_id = :ref AND tenant = :tenant "
        "UNION SELECT trace_id FROM events WHERE task_id = :ref AND tenant = :tenant "
        "AND trace_id IS NOT NULL LIMIT :limit"),
    "dash_trace_summary": (
        f"SELECT count(*) AS events, {_n(_ERROR)} "
        "AS errors, count(*) FILTER (WHERE event_type = 'agent.human_intervention' "
        "AND action = 'escalation') AS escalations, "
        "min(timestamp - coalesce(duration_ms, 0) / 1000.0) AS start, min(timestamp) AS first, "
        "max(timestamp) AS end, sum(cost_usd) AS cost_usd, "
        "string_agg(DISTINCT task_id, ',') AS task_ids, "
        "string_agg(DISTINCT agent_name, ',') AS agents "
        f"FROM events WHERE {_OF_TRACES} LIMIT :limit"),
    # ``id`` is the row's key [day, seq], read back by dash_trace_rows
    "dash_trace_tree": (
        "SELECT ARRAY[day::bigint, seq] AS id, event_id, parent_event_id FROM events "
        f"WHERE {_OF_TRACES} ORDER BY timestamp, seq LIMIT :limit"),
    "dash_trace_rows": (
        f"SELECT {_E_COLUMNS} FROM jsonb_array_elements(CAST(:rowids AS jsonb)) AS k(v) "
        "JOIN events_v e ON e.tenant = :tenant AND e.day = (k.v ->> 0)::int "
        "AND e.seq = (k.v ->> 1)::bigint ORDER BY e.timestamp, e.seq LIMIT :limit"),
    "dash_trace_marks": (
        f"SELECT {_SELECT} FROM events_v WHERE {_OF_TRACES} "
        "AND event_type IN ('agent.handoff', 'agent.error') ORDER BY timestamp, seq "
        "LIMIT :limit"),
    "dash_erased": (
        f"SELECT event_id, erased FROM events_v WHERE {_OF_TRACES} AND erased IS NOT NULL "
        "LIMIT :limit"),
}

_KEYED_ACTIONS = ("'agent.tool_call', 'agent.tool_result', 'agent.error', 'agent.decision', "
                  "'agent.human_intervention', 'agent.security', 'agent.compliance'")
# The rows of a rollup query with the handoff's target read from its payload (handoffs only).
_KEYED = (
    "SELECT e.*, CASE WHEN e.event_type = 'agent.handoff' THEN coalesce((SELECT "
    "convert_from(p.payload, 'UTF8')::jsonb #>> '{{params,to_agent}}' FROM event_payloads p "
    "WHERE p.tenant = e.tenant AND p.day = e.day AND p.seq = e.seq) COLLATE \"C\", e.action) "
    f"WHEN e.event_type IN ({_KEYED_ACTIONS}) THEN e.action END AS key_action "
    "FROM events e WHERE {where}")
_COLUMNS = (
    "agent_name, event_type, key_action AS action, "
    "CASE WHEN event_type = 'agent.error' THEN coalesce(error_type, 'Unknown') END AS error_type, "
    "count(*) AS n, coalesce(sum(cost_usd), 0) AS cost, coalesce(sum(duration_ms), 0) AS dur_sum, "
    "count(duration_ms) AS dur_n, max(duration_ms) AS dur_max, "
    "coalesce(sum(confidence), 0) AS conf_sum, count(confidence) AS conf_n, "
    "min(confidence) AS conf_min, count(*) FILTER (WHERE confidence < 0.5) AS low_conf, "
    "coalesce(sum(prompt_tokens), 0)::bigint AS pt, "
    "coalesce(sum(completion_tokens), 0)::bigint AS ct, "
    "max(timestamp) AS last_ts, max(seq) AS max_seq")


def _rollup(width: int, where: str) -> str:
    return (f"SELECT floor(timestamp / {width})::bigint AS bucket, {_COLUMNS} "
            f"FROM ({_KEYED.format(where=where)}) r GROUP BY 1, 2, 3, 4, 5 LIMIT :limit")


PG_ROLLUP_SQL: dict[str, str] = {
    "dash_rollup_hours": _rollup(3600, "e.tenant = :tenant AND e.seq >= :from_seq "
                                       "AND e.seq < :to_seq"),
    "dash_rollup_minutes": _rollup(60, "e.tenant = :tenant AND e.timestamp >= :since "
                                       "AND e.day >= :since_day AND e.seq < :to_seq"),
    "dash_rollup_new": _rollup(60, "e.tenant = :tenant AND e.seq >= :from_seq"),
    # every tenant with a log has its head in log_state (row-level security applies)
    "dash_tenants": "SELECT tenant AS name FROM log_state ORDER BY tenant LIMIT :limit",
    # the log is gap-free: its size is the next seq
    "dash_next_seq": "SELECT coalesce((SELECT size FROM log_state WHERE tenant = :tenant), 0) "
                     "AS next LIMIT :limit",
}
