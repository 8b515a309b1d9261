"""PostgreSQL side of the alerts of the detection rules (tables of migration ``0005_alerts`` in
``_pg_schema``): the dialect ``AlertStorage`` needs, as ``PgAlerts``, a mixin of
``PostgresStore``. The logic is in ``agentaudit.store._alerts``, shared with SQLite.

Many collectors may record alerts in one database: recording takes a transaction-scoped
advisory lock per (tenant, dedup key), so two collectors firing on one incident make one alert
with both occurrences counted, as SQLite's write lock does for one file. The history queries
bound ``day`` as well as the time, so that only the period's partitions are read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg

from agentaudit.exceptions import StoreError
from agentaudit.store._alerts import AlertStorage
from agentaudit.store._pg_sql import day_of, to_psycopg

__all__ = ["PgAlerts"]

_TOKENS = ("coalesce(token_count, prompt_tokens + completion_tokens, prompt_tokens, "
           "completion_tokens, 0)")
_PERIOD = ("timestamp >= :since AND timestamp < :before AND day >= :since_day "
           "AND day <= :before_day")
_SCOPE = (f"FROM events WHERE tenant = :tenant AND agent_name = :agent AND {_PERIOD} "
          "AND coalesce(source, '') <> 'agentaudit.detect'")
_J = "convert_from(p.payload, 'UTF8')::jsonb"

# Each returns what its namesake in ``_sqlite_alerts`` returns for the same rows.
_HISTORY_SQL = {
    "agent_buckets": (
        "SELECT floor(timestamp / :bucket)::bigint AS b, "
        "count(*) FILTER (WHERE event_type = 'agent.tool_call'), "
        "count(*) FILTER (WHERE event_type = 'agent.error'), "
        f"sum({_TOKENS})::bigint {_SCOPE} GROUP BY 1"),
    "agent_tools": (f"SELECT action, count(*) {_SCOPE} AND event_type = 'agent.tool_call' "
                    "AND action IS NOT NULL GROUP BY action"),
    "agent_hours": (
        f"SELECT mod(floor(timestamp / 3600)::bigint, 24), count(*) {_SCOPE} "
        "AND event_type IN ('agent.invocation', 'agent.tool_call', 'agent.error') GROUP BY 1"),
    "agent_first": f"SELECT min(timestamp) {_SCOPE}",
    "day_spend": (
        f"SELECT coalesce(sum(cost_usd), 0), coalesce(sum({_TOKENS}), 0)::bigint FROM events "
        f"WHERE tenant = :tenant AND agent_name = :agent AND {_PERIOD}"),
    # the payload (params.action / command / target_agent) is looked up per intervention
    "last_stop": (
        "SELECT timestamp, event_id, act FROM (SELECT e.timestamp, e.seq, e.event_id, "
        f"lower(coalesce(x.j #>> '{{params,action}}', x.j #>> '{{params,command}}')) AS act, "
        "coalesce((x.j #>> '{params,target_agent}') COLLATE \"C\", e.agent_name) AS target "
        "FROM events e LEFT JOIN event_payloads p ON p.tenant = e.tenant AND p.day = e.day "
        f"AND p.seq = e.seq CROSS JOIN LATERAL (SELECT {_J} AS j) x "
        "WHERE e.tenant = :tenant AND e.event_type = 'agent.human_intervention' "
        f"AND e.{_PERIOD.replace(' AND ', ' AND e.')}) h "
        "WHERE target = :agent AND act = ANY(ARRAY(SELECT jsonb_array_elements_text("
        "CAST(:acts AS jsonb)))) ORDER BY timestamp DESC LIMIT 1"),
}


class PgAlerts(AlertStorage):
    """``AlertStorage`` on the store's PostgreSQL connection (``self._conn``, autocommit)."""

    _conn: psycopg.Connection[Any]
    location: str
    _HISTORY_SQL = _HISTORY_SQL

    def _alerts_run(self, what: str, sql: str, params: dict[str, Any]) -> list[Any]:
        try:
            cur = self._conn.execute(to_psycopg(sql), params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as e:
            raise StoreError(f"cannot {what} in {self.location}: {_first_line(e)}") from e

    @contextlib.contextmanager
    def _alerts_transaction(self, what: str, lock: str) -> Iterator[None]:
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                   ("agentaudit.alert:" + lock,))
                yield
        except psycopg.Error as e:
            raise StoreError(f"cannot {what} in {self.location}: {_first_line(e)}") from e

    def _history_params(self, since: float, before: float) -> dict[str, Any]:
        return {"since_day": day_of(since), "before_day": day_of(before)}


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
