"""Periodic retention inside a real ``agentaudit serve`` process on loopback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.retention.helpers import DAY, event, open_store
from tests.server.conftest import Server, free_port, server_env, wait_for

from agentaudit.cli import main
from agentaudit.retention import create_hold


def _erased(db: Path, event_id: str) -> bool:
    with sqlite3.connect(db) as raw:
        row = raw.execute("SELECT payload IS NULL FROM events WHERE event_id = ?",
                          (event_id,)).fetchone()
    return bool(row[0])


def _runs(db: Path) -> int:
    with sqlite3.connect(db) as raw:
        return int(raw.execute("SELECT count(*) FROM events "
                               "WHERE event_type = 'audit.retention_run'").fetchone()[0])


def test_serve_applies_retention_periodically(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    today = int(time.time() // DAY)
    store = open_store(db)
    due, held, young = (event("debug", today - 10), event("debug", today - 10, trace_id="keep"),
                        event("debug", today - 1))
    store.append_batch([due, held, young])
    create_hold(store, "default", "case 1", trace="keep")
    store.checkpoint()
    store.close()
    server = Server(db, tmp_path / "home", "--no-auth",
                    env={"AGENTAUDIT_RETENTION_INTERVAL": "0.3",
                         # the signing key of this test, so that verify below trusts it
                         "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]}).start()
    try:
        wait_for(lambda: _erased(db, due.event_id))
        wait_for(lambda: _runs(db) == 1)
        time.sleep(1.0)  # later runs find nothing to erase and record nothing
        assert _runs(db) == 1
        assert not _erased(db, held.event_id) and not _erased(db, young.event_id)
    finally:
        server.stop()
    assert main(["verify", "--db", str(db)]) == 0


def test_serve_refuses_a_bad_retention_config(tmp_path: Path) -> None:
    from agentaudit.exceptions import ConfigError
    from agentaudit.server.settings import ServerSettings

    bad = tmp_path / "r.toml"
    bad.write_text("[tiers]\ninfo = -1\n")
    try:
        ServerSettings(retention_interval=-5)
    except ConfigError as e:
        assert "retention_interval" in str(e)
    else:
        raise AssertionError("a negative interval was accepted")
    proc = subprocess.run(
        [sys.executable, "-m", "agentaudit.cli", "serve", "--port", str(free_port()), "--db",
         str(tmp_path / "a.db"), "--no-auth"],
        env=server_env(tmp_path / "home", AGENTAUDIT_RETENTION_CONFIG=str(bad)),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "agentaudit: error:" in proc.stderr and "info = -1" in proc.stderr
