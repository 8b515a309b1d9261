"""The scale-out store: PostgreSQL (psycopg 3), for many collectors in front of one database.

Each tenant's log has one writer at a time, elected by the database: ``append_batch`` takes a
transaction-scoped advisory lock per tenant (``pg_advisory_xact_lock``), then reads the log head,
sequences the batch after it (``LogSequencer``, the same code as SQLite), writes the rows with
``COPY`` and the new head, and commits. The lock is released by the commit, by the rollback of a
failed batch, or by the server when the connection dies, so a crashed collector never leaves a
gap or a half batch (docs/postgresql.md, "Sequencing").
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from agentaudit.events import AuditEvent
from agentaudit.exceptions import StoreError
from agentaudit.store import _pg_approval_facts, _pg_cost_rank, _pg_rollup
from agentaudit.store import _pg_sql as sql
from agentaudit.store._pg_alerts import PgAlerts
from agentaudit.store._pg_retention import PostgresRetention
from agentaudit.store._pg_schema import DERIVED_MIGRATIONS, MIGRATIONS, ROLLED_MIGRATIONS
from agentaudit.store.base import (
    AppendResult,
    EventQuery,
    Page,
    Store,
    StoreInfo,
    make_cursor,
)
from agentaudit.store.log import CheckpointPolicy, LogSequencer, Prepared, origin_for
from agentaudit.store.rows import LOG_COLUMNS, SELECT_COLUMNS, event_from_row, log_columns

if TYPE_CHECKING:
    from agentaudit.integrity.checkpoint import Signer
    from agentaudit.store._sqlite_keys import ApiKey

__all__ = ["PostgresStore", "redact_url"]

_SELECT = "SELECT " + ", ".join(SELECT_COLUMNS) + " FROM events_v"
_LOG_SELECT = "SELECT " + ", ".join(LOG_COLUMNS) + " FROM events_v"
_EVENT_COLS = ("tenant", "seq", "event_id", "event_type", "agent_name", "trace_id",
               "parent_event_id", "task_id", "session_id", "action", "source", "model", "version",
               "error_type", "timestamp", "day", "duration_ms", "confidence", "token_count",
               "prompt_tokens", "completion_tokens", "cost_usd", "tier", "payload_sha256",
               "leaf_hash")
# (table, columns) written by COPY. PostgreSQL refuses COPY FROM into a table whose row-level
# security applies to the user (the ingest role): then the rows go through a session-local
# staging table and one INSERT ... SELECT.
_COPIES = (("event_keys", "tenant, event_id, seq, day"),  # first: a stored event fails fast
           ("events", ", ".join(_EVENT_COLS)),
           ("event_payloads", "tenant, seq, day, user_id, payload, salt"))
# jit off: the planner over-estimates the per-bucket report subqueries and would spend
# seconds compiling them for milliseconds of work
_SESSION = {"idle_in_transaction_session_timeout": "60s", "lock_timeout": "30s", "jit": "off"}
_SYNC = {"full": "on", "extra": "on", "normal": "on", "off": "off"}


def _metered(ev: AuditEvent) -> bool:
    """Whether an event carries tokens or a cost (``_pg_measures.metered``)."""
    return (ev.prompt_tokens is not None or ev.completion_tokens is not None
            or ev.token_count is not None or ev.cost_usd is not None)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and ``info()``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(PostgresRetention, PgAlerts, Store):
    """``Store`` on a PostgreSQL database (``postgresql://user@host:port/db``); retention,
    holds and erasure come from ``PostgresRetention``, alerts from ``PgAlerts``."""

    backend = "postgresql"
    # True in a collector with several workers: the seq-free part of sequencing is done before
    # the tenants' locks (``LogSequencer.prepare``); other collectors may set it too
    prepare_outside_lock = False

    def __init__(self, url: str, *, create: bool = True, readonly: bool = False,
                 integrity: bool = True, signer: Signer | None = None,
                 checkpoint_policy: CheckpointPolicy | None = None,
                 synchronous: str = "full", connect_timeout: int = 10) -> None:
        self.url = url
        self.location = redact_url(url)
        if synchronous not in _SYNC:
            raise StoreError(f"synchronous must be one of {sorted(_SYNC)}, not {synchronous!r}")
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout,
                                         application_name="agentaudit", keepalives=1,
                                         keepalives_idle=10, keepalives_interval=5,
                                         keepalives_count=3)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to {self.location}: {_first_line(e)}") from e
        try:
            for name, value in {**_SESSION, "synchronous_commit": _SYNC[synchronous]}.items():
                self._conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            self._check_schema(create and not readonly, readonly)
            # the report rollups and error facts (a store opened read-only may predate them)
            applied = sql.applied_migrations(self._conn) or set()
            self.use_rollups = all(m in applied for m in ROLLED_MIGRATIONS)
            if readonly:
                self._conn.execute("SET default_transaction_read_only = on")
            self.log_id = str(self._conn.execute(
                "SELECT value FROM log_meta WHERE key = 'log_id'").fetchone()[0])
        except BaseException:
            self._conn.close()
            raise
        self._readonly = readonly
        self.policy = checkpoint_policy or CheckpointPolicy.from_env()
        self._log = LogSequencer(integrity=integrity, policy=self.policy)
        self.integrity = integrity
        self._signer = signer
        self._days: set[int] = set()
        self._vacuum_days: set[int] = set()
        self._staged: bool | None = None

    def _check_schema(self, may_migrate: bool, readonly: bool) -> None:
        try:
            applied = sql.applied_migrations(self._conn)
            missing = [n for n, _ in MIGRATIONS if applied is None or n not in applied]
            if not missing:
                return
            if (readonly and applied is not None
                    and missing == list(DERIVED_MIGRATIONS[-len(missing):])):
                return  # a reader of a database that predates the rollups: rows answer
                # (a writer must not: its events would be missing from them once migrated)
            if not may_migrate:
                what = "is not an agentaudit database" if applied is None else (
                    f"lacks migrations {missing}")
                raise StoreError(f"{self.location} {what}: run `agentaudit db migrate`")
            sql.migrate(self._conn)
        except psycopg.errors.InsufficientPrivilege as e:
            raise StoreError(f"cannot create the agentaudit schema in {self.location} as this "
                             f"user ({_first_line(e)}): run `agentaudit db migrate` as the "
                             "database owner") from e
        except psycopg.Error as e:
            raise StoreError(f"cannot open {self.location}: {_first_line(e)}") from e

    # -- writing -------------------------------------------------------------------------------

    def ensure_days(self, days: set[int] | list[int]) -> int:
        """Create the day partitions of ``days`` that do not exist yet; returns how many."""
        missing = sorted(set(days) - self._days)
        if not missing:
            return 0
        try:
            made = int(self._conn.execute("SELECT agentaudit_ensure_days(%s::integer[])",
                                          (missing,)).fetchone()[0])
        except psycopg.Error as e:
            raise StoreError(f"cannot create day partitions in {self.location}: "
                             f"{_first_line(e)}") from e
        self._days.update(missing)
        return made

    def append_batch(self, events: Sequence[AuditEvent]) -> AppendResult:
        if not events:
            return AppendResult(0, 0)
        unique, dups = _dedupe_in_batch(events)
        check_stored = False  # optimistic: a batch is rarely a retry, the unique key tells
        prepared = self._log.prepare(unique) if self.prepare_outside_lock else None
        for attempt in range(3):
            self.ensure_days({sql.day_of(ev.timestamp) for ev in unique})
            try:
                with self._write_transaction("write to"):
                    fresh = self._append_locked(unique, check_stored, prepared)
                return AppendResult(len(fresh), dups + len(unique) - len(fresh))
            except StoreError as e:
                cause = e.__cause__
                if attempt < 2 and isinstance(cause, psycopg.errors.UniqueViolation):
                    check_stored = True  # some events are stored already: skip them
                    continue
                if attempt < 2 and isinstance(cause, psycopg.errors.CheckViolation):
                    self._days.clear()  # a day partition dropped by retention: make it again
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_locked(self, unique: list[AuditEvent], check_stored: bool,
                       prepared: list[Prepared] | None = None) -> list[AuditEvent]:
        """Inside the write transaction: elect ourselves sequencer of the batch's tenants (in
        name order, so two collectors never wait on each other in a cycle), drop events already
        stored, sequence and COPY the rest."""
        conn = self._conn
        for tenant in sorted({ev.tenant for ev in unique}):
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                         ("agentaudit.log:" + tenant,))
        fresh = _filter_new(conn, unique) if check_stored else unique
        if not fresh:
            return fresh
        if fresh is not unique and prepared is not None:
            prepared = self._log.pick(prepared, unique, fresh)
        rows = self._log.sequence(conn, fresh, _load_log_state, _last_checkpoint, prepared)
        days = [int(r[15] // 86400) for r in rows]
        shapes = (
            ((r[0], r[2], r[1], d) for r, d in zip(rows, days, strict=True)),
            ((*r[:9], *r[10:16], d, *r[16:23], r[25], r[26]) for r, d in zip(rows, days, strict=True)),
            ((r[0], r[1], d, r[9], r[23], r[24]) for r, d in zip(rows, days, strict=True)))
        with conn.cursor() as cur:
            for (table, cols), values in zip(_COPIES, shapes, strict=True):
                target = self._copy_target(table)
                with cur.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
                    for v in values:
                        copy.write_row(v)
                if target != table:
                    cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {target}")
            states = self._log.pending_states()
            cur.executemany(
                "INSERT INTO log_state (tenant, size, frontier) VALUES (%s, %s, %s) "
                "ON CONFLICT (tenant) DO UPDATE SET size = excluded.size, "
                "frontier = excluded.frontier",
                [(t, size, frontier) for t, (size, frontier) in states.items()])
            if self.use_rollups:
                spans: dict[str, tuple[int, int]] = {}
                tagged: list[tuple[str, int]] = []
                users: list[tuple[str, int, str]] = []
                numbers: list[tuple[str, int, int, str, float]] = []
                approvers: list[tuple[str, int, int, str]] = []
                for r, ev, d in zip(rows, fresh, days, strict=True):
                    lo, hi = spans.get(r[0], (r[1], r[1]))
                    spans[r[0]] = (min(lo, r[1]), max(hi, r[1]))
                    # a payload has "tags" exactly when its event has tags (encode_payload)
                    if ev.tags is not None and ev.event_type == "agent.tool_call":
                        tagged.append((r[0], r[1]))
                    if r[9] is not None and _metered(ev):  # the stored user_id
                        users.append((r[0], r[1], r[9]))
                    _pg_approval_facts.facts_of(r[0], d, r[1], ev, numbers, approvers)
                _pg_rollup.after_insert(cur, spans, days, tagged, users, (numbers, approvers))
            if self._log.tiles:
                cur.executemany("INSERT INTO merkle_tiles (tenant, idx, hash) VALUES (%s, %s, %s) "
                                "ON CONFLICT DO NOTHING", self._log.tiles)
        self._sign_heads(self._log.heads)
        return fresh

    def _copy_target(self, table: str) -> str:
        """``table``, or its staging table when row-level security applies to this user."""
        if self._staged is None:
            self._staged = bool(self._conn.execute(
                "SELECT row_security_active('events')").fetchone()[0])
        if not self._staged:
            return table
        stage = f"pg_temp.stage_{table}"
        self._conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} "
                           f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        return stage

    @contextlib.contextmanager
    def _write_transaction(self, what: str) -> Iterator[None]:
        try:
            with self._conn.transaction():
                yield
        except psycopg.Error as e:
            raise StoreError(f"cannot {what} {self.location}: {_first_line(e)}") from e
        finally:
            self._log.discard_pending()

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def signer(self) -> Signer:
        """The checkpoint signing key (every collector of one database must share it)."""
        if self._signer is None:
            from agentaudit.integrity.checkpoint import load_or_create_signing_key

            self._signer = load_or_create_signing_key("agentaudit")
        return self._signer

    def _sign_heads(self, heads: list[tuple[str, int, bytes]]) -> list[str]:
        from agentaudit.integrity.checkpoint import format_checkpoint, sign_note

        notes = []
        now = time.time()
        for tenant, size, root in heads:
            note = sign_note(format_checkpoint(origin_for(self.log_id, tenant), size, root),
                             self.signer)
            self._conn.execute(
                "INSERT INTO checkpoints (tenant, size, root, note, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (tenant, size, root, note, now))
            notes.append(note)
        return notes

    def checkpoint(self, tenant: str | None = None) -> list[str]:
        """Sign a checkpoint now for every tenant (or one) whose log grew since its last one."""
        if not self.integrity:
            return []
        from agentaudit.integrity.merkle import CompactRange

        conn = self._conn
        with self._write_transaction("write a checkpoint to"):
            tenants = [tenant] if tenant else [r[0] for r in conn.execute(
                "SELECT tenant FROM log_state ORDER BY tenant")]
            heads = []
            for t in tenants:
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                             ("agentaudit.log:" + t,))
                size, frontier = _load_log_state(conn, t)
                if frontier and size > _last_checkpoint(conn, t)[0]:
                    heads.append((t, size, CompactRange.from_bytes(frontier).root()))
            notes = self._sign_heads(heads)
        return notes

    def latest_checkpoint(self, tenant: str) -> tuple[int, bytes, str, float] | None:
        rows = self._rows("SELECT size, root, note, created_at FROM checkpoints WHERE tenant = %s "
                          "ORDER BY size DESC LIMIT 1", (tenant,))
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    def checkpoints(self, tenant: str) -> list[tuple[int, bytes, str, float]]:
        return [tuple(r) for r in self._rows(  # type: ignore[misc]
            "SELECT size, root, note, created_at FROM checkpoints WHERE tenant = %s "
            "ORDER BY size", (tenant,))]

    def log_state(self, tenant: str) -> tuple[int, bytes | None]:
        try:
            return _load_log_state(self._conn, tenant)
        except psycopg.Error as e:
            raise StoreError(f"cannot read {self.location}: {_first_line(e)}") from e

    def leaf_hashes(self, tenant: str, start: int, end: int) -> list[bytes]:
        return [r[0] for r in self._rows(
            "SELECT leaf_hash FROM events WHERE tenant = %s AND seq >= %s AND seq < %s "
            "ORDER BY seq", (tenant, start, end))]

    def log_span(self, tenant: str, since: float | None,
                 until: float | None) -> tuple[int, int] | None:
        """(first seq, last seq + 1) of the tenant's events in the period, or None (see
        ``SQLiteStore.log_span``)."""
        lo, hi = self._rows("SELECT min(seq), max(seq) FROM events WHERE tenant = %s "
                            "AND timestamp >= %s AND timestamp < %s",
                            (tenant, -math.inf if since is None else since,
                             math.inf if until is None else until))[0]
        return None if lo is None else (int(lo), int(hi) + 1)

    def log_row(self, tenant: str, event_id: str) -> tuple[Any, ...] | None:
        key = self._rows("SELECT seq, day FROM event_keys WHERE tenant = %s AND event_id = %s",
                         (tenant, event_id))
        if not key:
            return None
        rows = self._rows(f"{_LOG_SELECT} WHERE tenant = %s AND seq = %s AND day = %s",
                          (tenant, key[0][0], key[0][1]))
        return tuple(rows[0]) if rows else None

    def tile_roots(self, tenant: str) -> dict[int, bytes]:
        return {int(i): h for i, h in self._rows(
            "SELECT idx, hash FROM merkle_tiles WHERE tenant = %s", (tenant,))}

    def log_rows(self, tenant: str, batch_size: int = 10_000, start: int | None = None,
                 stop: int | None = None,
                 columns: Sequence[str] = LOG_COLUMNS) -> Iterator[tuple[Any, ...]]:
        """Raw rows of the tenant's log in seq order (``columns``, some of ``LOG_COLUMNS``),
        read by seq ranges; all of them, or those with ``start <= seq < stop`` (either bound
        may be None)."""
        select = f"SELECT {', '.join(log_columns(columns))} FROM events_v"
        lo, hi = self._rows("SELECT min(seq), max(seq) FROM events WHERE tenant = %s",
                            (tenant,))[0]
        if lo is None:
            return
        if start is not None:
            lo = max(lo, start)
        if stop is not None:
            hi = min(hi, stop - 1)
        if lo > hi:
            return
        query = f"{select} WHERE tenant = %s AND seq >= %s AND seq < %s ORDER BY seq, day"
        for start in range(lo, hi + 1, batch_size):
            yield from self._rows(query, (tenant, start, start + batch_size))

    # -- reading -------------------------------------------------------------------------------

    def _rows(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(query, params).fetchall()  # type: ignore[arg-type]
        except psycopg.Error as e:
            raise StoreError(f"cannot read {self.location}: {_first_line(e)}") from e

    def query(self, q: EventQuery) -> Page:
        where, params = sql.where_clause(q)
        order = "DESC" if q.newest_first else "ASC"
        rows = self._rows(sql.to_psycopg(
            f"{_SELECT}{where} ORDER BY timestamp {order}, seq {order} LIMIT :limit"),
            {**params, "limit": q.limit + 1})
        events = [event_from_row(r) for r in rows[: q.limit]]
        cursor = (make_cursor(events[-1].timestamp, events[-1].seq or 0)
                  if len(rows) > q.limit and events else None)
        return Page(events, cursor)

    def iter_events(self, q: EventQuery, batch_size: int = 5000) -> Iterator[AuditEvent]:
        page_q = EventQuery(**{**q.__dict__, "limit": batch_size, "newest_first": False})
        while True:
            page = self.query(page_q)
            yield from page.data
            if page.next_cursor is None:
                return
            page_q.cursor = page.next_cursor

    def count(self, q: EventQuery) -> int:
        where, params = sql.where_clause(q)
        table = "events_v" if q.user_id is not None else "events"
        return int(self._rows(sql.to_psycopg(f"SELECT count(*) FROM {table}{where}"),
                              params)[0][0])

    def get_event(self, tenant: str, event_id: str) -> AuditEvent | None:
        key = self._rows("SELECT seq, day FROM event_keys WHERE tenant = %s AND event_id = %s",
                         (tenant, event_id))
        if not key:
            return None
        rows = self._rows(f"{_SELECT} WHERE tenant = %s AND seq = %s AND day = %s",
                          (tenant, key[0][0], key[0][1]))
        return event_from_row(rows[0]) if rows else None

    def trace_events(self, tenant: str, trace_or_task_id: str) -> list[AuditEvent]:
        rows = self._rows(f"{_SELECT} WHERE trace_id = %s AND tenant = %s "
                          "ORDER BY timestamp, seq", (trace_or_task_id, tenant))
        if not rows:
            rows = self._rows(
                f"{_SELECT} WHERE tenant = %s AND trace_id IN (SELECT DISTINCT trace_id "
                "FROM events WHERE task_id = %s AND tenant = %s) ORDER BY timestamp, seq",
                (tenant, trace_or_task_id, tenant))
        return [event_from_row(r) for r in rows]

    def aggregate(self, sql_name: str, tenant: str, since: float | None, until: float | None,
                  agent: str | None = None, limit: int = 20,
                  **params: Any) -> list[dict[str, Any]]:
        query, bound = sql.aggregation(sql_name, tenant, since, until, agent, limit, params,
                                       rolled=self.use_rollups)
        settings = sql.PLANNER_SETTINGS.get(sql_name, {})
        try:
            with self._conn.transaction():
                for name, value in settings.items():
                    self._conn.execute("SELECT set_config(%s, %s, true)", (name, value))
                if sql_name == "rpt_cost_top" and self.use_rollups and agent is None:
                    return _pg_cost_rank.rank(self._conn, bound)  # from the cost facts
                # a template asking for a generic plan is planned once per connection
                cur = self._conn.execute(query, bound,  # type: ignore[arg-type]
                                         prepare=True if "plan_cache_mode" in settings else None)
                names = [d.name for d in cur.description or ()]
                return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except psycopg.Error as e:
            raise StoreError(f"cannot read {self.location} ({sql_name}): "
                             f"{_first_line(e)}") from e

    # -- the live feed: each tenant's log in seq order, whichever collector wrote it ----------

    def feed_position(self) -> dict[str, int]:
        """Each tenant's log size, i.e. its next seq: ``feed_after(feed_position())`` is what
        comes next. Not the global ``events.id``: ids are drawn from a sequence before commit,
        so a transaction that drew a smaller id may commit later; a tenant's seqs are assigned
        and committed under its advisory lock, so every snapshot holds a prefix of each
        tenant's log (docs/postgresql.md, "Live feed across collectors")."""
        return {str(t): int(n) for t, n in self._rows("SELECT tenant, size FROM log_state")}

    def feed_after(self, position: Mapping[str, int],
                   limit: int = 5000) -> list[tuple[tuple[str, int, int], str]]:
        """``((tenant, seq, day), event_id)`` of up to ``limit`` events past ``position``, by
        tenant and seq (a tenant absent from ``position`` had no events then). Only tenants
        whose log grew are read, each with one range scan of ``event_keys``."""
        out: list[tuple[tuple[str, int, int], str]] = []
        for tenant, size in sorted(self.feed_position().items()):
            start = position.get(tenant, 0)
            if size <= start or len(out) >= limit:
                continue
            out.extend(((tenant, int(seq), int(day)), str(event_id)) for seq, day, event_id in
                       self._rows("SELECT seq, day, event_id FROM event_keys WHERE tenant = %s "
                                  "AND seq >= %s ORDER BY seq LIMIT %s",
                                  (tenant, start, limit - len(out))))
        return out

    @staticmethod
    def feed_advance(position: Mapping[str, int],
                     rows: Sequence[tuple[tuple[str, int, int], str]]) -> dict[str, int]:
        """``position`` moved past ``rows`` (of ``feed_after``)."""
        moved = dict(position)
        for (tenant, seq, _day), _event_id in rows:
            moved[tenant] = max(moved.get(tenant, 0), seq + 1)
        return moved

    def feed_events(self, keys: Sequence[tuple[str, int, int]]) -> list[AuditEvent]:
        """The events of these ``(tenant, seq, day)`` keys, in their order (any tenant: the
        caller filters); one query per tenant and day, so each reads one partition."""
        groups: dict[tuple[str, int], list[int]] = {}
        for tenant, seq, day in keys:
            groups.setdefault((tenant, day), []).append(seq)
        found: dict[tuple[str, int], AuditEvent] = {}
        for (tenant, day), seqs in groups.items():
            for r in self._rows(f"{_SELECT} WHERE tenant = %s AND day = %s AND seq = ANY(%s)",
                                (tenant, day, seqs)):
                ev = event_from_row(r)
                found[(ev.tenant, ev.seq or 0)] = ev
        return [found[(t, s)] for t, s, _ in keys if (t, s) in found]

    def info(self) -> StoreInfo:
        tenants = [r[0] for r in self._rows("SELECT tenant FROM log_state ORDER BY tenant")]
        total = int(self._rows("SELECT coalesce(sum(size), 0) FROM log_state")[0][0])
        return StoreInfo("postgresql", self.location, total, tenants)

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.close()

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The raw connection, for maintenance code of this package (``agentaudit db``)."""
        return self._conn

    # -- retention -----------------------------------------------------------------------------

    def drop_payload_day(self, day: int, reason: str = "retention") -> bool:
        """Erase every payload of one UTC day by dropping its payload partition (needs the
        retention role or the owner). Envelopes and leaves stay; ``verify`` lists the events
        as erased with ``reason``. False when the day had no payload partition."""
        try:
            dropped = bool(self._conn.execute("SELECT agentaudit_drop_payload_day(%s, %s)",
                                              (day, reason)).fetchone()[0])
        except psycopg.Error as e:
            raise StoreError(f"cannot drop the payloads of day {day}: {_first_line(e)}") from e
        self._days.discard(day)
        return dropped

    # -- API keys of the collector -------------------------------------------------------------

    def create_key(self, tenant: str, scope: str, name: str | None = None) -> tuple[ApiKey, str]:
        from agentaudit.store import _pg_keys

        return _pg_keys.create_key(self._conn, tenant, scope, name)

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        from agentaudit.store import _pg_keys

        return _pg_keys.list_keys(self._conn, tenant)

    def revoke_key(self, key_id: str, tenant: str | None = None) -> ApiKey | None:
        from agentaudit.store import _pg_keys

        return _pg_keys.revoke_key(self._conn, key_id, tenant)

    def delete_key(self, key_id: str) -> None:
        """Remove a key whose creation could not be audited (undo of ``create_key``)."""
        from agentaudit.store import _pg_keys

        _pg_keys.delete_key(self._conn, key_id)

    def lookup_key(self, secret: str) -> ApiKey | None:
        from agentaudit.store import _pg_keys

        return _pg_keys.lookup_key(self._conn, secret)


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _load_log_state(conn: Any, tenant: str) -> tuple[int, bytes | None]:
    row = conn.execute("SELECT size, frontier FROM log_state WHERE tenant = %s",
                       (tenant,)).fetchone()
    return (0, None) if row is None else (int(row[0]), row[1])


def _last_checkpoint(conn: Any, tenant: str) -> tuple[int, float]:
    row = conn.execute("SELECT size, created_at FROM checkpoints WHERE tenant = %s "
                       "ORDER BY size DESC LIMIT 1", (tenant,)).fetchone()
    return (0, 0.0) if row is None else (int(row[0]), float(row[1]))


def _filter_new(conn: Any, events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """The events whose (tenant, event_id) is not stored yet."""
    existing = {(t, e) for t, e in conn.execute(
        "SELECT k.tenant, k.event_id FROM event_keys k JOIN unnest(%s::text[], %s::text[]) "
        "AS b(tenant, event_id) ON k.tenant = b.tenant AND k.event_id = b.event_id",
        ([ev.tenant for ev in events], [ev.event_id for ev in events])).fetchall()}
    if not existing:
        return list(events)
    return [ev for ev in events if (ev.tenant, ev.event_id) not in existing]


def _dedupe_in_batch(events: Sequence[AuditEvent]) -> tuple[list[AuditEvent], int]:
    seen: set[tuple[str, str]] = set()
    unique: list[AuditEvent] = []
    for ev in events:
        key = (ev.tenant, ev.event_id)
        if key not in seen:
            seen.add(key)
            unique.append(ev)
    return unique, len(events) - len(unique)
