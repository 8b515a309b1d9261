"""Retention, legal holds and erasure on the PostgreSQL store (migration ``0004_retention``).

The same store methods as ``SQLiteRetention``, so that ``agentaudit.retention`` runs unchanged on
either backend. Payloads live in ``event_payloads``, partitioned by day: erasing one sets its
``payload``, ``salt`` and ``user_id`` to NULL and records why in ``erased`` (and when in
``erased_at``), while the envelope in ``events`` and its leaf stay, so the log still verifies.

When an erasure covers a whole day partition — every payload still in it belongs to one of the
given events, none held — the partition is emptied at once (``TRUNCATE``, through
``agentaudit_truncate_payload_day``) and the day's reason goes to ``payload_days_dropped``; the
cost no longer depends on how many payloads the day holds. Otherwise the due rows are updated,
one day at a time.

Row ids handed to the retention package encode the day and the envelope's ``events.id``
(``day << 43 | id``): the day prunes every statement to one partition, the id is unique across
tenants. Every write happens in one transaction with the ``audit.*`` event that records it, and
under one advisory lock shared with hold creation, so a hold placed while a run is planned is
honoured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from agentaudit.events import TIERS
from agentaudit.exceptions import StoreError
from agentaudit.store._pg_schema import HOLD_MATCH
from agentaudit.store._pg_sql import day_of, to_psycopg
from agentaudit.store._sqlite_retention import (
    SELECTOR_COLUMNS,
    CompactionRecord,
    ErasurePlan,
    ErasureRecord,
    Hold,
    TierRuleLike,
)

if TYPE_CHECKING:
    from agentaudit.events import AuditEvent

__all__ = ["PostgresRetention", "decode_row_id", "glob_regex"]

_ID_BITS = 43
_ID_MASK = (1 << _ID_BITS) - 1
_ROW_ID = f"(e.day::bigint * {1 << _ID_BITS} + e.id)"
_JOIN = "JOIN event_payloads p ON p.tenant = e.tenant AND p.day = e.day AND p.seq = e.seq"
_LEFT_JOIN = "LEFT " + _JOIN
_HELD = f"EXISTS (SELECT 1 FROM legal_holds h WHERE {HOLD_MATCH})"
_BYTES = "octet_length(p.payload) + octet_length(p.salt)"
_HOLD_COLUMNS = ("id, tenant, reason, trace_id, session_id, agent_name, user_id, from_ts, to_ts, "
                 "created_at, created_by, released_at, released_by")
_ERASURE_COLUMNS = ("id, tenant, kind, selector, reason, at, erased, payload_bytes, refused_held, "
                    "audit_event_id")
# the column of each erasure selector: the user id lives with the payload
_SELECTOR = {k: ("p." if v == "user_id" else "e.") + v for k, v in SELECTOR_COLUMNS.items()}
_HOLDS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('agentaudit.holds', 0))"
_COMPACTION_REFUSED = (
    "compaction (--compact-before) is not available on PostgreSQL: envelopes are append-only "
    "there (grants and a trigger); retention erases payloads, and a day of payloads is "
    "emptied whole when all of it is due")


def decode_row_id(row_id: int) -> tuple[int, int]:
    """(day, events.id) of a row id of this backend."""
    return row_id >> _ID_BITS, row_id & _ID_MASK


def glob_regex(pattern: str) -> str:
    """SQLite's GLOB (``*``, ``?``, ``[...]``, case-sensitive) as an anchored POSIX regex."""
    out, i = ["^"], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            out.append(pattern[i : end + 1].replace("\\", "\\\\"))
            i = end
        else:
            out.append("\\" + c if not c.isalnum() and c != "_" else c)
        i += 1
    return "".join(out) + "$"


def tier_case(rules: Sequence[TierRuleLike]) -> tuple[str, dict[str, Any]]:
    """SQL for the effective tier of ``e`` (payload ``p``): the first matching rule's tier, else
    the stored one (``_sqlite_retention.tier_case`` in PostgreSQL's words)."""
    if not rules:
        return "e.tier", {}
    whens, params = [], {}
    for i, rule in enumerate(rules):
        conds = []
        for column, value, name in (("e.event_type", rule.event_type, "type"),
                                    ("e.agent_name", rule.agent, "agent"),
                                    ("e.action", rule.tool, "tool")):
            if value is not None:
                conds.append(f"{column} ~ :r{i}_{name}")
                params[f"r{i}_{name}"] = glob_regex(value)
        if rule.tag_key is not None:
            params[f"r{i}_tagkey"] = rule.tag_key
            tag = (f"(convert_from(p.payload, 'UTF8')::jsonb -> 'tags' ->> "
                   f"CAST(:r{i}_tagkey AS text))")
            if rule.tag_value is None:
                conds.append(f"{tag} IS NOT NULL")
            else:
                conds.append(f"{tag} ~ :r{i}_tagvalue")
                params[f"r{i}_tagvalue"] = glob_regex(rule.tag_value)
        if rule.tier not in TIERS:
            raise StoreError(f"unknown tier {rule.tier!r}")
        whens.append(f"WHEN {' AND '.join(conds) or 'true'} THEN '{rule.tier}'")
    return f"(CASE {' '.join(whens)} ELSE e.tier END)", params


def _by_day(ids: Sequence[int]) -> dict[int, list[int]]:
    days: dict[int, list[int]] = {}
    for row_id in ids:
        day, ident = decode_row_id(int(row_id))
        days.setdefault(day, []).append(ident)
    return days


class PostgresRetention:
    """Store methods for retention, holds and erasure (mixed into ``PostgresStore``)."""

    _conn: psycopg.Connection[Any]
    location: str
    _log: Any
    supports_compaction = False
    _vacuum_days: set[int]  # payload partitions with rows erased since the last reclaim_space

    if TYPE_CHECKING:
        def _write_transaction(self, what: str) -> contextlib.AbstractContextManager[None]: ...
        def _append_locked(self, unique: list[AuditEvent],
                           check_stored: bool) -> list[AuditEvent]: ...
        def ensure_days(self, days: set[int] | list[int]) -> int: ...
        _days: set[int]

    # -- reading -------------------------------------------------------------------------------

    def _select(self, query: str, params: Mapping[str, Any]) -> list[Any]:
        try:
            return self._conn.execute(to_psycopg(query), params).fetchall()  # type: ignore[arg-type]
        except psycopg.Error as e:
            raise StoreError(f"cannot read {self.location}: {str(e).strip()}") from e

    def retention_candidates(self, tenant: str, rules: Sequence[TierRuleLike],
                             last_day: Mapping[str, int]) -> list[tuple[int, str, int, int, bool]]:
        """(row id, effective tier, day, payload bytes, held) of every event whose payload is
        still stored and whose day is at most ``last_day[tier]`` (its tier's last expired day)."""
        case, params = tier_case(rules)
        limits = " ".join(f"WHEN '{t}' THEN CAST(:last_{t} AS integer)" for t in TIERS)
        params.update({f"last_{t}": int(last_day.get(t, -1)) for t in TIERS})
        params["tenant"] = tenant
        params["max_day"] = max([*last_day.values(), -1])
        query = (f"SELECT rid, eff, day, nbytes, held FROM (SELECT {_ROW_ID} AS rid, "
                 f"{case} AS eff, e.day AS day, {_BYTES} AS nbytes, {_HELD} AS held "
                 f"FROM events e {_JOIN} WHERE e.tenant = :tenant AND e.day <= :max_day "
                 "AND p.payload IS NOT NULL) s "
                 f"WHERE day <= (CASE eff {limits} ELSE -1 END) ORDER BY rid")
        return [(int(i), str(t), int(d), int(n or 0), bool(h))
                for i, t, d, n, h in self._select(query, params)]

    def retention_days(self, tenant: str, rules: Sequence[TierRuleLike]) -> list[dict[str, Any]]:
        """Per effective tier and day: events, payloads kept, erased, held and payload bytes."""
        case, params = tier_case(rules)
        params["tenant"] = tenant
        query = (f"SELECT {case} AS tier, e.day AS day, count(*) AS events, "
                 "count(p.payload) AS payloads, count(*) - count(p.payload) AS erased, "
                 f"sum(({_HELD})::int) AS held, coalesce(sum({_BYTES}), 0) AS payload_bytes "
                 f"FROM events e {_LEFT_JOIN} WHERE e.tenant = :tenant GROUP BY 1, 2 "
                 "ORDER BY 1, 2")
        names = ("tier", "day", "events", "payloads", "erased", "held", "payload_bytes")
        return [dict(zip(names, (r[0], *(int(v or 0) for v in r[1:])), strict=True))
                for r in self._select(query, params)]

    def erasure_candidates(self, tenant: str, selector: str,
                           value: str) -> tuple[list[tuple[int, int, bool]], int]:
        """((row id, payload bytes, held) of the matching events with a payload, number of
        matching events already erased)."""
        rows = self._select(
            f"SELECT {_ROW_ID}, {_BYTES}, p.payload IS NULL, {_HELD} FROM events e "
            f"{_JOIN if selector == 'user' else _LEFT_JOIN} "
            f"WHERE {_SELECTOR[selector]} = :value AND e.tenant = :tenant ORDER BY 1",
            {"value": value, "tenant": tenant})
        live = [(int(i), int(n or 0), bool(h)) for i, n, gone, h in rows if not gone]
        return live, sum(1 for r in rows if r[2])

    def holds_matching(self, tenant: str, selector: str, value: str) -> list[tuple[Hold, int]]:
        """Active holds that keep payloads of the events ``selector = value``, with counts."""
        cols = ", ".join("h." + c.strip() for c in _HOLD_COLUMNS.split(","))
        rows = self._select(
            f"SELECT {cols}, count(*) FROM events e {_JOIN} JOIN legal_holds h ON {HOLD_MATCH} "
            f"WHERE {_SELECTOR[selector]} = :value AND e.tenant = :tenant "
            f"AND p.payload IS NOT NULL GROUP BY {cols} ORDER BY h.created_at",
            {"value": value, "tenant": tenant})
        return [(Hold(*r[:-1]), int(r[-1])) for r in rows]

    def get_hold(self, hold_id: str) -> Hold | None:
        rows = self._select(f"SELECT {_HOLD_COLUMNS} FROM legal_holds WHERE id = :id",
                            {"id": hold_id})
        return Hold(*rows[0]) if rows else None

    def list_holds(self, tenant: str | None = None, active_only: bool = False) -> list[Hold]:
        """Holds, oldest first (of one tenant; only active ones)."""
        where = ["true"]
        if tenant is not None:
            where.append("tenant = :tenant")
        if active_only:
            where.append("released_at IS NULL")
        return [Hold(*r) for r in self._select(
            f"SELECT {_HOLD_COLUMNS} FROM legal_holds WHERE {' AND '.join(where)} "
            "ORDER BY created_at, id", {"tenant": tenant})]

    def held_events(self, hold: Hold) -> int:
        """How many stored events (payloads kept or not) ``hold`` matches."""
        crit = hold.criteria()
        where = ["e.tenant = :tenant"]
        for name in ("trace_id", "session_id", "agent_name"):
            if name in crit:
                where.append(f"e.{name} = :{name}")
        if "user_id" in crit:
            where.append("p.user_id = :user_id")
        if "from_ts" in crit:
            where.append("e.timestamp >= :from_ts")
        if "to_ts" in crit:
            where.append("e.timestamp < :to_ts")
        join = _JOIN if "user_id" in crit else ""
        return int(self._select(f"SELECT count(*) FROM events e {join} "
                                f"WHERE {' AND '.join(where)}",
                                {"tenant": hold.tenant, **crit})[0][0])

    def erasure_records(self, tenant: str, since: float | None = None,
                        kind: str | None = None) -> list[ErasureRecord]:
        """Retention runs and erasure requests that erased payloads, oldest first."""
        where = ["tenant = :tenant"]
        if since is not None:
            where.append("at >= :since")
        if kind is not None:
            where.append("kind = :kind")
        return [ErasureRecord(*r[:6], int(r[6]), int(r[7]), int(r[8]), r[9]) for r in self._select(
            f"SELECT {_ERASURE_COLUMNS} FROM erasures WHERE {' AND '.join(where)} "
            "ORDER BY at, id", {"tenant": tenant, "since": since, "kind": kind})]

    def erased_events(self, tenant: str, since: float | None = None,
                      limit: int = 1000) -> list[dict[str, Any]]:
        """The erased events (newest erasure first): seq, event id, type, time, erased_at, why.
        A day emptied whole gives its events the day's time and reason."""
        rows = self._select(
            "SELECT seq, event_id, event_type, agent_name, timestamp, erased_at, erased FROM ("
            "SELECT e.seq, e.event_id, e.event_type, e.agent_name, e.timestamp, "
            "coalesce(p.erased_at, d.dropped_at) AS erased_at, "
            "coalesce(p.erased, d.reason) AS erased "
            f"FROM events e {_LEFT_JOIN} LEFT JOIN payload_days_dropped d "
            "ON p.tenant IS NULL AND d.day = e.day WHERE e.tenant = :tenant "
            "AND (p.erased_at IS NOT NULL OR d.day IS NOT NULL)) s "
            "WHERE erased_at >= :since ORDER BY erased_at DESC, seq LIMIT :limit",
            {"tenant": tenant, "since": since if since is not None else 0.0, "limit": limit})
        names = ("seq", "event_id", "event_type", "agent_name", "timestamp", "erased_at",
                 "reason")
        return [dict(zip(names, r, strict=True)) for r in rows]

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _retention_transaction(self, what: str) -> Iterator[None]:
        """``_write_transaction``; on failure the cache of existing day partitions is dropped
        (one made for an ``audit.*`` event inside the rolled-back transaction is gone)."""
        try:
            with self._write_transaction(what):
                yield
        except BaseException:
            self._days.clear()
            raise

    def _append_in_transaction(self, events: Sequence[AuditEvent]) -> None:
        """Inside a write transaction: sequence and store ``audit.*`` events (fresh ids)."""
        self.ensure_days({day_of(ev.timestamp) for ev in events})
        self._append_locked(list(events), False)

    def erase_payloads(self, plan: Callable[[], ErasurePlan | None],
                       progress: Callable[[int], None] | None = None) -> ErasurePlan | None:
        """In one write transaction: run ``plan``; erase the payloads of each (reason, row ids)
        group it returns, except rows already erased and rows an active hold covers *now*; then
        call its ``finish`` with the ids actually erased per group, store the record and append
        the ``audit.*`` events it returns. A plan returning None writes nothing.

        Whole days go last (``TRUNCATE`` locks its partition until the commit), row updates
        first."""
        with self._retention_transaction("erase payloads in"):
            self._conn.execute(_HOLDS_LOCK)
            planned = plan()
            if planned is None:
                return None
            groups = [(reason, _by_day(ids)) for reason, ids in planned.groups]
            whole = self._whole_days(groups)
            erased: list[list[int]] = []
            for g, (reason, days) in enumerate(groups):
                done: list[int] = []
                for day, idents in sorted(days.items()):
                    if (g, day) not in whole:
                        done += self._update_day(day, idents, reason, planned.at)
                    if progress is not None:
                        progress(len(idents))
                erased.append(done)
            self._lock_logs_of(groups, whole)
            for g, day in sorted(whole):
                reason, days = groups[g]
                erased[g] += self._truncate_day(day, days[day], reason, planned.at)
            record, audit = planned.finish(erased)
            if record is not None:
                self._insert_record(record)
            if audit:
                self._append_in_transaction(audit)
        return planned

    @staticmethod
    def _whole_days(groups: list[tuple[str, dict[int, list[int]]]]) -> set[tuple[int, int]]:
        """(group, day) pairs that may empty their day partition at once: the days of one
        group only (one reason per day); the function decides under its lock."""
        owners: dict[int, list[int]] = {}
        for g, (_reason, days) in enumerate(groups):
            for day in days:
                owners.setdefault(day, []).append(g)
        return {(gs[0], day) for day, gs in owners.items() if len(gs) == 1}

    def _lock_logs_of(self, groups: list[tuple[str, dict[int, list[int]]]],
                      whole: set[tuple[int, int]]) -> None:
        """Take the log lock of the tenants whose days may be emptied, as ingest does, before
        locking a day partition: a collector appending a late event of that day holds its
        tenant's lock while it waits for the partition, so taking them in the other order
        (partition, then the lock for the ``audit.*`` event) could deadlock."""
        if not whole:
            return
        tenants: set[str] = set()
        for g, day in sorted(whole):  # one event per day: the day pruned to its partition
            tenants.update(r[0] for r in self._select(
                "SELECT tenant FROM events WHERE day = :day AND id = :id LIMIT 1",
                {"day": day, "id": groups[g][1][day][0]}))
        for tenant in sorted(tenants):
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                               ("agentaudit.log:" + tenant,))

    def _update_day(self, day: int, idents: list[int], reason: str, at: float) -> list[int]:
        rows = self._conn.execute(to_psycopg(
            "UPDATE event_payloads p SET payload = NULL, salt = NULL, user_id = NULL, "
            "erased = :reason, erased_at = :at "
            "FROM events e JOIN unnest(CAST(:ids AS bigint[])) AS k(id) ON e.id = k.id "
            "WHERE e.day = :day AND p.day = :day AND p.tenant = e.tenant "
            f"AND p.seq = e.seq AND p.payload IS NOT NULL AND NOT {_HELD} RETURNING e.id"),
            {"reason": reason, "at": at, "day": day, "ids": idents}).fetchall()
        if rows:
            self._vacuum_days.add(day)
        return [(day << _ID_BITS) | int(r[0]) for r in rows]

    def _truncate_day(self, day: int, idents: list[int], reason: str, at: float) -> list[int]:
        """Empty the day's partition when it holds exactly ``idents``, else update rows."""
        whole = bool(self._conn.execute(
            "SELECT agentaudit_truncate_payload_day(%s, %s::bigint[], %s, %s)",
            (day, idents, reason, at)).fetchone()[0])
        if not whole:
            return self._update_day(day, idents, reason, at)
        return [(day << _ID_BITS) | i for i in idents]

    def _insert_record(self, record: ErasureRecord) -> None:
        self._conn.execute(
            f"INSERT INTO erasures ({_ERASURE_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (record.id, record.tenant, record.kind, record.selector, record.reason, record.at,
             record.erased, record.payload_bytes, record.refused_held, record.audit_event_id))

    def still_held(self, ids: Sequence[int]) -> int:
        """How many of the rows ``ids`` keep a payload (after an erasure skipped them)."""
        total = 0
        for day, idents in _by_day(ids).items():
            total += int(self._select(
                f"SELECT count(*) FROM events e {_JOIN} "
                "JOIN unnest(CAST(:ids AS bigint[])) AS k(id) ON e.id = k.id "
                "WHERE e.day = :day AND p.day = :day AND p.payload IS NOT NULL",
                {"day": day, "ids": idents})[0][0])
        return total

    def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append ``audit.*`` events in their own transaction (a run that erased nothing)."""
        with self._retention_transaction("write to"):
            self._append_in_transaction(events)

    def insert_hold(self, hold: Hold, audit: AuditEvent) -> None:
        """Store a new hold and its ``audit.legal_hold`` event together."""
        with self._retention_transaction("store a legal hold in"):
            self._conn.execute(_HOLDS_LOCK)
            self._conn.execute(
                f"INSERT INTO legal_holds ({_HOLD_COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                tuple(getattr(hold, f.strip()) for f in _HOLD_COLUMNS.split(",")))
            self._append_in_transaction([audit])

    def mark_hold_released(self, hold_id: str, at: float, by: str | None,
                           audit: AuditEvent) -> bool:
        """Release an active hold and append its ``audit.legal_hold_released`` event; False
        when it was not active (nothing written)."""
        with self._retention_transaction("release a legal hold in"):
            cur = self._conn.execute("UPDATE legal_holds SET released_at = %s, released_by = %s "
                                     "WHERE id = %s AND released_at IS NULL", (at, by, hold_id))
            if cur.rowcount != 1:
                return False
            self._append_in_transaction([audit])
        return True

    # -- compaction: refused (envelopes are append-only here) ----------------------------------

    def compacted_size(self, tenant: str) -> int:
        """Nothing is ever compacted on PostgreSQL."""
        return 0

    def compacted_leaf_hashes(self, tenant: str,
                              batch_size: int = 10_000) -> Iterator[tuple[int, bytes]]:
        return iter(())

    def compacted_leaf_range(self, tenant: str, start: int, end: int) -> list[bytes]:
        return []

    def compaction_point(self, tenant: str, before: float) -> int:
        raise StoreError(_COMPACTION_REFUSED)

    def compact_prefix(self, tenant: str, size: int, checkpoint: tuple[bytes, str] | None,
                       record: CompactionRecord, audit: Sequence[AuditEvent]) -> int:
        raise StoreError(_COMPACTION_REFUSED)

    # -- space ---------------------------------------------------------------------------------

    def payload_bytes_on_disk(self) -> int:
        """Bytes of every payload partition (tables, TOAST, indexes)."""
        return int(self._select(
            "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
            "WHERE i.inhparent = 'event_payloads'::regclass", {})[0][0])

    def reclaim_space(self, full: bool = False) -> dict[str, int]:
        """VACUUM the payload partitions whose rows were erased one by one since the last call
        (FULL with ``full``: rewrites them, giving the space of the erased payloads back to the
        file system, under an exclusive lock); a day emptied whole needs none of it. Needs the
        table owner: for other roles PostgreSQL skips the tables with a warning, and autovacuum
        does the plain part later."""
        days = sorted(getattr(self, "_vacuum_days", set()))
        before = self.payload_bytes_on_disk()
        names = [f"event_payloads_d{d}" for d in days]
        present = {r[0] for r in self._select(
            "SELECT relname FROM pg_class WHERE relname = ANY(:names) "
            "AND relnamespace = current_schema()::regnamespace", {"names": names})}
        targets = ", ".join(f'"{n}"' for n in names if n in present)
        if targets:
            try:
                self._conn.execute(f"VACUUM (FULL) {targets}" if full else f"VACUUM {targets}")
            except psycopg.Error as e:
                raise StoreError(f"cannot vacuum {self.location}: {str(e).strip()}") from e
        self._vacuum_days = set()
        return {"bytes_before": before, "bytes_after": self.payload_bytes_on_disk(),
                "partitions_vacuumed": len(targets.split(", ")) if targets else 0,
                "full": int(full)}
