"""Store down: the agent keeps running, events spill to disk and are replayed, counts exact."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from agentaudit import AuditLogger
from agentaudit.store import EventQuery, open_store
from agentaudit.store.sqlite import SQLiteStore


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_unopenable_store_spills_then_replays(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    db.mkdir()  # a directory where the database file should be: SQLite cannot open it
    audit = AuditLogger(str(db), flush_interval=0.05)
    audit._writer.retry_interval = audit._writer._backoff = 0.1
    audit._writer.max_retry_interval = 0.2
    for i in range(1_000):
        audit.log_tool_call("Worker", "step", {"i": i}, trace_id="t")
    assert audit.flush(10)  # durable in the spool
    s = audit.stats()
    assert (s.written, s.spilled, s.failed, s.dropped) == (0, 1_000, 0, 0)
    assert not s.store_available and s.spool_pending == 1_000
    assert any((tmp_path / "spool").rglob("*.jsonl"))

    shutil.rmtree(db)  # the store comes back
    for i in range(1_000, 1_500):
        audit.log_tool_call("Worker", "step", {"i": i}, trace_id="t")
    # the spool file is removed just after its events are counted written: wait for both
    wait_for(lambda: audit.stats().written == 1_500 and audit.stats().spool_pending == 0)
    s = audit.stats()
    audit.close()
    # events logged while the store still counted as down may have been spooled too
    assert (s.enqueued, s.written, s.failed, s.dropped, s.pending) == (1_500, 1_500, 0, 0, 0)
    assert 1_000 <= s.spilled <= 1_500 and s.replayed == s.spilled and s.spool_pending == 0
    with open_store(str(db), create=False) as store:
        events = list(store.iter_events(EventQuery(trace_id="t")))
    assert sorted(e.params["i"] for e in events) == list(range(1_500))  # type: ignore[index]


def test_disk_full_spills_and_recovers(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    store.connection.execute("PRAGMA max_page_count = 60")  # a disk that fills up
    audit = AuditLogger(store, flush_interval=0.05, batch_size=500)
    audit._writer.retry_interval = audit._writer._backoff = 0.1
    audit._writer.max_retry_interval = 0.2
    for i in range(5_000):
        audit.log_tool_call("Worker", "step", {"i": i, "pad": "x" * 200}, trace_id="t")
    assert audit.flush(30)
    s = audit.stats()
    assert s.spilled > 0 and s.written + s.spilled == 5_000 and s.failed == 0
    store.connection.execute("PRAGMA max_page_count = 1073741823")  # space freed
    wait_for(lambda: audit.stats().written == 5_000)
    s = audit.stats()
    audit.close()
    store.close()
    assert s.replayed == s.spilled and s.failed == s.dropped == 0
    with open_store(str(db_path), create=False) as st:
        assert st.count(EventQuery(trace_id="t")) == 5_000


@pytest.mark.parametrize("policy", ["drop", "spill", "block"])
def test_overflow_policies_are_explicit_and_counted(tmp_path: Path, policy: str) -> None:
    db = tmp_path / "audit.db"
    db.mkdir()  # keep the writer busy failing so that the small queue overflows
    audit = AuditLogger(str(db), overflow=policy, max_queue=10, batch_size=10,
                        flush_interval=5.0, block_timeout=0.01)
    n = 2_000
    for i in range(n):
        audit.log_tool_call("Worker", "step", {"i": i})
    assert audit.flush(30)
    s = audit.stats()
    audit.close()
    assert s.enqueued == n
    assert s.written + s.spilled + s.dropped + s.failed + s.pending == n
    if policy == "drop":
        assert s.dropped > 0
    else:
        assert s.dropped == 0 and s.spilled == n


def test_unstorable_event_is_rejected_and_kept_the_rest_stored(db_path: Path,
                                                              tmp_path: Path) -> None:
    audit = AuditLogger(str(db_path))
    audit.log_tool_call("Worker", "before", {"i": 1})
    audit.log_tool_call("Worker", "bad", {"text": "lone \udc80 surrogate"})
    audit.log_tool_call("Worker", "after", {"i": 2})
    assert audit.flush(10)
    s = audit.stats()
    audit.close()
    assert (s.written, s.failed) == (2, 1)
    rejected = (tmp_path / "spool").rglob("rejected.jsonl")
    assert any("bad" in p.read_text(errors="replace") for p in rejected)
    with open_store(str(db_path), create=False) as store:
        assert [e.action for e in store.query(EventQuery()).data] == ["before", "after"]


def test_bad_store_url_is_a_config_error_at_construction() -> None:
    from agentaudit.exceptions import ConfigError

    with pytest.raises(ConfigError, match="scheme"):
        AuditLogger("ftp://example/audit")


def test_unencodable_event_while_store_is_down_does_not_block_flush(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    db.mkdir()
    audit = AuditLogger(str(db), flush_interval=0.05)
    audit.log_tool_call("Worker", "ok", {"i": 1})
    audit.log_tool_call("Worker", "bad", {"text": "\udc80"})
    assert audit.flush(10)
    s = audit.stats()
    audit.close()
    assert (s.enqueued, s.spilled, s.failed) == (2, 1, 1)
