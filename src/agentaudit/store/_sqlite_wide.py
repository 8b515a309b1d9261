"""Reading rows of many columns from SQLite cheaply, and whatever bytes they hold.

Python's ``sqlite3`` releases and retakes the GIL around every column of every row it fetches
(about 0.3 µs each on a 2-core machine, more than the value itself costs), so the 27 columns
``agentaudit verify`` reads per event cost ~10 µs a row. The same values handed to a SQL
function arrive without that: ``SELECT aa_keep_row(c1, ..., c27) FROM ...`` calls a Python
function once per row that keeps the values and returns their index, and the statement yields
one small integer per row: about a fifth less time for a large verify (bench/integrity.py).

A Python SQL function waits for the GIL while SQLite holds the connection's mutex; another
thread holding the GIL while it waits for that mutex (binding parameters on the same
connection) would deadlock with it. So the function lives on a private read-only connection
to the same file, which only ``WideReader`` uses, one statement at a time.

Python runs signal handlers in the main thread, between two bytecodes: a Ctrl-C that lands
while SQLite is calling the function raises ``KeyboardInterrupt`` inside it, and ``sqlite3``
swallows any exception a SQL function raises (the statement fails with "user-defined function
raised exception"). So, in the main thread, the handlers of SIGINT and SIGTERM only note the
signal while a statement runs, and run once it is done (``_signals_after``): Ctrl-C stops
``log --follow`` or a long ``verify`` as it would anywhere else.

A text value that is not valid UTF-8 (a damaged or doctored file) cannot become a ``str``;
sqlite3 fails the whole statement. ``WideReader.rows`` then reads the batch again with each
text column as its bytes and decodes it with ``surrogateescape``: the row comes back, differs
from anything valid, and verify names it as modified instead of failing to read the file.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["NotUTF8", "WideReader"]

_FUNCTION = "aa_keep_row"
_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_after() -> Iterator[None]:
    """Inside: the Python handlers of SIGINT and SIGTERM (in the main thread, the only one
    they run in) note the signal; on leaving, each noted signal goes to its handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[tuple[int, Any]] = []
    previous = {}
    for sig in _DEFERRED:
        handler = signal.getsignal(sig)
        if callable(handler):
            previous[sig] = handler
            signal.signal(sig, lambda signum, frame: noted.append((signum, frame)))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in noted:
            previous[signum](signum, frame)  # a Ctrl-C raises KeyboardInterrupt here


class NotUTF8(ValueError):
    """A text value that is not valid UTF-8, met by a ``strict`` read: ``row`` is its row
    (bad bytes as surrogate escapes), ``column`` the column's name."""

    def __init__(self, row: tuple[Any, ...], column: str) -> None:
        super().__init__(f"column {column} holds text that is not valid UTF-8")
        self.row, self.column = row, column


class WideReader:
    """Reads rows of many columns of the database file ``path`` (from any thread)."""

    def __init__(self, path: str) -> None:
        self._kept: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._db = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._db.execute("PRAGMA cache_size = -65536")
            self._db.create_function(_FUNCTION, -1, self._keep)
        except BaseException:
            self._db.close()
            raise

    def _keep(self, *values: Any) -> int:
        kept = self._kept
        kept.append(values)
        return len(kept) - 1

    def rows(self, columns: Sequence[str], rest: str, params: Sequence[Any] | dict[str, Any],
             *, strict: bool = False) -> list[tuple[Any, ...]]:
        """The rows of ``SELECT <columns> <rest>`` (``rest`` starts with FROM) as ``fetchall``
        returns them; text that is not valid UTF-8 comes back with its bad bytes as surrogate
        escapes, or with ``strict`` raises ``NotUTF8`` naming its row and column. Raises
        ``sqlite3.Error`` as ``execute`` does."""
        with self._lock:
            kept: list[tuple[Any, ...]] = []
            self._kept = kept
            try:
                with _signals_after():
                    order = self._db.execute(f"SELECT {_FUNCTION}({', '.join(columns)}) {rest}",
                                             params).fetchall()
            except sqlite3.OperationalError:
                rows = self._tolerant_rows(columns, rest, params)
                if strict:
                    _refuse_escaped(rows, columns)
                return rows
            finally:
                self._kept = []
            # SQLite may call the function in another order than it returns rows (a sorter):
            # the index each call returned puts the rows back in the statement's order
            return [kept[i] for (i,) in order]

    def _tolerant_rows(self, columns: Sequence[str], rest: str,
                       params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
        """The same rows, each text value read as bytes and decoded with ``surrogateescape``
        (blobs stay bytes: a blob is never taken for text)."""
        select = ", ".join(f"CASE typeof({c}) WHEN 'text' THEN CAST({c} AS BLOB) ELSE {c} END, "
                           f"typeof({c}) = 'text'" for c in columns)
        return [tuple(v.decode("utf-8", "surrogateescape") if is_text else v
                      for v, is_text in zip(raw[::2], raw[1::2], strict=True))
                for raw in self._db.execute(f"SELECT {select} {rest}", params).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _refuse_escaped(rows: list[tuple[Any, ...]], columns: Sequence[str]) -> None:
    for row in rows:
        for value, column in zip(row, columns, strict=True):
            if value.__class__ is str:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise NotUTF8(row, column) from None
