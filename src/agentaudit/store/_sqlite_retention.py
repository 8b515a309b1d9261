"""Retention, legal holds and erasure on the SQLite store (migration ``0004_retention``).

Erasing a payload sets ``payload``, ``salt`` and ``user_id`` to NULL and records why in
``erased`` (and when in ``erased_at``); ``payload_sha256`` and ``leaf_hash`` stay, so the log still
verifies (``agentaudit.integrity.verify`` reports such rows as erased). Every change here happens in
one write transaction together with the ``audit.*`` event that records it, so the log never holds
an erasure without its record, nor a record without its erasure.

The policy (which tier, how many days, the TOML file) lives in ``agentaudit.retention``; this
module only knows SQL. ``SQLiteRetention`` is mixed into ``SQLiteStore``.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agentaudit.events import TIERS
from agentaudit.exceptions import StoreError
from agentaudit.store import _sqlite_rollup as rollup

if TYPE_CHECKING:
    from agentaudit.events import AuditEvent

__all__ = ["CompactionRecord", "ErasurePlan", "ErasureRecord", "Hold", "SQLiteRetention", "TierRuleLike", "new_id"]

# An event is held when any active hold of its tenant matches it; a hold's empty criteria match
# everything, its set criteria must all match (AND).
_HOLD_MATCH = (
    "h.tenant = e.tenant AND h.released_at IS NULL "
    "AND (h.trace_id IS NULL OR h.trace_id = e.trace_id) "
    "AND (h.session_id IS NULL OR h.session_id = e.session_id) "
    "AND (h.agent_name IS NULL OR h.agent_name = e.agent_name) "
    "AND (h.user_id IS NULL OR h.user_id = e.user_id) "
    "AND (h.from_ts IS NULL OR e.timestamp >= h.from_ts) "
    "AND (h.to_ts IS NULL OR e.timestamp < h.to_ts)"
)
_HELD = f"EXISTS (SELECT 1 FROM legal_holds h WHERE {_HOLD_MATCH})"
_HOLD_COLUMNS = ("id, tenant, reason, trace_id, session_id, agent_name, user_id, from_ts, to_ts, "
                 "created_at, created_by, released_at, released_by")
_ERASURE_COLUMNS = ("id, tenant, kind, selector, reason, at, erased, payload_bytes, refused_held, "
                    "audit_event_id")
# Columns an erasure selector may name.
SELECTOR_COLUMNS = {"user": "user_id", "session": "session_id", "trace": "trace_id"}
_CHUNK = 500  # ids per UPDATE (well under SQLite's bound-parameter limit)


def new_id(prefix: str) -> str:
    """``prefix`` + 12 random hex digits (holds: ``hold_``, erasures: ``er_``, runs: ``ret_``)."""
    return prefix + secrets.token_hex(6)


class TierRuleLike(Protocol):
    """What the store needs of a classification rule (``agentaudit.retention.TierRule``)."""

    event_type: str | None
    agent: str | None
    tool: str | None
    tag_key: str | None
    tag_value: str | None
    tier: str


@dataclass(frozen=True)
class Hold:
    """A legal hold: while active, matching events keep their payloads."""

    id: str
    tenant: str
    reason: str
    trace_id: str | None = None
    session_id: str | None = None
    agent_name: str | None = None
    user_id: str | None = None
    from_ts: float | None = None
    to_ts: float | None = None
    created_at: float = 0.0
    created_by: str | None = None
    released_at: float | None = None
    released_by: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def criteria(self) -> dict[str, Any]:
        """The selectors that are set (trace_id, session_id, agent_name, user_id, from/to)."""
        names = ("trace_id", "session_id", "agent_name", "user_id", "from_ts", "to_ts")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class CompactionRecord:
    """Envelopes of seq [from_seq, to_seq), all older than ``before_ts``, dropped at ``at``."""

    id: str
    tenant: str
    before_ts: float
    from_seq: int
    to_seq: int
    at: float
    audit_event_id: str | None


@dataclass(frozen=True)
class ErasureRecord:
    """One retention run or erasure request that erased payloads (the erasure report's rows)."""

    id: str
    tenant: str
    kind: str  # "retention" or "erasure"
    selector: str | None
    reason: str
    at: float
    erased: int
    payload_bytes: int
    refused_held: int
    audit_event_id: str | None


Finish = Callable[[list[list[int]]], "tuple[ErasureRecord | None, Sequence[AuditEvent]]"]


@dataclass(frozen=True)
class ErasurePlan:
    """One erasure transaction: (reason, row ids) groups erased at ``at``, and ``finish``,
    which gets the ids actually erased per group and returns the record for the erasure report
    and the ``audit.*`` events that go into the log in the same transaction."""

    groups: Sequence[tuple[str, Sequence[int]]]
    at: float
    finish: Finish


def tier_case(rules: Sequence[TierRuleLike]) -> tuple[str, dict[str, Any]]:
    """SQL for the effective tier of ``e``: the first matching rule's tier, else the stored one."""
    if not rules:
        return "e.tier", {}
    whens, params = [], {}
    for i, rule in enumerate(rules):
        conds = []
        for column, value, name in (("e.event_type", rule.event_type, "type"),
                                    ("e.agent_name", rule.agent, "agent"),
                                    ("e.action", rule.tool, "tool")):
            if value is not None:
                conds.append(f"{column} GLOB :r{i}_{name}")
                params[f"r{i}_{name}"] = value
        if rule.tag_key is not None:
            params[f"r{i}_tagpath"] = '$.tags."' + rule.tag_key + '"'
            tag = f"json_extract(e.payload, :r{i}_tagpath)"
            if rule.tag_value is None:
                conds.append(f"{tag} IS NOT NULL")
            else:
                conds.append(f"{tag} GLOB :r{i}_tagvalue")
                params[f"r{i}_tagvalue"] = rule.tag_value
        if rule.tier not in TIERS:
            raise StoreError(f"unknown tier {rule.tier!r}")
        whens.append(f"WHEN {' AND '.join(conds) or '1'} THEN '{rule.tier}'")
    return f"(CASE {' '.join(whens)} ELSE e.tier END)", params


def _hold(row: Sequence[Any]) -> Hold:
    return Hold(*row)


class _RowRewriter:
    """Erases payloads by deleting each row and inserting it again without its payload.

    An UPDATE would leave the table's pages as full of holes as the payloads were large, and
    SQLite merges underfull pages only when rows are deleted; deleting and re-inserting (same
    rowid, every other column as it was, read from the schema so that columns added by later
    migrations are kept) packs the rows and frees whole pages for the incremental vacuum.
    """

    _ERASED = {"payload": "NULL", "salt": "NULL", "user_id": "NULL", "erased": ":reason",
               "erased_at": ":at"}

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # hidden = 0: stored columns (generated columns such as ``day`` are recomputed)
        cols = [r[1] for r in db.execute("PRAGMA table_xinfo(events)") if r[6] == 0]
        missing = set(self._ERASED) - set(cols)
        if missing:
            raise StoreError(f"the events table lacks {sorted(missing)}; migrate first")
        self.columns = ", ".join(cols)
        self.values = ", ".join(self._ERASED.get(c, c) for c in cols)
        db.execute("DROP TABLE IF EXISTS temp.erase_rows")
        db.execute(f"CREATE TEMP TABLE erase_rows AS SELECT {self.columns} FROM events WHERE 0")

    def erase(self, ids: Sequence[int], reason: str, at: float) -> list[int]:
        """Erase the rows ``ids`` that still hold a payload and no active hold covers now;
        returns the ids erased."""
        db = self.db
        marks = ", ".join("?" for _ in ids)
        db.execute(f"INSERT INTO temp.erase_rows SELECT {self.columns} FROM events AS e "
                   f"WHERE e.id IN ({marks}) AND e.payload IS NOT NULL AND NOT {_HELD}", ids)
        done = [int(r[0]) for r in db.execute("SELECT id FROM temp.erase_rows")]
        if done:
            db.execute("DELETE FROM events WHERE id IN (SELECT id FROM temp.erase_rows)")
            # derived from the erased payloads (_sqlite_rollup)
            db.execute("DELETE FROM tagged_calls WHERE event IN (SELECT id FROM temp.erase_rows)")
            db.execute(f"INSERT INTO events ({self.columns}) SELECT {self.values} "
                       "FROM temp.erase_rows ORDER BY id", {"reason": reason, "at": at})
            db.execute("DELETE FROM temp.erase_rows")
        return done

    def close(self) -> None:
        self.db.execute("DROP TABLE IF EXISTS temp.erase_rows")


class SQLiteRetention:
    """Store methods for retention, holds and erasure (mixed into ``SQLiteStore``)."""

    _db: sqlite3.Connection
    path: Any
    _log: Any

    if TYPE_CHECKING:
        def _write_transaction(self, what: str) -> contextlib.AbstractContextManager[None]: ...
        def _sign_heads(self, heads: list[tuple[str, int, bytes]]) -> list[str]: ...

    # -- reading -------------------------------------------------------------------------------

    def _select(self, query: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
        try:
            return self._db.execute(query, params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.path}: {e}") from e

    def retention_candidates(self, tenant: str, rules: Sequence[TierRuleLike],
                             last_day: Mapping[str, int]) -> list[tuple[int, str, int, int, bool]]:
        """(row id, effective tier, day, payload bytes, held) of every event whose payload is
        still stored and whose day is at most ``last_day[tier]`` (its tier's last expired day)."""
        case, params = tier_case(rules)
        limits = " ".join(f"WHEN '{t}' THEN :last_{t}" for t in TIERS)
        params.update({f"last_{t}": int(last_day.get(t, -1)) for t in TIERS})
        params["tenant"] = tenant
        params["before"] = (max([*last_day.values(), -1]) + 1) * 86400.0
        query = (f"SELECT id, eff, day, nbytes, held FROM (SELECT e.id AS id, {case} AS eff, "
                 "e.day AS day, length(e.payload) + length(e.salt) AS nbytes, "
                 f"{_HELD} AS held FROM events e WHERE e.tenant = :tenant "
                 "AND e.timestamp < :before AND e.payload IS NOT NULL) "
                 f"WHERE day <= (CASE eff {limits} ELSE -1 END) ORDER BY id")
        return [(int(i), str(t), int(d), int(n or 0), bool(h))
                for i, t, d, n, h in self._select(query, params)]

    def retention_days(self, tenant: str, rules: Sequence[TierRuleLike]) -> list[dict[str, Any]]:
        """Per effective tier and day: events, payloads kept, erased, held and payload bytes."""
        case, params = tier_case(rules)
        params["tenant"] = tenant
        query = (f"SELECT {case} AS tier, e.day AS day, count(*) AS events, "
                 "sum(e.payload IS NOT NULL) AS payloads, sum(e.payload IS NULL) AS erased, "
                 f"sum({_HELD}) AS held, "
                 "coalesce(sum(length(e.payload) + length(e.salt)), 0) AS payload_bytes "
                 "FROM events e WHERE e.tenant = :tenant GROUP BY 1, 2 ORDER BY 1, 2")
        names = ("tier", "day", "events", "payloads", "erased", "held", "payload_bytes")
        return [dict(zip(names, r, strict=True)) for r in self._select(query, params)]

    def erasure_candidates(self, tenant: str, selector: str,
                           value: str) -> tuple[list[tuple[int, int, bool]], int]:
        """((row id, payload bytes, held) of the matching events with a payload, number of
        matching events already erased)."""
        column = SELECTOR_COLUMNS[selector]
        rows = self._select(
            f"SELECT e.id, length(e.payload) + length(e.salt), e.payload IS NULL, {_HELD} "
            f"FROM events e WHERE e.{column} = ? AND +e.tenant = ? ORDER BY e.id",
            (value, tenant))
        live = [(int(i), int(n or 0), bool(h)) for i, n, gone, h in rows if not gone]
        return live, sum(1 for r in rows if r[2])

    def holds_matching(self, tenant: str, selector: str, value: str) -> list[tuple[Hold, int]]:
        """Active holds that keep payloads of the events ``selector = value``, with counts."""
        column = SELECTOR_COLUMNS[selector]
        rows = self._select(
            f"SELECT {', '.join('h.' + c.strip() for c in _HOLD_COLUMNS.split(','))}, count(*) "
            f"FROM events e JOIN legal_holds h ON {_HOLD_MATCH} "
            f"WHERE e.{column} = ? AND +e.tenant = ? AND e.payload IS NOT NULL "
            "GROUP BY h.id ORDER BY h.created_at", (value, tenant))
        return [(_hold(r[:-1]), int(r[-1])) for r in rows]

    def get_hold(self, hold_id: str) -> Hold | None:
        rows = self._select(f"SELECT {_HOLD_COLUMNS} FROM legal_holds WHERE id = ?", (hold_id,))
        return _hold(rows[0]) if rows else None

    def list_holds(self, tenant: str | None = None, active_only: bool = False) -> list[Hold]:
        """Holds, oldest first (of one tenant; only active ones)."""
        where = ["1"]
        params: list[Any] = []
        if tenant is not None:
            where.append("tenant = ?")
            params.append(tenant)
        if active_only:
            where.append("released_at IS NULL")
        return [_hold(r) for r in self._select(
            f"SELECT {_HOLD_COLUMNS} FROM legal_holds WHERE {' AND '.join(where)} "
            "ORDER BY created_at, id", params)]

    def held_events(self, hold: Hold) -> int:
        """How many stored events (payloads kept or not) ``hold`` matches."""
        crit = hold.criteria()
        where = ["e.tenant = ?"]
        params: list[Any] = [hold.tenant]
        for name in ("trace_id", "session_id", "agent_name", "user_id"):
            if name in crit:
                where.append(f"e.{name} = ?")
                params.append(crit[name])
        if "from_ts" in crit:
            where.append("e.timestamp >= ?")
            params.append(crit["from_ts"])
        if "to_ts" in crit:
            where.append("e.timestamp < ?")
            params.append(crit["to_ts"])
        return int(self._select(f"SELECT count(*) FROM events e WHERE {' AND '.join(where)}",
                              params)[0][0])

    def erasure_records(self, tenant: str, since: float | None = None,
                        kind: str | None = None) -> list[ErasureRecord]:
        """Retention runs and erasure requests that erased payloads, oldest first."""
        where: list[str] = ["tenant = ?"]
        params: list[Any] = [tenant]
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        return [ErasureRecord(*r) for r in self._select(
            f"SELECT {_ERASURE_COLUMNS} FROM erasures WHERE {' AND '.join(where)} "
            "ORDER BY at, id", params)]

    def erased_events(self, tenant: str, since: float | None = None,
                      limit: int = 1000) -> list[dict[str, Any]]:
        """The erased events (newest erasure first): seq, event id, type, time, erased_at, why."""
        rows = self._select(
            "SELECT seq, event_id, event_type, agent_name, timestamp, erased_at, erased "
            "FROM events WHERE tenant = ? AND erased_at >= ? AND erased_at IS NOT NULL "
            "ORDER BY erased_at DESC, seq LIMIT ?",
            (tenant, since if since is not None else 0.0, limit))
        names = ("seq", "event_id", "event_type", "agent_name", "timestamp", "erased_at",
                 "reason")
        return [dict(zip(names, r, strict=True)) for r in rows]

    # -- writing -------------------------------------------------------------------------------

    def _append_in_transaction(self, events: Sequence[AuditEvent]) -> None:
        """Inside a write transaction: sequence and store events (fresh ids, no duplicates)."""
        from agentaudit.store import _sqlite_sql as sql

        rows = self._log.sequence(self._db, events, sql.load_log_state, sql.last_checkpoint)
        sql.insert_events(self._db, rows)
        sql.save_log_state(self._db, self._log.pending_states())
        sql.save_tiles(self._db, self._log.tiles)
        self._sign_heads(self._log.heads)

    def erase_payloads(self, plan: Callable[[], ErasurePlan | None],
                       progress: Callable[[int], None] | None = None) -> ErasurePlan | None:
        """In one write transaction: run ``plan``; erase the payloads of each (reason, row ids)
        group it returns, except rows already erased and rows an active hold covers *now* (so a
        hold created after the candidates were read is honoured); then call its ``finish`` with
        the ids actually erased per group, store the record and append the ``audit.*`` events
        it returns. A plan returning None writes nothing."""
        db = self._db
        with self._write_transaction("erase payloads in"):
            planned = plan()
            if planned is None:
                return None
            erased: list[list[int]] = []
            rewrite = _RowRewriter(db)
            for reason, ids in planned.groups:
                done: list[int] = []
                for start in range(0, len(ids), _CHUNK):
                    done.extend(rewrite.erase(ids[start : start + _CHUNK], reason, planned.at))
                    if progress is not None:
                        progress(len(ids[start : start + _CHUNK]))
                erased.append(done)
            rewrite.close()
            record, audit = planned.finish(erased)
            if record is not None:
                db.execute(f"INSERT INTO erasures ({_ERASURE_COLUMNS}) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (record.id, record.tenant, record.kind, record.selector,
                            record.reason, record.at, record.erased, record.payload_bytes,
                            record.refused_held, record.audit_event_id))
            if audit:
                self._append_in_transaction(audit)
        return planned

    def still_held(self, ids: Sequence[int]) -> int:
        """How many of the rows ``ids`` keep a payload (after an erasure skipped them)."""
        total = 0
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            total += int(self._select(
                f"SELECT count(*) FROM events WHERE id IN ({', '.join('?' for _ in chunk)}) "
                "AND payload IS NOT NULL", chunk)[0][0])
        return total

    def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append ``audit.*`` events in their own transaction (a run that erased nothing)."""
        with self._write_transaction("write to"):
            self._append_in_transaction(events)

    def insert_hold(self, hold: Hold, audit: AuditEvent) -> None:
        """Store a new hold and its ``audit.legal_hold`` event together."""
        with self._write_transaction("store a legal hold in"):
            self._db.execute(f"INSERT INTO legal_holds ({_HOLD_COLUMNS}) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             tuple(getattr(hold, f.strip()) for f in _HOLD_COLUMNS.split(",")))
            self._append_in_transaction([audit])

    def mark_hold_released(self, hold_id: str, at: float, by: str | None,
                           audit: AuditEvent) -> bool:
        """Release an active hold and append its ``audit.legal_hold_released`` event; False
        when it was not active (nothing written)."""
        with self._write_transaction("release a legal hold in"):
            cur = self._db.execute("UPDATE legal_holds SET released_at = ?, released_by = ? "
                                   "WHERE id = ? AND released_at IS NULL", (at, by, hold_id))
            if cur.rowcount != 1:
                return False
            self._append_in_transaction([audit])
        return True

    # -- compaction ----------------------------------------------------------------------------

    def compacted_size(self, tenant: str) -> int:
        """How many leading events of the tenant's log were compacted (leaf hashes kept)."""
        if not self._select("SELECT 1 FROM sqlite_master WHERE name = 'compacted_leaves'", ()):
            return 0  # a file opened read-only before migration 0004
        return int(self._select("SELECT coalesce(max(seq) + 1, 0) FROM compacted_leaves "
                                "WHERE tenant = ?", (tenant,))[0][0])

    def compacted_leaf_hashes(self, tenant: str,
                              batch_size: int = 10_000) -> Iterator[tuple[int, bytes]]:
        """(seq, leaf hash) of the compacted prefix of the tenant's log, in seq order."""
        if not self.compacted_size(tenant):
            return
        last = -1
        while True:
            rows = self._select("SELECT seq, leaf_hash FROM compacted_leaves WHERE tenant = ? "
                                "AND seq > ? ORDER BY seq LIMIT ?", (tenant, last, batch_size))
            yield from rows
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    def compacted_leaf_range(self, tenant: str, start: int, end: int) -> list[bytes]:
        """Compacted leaf hashes of seq in [start, end)."""
        return [r[0] for r in self._select(
            "SELECT leaf_hash FROM compacted_leaves WHERE tenant = ? AND seq >= ? AND seq < ? "
            "ORDER BY seq", (tenant, start, end))]

    def compaction_point(self, tenant: str, before: float) -> int:
        """The log size up to which every event is older than ``before`` and not held: the
        events with seq below it may be compacted (a prefix, so the log stays contiguous)."""
        row = self._select(f"SELECT min(e.seq) FROM events e WHERE e.tenant = ? "
                           f"AND (e.timestamp >= ? OR {_HELD})", (tenant, before))[0]
        if row[0] is not None:
            return int(row[0])
        return int(self._select("SELECT coalesce(max(size), 0) FROM log_state WHERE tenant = ?",
                                (tenant,))[0][0])

    def prefix_leaf_hashes(self, tenant: str, size: int) -> Iterator[bytes]:
        """The first ``size`` leaf hashes of the log (compacted ones, then stored events)."""
        for seq, leaf in self.compacted_leaf_hashes(tenant):
            if seq >= size:
                return
            yield leaf
        start = self.compacted_size(tenant)
        for i in range(start, size, 10_000):
            yield from (r[0] for r in self._select(
                "SELECT leaf_hash FROM events WHERE tenant = ? AND seq >= ? AND seq < ? "
                "ORDER BY seq", (tenant, i, min(size, i + 10_000))))

    def compact_prefix(self, tenant: str, size: int, checkpoint: tuple[bytes, str] | None,
                       record: CompactionRecord, audit: Sequence[AuditEvent]) -> int:
        """Drop the envelopes of seq [compacted, size), keeping their leaf hashes, together
        with a checkpoint (root, signed note) at ``size``, the record and the audit events, in
        one transaction; returns how many events were dropped."""
        db = self._db
        with self._write_transaction("compact"):
            start = self.compacted_size(tenant)
            if start != record.from_seq:
                raise StoreError("the log was compacted concurrently; run again")
            held = self._select(f"SELECT count(*) FROM events e WHERE e.tenant = ? AND "
                                f"e.seq >= ? AND e.seq < ? AND {_HELD}", (tenant, start, size))
            if held[0][0]:
                raise StoreError(f"{held[0][0]} events to compact came under a legal hold; "
                                 "run again")
            db.execute("INSERT INTO compacted_leaves (tenant, seq, leaf_hash) SELECT tenant, "
                       "seq, leaf_hash FROM events WHERE tenant = ? AND seq >= ? AND seq < ?",
                       (tenant, start, size))
            dropped = db.execute("DELETE FROM events WHERE tenant = ? AND seq >= ? AND seq < ?",
                                 (tenant, start, size)).rowcount
            if dropped != size - start:
                raise StoreError(f"expected {size - start} events to compact, found {dropped}")
            rollup.rebuild(db, tenant)
            if checkpoint is not None:
                db.execute("INSERT OR IGNORE INTO checkpoints (tenant, size, root, note, "
                           "created_at) VALUES (?, ?, ?, ?, ?)",
                           (tenant, size, checkpoint[0], checkpoint[1], record.at))
            db.execute("INSERT INTO compactions (id, tenant, before_ts, from_seq, to_seq, at, "
                       "audit_event_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (record.id, tenant, record.before_ts, record.from_seq, record.to_seq,
                        record.at, record.audit_event_id))
            self._append_in_transaction(audit)
        return int(dropped)

    # -- space ---------------------------------------------------------------------------------

    def storage_pages(self) -> dict[str, int]:
        """page_size, page_count, freelist_count and auto_vacuum (0 none, 1 full, 2 incremental)."""
        return {name: int(self._db.execute(f"PRAGMA {name}").fetchone()[0])
                for name in ("page_size", "page_count", "freelist_count", "auto_vacuum")}

    def reclaim_space(self, full: bool = False) -> dict[str, int]:
        """Give free pages back to the file system: an incremental vacuum when the file allows
        it (pages freed whole, e.g. by erasing large payloads); with ``full`` a VACUUM, which
        also compacts partly emptied pages and switches an older file to incremental
        auto-vacuum. Returns pages before/after."""
        before = self.storage_pages()
        try:
            if full:
                self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._db.execute("VACUUM")
            elif before["auto_vacuum"] == 2:
                # sqlite3's execute() frees one page per step; a script runs it to completion
                self._db.executescript("PRAGMA incremental_vacuum;")
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            raise StoreError(f"cannot vacuum {self.path}: {e}") from e
        after = self.storage_pages()
        return {"pages_before": before["page_count"], "pages_after": after["page_count"],
                "freelist_after": after["freelist_count"], "page_size": after["page_size"],
                "auto_vacuum": after["auto_vacuum"]}

