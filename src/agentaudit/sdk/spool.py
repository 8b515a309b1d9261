"""The local spool: events that could not reach the store wait here, on disk, until replayed.

One JSON line per event, fsync'd before ``spill`` returns. Each writer owns one file and holds an
exclusive ``flock`` on it; files whose owner died (no lock held) are adopted and replayed by the
next writer for the same store. Replay is idempotent because the store is.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from agentaudit.events import AuditEvent

__all__ = ["Spool", "default_spool_dir"]

log = logging.getLogger("agentaudit.spool")


def default_spool_dir(store_url: str) -> Path:
    """``AGENTAUDIT_SPOOL_DIR`` or the user's state dir, one sub-folder per store URL."""
    base = os.environ.get("AGENTAUDIT_SPOOL_DIR")
    if base:
        root = Path(base)
    else:
        state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        root = Path(state) / "agentaudit" / "spool"
    key = hashlib.sha256(os.path.abspath(store_url).encode() if "://" not in store_url
                         else store_url.encode()).hexdigest()[:16]
    return root / key


def _fallback(obj: object) -> object:
    return repr(obj)


_encoder = msgspec.json.Encoder(enc_hook=_fallback)
_decoder = msgspec.json.Decoder(AuditEvent)


class Spool:
    """An append-only, fsync'd file of events waiting for the store. Thread-safe."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._file: int | None = None
        self._path: Path | None = None
        self.pending = 0  # events in our own file not yet replayed
        self._orphans_checked = 0.0

    def _open(self) -> int:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._path = self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
            fd = os.open(self._path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._file = fd
        return self._file

    def spill(self, events: Sequence[AuditEvent]) -> list[tuple[AuditEvent, str]]:
        """Append events durably; raises OSError when the disk refuses. Returns the events that
        cannot be encoded at all (with the reason); they are not spooled."""
        lines, bad = [], []
        for ev in events:
            try:
                lines.append(_encoder.encode(ev) + b"\n")
            except Exception as e:
                bad.append((ev, f"cannot be encoded: {e!r}"))
        if not lines:
            return bad
        data = b"".join(lines)
        with self._lock:
            fd = self._open()
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
            self.pending += len(lines)
        return bad

    def reject(self, ev: object, reason: str) -> None:
        """Keep an event the store refused for a reason of its own (invalid, unencodable) in
        ``rejected.jsonl`` beside the spool, for a person to inspect; it is never replayed."""
        try:
            body = _encoder.encode(ev) if isinstance(ev, AuditEvent) else _encoder.encode(repr(ev))
        except Exception:
            body = _encoder.encode(repr(ev))
        line = b'{"error":' + _encoder.encode(reason) + b',"event":' + body + b"}\n"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.directory / "rejected.jsonl", os.O_CREAT | os.O_WRONLY | os.O_APPEND,
                         0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def has_pending(self) -> bool:
        return self.pending > 0 or self._orphans_exist()

    def _orphans_exist(self) -> bool:
        now = time.monotonic()
        if now - self._orphans_checked < 30.0:
            return False
        self._orphans_checked = now
        try:
            return any(p != self._path for p in self._spool_files())
        except OSError:
            return False

    def replay(self, chunk: int = 2000) -> Iterator[list[AuditEvent]]:
        """Yield spooled events in chunks; after the consumer has stored a chunk it asks for the
        next, and a file is removed once all its chunks were consumed."""
        for path in self._spool_files():
            own = path == self._path
            if own:
                with self._lock:
                    yield from self._replay_file(path, chunk, own=True)
            else:
                yield from self._adopt(path, chunk)

    def _spool_files(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted(p for p in self.directory.glob("*.jsonl") if p.name != "rejected.jsonl")

    def _adopt(self, path: Path, chunk: int) -> Iterator[list[AuditEvent]]:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # a live writer owns it
            yield from self._replay_file(path, chunk, own=False)
        finally:
            os.close(fd)

    def _replay_file(self, path: Path, chunk: int, own: bool) -> Iterator[list[AuditEvent]]:
        events = list(_read(path))
        for i in range(0, len(events), chunk):
            yield events[i : i + chunk]
        if own and self._file is not None:
            os.ftruncate(self._file, 0)
            self.pending = 0
        else:
            with contextlib.suppress(OSError):
                path.unlink()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                empty = os.fstat(self._file).st_size == 0
                os.close(self._file)
                self._file = None
                if empty and self._path is not None:
                    with contextlib.suppress(OSError):
                        self._path.unlink()


def _read(path: Path) -> Iterator[AuditEvent]:
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield _decoder.decode(line)
            except msgspec.DecodeError:
                # Only a torn last line of a crashed writer can look like this; it was never
                # reported durable to anyone.
                log.warning("agentaudit: skipping unreadable spool line %s:%d", path, lineno)
