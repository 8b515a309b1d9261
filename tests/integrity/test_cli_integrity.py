"""`agentaudit verify / checkpoint / prove / export --bundle` through the real entry point."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).parents[2] / "src")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run([sys.executable, "-m", "agentaudit.cli", *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    db = tmp_path / "demo.db"
    r = cli("demo", "--db", str(db), "--traces", "60", "--seed", "3")
    assert r.returncode == 0, r.stderr
    return db


def test_verify_clean_then_tampered(demo: Path) -> None:
    ok = cli("verify", "--db", str(demo))
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stdout + ok.stderr
    with sqlite3.connect(demo) as raw:
        victim = raw.execute("SELECT event_id FROM events WHERE seq = 40").fetchone()[0]
        raw.execute("UPDATE events SET action = 'forged' WHERE seq = 40")
    bad = cli("verify", "--db", str(demo), "--format", "json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["damage"]["kind"] == "modified" and report["damage"]["event_id"] == victim
    text = cli("verify", "--db", str(demo))
    assert text.returncode == 1 and victim in text.stdout and "Traceback" not in text.stderr


def test_verify_usage_errors_exit_2(demo: Path, tmp_path: Path) -> None:
    r = cli("verify", "--db", str(demo), "--witness", str(tmp_path / "missing.note"))
    assert r.returncode == 2 and "witness" in r.stderr and "Traceback" not in r.stderr
    r = cli("verify", "--db", str(demo), "--format", "xml")
    assert r.returncode == 2
    r = cli("verify", "--db", str(demo), "--workers", "0")
    assert r.returncode == 2 and "--workers" in r.stderr and "Traceback" not in r.stderr
    r = cli("verify", "--db", str(demo), "--workers", "1")
    assert r.returncode == 0 and r.stdout.startswith("OK:"), r.stdout + r.stderr


def test_witness_round_trip(demo: Path, tmp_path: Path) -> None:
    note = cli("checkpoint", "--db", str(demo)).stdout
    witness = tmp_path / "witness.note"
    witness.write_text(note)
    assert note.splitlines()[0].startswith("agentaudit/")
    assert cli("verify", "--db", str(demo), "--witness", str(witness)).returncode == 0
    with sqlite3.connect(demo) as raw:  # roll the tail back, checkpoints and state included
        size = raw.execute("SELECT size FROM log_state").fetchone()[0]
        raw.execute("DELETE FROM events WHERE seq >= ?", (size - 10,))
        raw.execute("DELETE FROM checkpoints")
        raw.execute("UPDATE log_state SET size = size - 10, frontier = NULL")
    r = cli("verify", "--db", str(demo), "--witness", str(witness), "--format", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["damage"]["kind"] == "inconsistent with witness"


def test_prove_and_bundle_verify_on_another_machine(demo: Path, tmp_path: Path) -> None:
    vkey = cli("checkpoint", "--vkey").stdout.strip()
    with sqlite3.connect(demo) as raw:
        event_id = raw.execute("SELECT event_id FROM events WHERE seq = 5").fetchone()[0]
    proof = cli("prove", event_id, "--db", str(demo), "--format", "json")
    assert proof.returncode == 0
    from agentaudit.integrity.prove import check_proof

    assert check_proof(json.loads(proof.stdout), vkey)[0]

    bundle = tmp_path / "evidence.zip"
    r = cli("export", "--db", str(demo), "--trace", "refund-incident", "--bundle", str(bundle))
    assert r.returncode == 0, r.stderr
    elsewhere = {"XDG_CONFIG_HOME": str(tmp_path / "other-machine")}  # no signing key there
    demo.unlink()
    ok = cli("verify", "--bundle", str(bundle), "--vkey", vkey, env=elsewhere)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    other = cli("checkpoint", "--vkey", env={"XDG_CONFIG_HOME": str(tmp_path / "k2")}).stdout
    wrong = cli("verify", "--bundle", str(bundle), "--vkey", other.strip(), env=elsewhere)
    assert wrong.returncode == 1 and "TAMPERED" in wrong.stdout


def test_bundle_export_of_an_altered_event_is_refused(demo: Path, tmp_path: Path) -> None:
    with sqlite3.connect(demo) as raw:
        seq, victim = raw.execute("SELECT seq, event_id FROM events WHERE trace_id = "
                                  "'refund-incident' OR task_id = 'refund-incident' "
                                  "ORDER BY seq LIMIT 1 OFFSET 2").fetchone()
        raw.execute("UPDATE events SET agent_name = 'Mallory' WHERE seq = ?", (seq,))
    bundle = tmp_path / "out" / "evidence.zip"
    bundle.parent.mkdir()
    r = cli("export", "--db", str(demo), "--trace", "refund-incident", "--bundle", str(bundle))
    assert r.returncode == 1, r.stdout + r.stderr
    assert victim in r.stderr and "no bundle written" in r.stderr and "Traceback" not in r.stderr
    assert list(bundle.parent.iterdir()) == []


def test_progress_bar_shows_its_label_as_plain_text(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """verify and export --bundle label their bar; the CLI console prints text literally, so
    a markup tag in the label would be shown as is (it was: "[progress.description]verifying")."""
    from agentaudit.cli.integrity_cmds import _progress

    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # let Rich draw the bar into the captured stderr
    with _progress("exporting with proofs", 1_000_000) as update:
        assert update is not None
        update(500_000, 1_000_000)
    err = capsys.readouterr().err
    assert "exporting with proofs" in err and "50%" in err
    assert "[progress" not in err


def test_bundle_of_a_period_holds_exactly_its_events(demo: Path, tmp_path: Path) -> None:
    """A period's bundle reads only the part of the log the period spans, yet misses nothing:
    a backfilled event (stored later, with an older timestamp) is in it."""
    import datetime
    import zipfile

    from agentaudit import AuditEvent, AuditLogger

    with sqlite3.connect(demo) as raw:
        t_lo, t_hi = raw.execute("SELECT timestamp FROM events WHERE seq IN (100, 160) "
                                 "ORDER BY seq").fetchall()
    since = datetime.datetime.fromtimestamp(t_lo[0] // 1, datetime.UTC)
    until = datetime.datetime.fromtimestamp(t_hi[0] // 1, datetime.UTC)
    with AuditLogger(str(demo)) as audit:  # a backfill inside the period, appended at the end
        backfilled = audit.log(AuditEvent(event_type="agent.invocation", agent_name="Importer",
                                          timestamp=since.timestamp() + 1.0))
    with sqlite3.connect(demo) as raw:
        wanted = {r[0] for r in raw.execute(
            "SELECT event_id FROM events WHERE timestamp >= ? AND timestamp < ?",
            (since.timestamp(), until.timestamp()))}
    assert backfilled in wanted and len(wanted) > 50
    bundle = tmp_path / "period.zip"
    r = cli("export", "--db", str(demo), "--since", since.isoformat(), "--until",
            until.isoformat(), "--bundle", str(bundle))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(bundle) as zf:
        got = [json.loads(x)["envelope"]["event_id"]
               for x in zf.read("events.jsonl").splitlines()]
    assert sorted(got) == sorted(wanted)
    assert cli("verify", "--bundle", str(bundle)).returncode == 0
    empty = cli("export", "--db", str(demo), "--since", "2001-01-01", "--until", "2001-01-02",
                "--bundle", str(tmp_path / "none.zip"))
    assert empty.returncode == 1 and "no events match" in empty.stderr
    assert not (tmp_path / "none.zip").exists()


def test_bundle_on_a_machine_that_holds_only_a_copy_of_the_log(demo: Path,
                                                                tmp_path: Path) -> None:
    """Without the signing key, export needs the signer's verifier key, checks the checkpoint
    with it and puts it in the bundle (it used to put a key made up on the spot)."""
    owner_key = cli("checkpoint", "--vkey").stdout.strip()
    copy = {"XDG_CONFIG_HOME": str(tmp_path / "auditor")}  # no signing key on this machine
    bundle = tmp_path / "out" / "evidence.zip"
    bundle.parent.mkdir()
    args = ("export", "--db", str(demo), "--trace", "refund-incident", "--bundle", str(bundle))
    no_key = cli(*args, env=copy)
    assert no_key.returncode == 2 and "--vkey" in no_key.stderr, no_key.stderr
    other = cli("checkpoint", "--vkey", env={"XDG_CONFIG_HOME": str(tmp_path / "k2")}).stdout
    wrong = cli(*args, "--vkey", other.strip(), env=copy)
    assert wrong.returncode == 1 and "not signed by the given verifier key" in wrong.stderr
    assert list(bundle.parent.iterdir()) == []
    assert not (tmp_path / "auditor" / "agentaudit").exists()  # no key was created there
    ok = cli(*args, "--vkey", owner_key, env=copy)
    assert ok.returncode == 0, ok.stderr
    third = {"XDG_CONFIG_HOME": str(tmp_path / "recipient")}
    checked = cli("verify", "--bundle", str(bundle), "--format", "json", env=third)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert cli("export", "--db", str(demo), "--vkey", owner_key).returncode == 2


def test_bundle_of_one_agent(demo: Path, tmp_path: Path) -> None:
    with sqlite3.connect(demo) as raw:
        agent, n = raw.execute("SELECT agent_name, count(*) FROM events GROUP BY agent_name "
                               "ORDER BY count(*) DESC LIMIT 1 OFFSET 1").fetchone()
    bundle = tmp_path / "agent.zip"
    r = cli("export", "--db", str(demo), "--agent", agent, "--bundle", str(bundle))
    assert r.returncode == 0, r.stderr
    import zipfile

    with zipfile.ZipFile(bundle) as zf:
        agents = [json.loads(x)["envelope"]["agent_name"]
                  for x in zf.read("events.jsonl").splitlines()]
        assert json.loads(zf.read("manifest.json"))["selection"]["agent"] == agent
    assert agents == [agent] * n


def test_bundle_refuses_options_of_the_plain_export(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for extra in (("-o", str(out / "events.jsonl")), ("--format", "csv")):
        r = cli("export", "--db", str(demo), "--bundle", str(out / "b.zip"), *extra)
        assert r.returncode == 2 and "--bundle" in r.stderr, r.stderr
    assert list(out.iterdir()) == []
