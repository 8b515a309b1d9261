"""SQLite side of the alerts of the detection rules (tables of migration ``0005_alerts``): the
dialect ``AlertStorage`` needs (``SQLiteAlerts``, a mixin of ``SQLiteStore``), and the compliance
report's "security findings" aggregations. The logic is in ``agentaudit.store._alerts``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

from agentaudit.exceptions import StoreError
from agentaudit.store._alerts import NOT_SUPPORTED, Alert, AlertStorage

__all__ = ["FINDINGS_AGGREGATIONS", "NOT_SUPPORTED", "Alert", "SQLiteAlerts"]

_TOKENS = "coalesce(token_count, prompt_tokens + completion_tokens, prompt_tokens, " \
          "completion_tokens, 0)"
_SCOPE = ("FROM events WHERE tenant = :tenant AND agent_name = :agent AND timestamp >= :since "
          "AND timestamp < :before AND coalesce(source, '') != 'agentaudit.detect'")

_HISTORY_SQL = {
    "agent_buckets": (
        "SELECT CAST(timestamp / :bucket AS INTEGER) AS b, sum(event_type = 'agent.tool_call'), "
        f"sum(event_type = 'agent.error'), sum({_TOKENS}) {_SCOPE} GROUP BY b"),
    "agent_tools": (f"SELECT action, count(*) {_SCOPE} AND event_type = 'agent.tool_call' "
                    "AND action IS NOT NULL GROUP BY action"),
    "agent_hours": (
        f"SELECT CAST((timestamp % 86400) / 3600 AS INTEGER), count(*) {_SCOPE} "
        "AND event_type IN ('agent.invocation', 'agent.tool_call', 'agent.error') GROUP BY 1"),
    "agent_first": f"SELECT min(timestamp) {_SCOPE}",
    "day_spend": (
        f"SELECT coalesce(sum(cost_usd), 0), coalesce(sum({_TOKENS}), 0) FROM events "
        "WHERE tenant = :tenant AND agent_name = :agent AND timestamp >= :since "
        "AND timestamp < :before"),
    "last_stop": (
        "SELECT timestamp, event_id, lower(coalesce(json_extract(payload, '$.params.action'), "
        "json_extract(payload, '$.params.command'))) AS act FROM events "
        "WHERE tenant = :tenant AND event_type = 'agent.human_intervention' "
        "AND timestamp >= :since AND timestamp < :before "
        "AND coalesce(json_extract(payload, '$.params.target_agent'), agent_name) = :agent "
        "AND act IN (SELECT value FROM json_each(:acts)) ORDER BY timestamp DESC LIMIT 1"),
}


class SQLiteAlerts(AlertStorage):
    """``AlertStorage`` on the store's SQLite connection (``self._db``)."""

    _db: sqlite3.Connection
    _HISTORY_SQL = _HISTORY_SQL

    def _alerts_run(self, what: str, sql: str, params: dict[str, Any]) -> list[Any]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot {what}: {e}") from e

    @contextlib.contextmanager
    def _alerts_transaction(self, what: str, lock: str) -> Iterator[None]:
        """``BEGIN IMMEDIATE``: the file's write lock serialises every writer."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"cannot {what}: {e}") from e
        try:
            yield
            db.execute("COMMIT")
        except BaseException as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"cannot {what}: {e}") from e
            raise


# -- the compliance report's "security findings" (named aggregations) ----------------------------

FINDINGS_AGGREGATIONS = {
    "sec_findings_by_rule": (
        "SELECT action AS rule, event_type AS kind, "
        "coalesce(json_extract(payload, '$.params.severity'), 'unknown') AS severity, "
        "count(*) AS count, max(timestamp) AS last_ts FROM events{w} "
        "AND event_type IN ('agent.security', 'agent.compliance') "
        "AND source = 'agentaudit.detect' GROUP BY 1, 2, 3 "
        "ORDER BY count DESC, rule, kind, severity LIMIT :limit"),
    "sec_findings_latest": (
        "SELECT event_id, action AS rule, agent_name AS agent, timestamp, "
        "parent_event_id AS evidence, "
        "coalesce(json_extract(payload, '$.params.severity'), 'unknown') AS severity, "
        "json_extract(payload, '$.params.title') AS title FROM events{w} "
        "AND event_type IN ('agent.security', 'agent.compliance') "
        "AND source = 'agentaudit.detect' ORDER BY timestamp DESC, seq DESC LIMIT :limit"),
}


def _register() -> None:
    from agentaudit.store._sqlite_sql import register_aggregations

    register_aggregations(FINDINGS_AGGREGATIONS)


_register()
