"""The background writer: the only place the SDK touches the store.

Callers only append to a deque (tens of nanoseconds). One thread wakes every ``flush_interval`` or
as soon as a batch fills, validates the events, and commits them in one transaction (group
commit). If the store fails, the batch goes to the local spool and is replayed when the store
answers again; nothing is dropped unless the overflow policy is ``drop``, and then it is counted.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agentaudit.events import AuditEvent, validate_event
from agentaudit.exceptions import StoreError, ValidationError
from agentaudit.sdk.spool import Spool
from agentaudit.store.base import AppendResult

__all__ = ["OVERFLOW_POLICIES", "Sink", "Writer", "WriterStats"]

log = logging.getLogger("agentaudit")

OVERFLOW_POLICIES = ("block", "spill", "drop")


class Sink(Protocol):
    def append_batch(self, events: list[AuditEvent]) -> AppendResult: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class WriterStats:
    """Exact counts once the writer is idle (after ``flush``)."""

    enqueued: int      # every event handed to the logger
    written: int       # committed to the store (replayed ones included)
    duplicates: int    # already in the store (idempotent retries)
    spilled: int       # sent to the local spool (store down, or queue full)
    replayed: int      # spooled events later committed
    dropped: int       # discarded because the queue was full and the policy is "drop"
    failed: int        # invalid events, or events neither stored nor spooled
    pending: int       # in the queue right now
    spool_pending: int  # in the spool, waiting for the store
    store_available: bool
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Flush:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = True


class Writer:
    """Batches events from any thread into a ``Sink`` on one background thread."""

    def __init__(self, open_sink: Callable[[], Sink], spool: Spool, *, batch_size: int = 2000,
                 flush_interval: float = 0.2, max_queue: int = 100_000, overflow: str = "block",
                 block_timeout: float = 5.0, retry_interval: float = 0.5,
                 max_retry_interval: float = 10.0, close_sink: bool = True,
                 redact: Callable[[AuditEvent], AuditEvent] | None = None) -> None:
        self._open_sink = open_sink
        self.on_stored: Callable[[list[AuditEvent]], None] | None = None  # agentaudit.detect
        self._redact = redact  # on the writer thread (on the caller's only to spill on overflow)
        self._close_sink = close_sink
        self._spool = spool
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self._init_runtime()
        _live_writers.add(self)

    def _init_runtime(self) -> None:
        """State that a forked child must not share with its parent."""
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._space = threading.Condition(threading.Lock())
        self._counts_lock = threading.Lock()
        self._sink: Sink | None = None
        self._stopping = False
        self._closed = False
        self._received = 0
        self._written = self._duplicates = self._replayed = 0
        self._spilled = self._failed = 0  # by the writer thread
        self._caller_spilled = self._caller_failed = self._dropped = 0  # on overflow
        self._store_ok = True
        self._next_retry = 0.0
        self._backoff = self.retry_interval
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="agentaudit-writer", daemon=True)
        self._thread.start()

    # -- caller side (any thread) --------------------------------------------------------------

    def submit(self, ev: AuditEvent) -> None:
        """Queue one event (``AuditLogger._emit`` inlines the same steps)."""
        q = self._queue
        n = len(q)
        if n >= self.max_queue:
            self._overflow(ev)
            return
        q.append(ev)
        if n + 1 >= self.batch_size:
            self._wake.set()

    def _overflow(self, ev: AuditEvent) -> None:
        if self.overflow == "block":
            deadline = time.monotonic() + self.block_timeout
            with self._space:
                self._wake.set()
                while len(self._queue) >= self.max_queue and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._space.wait(left)
            if len(self._queue) < self.max_queue and not self._closed:
                self._queue.append(ev)
                return
        if self.overflow in ("block", "spill"):
            if self._redact is not None:  # the spool is on disk too: nothing sensitive there
                ev = self._redact(ev)
            try:
                for bad, reason in self._spool.spill([ev]):
                    self._note_error(reason)
                    self._spool.reject(bad, reason)
                    with self._counts_lock:
                        self._caller_failed += 1
                    return
                with self._counts_lock:
                    self._caller_spilled += 1
                return
            except OSError as e:
                self._note_error(f"spool write failed: {e}")
                with self._counts_lock:
                    self._caller_failed += 1
                return
        with self._counts_lock:
            self._dropped += 1

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted before this call is stored or spooled."""
        if self._closed or not self._thread.is_alive():
            return not self._queue
        marker = _Flush()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout) and marker.ok

    def close(self, timeout: float | None = 10.0) -> bool:
        """Drain within ``timeout`` seconds, stop the thread and close the store."""
        if self._closed:
            return True
        ok = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self._closed = True
        with self._space:
            self._space.notify_all()
        self._spool.close()
        return ok and not self._thread.is_alive()

    def stats(self) -> WriterStats:
        with self._counts_lock:
            pending = sum(1 for x in list(self._queue) if x.__class__ is not _Flush)
            return WriterStats(
                enqueued=(self._received + pending + self._caller_spilled + self._caller_failed
                          + self._dropped),
                written=self._written, duplicates=self._duplicates,
                spilled=self._spilled + self._caller_spilled, replayed=self._replayed,
                dropped=self._dropped, failed=self._failed + self._caller_failed,
                pending=pending, spool_pending=self._spool.pending,
                store_available=self._store_ok, last_error=self.last_error,
            )

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception as e:  # never let the thread die
                self._note_error(f"writer error: {e!r}")
            if self._stopping and not self._queue:
                break
        if self._sink is not None and self._close_sink:
            with contextlib.suppress(Exception):
                self._sink.close()

    def _drain(self) -> None:
        q = self._queue
        if not q:
            if not self._store_ok or self._spool.pending:
                self._retry_spool()
            return
        while q:
            batch: list[AuditEvent] = []
            marker: _Flush | None = None
            while q and len(batch) < self.batch_size:
                item = q.popleft()
                if item.__class__ is _Flush:
                    marker = item
                    break
                batch.append(item)
            with self._counts_lock:
                self._received += len(batch)
            try:
                ok = self._write(batch) if batch else True
            except Exception as e:  # a bug of ours must not leave a flush() waiting forever
                self._note_error(f"writer error: {e!r}")
                ok = False
            if marker is not None:
                if ok and self._store_ok:
                    self._checkpoint()
                marker.ok = ok
                marker.done.set()
            with self._space:
                self._space.notify_all()

    def _checkpoint(self) -> None:
        """Sign the log's current head so flushed events are covered by a checkpoint."""
        checkpoint = getattr(self._sink, "checkpoint", None)
        if checkpoint is None:
            return
        try:
            checkpoint()
        except Exception as e:  # the events are stored; a late checkpoint is not a loss
            self._note_error(f"checkpoint failed: {e}")

    def _valid(self, batch: list[AuditEvent]) -> list[AuditEvent]:
        good = []
        redact = self._redact
        for ev in batch:
            if redact is not None:  # before anything (store, spool, rejects) sees the event
                ev = redact(ev)
            try:
                good.append(validate_event(ev))
            except ValidationError as e:
                self._reject(ev, str(e))
        return good

    def _write(self, batch: list[AuditEvent]) -> bool:
        """Store (or spool) a batch; True when every event is durable somewhere."""
        events = self._valid(batch)
        if not events:
            return True
        if self._store_ok or time.monotonic() >= self._next_retry:
            if self._spool.has_pending() and not self._retry_spool():
                return self._spill(events)
            try:
                self._append(events)
                return True
            except StoreError as e:
                self._store_down(e)
            except Exception:
                # Not the store: something in these events cannot be stored (e.g. text that is
                # not valid Unicode). Find it, keep the rest.
                return self._append_one_by_one(events)
        return self._spill(events)

    def _append_one_by_one(self, events: list[AuditEvent], spill: bool = True) -> bool:
        for i, ev in enumerate(events):
            try:
                self._append([ev])
            except StoreError as e:
                if not spill:
                    return False
                self._store_down(e)
                return self._spill(events[i:])
            except Exception as e:
                self._reject(ev, f"cannot be stored: {e!r}")
        return True

    def _reject(self, ev: AuditEvent, reason: str) -> None:
        """Count an event the store can never accept and keep it in the spool's rejected file."""
        self._note_error(reason)
        with self._counts_lock:
            self._failed += 1
        try:
            self._spool.reject(ev, reason)
        except OSError as e:
            self._note_error(f"could not keep a rejected event: {e}")

    def _append(self, events: list[AuditEvent]) -> AppendResult:
        if self._sink is None:
            try:
                self._sink = self._open_sink()
            except Exception as e:
                raise StoreError(f"cannot open the store: {e}") from e
        result = self._sink.append_batch(events)
        if self.on_stored is not None:
            try:
                self.on_stored(events)
            except Exception as e:  # stored is stored; a hook must not undo that
                self._note_error(f"on_stored hook failed: {e!r}")
        with self._counts_lock:
            self._written += result.accepted
            self._duplicates += result.duplicates
        if not self._store_ok:
            log.warning("agentaudit: store is available again")
        self._store_ok = True
        self._backoff = self.retry_interval
        return result

    def _store_down(self, e: BaseException) -> None:
        self._note_error(f"store unavailable, spooling: {e}")
        self._store_ok = False
        self._next_retry = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.max_retry_interval)

    def _spill(self, events: list[AuditEvent]) -> bool:
        try:
            bad = self._spool.spill(events)
        except OSError as e:
            self._note_error(f"spool write failed, {len(events)} events lost: {e}")
            with self._counts_lock:
                self._failed += len(events)
            return False
        for ev, reason in bad:
            self._reject(ev, reason)
        with self._counts_lock:
            self._spilled += len(events) - len(bad)
        return True

    def _retry_spool(self) -> bool:
        """Replay the spool into the store; True when it is empty afterwards."""
        if not self._store_ok and time.monotonic() < self._next_retry:
            return False
        replay = self._spool.replay(self.batch_size)
        try:
            for chunk in replay:
                if self._redact is not None:  # spools written by older versions: unredacted
                    chunk = [self._redact(ev) for ev in chunk]
                try:
                    self._append(chunk)
                    stored = len(chunk)
                except StoreError:
                    raise
                except Exception:
                    before = self._failed
                    if not self._append_one_by_one(chunk, spill=False):
                        raise StoreError("store failed during replay") from None
                    stored = len(chunk) - (self._failed - before)
                with self._counts_lock:
                    self._replayed += stored
        except StoreError as e:
            self._store_down(e)
            return False
        finally:
            replay.close()
        return True

    def caller_failed(self, message: str) -> None:
        """An event the caller's thread could not even build or queue (a bad argument, a
        capture hook that raised): counted as failed, the reason kept in ``last_error``."""
        with self._counts_lock:
            self._caller_failed += 1
        self._note_error(message)

    def _note_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("agentaudit: %s", message)
        self.last_error = message

    # -- fork ----------------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # The parent owns the queued events and the spool file; the child starts empty.
        self._spool = Spool(self._spool.directory)
        self._init_runtime()


_live_writers: weakref.WeakSet[Writer] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for w in list(_live_writers):
        if not w._closed:
            w._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
