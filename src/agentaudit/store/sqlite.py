"""The embedded store: one SQLite file in WAL mode, zero setup.

Writes happen in ``BEGIN IMMEDIATE`` transactions, so several processes may share one file: each
transaction reads the tenant's log size, sequences its events after it, and commits atomically.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentaudit.events import AuditEvent
from agentaudit.exceptions import StoreError
from agentaudit.store import _sqlite_sql as sql
from agentaudit.store._sqlite_alerts import SQLiteAlerts
from agentaudit.store._sqlite_retention import SQLiteRetention
from agentaudit.store._sqlite_wide import NotUTF8, WideReader
from agentaudit.store.base import (
    AppendResult,
    EventQuery,
    Page,
    Store,
    StoreInfo,
    make_cursor,
)
from agentaudit.store.log import CheckpointPolicy, LogSequencer, origin_for
from agentaudit.store.rows import LOG_COLUMNS, SELECT_COLUMNS, event_from_row, log_columns

if TYPE_CHECKING:
    from agentaudit.integrity.checkpoint import Signer
    from agentaudit.store._sqlite_keys import ApiKey

__all__ = ["SQLiteStore"]

# Binding None goes through sqlite3's adapter look-up, which fails slowly (an exception per NULL
# parameter, ~0.8 µs). An identity adapter for NoneType binds the same NULL without it; it changes
# nothing for other users of sqlite3 in the process.
sqlite3.register_adapter(type(None), {}.get)

_SELECT = "SELECT " + ", ".join(SELECT_COLUMNS) + " FROM events"
_SYNC_MODES = {"off", "normal", "full", "extra"}


class SQLiteStore(SQLiteRetention, SQLiteAlerts, Store):
    """``Store`` on a SQLite file. ``synchronous='full'`` makes every commit survive power loss;
    ``'normal'`` survives a killed process (WAL) and is faster."""

    backend = "sqlite"
    # True when writers of other processes share the file (``serve --workers``): the seq-free
    # part of sequencing is done before the write lock (``LogSequencer.prepare``)
    prepare_outside_lock = False

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "full",
                 integrity: bool = True, readonly: bool = False, create: bool = True,
                 signer: Signer | None = None,
                 checkpoint_policy: CheckpointPolicy | None = None) -> None:
        self.path = Path(path)
        self._readonly = readonly
        if synchronous not in _SYNC_MODES:
            raise StoreError(f"synchronous must be one of {sorted(_SYNC_MODES)}, not {synchronous!r}")
        if not create and not self.path.exists():
            raise StoreError(f"no audit database at {self.path}")
        try:
            if readonly:
                uri = f"file:{self.path.resolve()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None,
                                           check_same_thread=False)
            else:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                # before WAL: a new file frees erased pages (docs/retention.md); no-op otherwise
                self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute(f"PRAGMA synchronous = {synchronous}")
            self._db.execute("PRAGMA cache_size = -65536")
            self._db.execute("PRAGMA temp_store = MEMORY")
            if not readonly:
                sql.migrate(self._db)
            elif not sql.is_initialised(self._db):
                raise StoreError(f"{self.path} is not an agentaudit database")
        except sqlite3.Error as e:
            raise StoreError(f"cannot open {self.path}: {e}") from e
        self.policy = checkpoint_policy or CheckpointPolicy.from_env()
        self._log = LogSequencer(integrity=integrity, policy=self.policy)
        self.integrity = integrity
        self._signer = signer
        self.log_id = sql.log_id(self._db)
        # Reports read the rollups of migration 0006 when the file has them (a store opened
        # read-only may predate it); False makes them read the rows (tests compare the two).
        self.use_rollups = sql.has_rollups(self._db)

    # -- writing -------------------------------------------------------------------------------

    def append_batch(self, events: Sequence[AuditEvent]) -> AppendResult:
        if not events:
            return AppendResult(0, 0)
        unique, dups = _dedupe_in_batch(events)
        db = self._db
        prepared = self._log.prepare(unique) if self.prepare_outside_lock else None
        with self._write_transaction("write to"):
            try:
                rows = self._log.sequence(db, unique, sql.load_log_state, sql.last_checkpoint,
                                          prepared)
                sql.insert_events(db, rows)
            except sqlite3.IntegrityError:
                # Some event ids are already stored (a retried batch): skip them.
                db.execute("ROLLBACK")
                db.execute("BEGIN IMMEDIATE")
                fresh = sql.filter_new(db, unique)
                dups += len(unique) - len(fresh)
                if prepared is not None:
                    prepared = self._log.pick(prepared, unique, fresh)
                unique = fresh
                rows = self._log.sequence(db, unique, sql.load_log_state, sql.last_checkpoint,
                                          prepared)
                sql.insert_events(db, rows)
            sql.save_log_state(db, self._log.pending_states())
            sql.save_tiles(db, self._log.tiles)
            self._sign_heads(self._log.heads)
        return AppendResult(len(unique), dups)

    @contextlib.contextmanager
    def _write_transaction(self, what: str) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; sqlite errors become StoreError."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                self._log.discard_pending()
        except sqlite3.Error as e:
            raise StoreError(f"cannot {what} {self.path}: {e}") from e

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def signer(self) -> Signer:
        """The checkpoint signing key (created on first use in the user's config dir)."""
        if self._signer is None:
            from agentaudit.integrity.checkpoint import load_or_create_signing_key

            self._signer = load_or_create_signing_key("agentaudit")
        return self._signer

    def _sign_heads(self, heads: list[tuple[str, int, bytes]]) -> list[str]:
        """Inside a write transaction: sign and store checkpoints of these log heads."""
        from agentaudit.integrity.checkpoint import format_checkpoint, sign_note

        notes = []
        now = time.time()
        for tenant, size, root in heads:
            note = sign_note(format_checkpoint(origin_for(self.log_id, tenant), size, root),
                             self.signer)
            sql.insert_checkpoint(self._db, tenant, size, root, note, now)
            notes.append(note)
        return notes

    def checkpoint(self, tenant: str | None = None) -> list[str]:
        """Sign a checkpoint now for every tenant (or one) whose log grew since its last one."""
        if not self.integrity:
            return []
        from agentaudit.integrity.merkle import CompactRange

        db = self._db
        with self._write_transaction("write a checkpoint to"):
            tenants = [tenant] if tenant else [r[0] for r in db.execute(
                "SELECT tenant FROM log_state")]
            heads = []
            for t in tenants:
                size, frontier = sql.load_log_state(db, t)
                if frontier and size > sql.last_checkpoint(db, t)[0]:
                    heads.append((t, size, CompactRange.from_bytes(frontier).root()))
            notes = self._sign_heads(heads)
        return notes

    def latest_checkpoint(self, tenant: str) -> tuple[int, bytes, str, float] | None:
        """(size, root, signed note, created_at) of the tenant's newest checkpoint."""
        rows = self._rows("SELECT size, root, note, created_at FROM checkpoints WHERE tenant = ? "
                          "ORDER BY size DESC LIMIT 1", (tenant,))
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    def checkpoints(self, tenant: str) -> list[tuple[int, bytes, str, float]]:
        """Every checkpoint of the tenant, oldest first."""
        return [tuple(r) for r in self._rows(  # type: ignore[misc]
            "SELECT size, root, note, created_at FROM checkpoints WHERE tenant = ? ORDER BY size",
            (tenant,))]

    def log_state(self, tenant: str) -> tuple[int, bytes | None]:
        """(size, serialized compact range) the store believes the tenant's log has."""
        return sql.load_log_state(self._db, tenant)

    def leaf_hashes(self, tenant: str, start: int, end: int) -> list[bytes]:
        """Stored leaf hashes of seq in [start, end) (of compacted events too)."""
        compacted = self.compacted_size(tenant)
        if start < compacted:
            head = self.compacted_leaf_range(tenant, start, min(end, compacted))
            return head + (self.leaf_hashes(tenant, compacted, end) if end > compacted else [])
        return [r[0] for r in self._rows(
            "SELECT leaf_hash FROM events WHERE tenant = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (tenant, start, end))]

    def log_span(self, tenant: str, since: float | None,
                 until: float | None) -> tuple[int, int] | None:
        """(first seq, last seq + 1) of the tenant's events with ``since <= timestamp < until``
        (either bound may be None), or None when there are none: the part of the log that
        ``log_rows`` must read for a period (seq is not in time order: backfills keep their
        timestamps)."""
        lo, hi = self._rows("SELECT min(seq), max(seq) FROM events WHERE tenant = ? "
                            "AND timestamp >= ? AND timestamp < ?",
                            (tenant, -math.inf if since is None else since,
                             math.inf if until is None else until))[0]
        return None if lo is None else (int(lo), int(hi) + 1)

    def log_row(self, tenant: str, event_id: str) -> tuple[Any, ...] | None:
        """One raw row (``LOG_COLUMNS``) by event id."""
        rows = self._rows(f"SELECT {', '.join(LOG_COLUMNS)} FROM events "
                          "WHERE tenant = ? AND event_id = ?", (tenant, event_id))
        return tuple(rows[0]) if rows else None

    def tile_roots(self, tenant: str) -> dict[int, bytes]:
        """Stored roots of the complete 256-leaf subtrees of the tenant's log, by tile index."""
        return {int(i): h for i, h in self._rows(
            "SELECT idx, hash FROM merkle_tiles WHERE tenant = ?", (tenant,))}

    def log_rows(self, tenant: str, batch_size: int = 10_000, start: int | None = None,
                 stop: int | None = None,
                 columns: Sequence[str] = LOG_COLUMNS) -> Iterator[tuple[Any, ...]]:
        """Raw rows of the tenant's log in seq order, for verification (``columns``, some of
        ``LOG_COLUMNS``): all of them, or those with ``start <= seq < stop`` (either bound may be
        None). Rows whose seq is not a number sort after every number, so only an open
        ``stop`` sees them. Text that is not valid UTF-8 comes back with its bad bytes as
        surrogate escapes (``WideReader``), so verify can name the row."""
        cols = log_columns(columns)
        seq_at = list(columns).index("seq")
        last: Any = -math.inf if start is None else start
        op = ">" if start is None else ">="
        bound = "" if stop is None else " AND seq < :stop"
        while True:
            rest = f"FROM events WHERE tenant = :tenant AND seq {op} :last{bound} ORDER BY seq LIMIT :n"
            params = {"tenant": tenant, "last": last, "stop": stop, "n": batch_size}
            rows = self._wide_rows(cols, rest, params)
            yield from rows
            if len(rows) < batch_size:
                return
            last, op = rows[-1][seq_at], ">"

    # -- reading -------------------------------------------------------------------------------

    @functools.cached_property
    def _wide(self) -> WideReader | None:
        """The reader of wide rows (its own connection to the file), None for a database
        without a file."""
        try:
            file = self._db.execute("PRAGMA database_list").fetchone()[2]
            return WideReader(file) if file else None
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.path}: {e}") from e

    def _wide_rows(self, columns: Sequence[str], rest: str, params: dict[str, Any],
                   strict: bool = False) -> list[Any]:
        """``SELECT <columns> <rest>`` through the ``WideReader`` (``_rows`` without a file)."""
        wide = self._wide
        if wide is None:
            return self._rows(f"SELECT {', '.join(columns)} {rest}", params)
        try:
            return wide.rows(columns, rest, params, strict=strict)
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.path}: {e}") from e

    def _rows(self, query: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
        try:
            return self._db.execute(query, params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.path}: {e}") from e

    def query(self, q: EventQuery) -> Page:
        return self._query(q, wide=False)

    def _query(self, q: EventQuery, wide: bool) -> Page:
        """``query``; with ``wide``, the rows come from the ``WideReader`` (committed rows only:
        for reads of many pages, which never run inside this connection's write transaction)."""
        where, params = sql.where_clause(q)
        order = "DESC" if q.newest_first else "ASC"
        rest = f"FROM events{where} ORDER BY timestamp {order}, seq {order} LIMIT :limit"
        params = {**params, "limit": q.limit + 1}
        if wide:
            try:
                rows = self._wide_rows(SELECT_COLUMNS, rest, params, strict=True)
            except NotUTF8 as e:
                at = SELECT_COLUMNS.index
                event_id, seq = e.row[at("event_id")], e.row[at("seq")]
                raise StoreError(f"cannot read {self.path}: event {event_id!r} (seq {seq}): "
                                 f"{e}; the file was altered or damaged (`agentaudit verify` "
                                 "names the damage)") from None
        else:
            rows = self._rows(f"SELECT {', '.join(SELECT_COLUMNS)} {rest}", params)
        events = [event_from_row(r) for r in rows[: q.limit]]
        cursor = make_cursor(events[-1].timestamp, events[-1].seq or 0) if len(rows) > q.limit and events else None
        return Page(events, cursor)

    def iter_events(self, q: EventQuery, batch_size: int = 5000) -> Iterator[AuditEvent]:
        page_q = EventQuery(**{**q.__dict__, "limit": batch_size, "newest_first": False})
        while True:
            page = self._query(page_q, wide=True)
            yield from page.data
            if page.next_cursor is None:
                return
            page_q.cursor = page.next_cursor

    def count(self, q: EventQuery) -> int:
        where, params = sql.where_clause(q)
        return int(self._rows(f"SELECT count(*) FROM events{where}", params)[0][0])

    def get_event(self, tenant: str, event_id: str) -> AuditEvent | None:
        rows = self._rows(f"{_SELECT} WHERE tenant = ? AND event_id = ?", (tenant, event_id))
        return event_from_row(rows[0]) if rows else None

    def trace_events(self, tenant: str, trace_or_task_id: str) -> list[AuditEvent]:
        rows = self._rows(f"{_SELECT} WHERE trace_id = ? AND +tenant = ? ORDER BY timestamp, seq",
                          (trace_or_task_id, tenant))
        if not rows:
            rows = self._rows(
                f"{_SELECT} WHERE +tenant = ? AND trace_id IN "
                "(SELECT DISTINCT trace_id FROM events WHERE task_id = ? AND +tenant = ?) "
                "ORDER BY timestamp, seq",
                (tenant, trace_or_task_id, tenant),
            )
        return [event_from_row(r) for r in rows]

    def aggregate(self, sql_name: str, tenant: str, since: float | None, until: float | None,
                  agent: str | None = None, limit: int = 20,
                  **params: Any) -> list[dict[str, Any]]:
        query, bound = sql.aggregation(sql_name, tenant, since, until, agent, limit, params,
                                       rolled=self.use_rollups)
        try:
            cur = self._db.execute(query, bound)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.path}: {e}") from e

    def info(self) -> StoreInfo:
        tenants = [r[0] for r in self._rows("SELECT tenant FROM log_state ORDER BY tenant", ())]
        total = int(self._rows("SELECT coalesce(sum(size), 0) FROM log_state", ())[0][0])
        return StoreInfo("sqlite", str(self.path), total, tenants)

    def close(self) -> None:
        wide = self.__dict__.pop("_wide", None)
        if wide is not None:
            with contextlib.suppress(sqlite3.Error):
                wide.close()
        with contextlib.suppress(sqlite3.Error):
            if not self._readonly:
                # keep the planner's statistics current (cheap: bounded sampling)
                self._db.execute("PRAGMA analysis_limit = 1000")
                self._db.execute("PRAGMA optimize")
            self._db.close()

    # -- the live feed: events in commit order, whichever process wrote them ------------------

    def feed_position(self) -> int:
        """The row id of the newest stored event (0 when empty). Row ids grow with every
        commit, by any process, so ``feed_after(feed_position())`` is what comes next."""
        return int(self._rows("SELECT coalesce(max(id), 0) FROM events", ())[0][0])

    def feed_after(self, position: int, limit: int = 5000) -> list[tuple[int, str]]:
        """``(row id, event_id)`` of up to ``limit`` events stored after ``position``."""
        return [(int(r[0]), str(r[1])) for r in self._rows(
            "SELECT id, event_id FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (position, limit))]

    def feed_events(self, row_ids: Sequence[int]) -> list[AuditEvent]:
        """The events with these row ids, in row order (any tenant: the caller filters)."""
        out: list[AuditEvent] = []
        for i in range(0, len(row_ids), 500):
            chunk = list(row_ids[i:i + 500])
            marks = ", ".join("?" * len(chunk))
            out.extend(event_from_row(r) for r in self._rows(
                f"{_SELECT} WHERE id IN ({marks}) ORDER BY id", chunk))
        return out

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw connection, for verification and maintenance code of this package."""
        return self._db

    # -- API keys of the collector (agentaudit.store._sqlite_keys) -----------------------------

    def create_key(self, tenant: str, scope: str, name: str | None = None) -> tuple[ApiKey, str]:
        """Store a new API key; returns it and its secret (shown once, stored hashed)."""
        from agentaudit.store import _sqlite_keys

        return _sqlite_keys.create_key(self._db, tenant, scope, name)

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every API key (of one tenant), revoked ones included."""
        from agentaudit.store import _sqlite_keys

        return _sqlite_keys.list_keys(self._db, tenant)

    def revoke_key(self, key_id: str, tenant: str | None = None) -> ApiKey | None:
        """Revoke a key by id (only within ``tenant`` when given); None when unknown."""
        from agentaudit.store import _sqlite_keys

        return _sqlite_keys.revoke_key(self._db, key_id, tenant)

    def delete_key(self, key_id: str) -> None:
        """Remove a key whose creation could not be audited (undo of ``create_key``)."""
        from agentaudit.store import _sqlite_keys

        _sqlite_keys.delete_key(self._db, key_id)

    def lookup_key(self, secret: str) -> ApiKey | None:
        """The key a presented secret belongs to (check ``revoked``), or None."""
        from agentaudit.store import _sqlite_keys

        return _sqlite_keys.lookup_key(self._db, secret)


def _dedupe_in_batch(events: Sequence[AuditEvent]) -> tuple[list[AuditEvent], int]:
    seen: set[tuple[str, str]] = set()
    unique: list[AuditEvent] = []
    for ev in events:
        key = (ev.tenant, ev.event_id)
        if key not in seen:
            seen.add(key)
            unique.append(ev)
    return unique, len(events) - len(unique)
