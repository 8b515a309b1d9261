"""The reports' SQLite templates that read the rollups (``_sqlite_rollup``) and the report
indexes of migration ``0006_report_rollups``.

Each template here answers exactly what the template of the same name in ``_sqlite_reports``
(or ``_sqlite_alerts``) answers, from fewer rows: counts and sums from the hourly rollup cells
of the period plus its edge events (``FACTS``), unfinished work from ``open_work``, and the
rows a check must read one by one (tool calls, metered events, detection findings, finished
tool calls in duration order) from partial indexes that hold only them, named with ``INDEXED
BY`` so that a store without them fails loudly rather than slowly. tests/reports/
test_rollups.py checks that both sets give the same reports.

Beside the parameters of the plain templates they read ``:rolled`` and ``:raw`` (the period, or
each bucket of ``:bounds``, split by ``_rollup_shared.split``), which ``_sqlite_sql.aggregation``
adds.
"""

from __future__ import annotations

from agentaudit.store._rollup_shared import ERR, ESC, FINISH, HANDOFF, INV, count_where
from agentaudit.store._sqlite_alerts import FINDINGS_AGGREGATIONS
from agentaudit.store._sqlite_reports import (
    _PRICES,
    COST_DIMS,
    REPORT_AGGREGATIONS,
    _evidence,
    cost_ranking,
)
from agentaudit.store._sqlite_rollup import FACTS, METERED
from agentaudit.store._sqlite_sql import register_rolled

__all__ = ["ROLLED_AGGREGATIONS"]


# PROFILE_FIELDS, in order
_PROFILE = ", ".join([
    "sum(events)", count_where(INV), count_where(ERR), count_where("event_type = 'agent.tool_call'"),
    count_where("event_type = 'agent.decision' AND action IS NOT 'finish'"),
    count_where(HANDOFF), count_where(FINISH),
    f"sum(dur_sum) FILTER (WHERE {FINISH})", "sum(cost_sum)", "sum(tokens)",
    "sum(prompt_sum)", "sum(completion_sum)", count_where("event_type = 'agent.human_intervention'"),
    count_where(ESC), "min(first_ts)", "max(last_ts)"])

_TIMED = "event_type IN ('agent.tool_result', 'agent.error') AND duration_ms IS NOT NULL"


def _rank(p: int) -> str:
    """Nearest rank of the p-th percentile of a tool's ``timed`` finished calls."""
    return f"(s.timed * {p} + 99) / 100"


def _percentile(p: int) -> str:
    return f"(SELECT d FROM k WHERE k.action = s.action AND k.rn = {_rank(p)})"


def _indexed(name: str, index: str, templates: dict[str, str] = REPORT_AGGREGATIONS) -> str:
    """The plain template ``name`` reading its period's rows through ``index``."""
    plain = templates[name]
    assert "FROM events{w}" in plain, name
    return plain.replace("FROM events{w}", f"FROM events INDEXED BY {index}{{w}}", 1)


ROLLED_AGGREGATIONS: dict[str, str] = {
    # -- summary --
    "rpt_profile": (f"WITH {FACTS} SELECT agent_name AS agent, i AS bucket, "
                    f"json_array({_PROFILE}) AS m FROM f GROUP BY agent_name, i LIMIT :limit"),
    "rpt_traces": f"WITH {FACTS} SELECT {count_where('root')} AS traces FROM f LIMIT :limit",
    "rpt_count": f"WITH {FACTS} SELECT coalesce(sum(events), 0) AS events FROM f LIMIT :limit",
    # -- tools --
    "rpt_tool_calls": (
        f"WITH {FACTS} SELECT action AS tool, sum(events) AS calls FROM f "
        "WHERE event_type = 'agent.tool_call' GROUP BY action ORDER BY calls DESC, action "
        "LIMIT :limit"),
    "rpt_tool_errors": (
        f"WITH {FACTS} SELECT action AS tool, sum(events) AS errors FROM f "
        f"WHERE {ERR} AND action IS NOT NULL GROUP BY action LIMIT :limit"),
    "rpt_tool_latency": (
        f"WITH {FACTS}, s AS (SELECT action, sum(dur_n) AS timed, sum(dur_sum) AS total, "
        "min(dur_min) AS min_ms, max(dur_max) AS max_ms FROM f "
        "WHERE event_type IN ('agent.tool_result', 'agent.error') AND action IS NOT NULL "
        "GROUP BY action HAVING sum(dur_n) > 0), "
        # the durations at the three ranks of each tool, numbered in the order
        # ix_events_latency holds them (no sort; its covering entries only)
        "k AS MATERIALIZED (SELECT w.action, w.d, w.rn FROM (SELECT action, duration_ms AS d, "
        "row_number() OVER (PARTITION BY action ORDER BY duration_ms) AS rn "
        f"FROM events INDEXED BY ix_events_latency WHERE tenant = :tenant AND {_TIMED} "
        "AND action IS NOT NULL AND timestamp >= :since AND timestamp < :until "
        "AND (:agent_name IS NULL OR agent_name = :agent_name)) w JOIN s ON s.action = w.action "
        f"WHERE w.rn IN ({_rank(50)}, {_rank(95)}, {_rank(99)})) "
        "SELECT action AS tool, timed, total / timed AS avg_ms, min_ms, max_ms, "
        f"{_percentile(50)} AS p50_ms, {_percentile(95)} AS p95_ms, "
        f"{_percentile(99)} AS p99_ms FROM s LIMIT :limit"),
    # -- cost --
    "rpt_cost_agents": (
        f"WITH {FACTS}, g AS (SELECT agent_name, i, model, sum(pt_sum) AS pt, "
        "sum(ct_sum) AS ct, sum(metered) AS calls, sum(recorded_usd) AS rec, "
        "sum(recorded_pico) AS rec_pico FROM f WHERE metered > 0 GROUP BY agent_name, i, model) "
        "SELECT agent_name AS agent, i AS bucket, json_group_array(json_array(model, pt, ct, "
        "calls, rec, rec_pico)) AS m FROM g GROUP BY agent_name, i LIMIT :limit"),
    # each ranking streams its metered events in the order of its key (ix_events_cost_*)
    "rpt_cost_top": f"WITH {_PRICES} " + " UNION ALL ".join(
        cost_ranking(dim, key, f"FROM events e INDEXED BY ix_events_cost_{dim} "
                     "LEFT JOIN prices p ON p.model = e.model WHERE e.tenant = :tenant "
                     "AND e.timestamp >= :since AND e.timestamp < :until "
                     "AND (:agent_name IS NULL OR e.agent_name = :agent_name) "
                     f"AND {METERED}") for dim, key in COST_DIMS),
    # -- compliance --
    "cmp_totals": (
        f"WITH {FACTS} SELECT coalesce(sum(events), 0) AS events, {count_where(ERR)} AS errors, "
        f"{count_where('root')} AS traces, {count_where(ESC)} AS escalations FROM f LIMIT :limit"),
    # :bounds is [[since, cutoff]] (see reports.compliance)
    "cmp_checked_work": (
        f"WITH {FACTS} SELECT {count_where(INV)} AS invocations, "
        f"{count_where(HANDOFF)} AS handoffs FROM f "
        "LIMIT :limit"),
    "cmp_token_days": (
        f"WITH {FACTS} SELECT agent_name AS agent, i AS bucket, sum(tokens) AS tokens FROM f "
        "GROUP BY agent_name, i LIMIT :limit"),
    "cmp_open_work": (
        "WITH r AS (SELECT kind, event_id, timestamp, seq, row_number() OVER (PARTITION BY kind "
        "ORDER BY timestamp, seq) AS rn FROM open_work WHERE tenant = :tenant "
        "AND timestamp >= :since AND timestamp < :until AND timestamp < :cutoff "
        "AND (:agent_name IS NULL OR agent_name = :agent_name)) "
        f"SELECT kind, count(*) AS count, {_evidence('event_id')} FROM r GROUP BY kind "
        "LIMIT :limit"),
    "cmp_tool_approval": _indexed("cmp_tool_approval", "ix_events_tool_calls"),
    # (tokens imply metered: the partial index's condition changes nothing)
    "cmp_token_traces": _indexed("cmp_token_traces", "ix_events_cost_trace").replace(
        " GROUP BY trace_id", f" AND {METERED} GROUP BY trace_id", 1),
    # Payloads are read only for the calls of the listed tools and those tagged_calls names for
    # the tag (all calls when the tag is a JSON path, which tagged_calls cannot answer); the
    # plain condition then decides on them.
    "cmp_data_access": _indexed("cmp_data_access", "ix_events_tool_calls").replace(
        "AND event_type = 'agent.tool_call' AND (action IN",
        "AND event_type = 'agent.tool_call' AND (action IN (SELECT value FROM json_each(:tools)) "
        "OR instr(:tag, '.') OR instr(:tag, '[') OR instr(:tag, '\"') OR rowid IN (SELECT event "
        "FROM tagged_calls WHERE tenant = :tenant AND tag = :tag)) AND (action IN", 1),
    "sec_findings_by_rule": _indexed("sec_findings_by_rule", "ix_events_findings",
                                     FINDINGS_AGGREGATIONS),
    "sec_findings_latest": _indexed("sec_findings_latest", "ix_events_findings",
                                    FINDINGS_AGGREGATIONS),
}
assert "tagged_calls" in ROLLED_AGGREGATIONS["cmp_data_access"]

register_rolled(ROLLED_AGGREGATIONS)
