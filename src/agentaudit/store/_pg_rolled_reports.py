"""The reports' PostgreSQL templates that read the rollups (``_pg_rollup``).

Each answers exactly what the template of the same name in ``_pg_reports`` answers (same
columns, same Python types: sums of the ``numeric`` cells are cast back as the plain templates
cast theirs), from the hourly cells of the period plus its edge events (``FACTS``) and from
``open_work``. As on SQLite, a per-(agent, bucket) template returns only the pairs that have
events; the reports fill in the rest. tests/postgres/test_pg_rollups.py checks both sets
agree.

Beside the parameters of the plain templates they read ``:rolled`` and ``:raw`` (the period, or
each bucket of ``:bounds``, split by ``_rollup_shared.split``), which ``_pg_sql.aggregation``
adds.
"""

from __future__ import annotations

from agentaudit.store._pg_errors import HORIZON_S
from agentaudit.store._pg_reports import (
    _COST,
    _MODEL_ROW,
    _SAME_ROW,
    NEXT_CALL,
    _evidence,
    _in_json,
    _jarray,
    _jf,
    _ji,
    data_access,
    retries,
    tool_approval,
)
from agentaudit.store._pg_rollup import _AGENT, FACTS, SPLIT
from agentaudit.store._pg_sql import register_rolled
from agentaudit.store._rollup_shared import ERR, ESC, FINISH, HANDOFF, INV, count_where

__all__ = ["ROLLED_AGGREGATIONS"]


def _n(condition: str) -> str:
    """``count_where`` as the plain templates type a count (bigint, not numeric)."""
    return f"{count_where(condition)}::bigint"

_TIMED = "event_type IN ('agent.tool_result', 'agent.error')"


def _at_rank(p: str, direction: str) -> str:
    """The duration at the nearest rank of percentile ``p`` among tool ``s.action``'s timed
    calls of the period, counted from the bottom (ASC) or the top (DESC)."""
    rank = f"ceil({p}::float8 * s.timed)::bigint"
    skip = f"{rank} - 1" if direction == "ASC" else f"s.timed - {rank}"
    return (f"(SELECT e.duration_ms FROM events e{{w}} AND e.action = s.action AND {_TIMED} "
            f"AND e.duration_ms IS NOT NULL ORDER BY e.duration_ms {direction} "
            f"OFFSET {skip} LIMIT 1)")


# PROFILE_FIELDS, in order, printed as the plain template prints them
_PROFILE = _jarray(
    _ji("sum(events)"), _ji(_n(INV)), _ji(_n(ERR)), _ji(_n("event_type = 'agent.tool_call'")),
    _ji(_n("event_type = 'agent.decision' AND action IS DISTINCT FROM 'finish'")),
    _ji(_n(HANDOFF)), _ji(_n(FINISH)), _jf(f"sum(dur_sum) FILTER (WHERE {FINISH})"),
    _jf("sum(cost_sum)"), _ji("sum(tokens)"), _ji("sum(prompt_sum)"),
    _ji("sum(completion_sum)"), _ji(_n("event_type = 'agent.human_intervention'")),
    _ji(_n(ESC)), _jf("min(first_ts)"), _jf("max(last_ts)"))

# -- errors (``_pg_errors``) --
# The counts by type, tool and agent from the hourly cells of the period and its edge errors
_ERROR_CELLS = (
    f"{SPLIT}, c AS (SELECT r.agent_name, r.action, r.error_type, r.errors, r.last_ts FROM ru "
    "JOIN error_cells r ON r.tenant = :tenant AND r.hour >= ru.a AND r.hour < ru.b "
    f"AND ({_AGENT} IS NULL OR r.agent_name = {_AGENT}) "
    "UNION ALL SELECT e.agent_name, e.action, e.error_type, 1, e.timestamp FROM rr "
    "JOIN error_facts e ON e.tenant = :tenant AND e.timestamp >= rr.lo AND e.timestamp < rr.hi "
    f"AND ({_AGENT} IS NULL OR e.agent_name = {_AGENT})), "
    "x AS (SELECT coalesce(action, '') AS action, coalesce(error_type, 'Unknown') AS error_type, "
    "agent_name AS agent, errors, last_ts FROM c)")
# (type, message) counts: the kept messages', and per type the rest of its errors (without a
# message, or erased) under a NULL message, as the plain template groups them
_MESSAGES = (
    "mm AS (SELECT coalesce(error_type, 'Unknown') AS error_type, message, count(*) AS n "
    "FROM error_messages{w} GROUP BY 1, 2), "
    "types AS (SELECT error_type, sum(errors)::bigint AS n, max(last_ts) AS last_ts FROM x "
    "GROUP BY error_type), "
    "msg AS (SELECT error_type, message, n FROM mm UNION ALL SELECT t.error_type, NULL, "
    "(t.n - coalesce((SELECT sum(mm.n) FROM mm WHERE mm.error_type = t.error_type), 0))::bigint "
    "FROM types t)")
# bursts: the (bucket, type) counts of the buckets with enough errors (the report's threshold,
# ``errors._bursts``: at least :min_errors and more than :burst_factor times the mean)
_BURSTS = (
    "bk AS (SELECT bucket, error_type, n, sum(n) OVER (PARTITION BY bucket) AS total FROM "
    "(SELECT trunc(timestamp / :bucket_s)::bigint AS bucket, "
    "coalesce(error_type, 'Unknown') AS error_type, count(*) AS n FROM error_facts{w} "
    "GROUP BY 1, 2) b)")
# repeated failures: the groups that reach the threshold overall, counted in the period
# (their count unless they straddle an edge or the report is one agent's)
_REPEATED = (
    "rep AS (SELECT g.action, g.trace_id, CASE WHEN CAST(:agent_name AS text) IS NULL "
    "AND g.first_ts >= :since AND g.last_ts < :until THEN g.errors ELSE (SELECT count(*) "
    "FROM error_facts f WHERE f.tenant = g.tenant AND f.trace_id = g.trace_id "
    "AND f.action = g.action AND f.timestamp >= :since AND f.timestamp < :until "
    f"AND ({_AGENT} IS NULL OR f.agent_name = {_AGENT})) END AS n FROM error_groups g "
    "WHERE g.tenant = :tenant AND g.errors >= :min_failures AND g.action <> '' "
    "AND g.last_ts >= :since AND g.first_ts < :until)")
_ERROR_FACTS = (
    f"WITH {_ERROR_CELLS}, {_MESSAGES}, {_BURSTS}, {_REPEATED} "
    "SELECT 'type' AS kind, error_type AS k1, NULL::text AS k2, n, last_ts FROM types "
    "UNION ALL SELECT 'tool_type', action, error_type, sum(errors)::bigint, max(last_ts) "
    "FROM x GROUP BY action, error_type "
    "UNION ALL SELECT 'agent', agent, NULL, sum(errors)::bigint, NULL FROM x GROUP BY agent "
    "UNION ALL SELECT * FROM (SELECT 'message', error_type, message, n, NULL::float8 FROM msg "
    "WHERE n > 0 ORDER BY n DESC, 2, 3 NULLS FIRST LIMIT 10) m "
    "UNION ALL SELECT 'bucket', bucket::text, error_type, n, NULL FROM bk "
    "WHERE total >= greatest(:min_errors, floor(CAST(:burst_factor AS float8) * "
    "(SELECT sum(n) FROM types)::float8 / CAST(:buckets AS float8))::bigint + 1) "
    "UNION ALL SELECT 'repeated', action, trace_id, n, NULL FROM rep "
    "WHERE n >= :min_failures LIMIT :limit")
# Retries within the horizon: the errors with a next call, read in tool order from
# ix_error_facts_retries (no sort); a longer window looks each error's next call up as the plain
# template does. One-time filters on :retry_window_s run one branch only.
_WINDOW = f"CAST(:retry_window_s AS float8) <= {HORIZON_S}::float8"
_FACT_COLUMNS = "e.action, e.event_id AS error_id, e.timestamp AS ts"
_KEPT_WAITS = (
    f"SELECT {_FACT_COLUMNS}, CASE WHEN e.next_call <= e.timestamp + :retry_window_s "
    "THEN e.next_call END - e.timestamp AS wait_s FROM error_facts e{w} "
    f"AND action IS NOT NULL AND trace_id IS NOT NULL AND next_call IS NOT NULL AND {_WINDOW}")
_LOOKED_UP_WAITS = (
    f"SELECT {_FACT_COLUMNS}, {NEXT_CALL} - e.timestamp AS wait_s FROM error_facts e{{w}} "
    f"AND action IS NOT NULL AND trace_id IS NOT NULL AND NOT ({_WINDOW})")
_RETRIES = (
    f"SELECT * FROM (({retries(_KEPT_WAITS, materialized=False)}) "
    f"UNION ALL ({retries(_LOOKED_UP_WAITS, materialized=True)})) u "
    "ORDER BY without_backoff DESC, retries DESC, tool LIMIT :limit")

ROLLED_AGGREGATIONS: dict[str, str] = {
    # -- summary --
    "rpt_profile": (f"WITH {FACTS} SELECT agent_name AS agent, i AS bucket, {_PROFILE} AS m "
                    "FROM f GROUP BY agent_name, i ORDER BY agent_name, i LIMIT :limit"),
    "rpt_traces": f"WITH {FACTS} SELECT {_n('root')} AS traces FROM f LIMIT :limit",
    "rpt_count": (f"WITH {FACTS} SELECT coalesce(sum(events), 0)::bigint AS events FROM f "
                  "LIMIT :limit"),
    # -- tools --
    "rpt_tool_calls": (
        f"WITH {FACTS} SELECT action AS tool, sum(events)::bigint AS calls FROM f "
        "WHERE event_type = 'agent.tool_call' GROUP BY action ORDER BY calls DESC, action "
        "NULLS FIRST LIMIT :limit"),
    "rpt_tool_errors": (
        f"WITH {FACTS} SELECT action AS tool, sum(events)::bigint AS errors FROM f "
        f"WHERE {ERR} AND action IS NOT NULL GROUP BY action ORDER BY action LIMIT :limit"),
    # count, mean and extremes from the cells; each percentile is the value at its nearest rank
    # (PostgreSQL's percentile_disc rank, ceil(p * n) in float8), read from ix_events_latency
    # in duration order: p50 from the bottom, p95 and p99 from the top, so a tool's finished
    # calls are read about 0.56 times instead of sorted
    "rpt_tool_latency": (
        f"WITH {FACTS}, s AS (SELECT action, sum(dur_n)::bigint AS timed, sum(dur_sum) AS total, "
        "min(dur_min) AS min_ms, max(dur_max) AS max_ms FROM f "
        f"WHERE {_TIMED} AND action IS NOT NULL GROUP BY action HAVING sum(dur_n) > 0) "
        "SELECT action AS tool, timed, total / timed AS avg_ms, min_ms, max_ms, "
        f"{_at_rank('0.5', 'ASC')} AS p50_ms, {_at_rank('0.95', 'DESC')} AS p95_ms, "
        f"{_at_rank('0.99', 'DESC')} AS p99_ms FROM s ORDER BY tool LIMIT :limit"),
    # -- errors --
    "rpt_error_facts": _ERROR_FACTS,
    "rpt_retries": _RETRIES,
    # -- cost --
    "rpt_cost_agents": (
        f"WITH {FACTS}, g AS (SELECT agent_name, i, model, sum(pt_sum)::bigint AS pt, "
        "sum(ct_sum)::bigint AS ct, sum(metered)::bigint AS calls, "
        "sum(recorded_usd)::bigint AS rec, sum(recorded_pico)::bigint AS rec_pico FROM f "
        "WHERE metered > 0 GROUP BY agent_name, i, model) "
        f"SELECT agent_name AS agent, i AS bucket, '[' || string_agg({_MODEL_ROW}, ',' "
        "ORDER BY model NULLS FIRST) || ']' AS m FROM g GROUP BY agent_name, i "
        "ORDER BY agent_name, i LIMIT :limit"),
    # without an agent, answered from the cost facts by ``_pg_cost_rank.rank`` (which reads
    # the split of the period this registration makes ``_pg_sql.aggregation`` add); one
    # agent's ranking reads the events
    "rpt_cost_top": _COST["rpt_cost_top"],
    # -- compliance --
    # the latest approval before each listed call: one probe of ``interventions`` (by trace
    # and time) instead of one per day partition (``_pg_compliance_facts``); the calls' amounts
    # and the approvers' names from the approval facts (``_pg_approval_facts``)
    "cmp_tool_approval": tool_approval(
        "interventions h WHERE h.trace_id = c.trace_id AND h.tenant = c.tenant", kept=True),
    # the listed calls (ix_events_calls) and the tagged ones (call_tags) with their payloads;
    # the plain template's condition then picks from them the calls it picks from all
    "cmp_data_access": data_access(
        f"SELECT e.event_id, e.timestamp, e.seq, e.action, (SELECT p.payload "
        f"FROM event_payloads p WHERE {_SAME_ROW}) AS payload FROM (SELECT tenant, day, seq "
        f"FROM events e{{w}} AND event_type = 'agent.tool_call' AND {_in_json('action', 'tools')} "
        "UNION SELECT tenant, day, seq FROM call_tags{w} AND tag = CAST(:tag AS text)) k "
        "JOIN events e ON e.tenant = k.tenant AND e.day = k.day AND e.seq = k.seq"),
    "cmp_totals": (
        f"WITH {FACTS} SELECT coalesce(sum(events), 0)::bigint AS events, {_n(ERR)} AS errors, "
        f"{_n('root')} AS traces, {_n(ESC)} AS escalations FROM f LIMIT :limit"),
    # :bounds is [[since, cutoff]] (see reports.compliance)
    "cmp_checked_work": (
        f"WITH {FACTS} SELECT {_n(INV)} AS invocations, {_n(HANDOFF)} AS handoffs FROM f "
        "LIMIT :limit"),
    "cmp_token_days": (
        f"WITH {FACTS} SELECT agent_name AS agent, i AS bucket, sum(tokens)::bigint AS tokens "
        "FROM f GROUP BY agent_name, i ORDER BY agent_name, i LIMIT :limit"),
    "cmp_open_work": (
        "WITH r AS (SELECT kind, event_id, timestamp, seq, row_number() OVER (PARTITION BY kind "
        "ORDER BY timestamp, seq) AS rn FROM open_work WHERE tenant = :tenant "
        "AND timestamp >= :since AND timestamp < :until AND timestamp < :cutoff "
        "AND (CAST(:agent_name AS text) IS NULL OR agent_name = CAST(:agent_name AS text))) "
        f"SELECT kind, count(*) AS count, {_evidence('event_id')} FROM r GROUP BY kind "
        "ORDER BY kind LIMIT :limit"),
}

register_rolled(ROLLED_AGGREGATIONS)
