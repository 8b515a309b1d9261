"""Alerts of the detection rules and the history reads that warm the rules' baselines, as
methods of a store (``AlertStorage``), the same on every backend.

An alert is one incident: a firing whose dedup key matches an *open* alert of its tenant only
bumps that alert's ``occurrences`` and ``last_seen``. ``alert_deliveries`` keeps one row per
finished delivery to a sink: ``delivered``, ``rate_limited`` or ``dead`` (the dead letter: the
signed payload as it was sent, its attempts and the last error, to replay by hand).

The logic lives here once; a backend mixin (``_sqlite_alerts.SQLiteAlerts``,
``_pg_alerts.PgAlerts``) supplies how to run a statement (``:name`` parameters), a write
transaction that serialises one incident, and the dialect's text of the history queries.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentaudit.detect.firing import Firing

__all__ = ["NOT_SUPPORTED", "Alert", "AlertStorage", "alerts_of"]

_COLUMNS = ("id, tenant, event_id, rule, severity, kind, agent_name, trace_id, title, "
            "explanation, evidence, dedup_key, occurrences, first_seen, last_seen, status, "
            "acked_by, acked_at, ack_note")
# portable: SQLite's max(a, b) is PostgreSQL's greatest(a, b)
_LATER = "CASE WHEN last_seen < :ts THEN :ts ELSE last_seen END"

NOT_SUPPORTED = ("this store backend does not keep alerts: the firings are in the log "
                 "(agent.security/agent.compliance events, `agentaudit log --type "
                 "agent.security`) but are not kept as alerts or delivered to sinks")


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


def alerts_of(store: Any) -> AlertStorage | None:
    """The store as an ``AlertStorage``, or None for a backend that keeps no alerts."""
    return store if isinstance(store, AlertStorage) else None


class AlertStorage:
    """Alerts, deliveries and detection history of a store (a mixin of the backends)."""

    # The dialect's text of the history queries: agent_buckets, agent_tools, agent_hours,
    # agent_first, day_spend, last_stop (``:name`` parameters; see ``agent_history``).
    _HISTORY_SQL: dict[str, str] = {}

    def _alerts_run(self, what: str, sql: str, params: dict[str, Any]) -> list[Any]:
        """Rows of one statement (``:name`` parameters); StoreError saying ``what`` failed."""
        raise NotImplementedError

    def _alerts_transaction(self, what: str, lock: str) -> contextlib.AbstractContextManager[None]:
        """A write transaction in which no other writer records an alert under ``lock``."""
        raise NotImplementedError

    def _history_params(self, since: float, before: float) -> dict[str, Any]:
        """Extra parameters of the history queries (PostgreSQL: the partition days)."""
        return {}

    # -- alerts --------------------------------------------------------------------------------

    def record_alert(self, firing: Firing) -> tuple[Alert, bool]:
        """Store a firing as a new alert, or count it on the open alert of the same incident.

        Returns the alert and True when it is new (the one to deliver)."""
        what = "record an alert"
        p = {"tenant": firing.tenant, "dedup_key": firing.dedup_key, "n": firing.occurrences,
             "ts": firing.timestamp, "event_id": firing.event_id}
        with self._alerts_transaction(what, f"{firing.tenant}/{firing.dedup_key}"):
            row = self._alerts_run(what, "SELECT id FROM alerts WHERE tenant = :tenant AND "
                                   "dedup_key = :dedup_key AND status = 'open' "
                                   "ORDER BY id DESC LIMIT 1", p)
            new = not row
            if row:
                alert_id = row[0][0]
                self._alerts_run(what, f"UPDATE alerts SET occurrences = occurrences + :n, "
                                 f"last_seen = {_LATER} WHERE id = :id", {**p, "id": alert_id})
            else:
                made = self._alerts_run(what, (
                    "INSERT INTO alerts (tenant, event_id, rule, severity, kind, agent_name, "
                    "trace_id, title, explanation, evidence, dedup_key, occurrences, "
                    "first_seen, last_seen) VALUES (:tenant, :event_id, :rule, :severity, "
                    ":kind, :agent, :trace_id, :title, :explanation, :evidence, :dedup_key, "
                    ":n, :ts, :ts) ON CONFLICT (tenant, event_id) DO NOTHING RETURNING id"),
                    {**p, "rule": firing.rule, "severity": firing.severity, "kind": firing.kind,
                     "agent": firing.agent, "trace_id": firing.trace_id, "title": firing.title,
                     "explanation": firing.explanation,
                     "evidence": json.dumps(firing.evidence)})
                new = bool(made)  # a firing recorded before (a replayed batch) is not new
                alert_id = made[0][0] if made else self._alerts_run(
                    what, "SELECT id FROM alerts WHERE tenant = :tenant AND "
                    "event_id = :event_id", p)[0][0]
        alert = self.get_alert(int(alert_id))
        assert alert is not None
        return alert, new

    def count_repeats(self, tenant: str, dedup_key: str, n: int, last_seen: float) -> None:
        """Add ``n`` suppressed repeats to the open alert of an incident."""
        self._alerts_run("count alert repeats", f"UPDATE alerts SET occurrences = occurrences "
                         f"+ :n, last_seen = {_LATER} WHERE tenant = :tenant AND "
                         "dedup_key = :dedup_key AND status = 'open'",
                         {"n": n, "ts": last_seen, "tenant": tenant, "dedup_key": dedup_key})

    def get_alert(self, alert_id: int, tenant: str | None = None) -> Alert | None:
        """One alert by id (None when absent or, given ``tenant``, of another tenant)."""
        rows = self._alerts_run("read alerts", f"SELECT {_COLUMNS} FROM alerts WHERE id = :id",
                                {"id": alert_id})
        if not rows or (tenant is not None and rows[0][1] != tenant):
            return None
        return _alert(rows[0])

    def list_alerts(self, tenant: str, status: str | None = None, since: float | None = None,
                    limit: int = 100) -> list[Alert]:
        """Alerts of a tenant, newest first (``status`` open or acked; None for both)."""
        where = ["tenant = :tenant"]
        if status is not None:
            where.append("status = :status")
        if since is not None:
            where.append("last_seen >= :since")
        rows = self._alerts_run(
            "read alerts", f"SELECT {_COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
            "ORDER BY last_seen DESC, id DESC LIMIT :limit",
            {"tenant": tenant, "status": status, "since": since, "limit": limit})
        return [_alert(r) for r in rows]

    def ack_alert(self, alert_id: int, tenant: str, by: str, note: str | None = None,
                  now: float | None = None) -> tuple[Alert | None, bool]:
        """Acknowledge an alert; (alert, True) when this call acknowledged it, (alert, False)
        when it already was, (None, False) when the tenant has no such alert."""
        alert = self.get_alert(alert_id, tenant)
        if alert is None or alert.status == "acked":
            return alert, False
        at = time.time() if now is None else now
        done = self._alerts_run(
            "acknowledge the alert", "UPDATE alerts SET status = 'acked', acked_by = :by, "
            "acked_at = :at, ack_note = :note WHERE id = :id AND status = 'open' RETURNING id",
            {"by": by, "at": at, "note": note, "id": alert_id})
        return self.get_alert(alert_id), bool(done)  # False: someone else acked it meanwhile

    def record_delivery(self, alert_id: int, sink: str, status: str, attempts: int,
                        last_error: str | None, payload: str) -> None:
        """Keep how one delivery to a sink ended (``dead``: the dead letter)."""
        self._alerts_run(
            "record an alert delivery", "INSERT INTO alert_deliveries (alert_id, sink, status, "
            "attempts, last_error, payload, at) VALUES (:alert_id, :sink, :status, :attempts, "
            ":last_error, :payload, :at)",
            {"alert_id": alert_id, "sink": sink, "status": status, "attempts": attempts,
             "last_error": last_error, "payload": payload, "at": time.time()})

    def list_deliveries(self, status: str | None = None,
                        alert_id: int | None = None) -> list[dict[str, Any]]:
        """Delivery records (``status='dead'``: the dead letters), oldest first."""
        where = [w for w, v in (("status = :status", status), ("alert_id = :alert_id", alert_id))
                 if v is not None]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._alerts_run("read alert deliveries", "SELECT id, alert_id, sink, status, "
                                f"attempts, last_error, payload, at FROM alert_deliveries{clause} "
                                "ORDER BY id", {"status": status, "alert_id": alert_id})
        keys = ("id", "alert_id", "sink", "status", "attempts", "last_error", "payload", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- history for the detection rules -------------------------------------------------------

    def _history(self, name: str, params: dict[str, Any]) -> list[Any]:
        return self._alerts_run("read the agent's history", self._HISTORY_SQL[name], params)

    def agent_history(self, tenant: str, agent: str, since: float, before: float,
                      bucket_seconds: int) -> dict[str, Any]:
        """Per-bucket tool calls, errors and tokens of an agent, its tools and its hours of day
        (the detection rules' own events left out)."""
        p = {"tenant": tenant, "agent": agent, "since": since, "before": before,
             "bucket": int(bucket_seconds), **self._history_params(since, before)}
        out: dict[str, Any] = {"tool_calls": {}, "errors": {}, "tokens": {}}
        for b, calls, errors, tokens in self._history("agent_buckets", p):
            b = int(b)
            out["tool_calls"][b], out["errors"][b], out["tokens"][b] = (
                int(calls), int(errors), int(tokens))
        tools = self._history("agent_tools", p)
        out["tools"] = [t for t, _ in tools]
        out["calls"] = sum(int(n) for _, n in tools)
        hours = [0] * 24
        for h, n in self._history("agent_hours", p):
            hours[int(h) % 24] = int(n)
        out["hours"] = hours
        first = self._history("agent_first", p)
        out["first_seen"] = first[0][0] if first else None
        return out

    def day_spend(self, tenant: str, agent: str, day_start: float,
                  before: float) -> tuple[float, int]:
        """(cost USD, tokens) an agent spent from ``day_start`` until ``before``."""
        row = self._alerts_run("read the agent's spend", self._HISTORY_SQL["day_spend"], {
            "tenant": tenant, "agent": agent, "since": day_start, "before": before,
            **self._history_params(day_start, before)})[0]
        return float(row[0]), int(row[1])

    def last_stop(self, tenant: str, agent: str, before: float, stop_actions: list[str],
                  resume_actions: list[str],
                  lookback: float = 7 * 86400) -> tuple[float, str] | None:
        """(timestamp, event id) of the human stop of ``agent`` in force at ``before``, or
        None."""
        since = before - lookback
        rows = self._alerts_run("read human interventions", self._HISTORY_SQL["last_stop"], {
            "tenant": tenant, "agent": agent, "since": since, "before": before,
            "acts": json.dumps(stop_actions + resume_actions),
            **self._history_params(since, before)})
        if not rows or rows[0][2] not in stop_actions:
            return None
        return float(rows[0][0]), str(rows[0][1])

