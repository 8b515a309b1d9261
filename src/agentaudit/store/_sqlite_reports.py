"""SQLite text of the reports' named aggregations (``Store.aggregate``), registered at import.

Every template is computed in SQL over the period's rows: ``{w}`` is the period's WHERE clause
(``tenant``, time and optional agent filters, with unqualified column names). Beside the standard
parameters (``:tenant :since :until :agent_name :limit``) templates read these extras:

* ``:bounds`` — a JSON list of ``[start, end)`` epoch pairs (days or hours in the report's zone);
* ``:prices`` — a JSON object ``{model: [usd per 1M input tokens, usd per 1M output tokens]}``;
* ``:ev`` — how many evidence ids a compliance template lists per finding;
* the named parameters each template documents beside it.

Percentiles use the nearest-rank definition: the p-th percentile of n sorted values is the value
at rank ``ceil(p/100 * n)`` (1-based), found as the smallest value whose ``cume_dist()`` reaches
p/100.
"""

from __future__ import annotations

from agentaudit.store._sqlite_rollup import TOKENS, dollars, pico_rest
from agentaudit.store._sqlite_sql import register_aggregations

__all__ = ["PROFILE_FIELDS", "REPORT_AGGREGATIONS"]

_BOUNDS = ("b(i, lo, hi) AS (SELECT CAST(key AS INTEGER), json_extract(value, '$[0]'), "
           "json_extract(value, '$[1]') FROM json_each(:bounds))")
# Rows of one bucket of :bounds. The bucket's own bounds must drive the index range (the period's
# bounds in {w} would make every bucket scan the whole period), so these joins spell out the
# tenant and agent filters instead of using {w}; callers pass :agent_name (NULL for all agents).
_IN_BUCKET = ("e.tenant = :tenant AND e.timestamp >= b.lo AND e.timestamp < b.hi "
              "AND (:agent_name IS NULL OR e.agent_name = :agent_name)")
_TOKENS = TOKENS


# -- summary -------------------------------------------------------------------------------------

# Per agent and per bucket of :bounds, in one pass and without sorting: the agents are found by a
# loose index scan (each the next name after the previous one, via the (tenant, agent_name, ...)
# index), and each (agent, bucket) is one index range whose rows are aggregated with FILTER
# clauses into a JSON array of PROFILE_FIELDS (see agentaudit.reports.summary). :agent_name
# restricts it to one agent (NULL: every agent).
PROFILE_FIELDS = (
    "events", "invocations", "errors", "tool_calls", "decisions", "handoffs", "finishes",
    "finish_ms", "cost_usd", "tokens", "prompt_tokens", "completion_tokens",
    "human_interventions", "escalations", "first_ts", "last_ts")
_PROFILE = (
    "count(*), count(*) FILTER (WHERE event_type = 'agent.invocation'), "
    "count(*) FILTER (WHERE event_type = 'agent.error'), "
    "count(*) FILTER (WHERE event_type = 'agent.tool_call'), "
    "count(*) FILTER (WHERE event_type = 'agent.decision' AND action IS NOT 'finish'), "
    "count(*) FILTER (WHERE event_type = 'agent.handoff'), "
    "count(*) FILTER (WHERE event_type = 'agent.decision' AND action = 'finish'), "
    "sum(duration_ms) FILTER (WHERE event_type = 'agent.decision' AND action = 'finish'), "
    f"sum(cost_usd), sum({_TOKENS}), sum(prompt_tokens), sum(completion_tokens), "
    "count(*) FILTER (WHERE event_type = 'agent.human_intervention'), "
    "count(*) FILTER (WHERE event_type = 'agent.human_intervention' AND action = 'escalation'), "
    "min(timestamp), max(timestamp)")
_AGENTS = (
    "ag(name) AS (SELECT coalesce(:agent_name, (SELECT min(agent_name) FROM events "
    "WHERE tenant = :tenant)) UNION ALL SELECT (SELECT min(agent_name) FROM events "
    "WHERE tenant = :tenant AND agent_name > ag.name) FROM ag "
    "WHERE ag.name IS NOT NULL AND :agent_name IS NULL)")

_SUMMARY = {
    "rpt_profile": (
        f"WITH RECURSIVE {_AGENTS}, {_BOUNDS} "
        f"SELECT ag.name AS agent, b.i AS bucket, (SELECT json_array({_PROFILE}) FROM events "
        "WHERE tenant = :tenant AND agent_name = ag.name AND timestamp >= b.lo "
        "AND timestamp < b.hi) AS m FROM ag, b WHERE ag.name IS NOT NULL LIMIT :limit"),
    # Traces that started in the period: root invocations (no parent).
    "rpt_traces": (
        "SELECT count(*) AS traces FROM events{w} AND event_type = 'agent.invocation' "
        "AND parent_event_id IS NULL LIMIT :limit"),
    "rpt_count": "SELECT count(*) AS events FROM events{w} LIMIT :limit",
}

# -- tools ---------------------------------------------------------------------------------------

# Latency of a tool = duration_ms of its finished calls: agent.tool_result and the agent.error
# that a failed call records (both carry the call's duration). Percentiles are nearest-rank: the
# smallest duration whose cume_dist (share of the tool's calls at or below it) reaches p, which
# is the value at rank ceil(p * n).
_TOOLS = {
    "rpt_tool_latency": (
        "SELECT action AS tool, count(*) AS timed, avg(d) AS avg_ms, min(d) AS min_ms, "
        "max(d) AS max_ms, min(d) FILTER (WHERE cd >= 0.5) AS p50_ms, "
        "min(d) FILTER (WHERE cd >= 0.95) AS p95_ms, min(d) FILTER (WHERE cd >= 0.99) AS p99_ms "
        "FROM (SELECT action, duration_ms AS d, cume_dist() OVER (PARTITION BY action "
        "ORDER BY duration_ms) AS cd FROM events{w} "
        "AND event_type IN ('agent.tool_result', 'agent.error') AND action IS NOT NULL "
        "AND duration_ms IS NOT NULL) GROUP BY action LIMIT :limit"),
    "rpt_tool_calls": (
        "SELECT action AS tool, count(*) AS calls FROM events{w} "
        "AND event_type = 'agent.tool_call' GROUP BY action ORDER BY calls DESC, action LIMIT :limit"),
    "rpt_tool_errors": (
        "SELECT action AS tool, count(*) AS errors FROM events{w} "
        "AND event_type = 'agent.error' AND action IS NOT NULL GROUP BY action LIMIT :limit"),
}

# -- errors --------------------------------------------------------------------------------------

_ERRORS = {
    # Everything the error report reads from the errors, in one pass over them: rows of
    # (kind, k1, k2, n, last_ts) for kind 'type' (error type), 'tool_type' (action, type),
    # 'agent', 'message' (type, message; the 10 most common), 'bucket' (bucket of :bucket_s
    # seconds holding at least :min_errors errors, type) and 'repeated' (action, trace with at
    # least :min_failures errors).
    "rpt_error_facts": (
        "WITH e AS MATERIALIZED (SELECT coalesce(action, '') AS action, "
        "coalesce(error_type, 'Unknown') AS error_type, agent_name AS agent, timestamp AS ts, "
        "trace_id, CAST(timestamp / :bucket_s AS INTEGER) AS bucket, "
        "json_extract(payload, '$.error') AS message FROM events{w} "
        "AND event_type = 'agent.error') "
        "SELECT 'type' AS kind, error_type AS k1, NULL AS k2, count(*) AS n, max(ts) AS last_ts "
        "FROM e GROUP BY error_type "
        "UNION ALL SELECT 'tool_type', action, error_type, count(*), max(ts) FROM e "
        "GROUP BY action, error_type "
        "UNION ALL SELECT 'agent', agent, NULL, count(*), NULL FROM e GROUP BY agent "
        "UNION ALL SELECT * FROM (SELECT 'message', error_type, message, count(*) AS n, NULL "
        "FROM e GROUP BY error_type, message ORDER BY n DESC, 2, 3 LIMIT 10) "
        "UNION ALL SELECT 'bucket', bucket, error_type, count(*), NULL FROM e "
        "WHERE bucket IN (SELECT bucket FROM e GROUP BY bucket HAVING count(*) >= :min_errors) "
        "GROUP BY bucket, error_type "
        "UNION ALL SELECT 'repeated', action, trace_id, count(*), NULL FROM e "
        "WHERE action <> '' AND trace_id IS NOT NULL GROUP BY action, trace_id "
        "HAVING count(*) >= :min_failures LIMIT :limit"),
    # Each failed tool call and the next call of the same tool in its trace within
    # :retry_window_s: a retry, and how long the agent waited after the failure.
    "rpt_retries": (
        "WITH e AS (SELECT event_id, trace_id, tenant, action, timestamp, seq FROM events{w} "
        "AND event_type = 'agent.error' AND action IS NOT NULL AND trace_id IS NOT NULL), "
        "r AS MATERIALIZED (SELECT e.action, e.event_id AS error_id, e.timestamp AS ts, "
        "(SELECT c.timestamp FROM events c WHERE c.trace_id = e.trace_id "
        "AND +c.tenant = e.tenant AND c.event_type = 'agent.tool_call' AND c.action = e.action "
        "AND (c.timestamp > e.timestamp OR (c.timestamp = e.timestamp AND c.seq > e.seq)) "
        "ORDER BY c.timestamp, c.seq LIMIT 1) - e.timestamp AS wait_s FROM e), "
        "q AS (SELECT *, row_number() OVER (PARTITION BY action, wait_s < :min_backoff_s "
        "ORDER BY ts) AS rn FROM r WHERE wait_s <= :retry_window_s) "
        "SELECT action AS tool, count(*) AS retries, "
        "sum(wait_s < :min_backoff_s) AS without_backoff, avg(wait_s) AS avg_wait_s, "
        "min(wait_s) AS min_wait_s, group_concat(CASE WHEN wait_s < :min_backoff_s "
        "AND rn <= :ev THEN error_id END) AS evidence FROM q GROUP BY action "
        "ORDER BY without_backoff DESC, retries DESC, tool LIMIT :limit"),
}

# -- cost ----------------------------------------------------------------------------------------

# Costs are exact integers of pico-dollars, so that every grouping of the same events (rows or
# rollups, SQLite or PostgreSQL, in any order) adds up to the same dollars. :prices holds the
# price table as integer pico-dollars per token, ``{model: [input, output]}`` (reports.cost).
# An event of a listed model costs its tokens x those prices; any other metered event costs the
# cost_usd its agent recorded (whole dollars + the rest in pico-dollars, rounded: two integers
# that no realistic sum overflows), or 0. Only events with tokens or a cost (metered) take part.
COST_DIMS = (("task", "task_id"), ("user", "user_id"), ("trace", "trace_id"))
_PRICES = ("prices(model, inp, outp) AS (SELECT key, json_extract(value, '$[0]'), "
           "json_extract(value, '$[1]') FROM json_each(:prices))")
_PT = ("coalesce(e.prompt_tokens, CASE WHEN e.completion_tokens IS NULL THEN e.token_count END, "
       "0)")
_CT = "coalesce(e.completion_tokens, 0)"
_METERED = ("(e.prompt_tokens IS NOT NULL OR e.completion_tokens IS NOT NULL "
            "OR e.token_count IS NOT NULL OR e.cost_usd IS NOT NULL)")


# One metered event ``e`` joined with its price row ``p``: its cost in whole nano-dollars and
# the pico-dollars left over.
_PRICED = f"({_PT} * p.inp + {_CT} * p.outp)"
EVENT_NANO = (f"CASE WHEN p.model IS NOT NULL THEN {_PRICED} / 1000 ELSE "
              f"coalesce({dollars('e.cost_usd')} * 1000000000 + "
              f"{pico_rest('e.cost_usd')} / 1000, 0) END")
EVENT_PICO = (f"CASE WHEN p.model IS NOT NULL THEN {_PRICED} % 1000 ELSE "
              f"coalesce({pico_rest('e.cost_usd')} % 1000, 0) END")


def cost_ranking(dim: str, key: str, rows: str) -> str:
    """The top :limit values of ``e.{key}`` by cost among ``rows`` (FROM ... WHERE ... of the
    metered events ``e``, joined with their prices ``p``): the cost as whole nano-dollars and the
    pico-dollars left over (sums of integers: no overflow below $9.2 billion per value)."""
    extra = ("max(e.task_id) AS task_id, max(e.user_id) AS user_id, min(e.timestamp) AS first_ts"
             if dim == "trace" else "NULL AS task_id, NULL AS user_id, NULL AS first_ts")
    return (f"SELECT * FROM (SELECT '{dim}' AS dim, key, nano + rest / 1000 AS cost_nano, "
            "rest % 1000 AS cost_pico, prompt_tokens, completion_tokens, calls, task_id, "
            f"user_id, first_ts FROM (SELECT e.{key} AS key, sum({EVENT_NANO}) AS nano, "
            f"sum({EVENT_PICO}) AS rest, sum({_PT}) AS prompt_tokens, "
            f"sum({_CT}) AS completion_tokens, count(*) AS calls, {extra} {rows} "
            f"GROUP BY e.{key}) ORDER BY cost_nano DESC, cost_pico DESC, key LIMIT :limit)")


_COST = {
    # Per agent, per bucket of :bounds and per model, one JSON array per agent and bucket of
    # [model, prompt tokens, completion tokens, metered events, recorded whole dollars, recorded
    # pico-dollars beyond them] (priced in Python, without overflow); the agents by a loose
    # index scan as in rpt_profile, so each (agent, bucket) is one index range.
    "rpt_cost_agents": (
        f"WITH RECURSIVE {_AGENTS}, {_BOUNDS} "
        "SELECT ag.name AS agent, b.i AS bucket, (SELECT json_group_array(json_array(model, "
        "pt, ct, calls, rec, rec_pico)) FROM (SELECT e.model AS model, "
        f"sum({_PT}) AS pt, sum({_CT}) AS ct, count(*) AS calls, "
        f"sum({dollars('e.cost_usd')}) AS rec, sum({pico_rest('e.cost_usd')}) AS rec_pico "
        "FROM events e WHERE e.tenant = :tenant "
        "AND e.agent_name = ag.name AND e.timestamp >= b.lo AND e.timestamp < b.hi "
        f"AND {_METERED} GROUP BY e.model)) AS m FROM ag, b WHERE ag.name IS NOT NULL "
        "LIMIT :limit"),
    # The top :limit tasks, users and traces by cost. The metered rows are found in the
    # (agent, time) index first, then only they are read from the table.
    "rpt_cost_top": (
        f"WITH RECURSIVE {_AGENTS}, {_PRICES}, "
        "r AS MATERIALIZED (SELECT e.rowid AS id FROM ag JOIN events e "
        "ON e.tenant = :tenant AND e.agent_name = ag.name AND e.timestamp >= :since "
        f"AND e.timestamp < :until WHERE ag.name IS NOT NULL AND {_METERED}) "
        + " UNION ALL ".join(cost_ranking(dim, key, "FROM r JOIN events e ON e.rowid = r.id "
                                          "LEFT JOIN prices p ON p.model = e.model")
                             for dim, key in COST_DIMS)),
}

# -- one agent -----------------------------------------------------------------------------------

_AGENT = {
    "rpt_decisions": (
        "SELECT action AS decision, count(*) AS count, avg(confidence) AS avg_confidence, "
        "min(confidence) AS min_confidence, max(confidence) AS max_confidence FROM events{w} "
        "AND event_type = 'agent.decision' AND action IS NOT 'finish' GROUP BY action "
        "ORDER BY count DESC, decision LIMIT :limit"),
    # Decisions by confidence band (finish excluded): below 0.5, 0.5-0.7, 0.7-0.9, 0.9 and up.
    "rpt_confidence_bands": (
        "SELECT CASE WHEN confidence IS NULL THEN 'none' WHEN confidence < 0.5 THEN '<0.5' "
        "WHEN confidence < 0.7 THEN '0.5-0.7' WHEN confidence < 0.9 THEN '0.7-0.9' "
        "ELSE '>=0.9' END AS band, count(*) AS count FROM events{w} "
        "AND event_type = 'agent.decision' AND action IS NOT 'finish' GROUP BY band "
        "LIMIT :limit"),
    # Handoffs received by :target (call with agent=None: the sender is any agent).
    "rpt_handoffs_in": (
        "SELECT agent_name AS agent, count(*) AS count FROM events{w} "
        "AND event_type = 'agent.handoff' "
        "AND json_extract(payload, '$.params.to_agent') = :target GROUP BY agent_name "
        "ORDER BY count DESC, agent LIMIT :limit"),
}

# -- compliance ----------------------------------------------------------------------------------

# Offenders are listed as evidence: ``group_concat`` of the first :ev ids in time order.
def _evidence(column: str, condition: str = "1") -> str:
    return (f"group_concat(CASE WHEN {condition} AND rn <= :ev THEN {column} END) AS evidence")


_COMPLIANCE = {
    # Everything the simple checks need in one pass over the period.
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
    # Calls of the tools in :tools (JSON list) whose params[:amount_param] >= :min_amount (all
    # calls when :amount_param is '', and calls that lack the param), each with the approver (params.by) of the latest human
    # intervention of a kind in :kinds that precedes it in its trace. One row per approver; the
    # row whose approver is NULL holds the unapproved calls.
    "cmp_tool_approval": (
        "WITH c AS (SELECT event_id, trace_id, tenant, timestamp, seq FROM events{w} "
        "AND event_type = 'agent.tool_call' AND action IN (SELECT value FROM json_each(:tools)) "
        "AND (:amount_param = '' OR coalesce(CAST(json_extract(payload, '$.params.' "
        "|| :amount_param) AS REAL) >= :min_amount, 1))), "
        "a AS (SELECT c.event_id, c.timestamp, c.seq, (SELECT json_extract(h.payload, "
        "'$.params.by') FROM events h WHERE h.trace_id = c.trace_id AND +h.tenant = c.tenant "
        "AND h.event_type = 'agent.human_intervention' "
        "AND h.action IN (SELECT value FROM json_each(:kinds)) AND (h.timestamp < c.timestamp "
        "OR (h.timestamp = c.timestamp AND h.seq < c.seq)) "
        "ORDER BY h.timestamp DESC, h.seq DESC LIMIT 1) AS approver FROM c), "
        "r AS (SELECT *, row_number() OVER (PARTITION BY approver IS NULL "
        "ORDER BY timestamp, seq) AS rn FROM a) "
        f"SELECT approver, count(*) AS calls, {_evidence('event_id', 'approver IS NULL')} "
        "FROM r GROUP BY approver ORDER BY calls DESC, approver LIMIT :limit"),
    # Calls of data-access tools (named in :tools, or tagged :tag = true) and which of the
    # fields in :required (JSON list) each lacks in its params and tags.
    "cmp_data_access": (
        "WITH c AS (SELECT event_id, timestamp, seq, payload FROM events{w} "
        "AND event_type = 'agent.tool_call' AND (action IN (SELECT value FROM json_each(:tools)) "
        "OR (instr(payload, CAST(:tag_needle AS BLOB)) > 0 AND lower(json_extract(payload, "
        "'$.tags.' || :tag)) IN ('true', '1', 'yes')))), "
        "m AS (SELECT event_id, timestamp, seq, (SELECT group_concat(r.value) "
        "FROM json_each(:required) r WHERE coalesce(json_extract(c.payload, '$.params.' "
        "|| r.value), json_extract(c.payload, '$.tags.' || r.value), '') = '') AS missing "
        "FROM c), "
        "r AS (SELECT *, row_number() OVER (PARTITION BY missing IS NULL "
        "ORDER BY timestamp, seq) AS rn FROM m) "
        f"SELECT missing, count(*) AS calls, {_evidence('event_id', 'missing IS NOT NULL')} "
        "FROM r GROUP BY missing ORDER BY calls DESC, missing LIMIT :limit"),
    # Tokens per agent per bucket of :bounds (days in the report's zone), as rpt_profile does.
    "cmp_token_days": (
        f"WITH RECURSIVE {_AGENTS}, {_BOUNDS} SELECT ag.name AS agent, b.i AS bucket, "
        f"(SELECT sum({_TOKENS}) FROM events WHERE tenant = :tenant AND agent_name = ag.name "
        "AND timestamp >= b.lo AND timestamp < b.hi) AS tokens FROM ag, b "
        "WHERE ag.name IS NOT NULL LIMIT :limit"),
    # The traces of :target that used the most tokens in [:lo, :hi).
    "cmp_token_traces": (
        f"SELECT trace_id, sum({_TOKENS}) AS tokens FROM events{{w}} AND agent_name = :target "
        "AND timestamp >= :lo AND timestamp < :hi AND trace_id IS NOT NULL "
        "AND (token_count IS NOT NULL OR prompt_tokens IS NOT NULL "
        "OR completion_tokens IS NOT NULL) GROUP BY trace_id ORDER BY tokens DESC, trace_id LIMIT :limit"),
    # Invocations that started before :cutoff and have no end (a ``finish`` decision or the
    # agent.error of the invocation itself, as children), and handoffs before :cutoff that no
    # invocation received (no agent.invocation child). The rows are picked by rowid from an
    # index of (tenant, event_type, timestamp) when there is one, so that only they are read.
    "cmp_open_work": (
        "WITH i AS (SELECT event_id, trace_id, tenant, action, timestamp, seq FROM events "
        "WHERE rowid IN (SELECT rowid FROM events{w} AND event_type = 'agent.invocation' "
        "AND timestamp < :cutoff)), "
        "h AS (SELECT event_id, trace_id, tenant, timestamp, seq FROM events "
        "WHERE rowid IN (SELECT rowid FROM events{w} AND event_type = 'agent.handoff' "
        "AND timestamp < :cutoff)), "
        "o AS (SELECT 'unfinished_invocation' AS kind, event_id, timestamp, seq FROM i "
        "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.trace_id = i.trace_id "
        "AND +e.tenant = i.tenant AND e.parent_event_id = i.event_id "
        "AND ((e.event_type = 'agent.decision' AND e.action = 'finish') "
        "OR (e.event_type = 'agent.error' AND e.action IS i.action))) "
        "UNION ALL SELECT 'orphaned_handoff', event_id, timestamp, seq FROM h "
        "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.trace_id = h.trace_id "
        "AND +e.tenant = h.tenant AND e.parent_event_id = h.event_id "
        "AND e.event_type = 'agent.invocation')), "
        "r AS (SELECT *, row_number() OVER (PARTITION BY kind ORDER BY timestamp, seq) AS rn "
        "FROM o) "
        f"SELECT kind, count(*) AS count, {_evidence('event_id')} FROM r GROUP BY kind "
        "LIMIT :limit"),
    "cmp_checked_work": (
        "SELECT (SELECT count(*) FROM events{w} AND event_type = 'agent.invocation' "
        "AND timestamp < :cutoff) AS invocations, (SELECT count(*) FROM events{w} "
        "AND event_type = 'agent.handoff' AND timestamp < :cutoff) AS handoffs LIMIT :limit"),
    # Payloads to scan for personal data, in time order after (:after_ts, :after_seq), every
    # :stride-th row (by rowid) when sampling; user_id is dropped (it is an identifier on
    # purpose).
    "cmp_payloads": (
        "SELECT event_id, timestamp, seq, CAST(json_remove(payload, '$.user_id') AS TEXT) "
        "AS text FROM events{w} AND (timestamp > :after_ts OR (timestamp = :after_ts "
        "AND seq > :after_seq)) AND payload IS NOT NULL AND id % :stride = 0 "
        "ORDER BY timestamp, seq LIMIT :limit"),
}

REPORT_AGGREGATIONS: dict[str, str] = {**_SUMMARY, **_TOOLS, **_ERRORS, **_COST, **_AGENT,
                                        **_COMPLIANCE}

register_aggregations(REPORT_AGGREGATIONS)
