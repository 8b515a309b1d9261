"""``agentaudit report …`` and ``agentaudit forensics`` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reports.store_builder import Scenario

pytest.importorskip("agentaudit.cli.report_cmds")
SRC = Path(__file__).resolve().parents[2] / "src"
PERIOD = ["--from", "2026-03-10", "--to", "2026-03-11"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "agentaudit.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120, check=False)


@pytest.fixture
def db(scenario: Scenario, db_path: Path) -> str:
    return str(db_path)


def test_summary_json(db: str) -> None:
    done = cli("report", "summary", "--db", db, *PERIOD, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["total_events"], data["total_errors"], data["agents_active"]) == (26, 1, 4)
    assert data["period"]["from"] == "2026-03-10T00:00:00.000Z"


def test_every_report_and_format(db: str, tmp_path: Path) -> None:
    runs = [(command, fmt) for command in (
        ["summary"], ["tool-usage"], ["errors"], ["cost"], ["agent", "Billing"],
        ["daily", "--date", "2026-03-10", "--tz", "Europe/Berlin"])
        for fmt in ("md", "html", "csv", "json")]

    def run(command: list[str], fmt: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        out = tmp_path / f"{command[0]}.{fmt}"
        period = [] if command[0] == "daily" else PERIOD
        return out, cli("report", *command, "--db", db, *period, "--format", fmt, "-o", str(out))

    with ThreadPoolExecutor(3) as pool:  # 24 processes: mostly interpreter start-up
        done_all = list(pool.map(lambda r: run(*r), runs))
    assert len({out for out, _ in done_all}) == len(runs)
    for (command, fmt), (out, done) in zip(runs, done_all, strict=True):
        assert done.returncode == 0, (command, fmt, done.stderr)
        assert out.stat().st_size > 50 and done.stdout == ""


def test_compliance_exit_codes(db: str, tmp_path: Path) -> None:
    failing = cli("report", "compliance", "--db", db, *PERIOD)
    assert failing.returncode == 1, failing.stderr
    assert "❌ not compliant" in failing.stdout
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("[checks.human_escalation_rate]\nmax = 0.5\n[checks.tool_approval]\n"
                       "max_unapproved = 1\n[checks.invocation_completion]\nmax_open = 2\n"
                       "[checks.pii_scan]\nenabled = false\n", encoding="utf-8")
    passing = cli("report", "compliance", "--db", db, *PERIOD, "--policy", str(lenient),
                  "--format", "json")
    assert passing.returncode == 0, passing.stderr
    assert json.loads(passing.stdout)["compliant"] is True
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks.error_rate]\nmax = 0.05\n\n[checks.typo]\n", encoding="utf-8")
    broken = cli("report", "compliance", "--db", db, "--policy", str(bad))
    assert broken.returncode == 2
    assert broken.stderr.startswith(f"agentaudit: error: bad policy {bad}:4: unknown check")
    assert "Traceback" not in broken.stderr and broken.stdout == ""


def test_forensics(db: str) -> None:
    done = cli("forensics", "task-1", "--db", db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Incident Forensics — task-1")
    missing = cli("forensics", "nope", "--db", db)
    assert missing.returncode == 1
    assert missing.stderr == "agentaudit: error: no trace or task 'nope' in tenant 'default'\n"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["report", "summary", "--format", "xml"], 2, "unknown --format 'xml'"),
    (["report", "summary", "--from", "soon"], 2, "cannot read the time 'soon'"),
    (["report", "daily", "--tz", "Mars/Olympus"], 2, "unknown time zone 'Mars/Olympus'"),
    (["report", "cost", "--top", "0"], 2, "--top must be at least 1"),
    (["report", "agent", "Nobody", *PERIOD], 1, "no agent named 'Nobody'"),
])
def test_errors_are_one_line(db: str, args: list[str], code: int, message: str) -> None:
    done = cli(*args, "--db", db)
    assert done.returncode == code
    assert done.stderr.startswith("agentaudit: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1


def test_missing_database(tmp_path: Path) -> None:
    done = cli("report", "summary", "--db", str(tmp_path / "none.db"))
    assert done.returncode == 1 and "no audit database" in done.stderr
    assert not (tmp_path / "none.db").exists()
