"""Period figures for the dashboard from rollups kept in memory, so that a page over a million
events costs milliseconds instead of a scan of the period.

At startup one SQL pass per tenant groups the log by hour (and, for the last hours, by minute)
and by (agent, event type, action, error type). Each page then catches up with the events
sequenced since (``seq >= next``, on the tenant+seq index) before answering, so the figures are
exact and current: the log is append-only and ``seq`` is assigned in commit order, so every event
is counted exactly once. Windows up to 6 hours use minute buckets, longer ones hour buckets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["MINUTE_HORIZON", "Rollups", "Stats"]

MINUTE_HORIZON = 7 * 3600  # minute buckets are kept for this long; hours forever
_KEYED_ACTIONS = ("'agent.tool_call', 'agent.tool_result', 'agent.error', 'agent.decision', "
                  "'agent.human_intervention', 'agent.security', 'agent.compliance'")
_COLUMNS = (
    "agent_name, event_type, "
    "CASE WHEN event_type = 'agent.handoff' THEN coalesce(json_extract(payload, "
    "'$.params.to_agent'), action) "
    f"WHEN event_type IN ({_KEYED_ACTIONS}) THEN action END AS action, "
    "CASE WHEN event_type = 'agent.error' THEN coalesce(error_type, 'Unknown') END AS error_type, "
    "count(*) AS n, coalesce(sum(cost_usd), 0) AS cost, coalesce(sum(duration_ms), 0) AS dur_sum, "
    "count(duration_ms) AS dur_n, max(duration_ms) AS dur_max, "
    "coalesce(sum(confidence), 0) AS conf_sum, count(confidence) AS conf_n, "
    "min(confidence) AS conf_min, coalesce(sum(confidence < 0.5), 0) AS low_conf, "
    "coalesce(sum(prompt_tokens), 0) AS pt, coalesce(sum(completion_tokens), 0) AS ct, "
    "max(timestamp) AS last_ts, max(seq) AS max_seq")
_SQL = {
    "dash_rollup_hours": (
        f"SELECT CAST(timestamp / 3600 AS INTEGER) AS bucket, {_COLUMNS} FROM events "
        "WHERE tenant = :tenant AND seq >= :from_seq AND seq < :to_seq "
        "GROUP BY 1, 2, 3, 4, 5 LIMIT :limit"),
    "dash_rollup_minutes": (
        f"SELECT CAST(timestamp / 60 AS INTEGER) AS bucket, {_COLUMNS} FROM events "
        "WHERE tenant = :tenant AND timestamp >= :since AND seq < :to_seq "
        "GROUP BY 1, 2, 3, 4, 5 LIMIT :limit"),
    "dash_rollup_new": (
        f"SELECT CAST(timestamp / 60 AS INTEGER) AS bucket, {_COLUMNS} FROM events "
        "WHERE tenant = :tenant AND seq >= :from_seq GROUP BY 1, 2, 3, 4, 5 LIMIT :limit"),
    "dash_tenants": (
        "WITH RECURSIVE t(name) AS (SELECT min(tenant) FROM events UNION ALL "
        "SELECT (SELECT min(tenant) FROM events WHERE tenant > t.name) FROM t "
        "WHERE t.name IS NOT NULL) SELECT name FROM t WHERE name IS NOT NULL LIMIT :limit"),
    "dash_next_seq": "SELECT coalesce(max(seq), -1) + 1 AS next FROM events "
                     "WHERE tenant = :tenant LIMIT :limit",
}
# Stats vector: n, cost, dur_sum, dur_n, dur_max, conf_sum, conf_n, conf_min, low_conf, pt, ct,
# last_ts.
Stats = list[Any]
Key = tuple[str, str, str | None, str | None]  # agent, event type, action, error type
_CHUNK = 250_000  # seq range per build query (keeps each read transaction short)


def _row_stats(r: dict[str, Any]) -> Stats:
    return [int(r["n"]), float(r["cost"]), float(r["dur_sum"]), int(r["dur_n"]),
            r["dur_max"], float(r["conf_sum"]), int(r["conf_n"]), r["conf_min"],
            int(r["low_conf"]), int(r["pt"]), int(r["ct"]), r["last_ts"]]


def merge(into: Stats, s: Stats) -> None:
    """Add the stats ``s`` to ``into``."""
    for i in (0, 1, 2, 3, 5, 6, 8, 9, 10):
        into[i] += s[i]
    for i in (4, 11):
        if s[i] is not None and (into[i] is None or s[i] > into[i]):
            into[i] = s[i]
    if s[7] is not None and (into[7] is None or s[7] < into[7]):
        into[7] = s[7]


def _empty() -> Stats:
    return [0, 0.0, 0.0, 0, None, 0.0, 0, None, 0, 0, 0, None]


class _Tenant:
    def __init__(self) -> None:
        self.hours: dict[int, dict[Key, Stats]] = {}
        self.minutes: dict[int, dict[Key, Stats]] = {}
        self.next_seq = 0
        self.checked = 0.0
        # Folded summaries of whole buckets, dropped when a bucket changes.
        self.summaries: dict[tuple[int, int], Any] = {}

    def add(self, level: dict[int, dict[Key, Stats]], bucket: int, key: Key, s: Stats) -> None:
        self.summaries.pop((60 if level is self.minutes else 3600, bucket), None)
        cell = level.setdefault(bucket, {})
        if key in cell:
            merge(cell[key], s)
        else:
            cell[key] = list(s)


def _key(r: dict[str, Any]) -> Key:
    return (r["agent_name"], r["event_type"], r["action"], r["error_type"])


class Rollups:
    """Per-tenant rollups of one store, built in the background and caught up on read."""

    def __init__(self, fresh_seconds: float = 0.0) -> None:
        self.fresh_seconds = fresh_seconds
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.build_seconds: float | None = None
        self.error: str | None = None

    def _register(self) -> None:
        from agentaudit.server.dashboard.data import register
        from agentaudit.server.dashboard.pg_queries import PG_ROLLUP_SQL

        register(_SQL, PG_ROLLUP_SQL)

    def build(self, store: Store) -> None:
        """Build every tenant's rollups (the startup pass)."""
        self._register()
        start = time.perf_counter()
        try:
            for row in store.aggregate("dash_tenants", "", None, None, None, 100_000):
                with self._lock:
                    self._tenants[row["name"]] = self._build_tenant(store, row["name"])
        finally:
            self.build_seconds = time.perf_counter() - start
            self.ready.set()

    def _build_tenant(self, store: Store, tenant: str) -> _Tenant:
        t = _Tenant()
        end = int(store.aggregate("dash_next_seq", tenant, None, None, None, 1)[0]["next"])
        for first in range(0, end, _CHUNK):
            for r in store.aggregate("dash_rollup_hours", tenant, None, None, None, 10**9,
                                     from_seq=first, to_seq=min(end, first + _CHUNK)):
                t.add(t.hours, int(r["bucket"]), _key(r), _row_stats(r))
        horizon = time.time() - MINUTE_HORIZON
        for r in store.aggregate("dash_rollup_minutes", tenant, (horizon // 60) * 60, None,
                                 None, 10**9, to_seq=end):
            t.add(t.minutes, int(r["bucket"]), _key(r), _row_stats(r))
        t.next_seq, t.checked = end, time.monotonic()
        return t

    def _catch_up(self, store: Store, tenant: str) -> _Tenant:
        t = self._tenants.get(tenant)
        if t is None:
            t = self._tenants[tenant] = self._build_tenant(store, tenant)
            return t
        if time.monotonic() - t.checked < self.fresh_seconds:
            return t
        horizon = int((time.time() - MINUTE_HORIZON) // 60)
        for r in store.aggregate("dash_rollup_new", tenant, None, None, None, 10**9,
                                 from_seq=t.next_seq):
            minute, s = int(r["bucket"]), _row_stats(r)
            t.add(t.hours, minute // 60, _key(r), s)
            if minute >= horizon:
                t.add(t.minutes, minute, _key(r), s)
            t.next_seq = max(t.next_seq, int(r["max_seq"]) + 1)
        for m in [m for m in t.minutes if m < horizon]:
            del t.minutes[m]
        t.checked = time.monotonic()
        return t

    def summaries(self, store: Store, tenant: str, since: float, until: float, step: int,
                  fold: Callable[[dict[Key, Stats]], Any]) -> list[tuple[int, Any]]:
        """(bucket index from ``since`` in ``step``s, ``fold(cells of one bucket)``) of the
        period; each bucket's fold is kept until new events change the bucket."""
        if not self.ready.wait(timeout=600):
            raise TimeoutError("the dashboard's rollups are still being built")
        with self._lock:
            t = self._catch_up(store, tenant)
            size = self.bucket_size(since, until)
            level = t.minutes if size == 60 else t.hours
            first, last = int(since // size), int((until - 1e-9) // size)
            out = []
            for b in range(first, last + 1) if last - first < len(level) else sorted(
                    b for b in level if first <= b <= last):
                cell = level.get(b)
                if not cell:
                    continue
                summary = t.summaries.get((size, b))
                if summary is None:
                    summary = t.summaries[(size, b)] = fold(cell)
                out.append((int((b * size - since) // step), summary))
        return out

    def hours_with(self, store: Store, tenant: str, event_types: Iterable[str]) -> list[int]:
        """Hours (epoch hour numbers, newest first) that hold events of these types."""
        kinds = set(event_types)
        if not self.ready.wait(timeout=600):
            raise TimeoutError("the dashboard's rollups are still being built")
        with self._lock:
            t = self._catch_up(store, tenant)
            return sorted((h for h, cell in t.hours.items() if any(k[1] in kinds for k in cell)),
                          reverse=True)

    @staticmethod
    def bucket_size(since: float, until: float) -> int:
        return 60 if until - since <= 6 * 3600 and since >= time.time() - MINUTE_HORIZON \
            else 3600

    def empty(self) -> Stats:
        return _empty()
