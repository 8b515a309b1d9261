"""``verify_log`` with worker processes, called from a script that has no
``if __name__ == "__main__":`` guard: the spawned workers import the script again and die, and
the check goes on in the calling process, with the same answer and a warning that says why."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentaudit.events import AuditEvent
from agentaudit.integrity.checkpoint import Signer
from agentaudit.store.sqlite import SQLiteStore

SIGNER = Signer.generate("agentaudit-test")

# No main guard, on purpose: this is the script a user writes first.
SCRIPT = textwrap.dedent("""
    import sys
    from agentaudit.integrity import verify as verify_mod
    from agentaudit.store.sqlite import SQLiteStore

    verify_mod.PARALLEL_MIN_EVENTS = 0
    verify_mod.CHUNK_EVENTS = 50
    with SQLiteStore(sys.argv[1], create=False, readonly=True) as store:
        report = verify_mod.verify_log(store, vkey=sys.argv[2], workers=2)
    print("RESULT", report.ok, report.size,
          report.damage.kind if report.damage else None,
          report.damage.seq if report.damage else None)
""")


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTAUDIT_SIGNING_KEY", SIGNER.key_text())
    path = tmp_path / "audit.db"
    with SQLiteStore(path) as store:
        store.append_batch([AuditEvent(event_type="agent.tool_call", agent_name="A",
                                       action="t", params={"i": i}) for i in range(400)])
        store.checkpoint()
    return path


def _run(tmp_path: Path, store: Path) -> tuple[str, str]:
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run([sys.executable, str(script), str(store), SIGNER.verifier_key()],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert len(results) == 1, done.stdout  # the workers never got as far as printing
    return results[0], done.stderr


def test_a_script_without_a_main_guard_still_gets_its_answer(tmp_path: Path,
                                                             store_path: Path) -> None:
    result, err = _run(tmp_path, store_path)
    assert result == "RESULT True 400 None None"
    assert "verify worker processes failed" in err and "__main__" in err


def test_the_fallback_names_the_damage_like_a_sequential_check(tmp_path: Path,
                                                                store_path: Path) -> None:
    with sqlite3.connect(store_path) as db:
        db.execute("UPDATE events SET payload = CAST('{\"params\":{\"i\":-1}}' AS BLOB) "
                   "WHERE seq = 123")
    result, _ = _run(tmp_path, store_path)
    assert result == "RESULT False 0 modified 123"
