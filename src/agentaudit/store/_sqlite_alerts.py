"""Alerts of the detection rules, their deliveries, and the history reads that warm the rules'
baselines (tables of migration ``0005_alerts``).

An alert is one incident: a firing whose dedup key matches an *open* alert of its tenant only
bumps that alert's ``occurrences`` and ``last_seen``. ``alert_deliveries`` keeps one row per
finished delivery to a sink: ``delivered``, ``rate_limited`` or ``dead`` (the dead letter: the
signed payload as it was sent, its attempts and the last error, to replay by hand).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentaudit.exceptions import StoreError

if TYPE_CHECKING:
    from agentaudit.detect.firing import Firing

__all__ = ["Alert", "ack_alert", "agent_history", "count_repeats", "day_spend", "get_alert", "last_stop",
           "list_alerts", "list_deliveries", "record_alert", "record_delivery"]

_COLUMNS = ("id, tenant, event_id, rule, severity, kind, agent_name, trace_id, title, "
            "explanation, evidence, dedup_key, occurrences, first_seen, last_seen, status, "
            "acked_by, acked_at, ack_note")
_TOKENS = "coalesce(token_count, prompt_tokens + completion_tokens, prompt_tokens, " \
          "completion_tokens, 0)"
_NOT_DETECT = "coalesce(source, '') != 'agentaudit.detect'"


@dataclass(frozen=True)
class Alert:
    id: int
    tenant: str
    event_id: str
    rule: str
    severity: str
    kind: str
    agent_name: str | None
    trace_id: str | None
    title: str
    explanation: str
    evidence: list[str]
    dedup_key: str
    occurrences: int
    first_seen: float
    last_seen: float
    status: str
    acked_by: str | None = None
    acked_at: float | None = None
    ack_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _alert(r: Any) -> Alert:
    values = list(r)
    values[10] = json.loads(values[10])
    return Alert(*values)


def _run(db: sqlite3.Connection, what: str, sql: str, params: Any = ()) -> list[Any]:
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.Error as e:
        raise StoreError(f"cannot {what}: {e}") from e


def record_alert(db: sqlite3.Connection, firing: Firing) -> tuple[Alert, bool]:
    """Store a firing as a new alert, or count it on the open alert of the same incident.

    Returns the alert and True when it is new (the one to deliver)."""
    try:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(f"SELECT {_COLUMNS} FROM alerts WHERE tenant = ? AND dedup_key = ? "
                         "AND status = 'open' ORDER BY id DESC LIMIT 1",
                         (firing.tenant, firing.dedup_key)).fetchone()
        if row is not None:
            db.execute("UPDATE alerts SET occurrences = occurrences + ?, last_seen = max("
                       "last_seen, ?) WHERE id = ?", (firing.occurrences, firing.timestamp,
                                                      row[0]))
            new = False
            alert_id = row[0]
        else:
            cur = db.execute(
                "INSERT OR IGNORE INTO alerts (tenant, event_id, rule, severity, kind, "
                "agent_name, trace_id, title, explanation, evidence, dedup_key, occurrences, "
                "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (firing.tenant, firing.event_id, firing.rule, firing.severity, firing.kind,
                 firing.agent, firing.trace_id, firing.title, firing.explanation,
                 json.dumps(firing.evidence), firing.dedup_key, firing.occurrences,
                 firing.timestamp, firing.timestamp))
            new = cur.rowcount == 1
            alert_id = cur.lastrowid if new else db.execute(
                "SELECT id FROM alerts WHERE tenant = ? AND event_id = ?",
                (firing.tenant, firing.event_id)).fetchone()[0]
        db.execute("COMMIT")
    except sqlite3.Error as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise StoreError(f"cannot record an alert: {e}") from e
    alert = get_alert(db, int(alert_id))
    assert alert is not None
    return alert, new


def count_repeats(db: sqlite3.Connection, tenant: str, dedup_key: str, n: int,
                  last_seen: float) -> None:
    """Add ``n`` suppressed repeats to the open alert of an incident."""
    _run(db, "count alert repeats", "UPDATE alerts SET occurrences = occurrences + ?, "
         "last_seen = max(last_seen, ?) WHERE tenant = ? AND dedup_key = ? AND status = 'open'",
         (n, last_seen, tenant, dedup_key))


def get_alert(db: sqlite3.Connection, alert_id: int, tenant: str | None = None) -> Alert | None:
    rows = _run(db, "read alerts", f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
    if not rows or (tenant is not None and rows[0][1] != tenant):
        return None
    return _alert(rows[0])


def list_alerts(db: sqlite3.Connection, tenant: str, status: str | None = None,
                since: float | None = None, limit: int = 100) -> list[Alert]:
    """Alerts of a tenant, newest first (``status`` open or acked; None for both)."""
    where, params = ["tenant = ?"], [tenant]
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if since is not None:
        where.append("last_seen >= ?")
        params.append(since)
    rows = _run(db, "read alerts", f"SELECT {_COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
                "ORDER BY last_seen DESC, id DESC LIMIT ?", (*params, limit))
    return [_alert(r) for r in rows]


def ack_alert(db: sqlite3.Connection, alert_id: int, tenant: str, by: str,
              note: str | None = None, now: float | None = None) -> tuple[Alert | None, bool]:
    """Acknowledge an alert; (alert, True) when this call acknowledged it, (alert, False) when
    it already was, (None, False) when the tenant has no such alert."""
    alert = get_alert(db, alert_id, tenant)
    if alert is None or alert.status == "acked":
        return alert, False
    at = time.time() if now is None else now
    _run(db, "acknowledge the alert", "UPDATE alerts SET status = 'acked', acked_by = ?, "
         "acked_at = ?, ack_note = ? WHERE id = ? AND status = 'open'", (by, at, note, alert_id))
    return get_alert(db, alert_id), True


def record_delivery(db: sqlite3.Connection, alert_id: int, sink: str, status: str,
                    attempts: int, last_error: str | None, payload: str) -> None:
    _run(db, "record an alert delivery",
         "INSERT INTO alert_deliveries (alert_id, sink, status, attempts, last_error, payload, "
         "at) VALUES (?, ?, ?, ?, ?, ?, ?)",
         (alert_id, sink, status, attempts, last_error, payload, time.time()))


def list_deliveries(db: sqlite3.Connection, status: str | None = None,
                    alert_id: int | None = None) -> list[dict[str, Any]]:
    """Delivery records (``status='dead'``: the dead letters), oldest first."""
    where, params = [], []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if alert_id is not None:
        where.append("alert_id = ?")
        params.append(alert_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = _run(db, "read alert deliveries", "SELECT id, alert_id, sink, status, attempts, "
                f"last_error, payload, at FROM alert_deliveries{clause} ORDER BY id", params)
    keys = ("id", "alert_id", "sink", "status", "attempts", "last_error", "payload", "at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


# -- history for the detection rules -------------------------------------------------------------

def agent_history(db: sqlite3.Connection, tenant: str, agent: str, since: float, before: float,
                  bucket_seconds: int) -> dict[str, Any]:
    """Per-bucket tool calls, errors and tokens of an agent, its tools and its hours of day."""
    scope = ("FROM events WHERE tenant = ? AND agent_name = ? AND timestamp >= ? "
             f"AND timestamp < ? AND {_NOT_DETECT}")
    params = (tenant, agent, since, before)
    out: dict[str, Any] = {"tool_calls": {}, "errors": {}, "tokens": {}}
    for b, calls, errors, tokens in _run(
            db, "read the agent's history",
            f"SELECT CAST(timestamp / {int(bucket_seconds)} AS INTEGER) AS b, "
            "sum(event_type = 'agent.tool_call'), sum(event_type = 'agent.error'), "
            f"sum({_TOKENS}) {scope} GROUP BY b", params):
        out["tool_calls"][b], out["errors"][b], out["tokens"][b] = calls, errors, tokens
    tools = _run(db, "read the agent's history", f"SELECT action, count(*) {scope} "
                 "AND event_type = 'agent.tool_call' AND action IS NOT NULL GROUP BY action",
                 params)
    out["tools"] = [t for t, _ in tools]
    out["calls"] = sum(n for _, n in tools)
    hours = [0] * 24
    for h, n in _run(db, "read the agent's history",
                     f"SELECT CAST((timestamp % 86400) / 3600 AS INTEGER), count(*) {scope} "
                     "AND event_type IN ('agent.invocation', 'agent.tool_call', 'agent.error') "
                     "GROUP BY 1", params):
        hours[int(h) % 24] = n
    out["hours"] = hours
    first = _run(db, "read the agent's history", f"SELECT min(timestamp) {scope}", params)
    out["first_seen"] = first[0][0] if first else None
    return out


def day_spend(db: sqlite3.Connection, tenant: str, agent: str, day_start: float,
              before: float) -> tuple[float, int]:
    """(cost USD, tokens) an agent spent from ``day_start`` until ``before``."""
    row = _run(db, "read the agent's spend",
               f"SELECT coalesce(sum(cost_usd), 0), coalesce(sum({_TOKENS}), 0) FROM events "
               "WHERE tenant = ? AND agent_name = ? AND timestamp >= ? AND timestamp < ?",
               (tenant, agent, day_start, before))[0]
    return float(row[0]), int(row[1])


def last_stop(db: sqlite3.Connection, tenant: str, agent: str, before: float,
              stop_actions: list[str], resume_actions: list[str],
              lookback: float = 7 * 86400) -> tuple[float, str] | None:
    """(timestamp, event id) of the human stop of ``agent`` in force at ``before``, or None."""
    rows = _run(
        db, "read human interventions",
        "SELECT timestamp, event_id, lower(coalesce(json_extract(payload, '$.params.action'), "
        "json_extract(payload, '$.params.command'))) AS act FROM events "
        "WHERE tenant = ? AND event_type = 'agent.human_intervention' AND timestamp >= ? "
        "AND timestamp < ? AND coalesce(json_extract(payload, '$.params.target_agent'), "
        "agent_name) = ? AND act IN (SELECT value FROM json_each(?)) "
        "ORDER BY timestamp DESC LIMIT 1",
        (tenant, before - lookback, before, agent, json.dumps(stop_actions + resume_actions)))
    if not rows or rows[0][2] not in stop_actions:
        return None
    return float(rows[0][0]), str(rows[0][1])


# -- the compliance report's "security findings" (named aggregations) ----------------------------

FINDINGS_AGGREGATIONS = {
    "sec_findings_by_rule": (
        "SELECT action AS rule, event_type AS kind, "
        "coalesce(json_extract(payload, '$.params.severity'), 'unknown') AS severity, "
        "count(*) AS count, max(timestamp) AS last_ts FROM events{w} "
        "AND event_type IN ('agent.security', 'agent.compliance') "
        "AND source = 'agentaudit.detect' GROUP BY 1, 2, 3 ORDER BY count DESC LIMIT :limit"),
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
