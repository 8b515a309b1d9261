"""PostgreSQL text of the reports' named aggregations, registered at import.

Each template computes what its namesake in ``_sqlite_reports`` computes (see that module for the
meaning of every template and parameter), with the same column names and Python types, so that
a report is equal on both backends. Differences of dialect: ``FILTER``/``sum((c)::int)`` for
SQLite's ``sum(c)``, ``jsonb`` functions for ``json_each``/``json_extract``, ``string_agg`` for
``group_concat``; JSON arrays returned as text are printed as SQLite prints them (a float keeps
its ``.0``), and ties are broken by the group key, which is the order SQLite groups in.
"""

from __future__ import annotations

from agentaudit.store._pg_errors import next_call
from agentaudit.store._pg_rollup import metered, priced_tokens, recorded, tokens
from agentaudit.store._pg_sql import SAME_ROW, payload_json, payload_of, register_aggregations

__all__ = ["REPORT_AGGREGATIONS"]

_AGENT_PARAM = 'CAST(:agent_name AS text) COLLATE "C"'
_BOUNDS = ("b(i, lo, hi) AS (SELECT (x.ord - 1)::bigint, (x.v ->> 0)::float8, "
           "(x.v ->> 1)::float8 FROM jsonb_array_elements(CAST(:bounds AS jsonb)) "
           "WITH ORDINALITY AS x(v, ord))")
# the payload row of the envelope row ``e`` (looked up per row: the envelopes drive the order)
_SAME_ROW = SAME_ROW
_TOKENS = tokens()
_AGENTS = (
    f"ag(name) AS (SELECT coalesce({_AGENT_PARAM}, (SELECT min(agent_name) FROM events "
    "WHERE tenant = :tenant)) UNION ALL SELECT (SELECT min(agent_name) FROM events "
    "WHERE tenant = :tenant AND agent_name > ag.name) FROM ag "
    f"WHERE ag.name IS NOT NULL AND {_AGENT_PARAM} IS NULL)")


# Per (agent, bucket) figures come from ONE scan of the buckets' rows grouped by agent and
# bucket (found with width_bucket over the sorted, contiguous bucket starts), joined back to
# every (agent, bucket) pair so that empty pairs are present as in SQLite. (SQLite instead runs
# one index range per pair; in PostgreSQL that means one probe per day partition per pair.)
_BK = ("bk AS (SELECT array_agg(lo ORDER BY i) || max(hi) AS t, min(lo) AS lo, max(hi) AS hi "
       "FROM b)")
# The scan reads the period ({w}: constant bounds, so the planner prunes day partitions and
# estimates rows); the report's buckets are the period cut into days or hours, so every row of
# a bucket is in it, and rows outside every bucket find no pair in the join.
_SCAN = f"({_AGENT_PARAM} IS NULL OR e.agent_name = {_AGENT_PARAM})"
_BUCKET_OF = "width_bucket(e.timestamp, (SELECT t FROM bk)) - 1"


def _per_agent_bucket(grouped: str, value: str, empty: str) -> str:
    """Every (agent, bucket) pair with ``value`` from ``grouped`` (a query of (agent, i, ...)
    rows), or ``empty`` for a pair without rows."""
    return (f"WITH RECURSIVE {_AGENTS}, {_BOUNDS}, {_BK}, g AS ({grouped}) "
            f"SELECT ag.name AS agent, b.i AS bucket, coalesce({value}, {empty}) AS m "
            "FROM ag CROSS JOIN b LEFT JOIN g ON g.agent = ag.name AND g.i = b.i "
            "WHERE ag.name IS NOT NULL ORDER BY ag.name, b.i LIMIT :limit")


def _jf(expr: str) -> str:
    """A float as SQLite's JSON functions print it: 15 significant digits (which is what
    float8 -> numeric keeps), an integral value with ``.0``."""
    return (f"(CASE WHEN ({expr}) IS NULL THEN 'null' WHEN ({expr}) = trunc({expr}) "
            f"AND abs({expr}) < 1e15 THEN trunc({expr})::bigint::text || '.0' "
            f"ELSE ({expr})::numeric::text END)")


def _ji(expr: str) -> str:
    """An integer (or NULL) as JSON text."""
    return f"coalesce(({expr})::text, 'null')"


def _jarray(*items: str) -> str:
    return "'[' || " + " || ',' || ".join(items) + " || ']'"


def _cnt(cond: str) -> str:
    return f"count(*) FILTER (WHERE {cond})"


_NOT_FINISH = "action IS DISTINCT FROM 'finish'"

# -- summary -------------------------------------------------------------------------------------

_PROFILE = _jarray(
    _ji("count(*)"), _ji(_cnt("event_type = 'agent.invocation'")),
    _ji(_cnt("event_type = 'agent.error'")), _ji(_cnt("event_type = 'agent.tool_call'")),
    _ji(_cnt(f"event_type = 'agent.decision' AND {_NOT_FINISH}")),
    _ji(_cnt("event_type = 'agent.handoff'")),
    _ji(_cnt("event_type = 'agent.decision' AND action = 'finish'")),
    _jf("sum(duration_ms) FILTER (WHERE event_type = 'agent.decision' AND action = 'finish')"),
    _jf("sum(cost_usd)"), _ji(f"sum({_TOKENS})"), _ji("sum(prompt_tokens)"),
    _ji("sum(completion_tokens)"), _ji(_cnt("event_type = 'agent.human_intervention'")),
    _ji(_cnt("event_type = 'agent.human_intervention' AND action = 'escalation'")),
    _jf("min(timestamp)"), _jf("max(timestamp)"))

_SUMMARY = {
    "rpt_profile": _per_agent_bucket(
        f"SELECT e.agent_name AS agent, {_BUCKET_OF} AS i, {_PROFILE} AS m FROM events e{{w}} "
        f"AND {_SCAN} GROUP BY 1, 2", "g.m",
        "'[0,0,0,0,0,0,0,null,null,null,null,null,0,0,null,null]'"),
    "rpt_traces": (
        "SELECT count(*) AS traces FROM events{w} AND event_type = 'agent.invocation' "
        "AND parent_event_id IS NULL LIMIT :limit"),
    "rpt_count": "SELECT count(*) AS events FROM events{w} LIMIT :limit",
}

# -- tools ---------------------------------------------------------------------------------------

_TOOLS = {
    # percentile_disc is the nearest rank: the first value whose cumulative share reaches p
    "rpt_tool_latency": (
        "SELECT tool, timed, avg_ms, min_ms, max_ms, pc[1] AS p50_ms, pc[2] AS p95_ms, "
        "pc[3] AS p99_ms FROM (SELECT action AS tool, count(*) AS timed, "
        "avg(duration_ms) AS avg_ms, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms, "
        "percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS pc "
        "FROM events{w} AND event_type IN ('agent.tool_result', 'agent.error') "
        "AND action IS NOT NULL AND duration_ms IS NOT NULL GROUP BY action) t "
        "ORDER BY tool LIMIT :limit"),
    "rpt_tool_calls": (
        "SELECT action AS tool, count(*) AS calls FROM events{w} "
        "AND event_type = 'agent.tool_call' GROUP BY action ORDER BY calls DESC, action "
        "NULLS FIRST LIMIT :limit"),
    "rpt_tool_errors": (
        "SELECT action AS tool, count(*) AS errors FROM events{w} "
        "AND event_type = 'agent.error' AND action IS NOT NULL GROUP BY action ORDER BY action "
        "LIMIT :limit"),
}

# -- errors --------------------------------------------------------------------------------------

_ERROR_COLUMNS = ("coalesce(action, '') AS action, coalesce(error_type, 'Unknown') AS error_type, "
                 "agent_name AS agent, timestamp AS ts, trace_id, "
                 "trunc(timestamp / :bucket_s)::bigint AS bucket")
# the next call of error ``e``'s tool in its trace after it, within the retry window (and its
# days: a later one would be filtered out anyway)
NEXT_CALL = next_call("e", ":retry_window_s")


def retries(waits: str, materialized: bool) -> str:
    """``rpt_retries`` over ``waits``: the period's errors of a tool in a trace as (action,
    error_id, ts, wait_s), wait_s the time to the next call of the tool within the window
    (``materialized`` when computing it costs a look-up). Per tool in one pass: the evidence
    is the earliest errors retried without backoff."""
    how = "MATERIALIZED " if materialized else ""
    return (
        f"WITH r AS {how}({waits}) "
        "SELECT action AS tool, count(*) AS retries, "
        "sum((wait_s < :min_backoff_s)::int) AS without_backoff, avg(wait_s) AS avg_wait_s, "
        "min(wait_s) AS min_wait_s, nullif(array_to_string((array_agg(error_id ORDER BY ts) "
        "FILTER (WHERE wait_s < :min_backoff_s))[1:CAST(:ev AS int)], ','), '') AS evidence "
        "FROM r WHERE wait_s <= :retry_window_s GROUP BY action "
        "ORDER BY without_backoff DESC, retries DESC, tool LIMIT :limit")


_ERRORS = {
    "rpt_error_facts": (
        f"WITH e AS MATERIALIZED (SELECT {_ERROR_COLUMNS}, (SELECT {payload_json('error', 'p')} "
        f"FROM event_payloads p WHERE {_SAME_ROW}) AS message FROM events e{{w}} "
        "AND event_type = 'agent.error') "
        "SELECT 'type' AS kind, error_type AS k1, NULL::text AS k2, count(*) AS n, "
        "max(ts) AS last_ts FROM e GROUP BY error_type "
        "UNION ALL SELECT 'tool_type', action, error_type, count(*), max(ts) FROM e "
        "GROUP BY action, error_type "
        "UNION ALL SELECT 'agent', agent, NULL, count(*), NULL FROM e GROUP BY agent "
        "UNION ALL SELECT * FROM (SELECT 'message', error_type, message, count(*) AS n, "
        "NULL::float8 FROM e GROUP BY error_type, message "
        "ORDER BY n DESC, 2, 3 NULLS FIRST LIMIT 10) m "
        "UNION ALL SELECT 'bucket', bucket::text, error_type, count(*), NULL FROM e "
        "WHERE bucket IN (SELECT bucket FROM e GROUP BY bucket HAVING count(*) >= :min_errors) "
        "GROUP BY bucket, error_type "
        "UNION ALL SELECT 'repeated', action, trace_id, count(*), NULL FROM e "
        "WHERE action <> '' AND trace_id IS NOT NULL GROUP BY action, trace_id "
        "HAVING count(*) >= :min_failures LIMIT :limit"),
    "rpt_retries": retries(
        f"SELECT e.action, e.event_id AS error_id, e.timestamp AS ts, {NEXT_CALL} - e.timestamp "
        "AS wait_s FROM events e{w} AND event_type = 'agent.error' AND action IS NOT NULL "
        "AND trace_id IS NOT NULL", materialized=True),
}

# -- cost ----------------------------------------------------------------------------------------

# As on SQLite (_sqlite_reports): costs are exact integers of pico-dollars; :prices holds integer
# pico-dollars per token.
_PRICES = ('prices(model, inp, outp) AS (SELECT key COLLATE "C", (value ->> 0)::bigint, '
           "(value ->> 1)::bigint FROM jsonb_each(CAST(:prices AS jsonb)))")
(_PT, _CT), _METERED = priced_tokens("e."), metered("e.")
# recorded dollars as whole dollars + the pico-dollars beyond them
_DOLLARS, _PICO_REST = recorded("e.")
_PRICED = f"(({_PT})::bigint * p.inp + ({_CT})::bigint * p.outp)"
_EVENT_NANO = (f"(CASE WHEN p.model IS NOT NULL THEN {_PRICED} / 1000 ELSE "
               f"coalesce({_DOLLARS} * 1000000000 + {_PICO_REST} / 1000, 0) END)")
_EVENT_PICO = (f"(CASE WHEN p.model IS NOT NULL THEN {_PRICED} % 1000 ELSE "
               f"coalesce({_PICO_REST} % 1000, 0) END)")
_MODEL_ROW = _jarray("coalesce(to_json(model)::text, 'null')", _ji("pt"), _ji("ct"),
                     _ji("calls"), _ji("rec"), _ji("rec_pico"))


def _cost_ranking(dim: str, key: str) -> str:
    """As SQLite's ``cost_ranking`` over ``c`` (the metered events with their prices)."""
    extra = ("max(task_id) AS task_id, max(user_id) AS user_id, min(ts) AS first_ts"
             if dim == "trace" else
             "NULL::text AS task_id, NULL::text AS user_id, NULL::float8 AS first_ts")
    return (f"SELECT * FROM (SELECT '{dim}' AS dim, key, (nano + rest / 1000) AS cost_nano, "
            "(rest % 1000) AS cost_pico, prompt_tokens, completion_tokens, calls, task_id, "
            f"user_id, first_ts FROM (SELECT {key} AS key, sum(nano)::bigint AS nano, "
            "sum(pico)::bigint AS rest, sum(pt)::bigint AS prompt_tokens, "
            f"sum(ct)::bigint AS completion_tokens, count(*) AS calls, {extra} FROM c "
            f"GROUP BY {key}) s ORDER BY cost_nano DESC, cost_pico DESC, key NULLS FIRST "
            f"LIMIT :limit) d_{dim}")


_COST = {
    "rpt_cost_agents": _per_agent_bucket(
        "SELECT agent, i, '[' || string_agg("
        f"{_MODEL_ROW}, ',' ORDER BY model NULLS FIRST) || ']' AS m FROM (SELECT "
        f"e.agent_name AS agent, {_BUCKET_OF} AS i, e.model AS model, "
        f"sum({_PT})::bigint AS pt, sum({_CT})::bigint AS ct, count(*) AS calls, "
        f"sum({_DOLLARS})::bigint AS rec, sum({_PICO_REST})::bigint AS rec_pico "
        "FROM (SELECT * FROM events{w}) e "
        f"WHERE {_SCAN} AND {_METERED} GROUP BY 1, 2, 3) mm GROUP BY agent, i", "g.m", "'[]'"),
    # user_id is read per metered row from the payload key's index (INCLUDE user_id)
    "rpt_cost_top": (
        f"WITH {_PRICES}, "
        "c AS MATERIALIZED (SELECT e.task_id, (SELECT u.user_id FROM event_payloads u "
        "WHERE u.tenant = e.tenant AND u.day = e.day AND u.seq = e.seq) AS user_id, "
        f"e.trace_id, e.timestamp AS ts, ({_PT})::bigint AS pt, ({_CT})::bigint AS ct, "
        f"{_EVENT_NANO} AS nano, {_EVENT_PICO} AS pico FROM (SELECT * FROM events{{w}}) e "
        f"LEFT JOIN prices p ON p.model = e.model WHERE {_METERED}) "
        + " UNION ALL ".join(_cost_ranking(d, k) for d, k in (
            ("task", "task_id"), ("user", "user_id"), ("trace", "trace_id")))),
}

# -- one agent -----------------------------------------------------------------------------------

_AGENT = {
    "rpt_decisions": (
        "SELECT action AS decision, count(*) AS count, avg(confidence) AS avg_confidence, "
        "min(confidence) AS min_confidence, max(confidence) AS max_confidence FROM events{w} "
        f"AND event_type = 'agent.decision' AND {_NOT_FINISH} GROUP BY action "
        "ORDER BY count DESC, decision NULLS FIRST LIMIT :limit"),
    "rpt_confidence_bands": (
        "SELECT CASE WHEN confidence IS NULL THEN 'none' WHEN confidence < 0.5 THEN '<0.5' "
        "WHEN confidence < 0.7 THEN '0.5-0.7' WHEN confidence < 0.9 THEN '0.7-0.9' "
        "ELSE '>=0.9' END COLLATE \"C\" AS band, count(*) AS count FROM events{w} "
        f"AND event_type = 'agent.decision' AND {_NOT_FINISH} GROUP BY 1 "
        "ORDER BY 1 LIMIT :limit"),
    "rpt_handoffs_in": (
        "SELECT agent_name AS agent, count(*) AS count FROM events e{w} "
        f"AND event_type = 'agent.handoff' AND {payload_of('params.to_agent')} = "
        "CAST(:target AS text) GROUP BY agent_name ORDER BY count DESC, agent LIMIT :limit"),
}

# -- compliance ----------------------------------------------------------------------------------


def _evidence(column: str, condition: str = "true") -> str:
    return (f"string_agg(CASE WHEN {condition} AND rn <= :ev THEN {column} END, ',' "
            "ORDER BY timestamp, seq) AS evidence")


def _in_json(column: str, param: str) -> str:
    """``column`` is one of the JSON list ``:param`` (an array computed once, so that the
    filter applies while scanning, before any per-row look-up)."""
    return (f"{column} = ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(:{param} AS jsonb))))")


_NUM = "'^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$'"
_J = "convert_from(c.payload, 'UTF8')::jsonb"


def _amount(text: str) -> str:
    """The number the approval check compares with :min_amount, of the param's ``text``."""
    return f"CASE WHEN {text} IS NULL THEN NULL WHEN {text} ~ {_NUM} THEN {text}::float8 ELSE 0 END"


_LISTED_CALLS = ("(SELECT * FROM events{w} AND event_type = 'agent.tool_call' "
                 f"AND {_in_json('action', 'tools')}) e")
# each call's amount from its payload, probed in parallel (see PLANNER_SETTINGS)
_PAYLOAD_AMOUNTS = (
    "c0 AS MATERIALIZED (SELECT e.event_id, e.trace_id, e.tenant, e.timestamp, e.seq, "
    "convert_from(p.payload, 'UTF8')::jsonb -> 'params' ->> CAST(:amount_param AS text) "
    f"AS amt FROM {_LISTED_CALLS} LEFT JOIN event_payloads p ON {_SAME_ROW}), "
    "c AS (SELECT * FROM c0 WHERE CAST(:amount_param AS text) = '' OR coalesce("
    f"{_amount('amt')} >= :min_amount, true))")
# each call's amount from the numbers of its params (``_pg_approval_facts``), or from its
# payload as above when it has none there
_KEPT_AMOUNTS = (
    "c0 AS MATERIALIZED (SELECT e.event_id, e.trace_id, e.tenant, e.timestamp, e.seq, "
    "CASE WHEN CAST(:amount_param AS text) = '' THEN NULL WHEN n.value IS NOT NULL "
    f"THEN n.value ELSE (SELECT {_amount('x.t')} FROM (SELECT convert_from(p.payload, 'UTF8')"
    "::jsonb -> 'params' ->> CAST(:amount_param AS text) FROM event_payloads p "
    f"WHERE {_SAME_ROW}) AS x(t)) END AS amt FROM {_LISTED_CALLS} LEFT JOIN call_numbers n "
    "ON n.tenant = e.tenant AND n.day = e.day AND n.seq = e.seq "
    "AND n.param = CAST(:amount_param AS text)), "
    "c AS (SELECT * FROM c0 WHERE CAST(:amount_param AS text) = '' "
    "OR coalesce(amt >= :min_amount, true))")
# the approver named by intervention ``h``, from its payload
_PAYLOAD_APPROVER = (f"(SELECT {payload_json('params.by', 'p')} FROM event_payloads p "
                     "WHERE p.tenant = h.tenant AND p.day = h.day AND p.seq = h.seq)")
# from ``approvers`` (``_pg_approval_facts``), or from its payload when it is not there
_KEPT_APPROVER = ("coalesce((SELECT b.approver FROM approvers b WHERE b.tenant = h.tenant "
                  f"AND b.day = h.day AND b.seq = h.seq), {_PAYLOAD_APPROVER})")


def tool_approval(interventions: str, kept: bool = False) -> str:
    """``cmp_tool_approval`` with the approvals looked up in ``interventions`` (a table ``h``
    and the condition that its rows are the human interventions of call ``c``'s trace); with
    ``kept``, the calls' amounts and the approvers' names read from the approval facts."""
    amounts, approver = ((_KEPT_AMOUNTS, _KEPT_APPROVER) if kept
                         else (_PAYLOAD_AMOUNTS, _PAYLOAD_APPROVER))
    return (
        f"WITH {amounts}, "
        f"a AS MATERIALIZED (SELECT c.event_id, c.timestamp, c.seq, (SELECT {approver} "
        f"FROM {interventions} AND {_in_json('h.action', 'kinds')} "
        "AND (h.timestamp < c.timestamp OR (h.timestamp = c.timestamp AND h.seq < c.seq)) "
        "ORDER BY h.timestamp DESC, h.seq DESC LIMIT 1) AS approver FROM c), "
        "r AS (SELECT *, row_number() OVER (PARTITION BY approver IS NULL "
        "ORDER BY timestamp, seq) AS rn FROM a) "
        f"SELECT approver, count(*) AS calls, {_evidence('event_id', 'approver IS NULL')} "
        "FROM r GROUP BY approver ORDER BY calls DESC, approver NULLS FIRST LIMIT :limit")


def data_access(calls: str) -> str:
    """``cmp_data_access`` over ``calls``: tool calls of the period (at least the listed and the
    tagged ones) as (event_id, timestamp, seq, action, payload)."""
    return (
        f"WITH t AS ({calls}), "
        f"c AS (SELECT event_id, timestamp, seq, payload FROM t WHERE ({_in_json('action', 'tools')} "
        "OR (position(convert_to(CAST(:tag_needle AS text), 'UTF8') IN payload) > 0 "
        "AND lower(convert_from(payload, 'UTF8')::jsonb -> 'tags' ->> CAST(:tag AS text)) "
        "IN ('true', '1', 'yes')))), "
        "m AS (SELECT event_id, timestamp, seq, (SELECT string_agg(r.value, ',' ORDER BY r.ord) "
        "FROM jsonb_array_elements_text(CAST(:required AS jsonb)) WITH ORDINALITY "
        f"AS r(value, ord) WHERE coalesce({_J} -> 'params' ->> r.value, "
        f"{_J} -> 'tags' ->> r.value, '') = '') AS missing FROM c), "
        "r AS (SELECT *, row_number() OVER (PARTITION BY missing IS NULL "
        "ORDER BY timestamp, seq) AS rn FROM m) "
        f"SELECT missing, count(*) AS calls, {_evidence('event_id', 'missing IS NOT NULL')} "
        "FROM r GROUP BY missing ORDER BY calls DESC, missing NULLS FIRST LIMIT :limit")



_COMPLIANCE = {
    "cmp_totals": (
        "SELECT (SELECT count(*) FROM events{w}) AS events, "
        "(SELECT count(*) FROM events{w} AND event_type = 'agent.error') AS errors, "
        "(SELECT count(*) FROM events{w} AND event_type = 'agent.invocation' "
        "AND parent_event_id IS NULL) AS traces, "
        "(SELECT count(*) FROM events{w} AND event_type = 'agent.human_intervention' "
        "AND action = 'escalation') AS escalations LIMIT :limit"),
    "cmp_escalation_ids": (
        "SELECT event_id FROM events{w} AND event_type = 'agent.human_intervention' "
        "AND action = 'escalation' ORDER BY timestamp, seq LIMIT :limit"),
    "cmp_error_ids": (
        "SELECT event_id FROM events{w} AND event_type = 'agent.error' "
        "ORDER BY timestamp DESC, seq DESC LIMIT :limit"),
    "cmp_tool_approval": tool_approval(
        "events h WHERE h.trace_id = c.trace_id AND h.tenant = c.tenant "
        "AND h.event_type = 'agent.human_intervention'"),
    "cmp_data_access": data_access(
        f"SELECT event_id, timestamp, seq, action, (SELECT p.payload FROM event_payloads p "
        f"WHERE {_SAME_ROW}) AS payload FROM events e{{w}} AND event_type = 'agent.tool_call'"),
    "cmp_token_days": _per_agent_bucket(
        f"SELECT e.agent_name AS agent, {_BUCKET_OF} AS i, sum({_TOKENS})::bigint AS tokens "
        f"FROM events e{{w}} AND {_SCAN} GROUP BY 1, 2", "g.tokens", "NULL").replace(
            " AS m FROM ag", " AS tokens FROM ag"),
    "cmp_token_traces": (
        f"SELECT trace_id, sum({_TOKENS})::bigint AS tokens FROM events{{w}} "
        "AND agent_name = CAST(:target AS text) AND timestamp >= :lo AND timestamp < :hi "
        "AND trace_id IS NOT NULL AND (token_count IS NOT NULL OR prompt_tokens IS NOT NULL "
        "OR completion_tokens IS NOT NULL) GROUP BY trace_id ORDER BY tokens DESC, trace_id "
        "LIMIT :limit"),
    "cmp_open_work": (
        "WITH i AS (SELECT event_id, trace_id, tenant, action, timestamp, seq FROM events{w} "
        "AND event_type = 'agent.invocation' AND timestamp < :cutoff), "
        "h AS (SELECT event_id, trace_id, tenant, timestamp, seq FROM events{w} "
        "AND event_type = 'agent.handoff' AND timestamp < :cutoff), "
        "o AS (SELECT 'unfinished_invocation' AS kind, event_id, timestamp, seq FROM i "
        "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.trace_id = i.trace_id "
        "AND e.tenant = i.tenant AND e.parent_event_id = i.event_id "
        "AND ((e.event_type = 'agent.decision' AND e.action = 'finish') "
        "OR (e.event_type = 'agent.error' AND e.action IS NOT DISTINCT FROM i.action))) "
        "UNION ALL SELECT 'orphaned_handoff', event_id, timestamp, seq FROM h "
        "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.trace_id = h.trace_id "
        "AND e.tenant = h.tenant AND e.parent_event_id = h.event_id "
        "AND e.event_type = 'agent.invocation')), "
        "r AS (SELECT *, row_number() OVER (PARTITION BY kind ORDER BY timestamp, seq) AS rn "
        "FROM o) "
        f"SELECT kind, count(*) AS count, {_evidence('event_id')} FROM r GROUP BY kind "
        "ORDER BY kind LIMIT :limit"),
    "cmp_checked_work": (
        "SELECT (SELECT count(*) FROM events{w} AND event_type = 'agent.invocation' "
        "AND timestamp < :cutoff) AS invocations, (SELECT count(*) FROM events{w} "
        "AND event_type = 'agent.handoff' AND timestamp < :cutoff) AS handoffs LIMIT :limit"),
    # The payload text without its "user_id" member (the payload is compact JSON).
    # The sample is picked from the (tenant, timestamp, seq) INCLUDE (id, day) index alone
    # (an index-only scan that stops at LIMIT); only the picked rows are read from the tables.
    # the next :limit sampled rows with their payloads (one look-up each); ``{sample}`` adds
    # ``id % SAMPLE_STEP = 0`` when the stride is a multiple of it (``_pg_sql.aggregation``):
    # the literal predicate lets the planner walk ix_events_sample, a SAMPLE_STEP-th of the rows
    "cmp_payloads": (
        "SELECT e.event_id, e.timestamp, e.seq, regexp_replace(convert_from(p.payload, 'UTF8'), "
        "'\"user_id\":\"([^\"\\\\]|\\\\.)*\",?', '') AS text FROM events e CROSS JOIN LATERAL "
        f"(SELECT p.payload FROM event_payloads p WHERE {_SAME_ROW} AND p.payload IS NOT NULL) "
        "p{w}{sample} AND (timestamp, seq) > (CAST(:after_ts AS float8), "
        "CAST(:after_seq AS bigint)) AND id % :stride = 0 ORDER BY timestamp, seq LIMIT :limit"),
}

# -- the compliance report's "security findings" (the SQLite text is in _sqlite_alerts) -----------

_FINDINGS_WHERE = ("AND event_type IN ('agent.security', 'agent.compliance') "
                   "AND source = 'agentaudit.detect'")
_SEVERITY = (f"coalesce((SELECT {payload_json('params.severity', 'p')} FROM event_payloads p "
             f"WHERE {_SAME_ROW}), 'unknown')")
_FINDINGS = {
    "sec_findings_by_rule": (
        f"WITH f AS MATERIALIZED (SELECT action, event_type, timestamp, {_SEVERITY} AS severity "
        f"FROM events e{{w}} {_FINDINGS_WHERE}) "
        "SELECT action AS rule, event_type AS kind, severity, count(*) AS count, "
        "max(timestamp) AS last_ts FROM f GROUP BY 1, 2, 3 "
        "ORDER BY count DESC, rule, kind, severity LIMIT :limit"),
    "sec_findings_latest": (
        "SELECT event_id, action AS rule, agent_name AS agent, timestamp, "
        f"parent_event_id AS evidence, {_SEVERITY} AS severity, "
        f"(SELECT {payload_json('params.title', 'p')} FROM event_payloads p WHERE {_SAME_ROW}) "
        f"AS title FROM events e{{w}} {_FINDINGS_WHERE} "
        "ORDER BY timestamp DESC, seq DESC LIMIT :limit"),
}

REPORT_AGGREGATIONS: dict[str, str] = {**_SUMMARY, **_TOOLS, **_ERRORS, **_COST, **_AGENT,
                                        **_COMPLIANCE, **_FINDINGS}

_ORDERED_SCAN = {"enable_sort": "off", "enable_hashjoin": "off", "enable_mergejoin": "off",
                 "max_parallel_workers_per_gather": "0"}

# Report queries sort and hash a period's rows: give them memory for that transaction only.
_REPORT_MEMORY = {"work_mem": "64MB"}
register_aggregations(REPORT_AGGREGATIONS, {
    **{name: _REPORT_MEMORY for name in REPORT_AGGREGATIONS},
    # planned once for its batches (run-time pruning bounds the days)
    "cmp_payloads": {**_REPORT_MEMORY, **_ORDERED_SCAN, "plan_cache_mode": "force_generic_plan"},
    # each listed call's payload by a probe of its day (day partition to day partition while
    # every payload day is there; a hash join would read every payload once retention has
    # dropped a day and the partitions no longer pair)
    "cmp_tool_approval": {**_REPORT_MEMORY, "enable_partitionwise_join": "on",
                          "enable_hashjoin": "off", "enable_mergejoin": "off"},
    # the rolled retries read ix_error_facts_retries in tool order (no sort); the planner
    # underrates it against a parallel scan and sort (0.2 against 0.5 s at 10M events)
    "rpt_retries": {**_REPORT_MEMORY, "enable_seqscan": "off"}})
