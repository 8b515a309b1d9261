"""An acknowledged (flushed) event survives kill -9; an unflushed crash corrupts nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from agentaudit.store import EventQuery, open_store

CHILD = textwrap.dedent("""
    import sys, time
    from agentaudit import AuditLogger
    db, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    audit = AuditLogger(db, flush_interval=0.05)
    for i in range(n):
        audit.log_tool_call("Worker", "step", {"i": i}, trace_id="durable")
    if mode == "flush":
        assert audit.flush(60)
        print("FLUSHED", flush=True)
    else:
        print("LOGGED", flush=True)
    time.sleep(60)
""")


def run_and_kill(db: Path, n: int, mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(n), mode],
                            stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)  # right after the marker, no chance to drain
    proc.wait(10)
    proc.stdout.close()
    assert line.strip() in ("FLUSHED", "LOGGED")


def test_flushed_events_survive_kill_9(db_path: Path) -> None:
    n = 20_000
    run_and_kill(db_path, n, "flush")
    with open_store(str(db_path), create=False) as store:
        events = list(store.iter_events(EventQuery(trace_id="durable")))
    assert len(events) == n
    assert sorted(e.params["i"] for e in events) == list(range(n))  # type: ignore[index]


def test_kill_before_flush_leaves_a_consistent_store(db_path: Path) -> None:
    run_and_kill(db_path, 50_000, "noflush")
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with open_store(str(db_path), create=False) as store:
        n = store.count(EventQuery(trace_id="durable"))
        events = list(store.iter_events(EventQuery(trace_id="durable")))
    # whatever committed is whole: a gap-free prefix of the log, every payload readable
    assert len(events) == n
    assert sorted(e.seq for e in events) == list(range(n))
    assert all(isinstance(e.params, dict) for e in events)
