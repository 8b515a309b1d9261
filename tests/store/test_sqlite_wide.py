"""WideReader: rows of many columns read through a SQL function are the rows ``fetchall``
returns, whatever they hold, in the statement's order, on any thread."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentaudit.sdk.logger import AuditLogger
from agentaudit.store._sqlite_wide import NotUTF8, WideReader
from agentaudit.store.base import EventQuery
from agentaudit.store.sqlite import SQLiteStore

COLUMNS = [f"c{i}" for i in range(12)]

values = st.one_of(
    st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False), st.text(), st.binary(),
)


def table(path: Path, rows: list[tuple[object, ...]]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {', '.join(COLUMNS)})")
    db.executemany(f"INSERT INTO t ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 12)})", rows)
    return db


def typed(rows: list[tuple[object, ...]]) -> list[tuple[tuple[type, object], ...]]:
    """Rows with each value's type beside it (1 == 1.0 == True, but a row is not its copy)."""
    return [tuple((type(v), v) for v in row) for row in rows]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(*[values] * 12), max_size=30))
def test_rows_are_what_fetchall_returns(tmp_path_factory: pytest.TempPathFactory,
                                        rows: list[tuple[object, ...]]) -> None:
    path = tmp_path_factory.mktemp("wide") / "t.db"
    db = table(path, rows)
    reader = WideReader(str(path))
    try:
        for rest in ("FROM t ORDER BY id",
                     # a sorter: SQLite may call the function in another order than it returns
                     "FROM t ORDER BY c3 DESC, id LIMIT 17",
                     "FROM t WHERE id % 2 = 0 ORDER BY c0, id"):
            expected = db.execute(f"SELECT {', '.join(COLUMNS)} {rest}").fetchall()
            assert typed(reader.rows(COLUMNS, rest, ())) == typed(expected)
    finally:
        reader.close()
        db.close()


def test_text_that_is_not_utf8_comes_back_escaped(tmp_path: Path) -> None:
    db = table(tmp_path / "t.db", [("ok", b"\xff", None, 1, 2.5, *[None] * 7)] * 3)
    db.execute("UPDATE t SET c0 = CAST(X'61C3FF' AS TEXT) WHERE id = 2")
    with pytest.raises(sqlite3.OperationalError):  # what sqlite3 itself does with it
        db.execute("SELECT c0 FROM t").fetchall()
    rows = WideReader(str(tmp_path / "t.db")).rows(COLUMNS, "FROM t WHERE id >= :lo ORDER BY id", {"lo": 1})
    assert [r[0] for r in rows] == ["ok", "a\udcc3\udcff", "ok"]
    assert all(r[1:5] == (b"\xff", None, 1, 2.5) for r in rows)  # blobs stay bytes
    assert "a\udcc3\udcff".encode("utf-8", "surrogateescape") == b"a\xc3\xff"


def test_a_strict_read_names_the_row_and_column(tmp_path: Path) -> None:
    db = table(tmp_path / "t.db", [("ok", *[None] * 11), ("fine", "x", *[None] * 10)])
    db.execute("UPDATE t SET c1 = CAST(X'C3' AS TEXT) WHERE id = 2")
    reader = WideReader(str(tmp_path / "t.db"))
    with pytest.raises(NotUTF8) as e:
        reader.rows(COLUMNS, "FROM t ORDER BY id", (), strict=True)
    assert e.value.column == "c1" and e.value.row[0] == "fine"
    assert len(reader.rows(COLUMNS, "FROM t ORDER BY id", ())) == 2  # not strict: both rows
    reader.close()


def test_iter_events_gives_what_query_pages_give(tmp_path: Path) -> None:
    """``iter_events`` reads through the WideReader, ``query`` through the store's own
    connection: the same events, fields and order, page after page."""
    path = tmp_path / "audit.db"
    audit = AuditLogger(str(path), spool_dir=tmp_path / "spool")
    for i in range(700):
        with audit.trace("t", agent=f"A{i % 3}", session_id=f"s{i % 5}", user_id="u\u00e9") as t:
            with t.tool_call("get", {"i": i, "text": "\u2603" * (i % 4)}) as call:
                call.result = {"ok": i % 2 == 0}
            t.decision("go", confidence=(i % 10) / 10, reasoning=None if i % 3 else "why")
    audit.close()
    with SQLiteStore(path, create=False) as store:
        for q in (EventQuery(), EventQuery(agent="A1"), EventQuery(session_id="s2")):
            pages, page_q = [], EventQuery(**{**q.__dict__, "limit": 333})
            while True:
                page = store.query(page_q)
                pages += page.data
                if page.next_cursor is None:
                    break
                page_q.cursor = page.next_cursor
            streamed = list(store.iter_events(q, batch_size=333))
            assert streamed == pages and len(streamed) > 300


def test_threads_read_while_the_file_is_written(tmp_path: Path) -> None:
    """Readers on several threads share one reader while another thread writes through its own
    connection: each gets its own rows, and nothing waits forever (a SQL function on a
    connection other threads use could deadlock on the GIL)."""
    db = table(tmp_path / "t.db", [(i, *[f"v{i}"] * 11) for i in range(2000)])
    reader = WideReader(str(tmp_path / "t.db"))
    errors: list[str] = []

    def read(lo: int) -> None:
        for _ in range(20):
            rows = reader.rows(COLUMNS, "FROM t WHERE c0 >= ? AND c0 < ? ORDER BY id",
                               (lo, lo + 500))
            if [r[0] for r in rows] != list(range(lo, lo + 500)):
                errors.append(f"thread reading from {lo} got rows of another")

    def write() -> None:
        for k in range(300):
            db.execute("INSERT INTO t (c0, c1) VALUES (?, ?)", (10_000 + k, "w"))
            db.execute("SELECT count(*) FROM t WHERE c0 >= ?", (k,)).fetchone()

    threads = [threading.Thread(target=read, args=(lo,)) for lo in (0, 500, 1000, 1500)]
    threads.append(threading.Thread(target=write))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert not errors
    reader.close()
    db.close()


def test_rows_committed_after_the_reader_opened_are_read(tmp_path: Path) -> None:
    """The reader's own connection sees what the writer's connection commits."""
    db = table(tmp_path / "t.db", [(1, *[None] * 11)])
    reader = WideReader(str(tmp_path / "t.db"))
    assert [r[0] for r in reader.rows(COLUMNS, "FROM t ORDER BY id", ())] == [1]
    db.execute("INSERT INTO t (c0) VALUES (2)")
    assert [r[0] for r in reader.rows(COLUMNS, "FROM t ORDER BY id", ())] == [1, 2]
    with pytest.raises(sqlite3.OperationalError):  # and only reads
        reader._db.execute("INSERT INTO t (c0) VALUES (3)")
    reader.close()


def test_a_ctrl_c_while_the_row_function_runs_is_not_swallowed(tmp_path: Path) -> None:
    """sqlite3 turns whatever a SQL function raises into "user-defined function raised
    exception": a KeyboardInterrupt raised in the row function must still reach the caller."""
    table(tmp_path / "t.db", [(i,) * 12 for i in range(500)]).close()
    reader = WideReader(str(tmp_path / "t.db"))
    keep, calls = reader._keep, []

    def keep_and_interrupt(*values: object) -> int:
        calls.append(1)
        if len(calls) == 10:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while SQLite calls the function
        return keep(*values)

    reader._db.create_function("aa_keep_row", -1, keep_and_interrupt)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's Ctrl-C
    try:
        with pytest.raises(KeyboardInterrupt):
            reader.rows(COLUMNS, "FROM t ORDER BY id", ())
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
        assert len(calls) == 500  # the statement ran to its end first
        rows = reader.rows(COLUMNS, "FROM t ORDER BY id", ())  # and the reader still reads
        assert rows == [(i,) * 12 for i in range(500)]
    finally:
        signal.signal(signal.SIGINT, inherited)
        reader.close()
