"""``verify_log``: recompute a tenant's whole log from its stored rows and check it against the
signed checkpoints (and optionally a witness checkpoint saved earlier).

Every leaf is recomputed from the envelope columns and the payload digest; every payload digest
from salt and payload; every checkpoint root from the recomputed leaves; every signature with a
trusted verifier key. The first damage found is named with its seq, event id and kind.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import operator
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from agentaudit.exceptions import ConfigError
from agentaudit.integrity._hash import SHORT_INPUT, short_sha256
from agentaudit.integrity.checkpoint import (
    default_key_path,
    load_or_create_signing_key,
    parse_checkpoint,
    verify_note,
)
from agentaudit.integrity.merkle import CompactRange, leaf_hash
from agentaudit.store.log import (
    ENVELOPE_FIELDS,
    EnvelopeStruct,
    encode_entry,
    entry_from_values,
    envelope_from_values,
    jcs_float,
    origin_for,
)
from agentaudit.store.rows import LOG_COLUMNS, VERIFY_COLUMNS

log = logging.getLogger(__name__)

__all__ = ["DAMAGE_KINDS", "Damage", "VerifyReport", "local_verifier_key", "row_envelope",
           "verify_log"]

# Logs of at least this many events are checked by worker processes, this many rows a task.
PARALLEL_MIN_EVENTS = 200_000
CHUNK_EVENTS = 50_000

DAMAGE_KINDS = ("modified", "missing", "inserted", "reordered", "truncated", "bad signature",
                "inconsistent with witness")


@dataclass(frozen=True)
class Damage:
    """The first problem found: what kind, where, and a sentence for people."""

    kind: str
    message: str
    seq: int | None = None
    event_id: str | None = None


@dataclass
class VerifyReport:
    tenant: str
    size: int = 0
    checkpoints: int = 0
    latest_checkpoint_size: int = 0
    erased: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, event_id, reason)
    unsigned_tail: int = 0
    compacted: int = 0  # leading events whose envelopes retention dropped (leaves kept)
    witness_size: int | None = None
    damage: Damage | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.damage is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant, "ok": self.ok, "size": self.size,
            "checkpoints": self.checkpoints, "latest_checkpoint_size": self.latest_checkpoint_size,
            "unsigned_tail": self.unsigned_tail, "witness_size": self.witness_size,
            "compacted": self.compacted,
            "erased": [{"seq": s, "event_id": e, "reason": r} for s, e, r in self.erased],
            "damage": None if self.damage is None else self.damage.__dict__,
            "seconds": round(self.seconds, 3),
        }


def local_verifier_key() -> str | None:
    """The verifier key of this machine's signing key, if one exists (never creates one)."""
    if os.environ.get("AGENTAUDIT_SIGNING_KEY") or default_key_path().exists():
        return load_or_create_signing_key("agentaudit").verifier_key()
    return None


class _UserOf(msgspec.Struct):
    """The one payload key verify compares with a column: decoding into it skips the rest of
    the document without building it (several times faster than a full decode)."""

    user_id: Any = None


_payload_decoder = msgspec.json.Decoder(_UserOf)
_LEAF_PREFIX = hashlib.sha256(b"\x00")  # RFC 6962 leaf: SHA-256(0x00 || entry)

# Positions of the envelope's fields in a LOG_COLUMNS row (``row_envelope``, for prove and
# bundles) ...
_log_values = operator.itemgetter(*(LOG_COLUMNS.index(f) for f in ENVELOPE_FIELDS))
_LOG_SEQ, _LOG_TIER, _LOG_DIGEST = (LOG_COLUMNS.index(c) for c in ("seq", "tier", "payload_sha256"))
# ... and in a VERIFY_COLUMNS row (the rows verify reads; ``_check_rows`` unpacks them in this
# order). The tenant is not read: the query selects the rows whose tenant is exactly this one.
_SEQ, _EVENT_ID, _TIER, _DIGEST, _LEAF = (VERIFY_COLUMNS.index(c) for c in (
    "seq", "event_id", "tier", "payload_sha256", "leaf_hash"))
_ENVELOPE_AT = tuple(None if f == "tenant" else VERIFY_COLUMNS.index(f) for f in ENVELOPE_FIELDS)
# the envelope's values in a VERIFY_COLUMNS row, tier included: no value there may be bytes
_ENVELOPE_SLICE = slice(VERIFY_COLUMNS.index("event_id"), _TIER + 1)


def row_envelope(row: tuple[Any, ...], seq: int | None = None) -> dict[str, Any]:
    """The envelope of a stored row (``LOG_COLUMNS`` order), optionally placed at another seq."""
    return envelope_from_values(_log_values(row), row[_LOG_SEQ] if seq is None else seq,
                                row[_LOG_TIER], row[_LOG_DIGEST].hex())


def _leaf_for(row: tuple[Any, ...], tenant: str, seq: int) -> bytes:
    """The leaf of a VERIFY_COLUMNS row of ``tenant`` placed at ``seq`` (the general path)."""
    values = tuple(tenant if at is None else row[at] for at in _ENVELOPE_AT)
    return leaf_hash(entry_from_values(values, seq, row[_TIER], row[_DIGEST].hex()))


class _Verifier:
    def __init__(self, store: Any, tenant: str, vkey: str, witness: str | None,
                 progress: Callable[[int, int], None] | None, workers: int) -> None:
        self.store = store
        self.workers = workers
        self.tenant = tenant
        self.vkey = vkey
        self.witness = witness
        self.progress = progress
        self.report = VerifyReport(tenant)

    def fail(self, kind: str, message: str, seq: int | None = None,
             event_id: str | None = None) -> VerifyReport:
        self.report.damage = Damage(kind, message, seq, event_id)
        return self.report

    def run(self) -> VerifyReport:
        store, tenant, report = self.store, self.tenant, self.report
        origin = origin_for(store.log_id, tenant)
        cps = store.checkpoints(tenant)
        report.checkpoints = len(cps)
        for size, root, note, _at in cps:
            if not verify_note(note, self.vkey):
                return self.fail("bad signature", f"checkpoint at size {size} is not signed by "
                                 "the trusted key", seq=size - 1 if size else None)
            try:
                cp = parse_checkpoint(note)
            except ValueError as e:
                return self.fail("bad signature", f"checkpoint at size {size}: {e}")
            if cp.origin != origin or cp.size != size or cp.root != root:
                return self.fail("bad signature", f"checkpoint row at size {size} does not match "
                                 "its signed note (origin, size or root)")
        witness_cp = None
        if self.witness is not None:
            if not verify_note(self.witness, self.vkey):
                return self.fail("bad signature", "the witness checkpoint is not signed by the "
                                 "trusted key")
            witness_cp = parse_checkpoint(self.witness)
            report.witness_size = witness_cp.size
            if witness_cp.origin != origin:
                return self.fail("inconsistent with witness", f"witness is for log "
                                 f"{witness_cp.origin!r}, not {origin!r}")
        state_size, frontier = store.log_state(tenant)
        total = max(state_size, cps[-1][0] if cps else 0)
        damage = self._scan(cps, witness_cp, total)
        if damage is not None:
            return damage
        n = report.size
        if cps and cps[-1][0] > n:
            return self.fail("truncated", f"the log ends at size {n} but a signed checkpoint "
                             f"covers {cps[-1][0]} events", seq=n)
        if witness_cp is not None and witness_cp.size > n:
            return self.fail("inconsistent with witness", f"the log has {n} events but the "
                             f"witness saw {witness_cp.size}: it was truncated or rolled back",
                             seq=n)
        if n < state_size:
            return self.fail("truncated", f"the log ends at size {n} but the store recorded "
                             f"{state_size} events", seq=n)
        if n > state_size:
            return self.fail("inserted", f"{n - state_size} rows beyond the recorded log size "
                             f"{state_size}", seq=state_size)
        if frontier is not None and CompactRange.from_bytes(frontier).root() != self.crange.root():
            return self.fail("modified", "the stored log state does not match the events")
        report.latest_checkpoint_size = cps[-1][0] if cps else 0
        report.unsigned_tail = n - report.latest_checkpoint_size
        return report

    def _scan(self, cps: list[tuple[int, bytes, str, float]], witness: Any,
              total: int) -> VerifyReport | None:
        """Feed every row's checked leaf, in seq order, into the compact range and compare the
        roots with the checkpoints and the witness on the way. Rows are checked in chunks, by
        worker processes when the log is large (``_chunks``); the chain stays sequential."""
        self.crange = crange = CompactRange()
        extend, root = crange.extend_packed, crange.root
        progress, report = self.progress, self.report
        sizes = [c[0] for c in cps]
        cp_i, expected, prev_cp = 0, 0, 0
        wsize = witness.size if witness is not None else -1
        prefix = self._compacted_prefix()
        report.compacted = len(prefix.leaves) // 32
        for chunk in itertools.chain((prefix,), self._chunks(total, report.compacted)):
            report.erased.extend(chunk.erased)
            leaves, first = chunk.leaves, expected
            end = first + len(leaves) // 32
            while expected < end:
                # fold the leaves up to the next size something is checked at: a checkpoint,
                # the witness, or a progress step (every 10,000)
                stop = min(end, (expected // 10_000 + 1) * 10_000)
                if cp_i < len(sizes) and expected < sizes[cp_i] < stop:
                    stop = sizes[cp_i]
                if expected < wsize < stop:
                    stop = wsize
                extend(leaves[(expected - first) * 32:(stop - first) * 32])
                expected = stop
                if expected == wsize and root() != witness.root:
                    return self.fail("inconsistent with witness", "the first "
                                     f"{expected} events differ from what the witness saw: the log "
                                     "was rewritten", seq=expected - 1,
                                     event_id=self._event_id_at(expected - 1))
                while cp_i < len(sizes) and sizes[cp_i] == expected:
                    if root() != cps[cp_i][1]:
                        return self.fail("modified", f"events {prev_cp}..{expected - 1} do not "
                                         f"match the checkpoint at size {expected}", seq=prev_cp,
                                         event_id=self._event_id_at(prev_cp))
                    prev_cp = expected
                    cp_i += 1
                if progress is not None and expected % 10_000 == 0:
                    progress(expected, total)
            if chunk.damage is not None:
                report.damage = chunk.damage
                return report
        report.size = expected
        if progress is not None:
            progress(expected, total)
        return None

    def _compacted_prefix(self) -> _Chunk:
        """The leaf hashes of a prefix that retention compacted (envelopes dropped, leaves
        kept; see ``agentaudit.retention``): folded in first, like checked rows."""
        compacted = getattr(self.store, "compacted_leaf_hashes", None)
        leaves: list[bytes] = []
        if compacted is not None:
            for seq, leaf in compacted(self.tenant):
                if seq != len(leaves):
                    return _Chunk(b"".join(leaves), [], Damage(
                        "missing", f"compacted leaf {len(leaves)} is missing", len(leaves)))
                leaves.append(leaf)
        return _Chunk(b"".join(leaves), [], None)

    def _event_id_at(self, seq: int) -> str | None:
        for row in self.store.log_rows(self.tenant, 1, start=seq, stop=seq + 1,
                                       columns=VERIFY_COLUMNS):
            return row[_EVENT_ID]
        return None

    def _chunks(self, total: int, first: int) -> Iterator[_Chunk]:
        """Checked rows in seq order, a chunk at a time: in this process, or, for a large
        SQLite log and ``workers`` > 1, by worker processes reading their own seq ranges. A
        chunk that ends short (a missing row) hands over to this process from that seq, which
        then finds and names the damage exactly as a sequential scan would."""
        path = getattr(self.store, "path", None)
        if (self.workers <= 1 or total < PARALLEL_MIN_EVENTS or path is None
                or getattr(self.store, "backend", "") != "sqlite"):
            yield from _local_chunks(self.store, self.tenant, None, first)
            return
        from concurrent.futures.process import BrokenProcessPool

        starts = list(range(first, max(total, first + 1), CHUNK_EVENTS))
        ranges = [(None if i == 0 else lo, None if i == len(starts) - 1 else lo + CHUNK_EVENTS, lo)
                  for i, lo in enumerate(starts)]
        resume = first
        try:
            for chunk, lo, stop in _pooled(str(path), self.tenant, ranges, self.workers):
                yield chunk
                resume = lo + len(chunk.leaves) // 32
                if chunk.damage is not None:
                    return
                if stop is not None and resume < stop:
                    break  # a short range: this process finds and names what is missing
            else:
                return
        except (BrokenProcessPool, OSError) as e:
            # e.g. a script without ``if __name__ == "__main__":`` (worker processes import
            # it again): the check goes on here, from where the workers stopped
            log.warning("agentaudit: verify worker processes failed (%s); checking the rest in "
                        "this process (guard the calling script with "
                        "`if __name__ == \"__main__\":` or pass workers=1)", e)
        yield from _local_chunks(self.store, self.tenant,
                                 None if resume == first else resume, resume)


def _pooled(path: str, tenant: str, ranges: list[tuple[int | None, int | None, int]],
            workers: int) -> Iterator[tuple[_Chunk, int, int | None]]:
    """(chunk, first seq, end seq or None) of each range, in order, checked by ``workers``
    processes (two ranges queued per worker); what is still queued is cancelled on exit."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # never fork a process that has threads
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: collections.deque[Any] = collections.deque()
        todo = iter(ranges)
        try:
            for r in itertools.islice(todo, 2 * workers):
                pending.append((r, pool.submit(_check_range, path, tenant, *r)))
            while pending:
                (_, stop, lo), future = pending.popleft()
                chunk = future.result()
                for r in itertools.islice(todo, 1):
                    pending.append((r, pool.submit(_check_range, path, tenant, *r)))
                yield chunk, lo, stop
        finally:
            for _, f in pending:
                f.cancel()


@dataclass
class _Chunk:
    """Rows checked one by one: the leaves of those that passed (32 bytes each, in seq order),
    the erased payloads among them, and the damage that stopped the check, if any."""

    leaves: bytes
    erased: list[tuple[int, str, str]]
    damage: Damage | None


def _local_chunks(store: Any, tenant: str, start: int | None,
                  expected: int) -> Iterator[_Chunk]:
    rows = iter(store.log_rows(tenant, start=start, columns=VERIFY_COLUMNS))
    while True:
        chunk, more = _check_rows(rows, tenant, expected, CHUNK_EVENTS)
        yield chunk
        expected += len(chunk.leaves) // 32
        if not more or chunk.damage is not None:
            return


def _check_range(path: str, tenant: str, start: int | None, stop: int | None,
                 expected: int) -> _Chunk:
    """A worker process's share: rows ``start <= seq < stop`` of the file at ``path``."""
    from agentaudit.store.sqlite import SQLiteStore

    store = SQLiteStore(path, readonly=True, create=False)
    try:
        chunk, _ = _check_rows(iter(store.log_rows(tenant, start=start, stop=stop,
                                                   columns=VERIFY_COLUMNS)), tenant, expected,
                               None)
        return chunk
    finally:
        store.close()


def _check_rows(rows: Iterator[tuple[Any, ...]], tenant: str, expected: int,
                limit: int | None) -> tuple[_Chunk, bool]:
    """Check up to ``limit`` rows of ``tenant``, which must hold seq ``expected``,
    ``expected + 1``, ...: the payload digest, the user_id column, and the leaf recomputed from
    the envelope columns. Returns the chunk and whether rows may remain.

    The loop is the hot path of verify (a million rows take seconds), so it does inline what
    ``entry_from_values`` does: the same struct, the same float checks (``jcs_float`` for any
    value outside the encoder's exact range), the general path for anything else. A test
    compares its leaves with ``_leaf_for``'s on awkward values."""
    leaves: list[bytes] = []
    erased: list[tuple[int, str, str]] = []
    short, long_ = short_sha256, hashlib.sha256
    leaf_of = _LEAF_PREFIX.copy  # a copy skips OpenSSL's per-hash set-up and the 0x00 + entry copy
    encode, envelope = encode_entry, EnvelopeStruct
    guard = _ENVELOPE_SLICE

    def damage(kind: str, message: str, seq: int | None, event_id: str | None) -> tuple[_Chunk, bool]:
        return _Chunk(b"".join(leaves), erased, Damage(kind, message, seq, event_id)), False

    for row in rows:
        (seq, event_id, event_type, agent, trace, parent, task, session, action, source, model,
         version, error_type, timestamp, duration, confidence, tokens, prompt, completion, cost,
         tier, user_id, payload, salt, digest, stored, erased_reason) = row
        if type(seq) is not int or seq < expected:
            return damage("inserted", f"event {event_id} has seq {seq!r}, which is already "
                          "taken or not an integer", expected, event_id)
        if seq > expected:
            return damage("missing", f"seq {expected} is missing (deleted); the next event is "
                          f"{event_id} at seq {seq}", expected, event_id)
        if digest.__class__ is not bytes or len(digest) != 32:
            return damage("modified", f"event {event_id} has no payload digest", seq, event_id)
        if payload is None and salt is None:
            if user_id is not None:
                return damage("modified", f"event {event_id}: user_id kept after its payload "
                              "was erased", seq, event_id)
            erased.append((seq, event_id, erased_reason or "unknown"))
        else:
            if payload.__class__ is not bytes or salt.__class__ is not bytes:
                return damage("modified", f"the payload of event {event_id} was altered", seq,
                              event_id)
            data = salt + payload
            if (short if len(data) < SHORT_INPUT else long_)(data).digest() != digest:
                return damage("modified", f"the payload of event {event_id} was altered", seq,
                              event_id)
            if user_id != (None if b'"user_id"' not in payload else _user_of(payload)):
                return damage("modified", f"event {event_id}: the user_id column does not "
                              "match its payload", seq, event_id)
        entry = None
        if bytes not in set(map(type, row[guard])):
            try:  # the float checks of jcs_float, inline; anything else goes through it
                if not (timestamp.__class__ is float and 1e-4 <= timestamp < 1e16
                        and not timestamp.is_integer()):
                    timestamp = jcs_float(timestamp)
                if not (duration is None or duration.__class__ is float
                        and 1e-4 <= duration < 1e16 and not duration.is_integer()):
                    duration = jcs_float(duration)
                if not (confidence is None or confidence.__class__ is float
                        and 1e-4 <= confidence < 1e16 and not confidence.is_integer()):
                    confidence = jcs_float(confidence)
                if not (cost is None or cost.__class__ is float and 1e-4 <= cost < 1e16
                        and not cost.is_integer()):
                    cost = jcs_float(cost)
                entry = encode(envelope(
                    action, agent, completion, confidence, cost, duration, error_type, event_id,
                    event_type, model, parent, digest.hex(), prompt, seq, session, source, task,
                    tenant, tier, timestamp, tokens, trace, 1, version))
            except (ValueError, TypeError):
                entry = None  # the general path below prints it or names what is malformed
        try:
            if entry is not None:
                h = leaf_of()
                h.update(entry)
                leaf = h.digest()
            else:
                leaf = _leaf_for(row, tenant, seq)
        except (TypeError, ValueError) as e:
            return damage("modified", f"event {event_id} holds a malformed value: {e}", seq,
                          event_id)
        if leaf != stored:
            return _Chunk(b"".join(leaves), erased, _mismatch(row, tenant, seq)), False
        leaves.append(leaf)
        expected += 1
        if limit is not None and len(leaves) >= limit:
            return _Chunk(b"".join(leaves), erased, None), True
    return _Chunk(b"".join(leaves), erased, None), False


def _mismatch(row: tuple[Any, ...], tenant: str, seq: int) -> Damage:
    """A row's recomputed leaf differs from its stored one: moved, or modified?"""
    event_id, stored = row[_EVENT_ID], row[_LEAF]
    for other in range(max(0, seq - 1000), seq + 1000):
        if other != seq and _leaf_for(row, tenant, other) == stored:
            return Damage("reordered", f"event {event_id} sits at seq {seq} but was logged at "
                          f"seq {other}", seq, event_id)
    return Damage("modified", f"the envelope of event {event_id} was altered", seq, event_id)


def _user_of(payload: bytes) -> Any:
    if b'"user_id"' not in payload:  # cheap: most payloads name no user
        return None
    try:
        return _payload_decoder.decode(payload).user_id
    except msgspec.ValidationError:  # not an object: no user_id, and the column must say so
        return None


def verify_log(store: Any, tenant: str = "default", *, vkey: str | None = None,
               witness: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               workers: int | None = None) -> VerifyReport:
    """Verify one tenant's log. ``vkey`` defaults to this machine's signing key. ``workers``
    processes check the rows of a large log (default: one per CPU, ``AGENTAUDIT_VERIFY_WORKERS``
    overrides; 1 checks everything in this process). The result is the same either way."""
    vkey = vkey or local_verifier_key()
    if not vkey:
        raise ConfigError("no verifier key: pass --vkey (the key printed by "
                          "`agentaudit checkpoint --vkey` on the machine that signed the log)")
    if workers is None:
        env = os.environ.get("AGENTAUDIT_VERIFY_WORKERS", "")
        workers = int(env) if env.isdigit() else (os.cpu_count() or 1)
    start = time.perf_counter()
    report = _Verifier(store, tenant, vkey, witness, progress, max(1, workers)).run()
    report.seconds = time.perf_counter() - start
    return report
