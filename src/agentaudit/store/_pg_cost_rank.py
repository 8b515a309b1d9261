"""``rpt_cost_top`` from the cost facts (``_pg_cost_facts``): the period's top tasks, users and
traces by cost, the same rows the plain template gives (tests/postgres/test_pg_cost_facts.py).

The price table arrives with the query, so the SQL is written for it: each model slot of the
tenant is one term of a group's cost, ``tokens × prices`` (integer pico-dollars per token,
written into the text as integers) for a priced model, the recorded pico-dollars for any other.
A group (trace or task) whose metered events all lie in the period is one row, ranked by its
float cost (the first ``limit + _MARGIN`` re-ranked by their exact cost); one straddling an
edge of the period is summed from its events. A user whose events all lie in the period is
read from its totals, one crossing an edge from its day cells inside the period and the events
of the other days; the events without a user are the rollups' metered totals
(``_pg_rollup.FACTS``) less the users'.
"""

from __future__ import annotations

import json
from typing import Any

from agentaudit.store._pg_reports import _PRICES
from agentaudit.store._pg_rollup import FACTS, metered, priced_tokens, recorded
from agentaudit.store._pg_sql import to_psycopg

__all__ = ["rank"]

(_PT, _CT), _METERED = priced_tokens("e."), metered("e.")
_DOLLARS, _PICO_REST = recorded("e.")
_REC = f"coalesce({_DOLLARS}::numeric * 1000000000000 + {_PICO_REST}, 0)"
# one metered event ``e`` joined with its price row ``p``: its cost in pico-dollars
_EVENT_COST = (f"CASE WHEN p.model IS NOT NULL THEN ({_PT})::numeric * p.inp "
               f"+ ({_CT})::numeric * p.outp ELSE {_REC} END")
_PERIOD = ("e.tenant = :tenant AND e.timestamp >= :since AND e.timestamp < :until "
           "AND e.day >= floor(greatest(:since, 0) / 86400)::int "
           "AND e.day <= floor(least(:until, 32503680000) / 86400)::int")
_OUT = ("div(cost, 1000)::bigint AS cost_nano, mod(cost, 1000)::bigint AS cost_pico, "
        "prompt_tokens::bigint AS prompt_tokens, completion_tokens::bigint AS "
        "completion_tokens, calls::bigint AS calls")


_RAW = (f"min(e.timestamp) AS first_ts, count(*) AS calls, max(e.task_id) AS task_id, "
        f"sum({_PT}) AS prompt_tokens, sum({_CT}) AS completion_tokens, "
        f"sum({_EVENT_COST}) AS cost")


_Slots = list[tuple[int, "tuple[int, int] | None"]]
# Groups are ranked by their cost in floats (a sum of a few products of nonnegative numbers,
# each rounded once: relative error far below _TOLERANCE); the first :limit + _MARGIN of them
# get their exact cost. Every group left out is then cheaper than :limit candidates when the
# last candidate's float cost is below the :limit-th's by more than the tolerance (or is 0,
# or all groups are candidates); otherwise the groups are ranked by their exact cost.
_MARGIN = 1000
_TOLERANCE = 1e-9


def _slot_cost(slots: _Slots, a: str = "g", floats: bool = False) -> str:
    """The cost of a ``cost_groups`` row ``a`` in pico-dollars under the slots' prices, exact
    (numeric) or in ``floats``."""
    f = "f" if floats else ""
    terms = [f"coalesce({a}.rec{f}[{s}], 0)" if price is None else
             f"coalesce({a}.pt{f}[{s}] * {int(price[0])} + {a}.ct{f}[{s}] * {int(price[1])}, 0)"
             for s, price in slots]
    return " + ".join(terms) or ("0::float8" if floats else "0::numeric")


def _array_sum(column: str) -> str:
    return f"(SELECT coalesce(sum(x), 0) FROM unnest({column}) AS x)"


def _groups(dim: str, column: str, slots: _Slots, exact: bool = False) -> str:
    """The top :limit groups ``dim`` (events' ``column``) of the period: ranked by their float
    cost, with a column ``exact_ok`` saying whether that ranking is sure (see _MARGIN), or
    by their ``exact`` cost."""
    score = _slot_cost(slots, "g", floats=not exact)
    margin = 0 if exact else _MARGIN
    trace = dim == "trace"
    user = (f"CASE WHEN t.key IS NULL THEN {_user_of('e.trace_id IS NULL')} "
            f"ELSE {_user_of('e.trace_id = t.key')} END" if trace else "NULL::text")
    return (
        f"WITH {_PRICES}, "
        # the groups crossing the period's start or end
        "edge AS (SELECT g.key FROM cost_groups g WHERE g.tenant = :tenant "
        f"AND g.dim = '{dim}' AND g.first_ts < :since AND g.last_ts >= :since "
        "UNION SELECT g.key FROM cost_groups g WHERE g.tenant = :tenant "
        f"AND g.dim = '{dim}' AND g.first_ts < :until AND g.last_ts >= :until), "
        # the straddling groups summed from their events in the period (the NULL key's
        # events are those without one)
        f"raw AS MATERIALIZED (SELECT k.key, {_RAW} FROM edge k JOIN events e "
        f"ON e.{column} = k.key AND {_PERIOD} AND {_METERED} LEFT JOIN prices p "
        f"ON p.model = e.model GROUP BY k.key UNION ALL SELECT NULL, {_RAW} FROM events e "
        f"LEFT JOIN prices p ON p.model = e.model WHERE e.{column} IS NULL AND {_PERIOD} "
        f"AND {_METERED} AND EXISTS (SELECT 1 FROM edge k WHERE k.key IS NULL) "
        "HAVING count(*) > 0), "
        # the top :limit (+ margin) of the inside groups by score (a parallel scan), their
        # exact cost, then with the straddling ones
        "cand AS MATERIALIZED (SELECT g.key, g.first_ts, g.calls, g.task_id, g.pt, g.ct, g.rec, "
        f"{score} AS score FROM cost_groups g WHERE g.tenant = :tenant AND g.dim = '{dim}' "
        "AND g.first_ts >= :since AND g.last_ts < :until ORDER BY score DESC, "
        f"g.key NULLS FIRST LIMIT :limit + {margin}), "
        # (a: the :limit-th score, lo: the last candidate's)
        f"chk AS (SELECT n < :limit + {margin} OR a IS NULL OR a = 0 "
        f"OR a * (1 - {_TOLERANCE}) > lo AS ok FROM (SELECT count(*) AS n, min(score) AS lo, "
        "(SELECT c.score FROM cand c ORDER BY c.score DESC, c.key NULLS FIRST "
        "OFFSET :limit - 1 LIMIT 1) AS a FROM cand) x), "
        "ranked AS (SELECT * FROM (SELECT c.key, c.first_ts, c.calls, c.task_id, "
        "NULL::numeric AS prompt_tokens, NULL::numeric AS completion_tokens, c.pt, c.ct, "
        f"{_slot_cost(slots, 'c')} AS cost FROM cand c UNION ALL SELECT key, first_ts, calls, "
        "task_id, prompt_tokens, completion_tokens, NULL, NULL, cost FROM raw) a "
        "ORDER BY cost DESC, key NULLS FIRST LIMIT :limit), "
        # the token sums of the ranked rows only
        "t AS (SELECT r.key, r.cost, r.first_ts, r.calls, r.task_id, "
        f"coalesce(r.prompt_tokens, {_array_sum('r.pt')}) AS prompt_tokens, "
        f"coalesce(r.completion_tokens, {_array_sum('r.ct')}) AS completion_tokens "
        "FROM ranked r) "
        f"SELECT '{dim}' AS dim, t.key, {_OUT}, "
        + ("t.task_id, " if trace else "NULL::text AS task_id, ")
        + f"{user} AS user_id, "
        + ("t.first_ts " if trace else "NULL::float8 ")
        + "AS first_ts, (SELECT ok FROM chk) AS exact_ok FROM t "
        "ORDER BY t.cost DESC, t.key NULLS FIRST")


def _user_of(match: str) -> str:
    """The greatest user of a ranked trace's metered events in the period (payload rows)."""
    return (f"(SELECT max(u.user_id) FROM events e JOIN event_payloads u ON u.tenant = e.tenant "
            f"AND u.day = e.day AND u.seq = e.seq WHERE {match} AND {_PERIOD} AND {_METERED})")


# The users of the period: a user whose metered events all lie in it from its totals, one
# crossing an edge from its day cells wholly inside the period and the events of the other days
# of the period; no user at all: the metered totals of the rollups less the users'.
_USERS = (
    f"WITH {_PRICES}, {FACTS}, "
    "spans AS (SELECT user_id, min(first_ts) AS f, max(last_ts) AS l FROM cost_user_totals "
    "WHERE tenant = :tenant GROUP BY user_id), "
    "crossing AS (SELECT user_id FROM spans WHERE f < :until AND l >= :since "
    "AND (f < :since OR l >= :until)), "
    "uc AS MATERIALIZED (SELECT c.* FROM cost_users c JOIN crossing x ON x.user_id = c.user_id "
    "WHERE c.tenant = :tenant AND c.day >= floor(greatest(:since, 0) / 86400)::int "
    "AND c.day <= floor(least(:until, 32503680000) / 86400)::int), "
    "edge AS (SELECT DISTINCT day FROM uc WHERE first_ts < :since OR last_ts >= :until), "
    "cells AS (SELECT t.user_id, t.model, t.pt, t.ct, t.rec, t.calls FROM cost_user_totals t "
    "JOIN spans s ON s.user_id = t.user_id WHERE t.tenant = :tenant AND s.f >= :since "
    "AND s.l < :until "
    "UNION ALL SELECT user_id, model, pt, ct, rec, calls FROM uc "
    "WHERE day NOT IN (SELECT day FROM edge) "
    f"UNION ALL SELECT u.user_id, e.model, ({_PT})::numeric, ({_CT})::numeric, {_REC}, 1 "
    "FROM edge d JOIN events e ON e.tenant = :tenant AND e.day = d.day "
    "AND e.timestamp >= greatest(:since, (d.day * 86400)::float8) "
    "AND e.timestamp < least(:until, ((d.day + 1) * 86400)::float8) "
    f"JOIN event_payloads u ON u.tenant = e.tenant AND u.day = e.day AND u.seq = e.seq "
    f"WHERE {_METERED} AND u.user_id IN (SELECT user_id FROM crossing)), "
    "per AS (SELECT user_id, model, sum(pt) AS pt, sum(ct) AS ct, sum(rec) AS rec, "
    "sum(calls) AS calls FROM cells GROUP BY 1, 2), "
    "total AS (SELECT model, sum(pt_sum) AS pt, sum(ct_sum) AS ct, "
    "coalesce(sum(recorded_usd), 0) * 1000000000000 + coalesce(sum(recorded_pico), 0) AS rec, "
    "sum(metered) AS calls FROM f WHERE metered > 0 GROUP BY model), "
    "known AS (SELECT model, sum(pt) AS pt, sum(ct) AS ct, sum(rec) AS rec, "
    "sum(calls) AS calls FROM per GROUP BY model), "
    "a AS (SELECT * FROM per UNION ALL SELECT NULL::text, t.model, t.pt - coalesce(k.pt, 0), "
    "t.ct - coalesce(k.ct, 0), t.rec - coalesce(k.rec, 0), t.calls - coalesce(k.calls, 0) "
    "FROM total t LEFT JOIN known k ON k.model IS NOT DISTINCT FROM t.model), "
    "s AS (SELECT a.user_id AS key, sum(CASE WHEN p.model IS NOT NULL THEN a.pt * p.inp "
    "+ a.ct * p.outp ELSE a.rec END) AS cost, sum(a.pt) AS prompt_tokens, "
    "sum(a.ct) AS completion_tokens, sum(a.calls) AS calls FROM a "
    "LEFT JOIN prices p ON p.model = a.model GROUP BY a.user_id HAVING sum(a.calls) > 0) "
    f"SELECT 'user' AS dim, key, {_OUT}, NULL::text AS task_id, NULL::text AS user_id, "
    "NULL::float8 AS first_ts FROM s ORDER BY cost DESC, key NULLS FIRST LIMIT :limit")


def rank(conn: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``rpt_cost_top`` (tasks, users, traces) for the bound ``params`` of
    ``_pg_sql.aggregation`` (no agent: one agent's ranking reads the events)."""
    prices = {str(m): (int(v[0]), int(v[1])) for m, v in json.loads(params["prices"]).items()}
    slots = [(int(s), prices.get(m) if m is not None else None) for s, m in conn.execute(
        "SELECT slot, model FROM cost_models WHERE tenant = %s ORDER BY slot",
        (params["tenant"],))]
    out: list[dict[str, Any]] = []
    for dim, sql in (("task", _groups("task", "task_id", slots)), ("user", _USERS),
                     ("trace", _groups("trace", "trace_id", slots))):
        rows = _rows(conn, sql, params)
        if rows and not rows[0].pop("exact_ok", True):
            rows = _rows(conn, _groups(dim, f"{dim}_id", slots, exact=True), params)
        for r in rows:
            r.pop("exact_ok", None)
        out += rows
    return out


def _rows(conn: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = conn.execute(to_psycopg(sql), params)
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
