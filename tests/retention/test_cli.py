"""``agentaudit retention``, ``hold`` and ``erase`` on a real SQLite file and a real PostgreSQL
database (``backend``), in-process through ``main()``; ``verify`` must pass afterwards and name
what was erased and why."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from tests.retention.helpers import DAY, event, open_store

from agentaudit.cli import main

NOW_DAY = int(time.time() // DAY)


@pytest.fixture
def db(backend: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Events of users alice and bob in sessions s-a / s-b; old debug events that are due."""
    monkeypatch.setenv("COLUMNS", "250")
    store = open_store(backend)
    store.append_batch([
        event("debug", NOW_DAY - 10, user_id="alice", session_id="s-a", trace_id="t-a1"),
        event("info", NOW_DAY - 1, user_id="alice", session_id="s-a", trace_id="t-a2"),
        event("compliance", NOW_DAY - 1, user_id="alice", session_id="s-a", trace_id="t-a2"),
        event("debug", NOW_DAY - 9, user_id="bob", session_id="s-b", trace_id="t-b"),
        event("critical", NOW_DAY - 1, user_id="bob", session_id="s-b", trace_id="t-b"),
    ])
    store.checkpoint()
    store.close()
    return backend


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def _raw(db: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of ``query`` over ``events`` (on PostgreSQL the envelope joined with its payload,
    ``events_v``), straight from the database."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            return conn.execute(query.replace("FROM events", "FROM events_v")).fetchall()  # type: ignore[arg-type]
    with sqlite3.connect(db) as raw:
        return raw.execute(query).fetchall()


def _payloads(db: str) -> dict[str, bool]:
    return {t: p is not None for t, p in _raw(
        db, "SELECT trace_id || ':' || event_type, payload FROM events "
            "WHERE event_type LIKE 'agent.%'")}


def test_status_apply_and_verify(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_json(capsys, "retention", "status", "--db", db)
    debug = next(t for t in status["tiers"] if t["tier"] == "debug")
    assert debug["events"] == 2 and debug["due"] == 2
    code, out, _ = run(capsys, "retention", "status", "--db", db)
    assert code == 0 and "debug" in out and "expires" in out
    code, out, _ = run(capsys, "retention", "apply", "--db", db, "--dry-run")
    assert code == 0 and "would erase 2 payloads" in out
    assert all(_payloads(db).values())
    code, out, _ = run(capsys, "retention", "apply", "--db", db)
    assert code == 0 and "erased 2 payloads" in out and "audit.retention_run" in out
    assert sum(not kept for kept in _payloads(db).values()) == 2
    code, out, _ = run(capsys, "verify", "--db", db)
    assert code == 0, out
    assert "2 payloads were erased (2 by retention: debug tier, 7 days)" in out
    assert "not covered" not in out  # the run's audit event is signed too
    report = run_json(capsys, "verify", "--db", db)
    assert {e["reason"] for e in report["erased"]} == {"retention: debug tier, 7 days"}


def test_erase_user_then_report(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "erase", "--db", db, "--user", "alice",
                      "--reason", "GDPR request 17")
    assert result["erased"] == 3 and result["refused_held"] == 0
    assert result["recorded_as"].startswith("sha256:") and "alice" not in json.dumps(result)
    kept = _payloads(db)
    assert not kept["t-a1:agent.reasoning"] and not kept["t-a2:agent.decision"]
    assert kept["t-b:agent.error"]
    assert _raw(db, "SELECT count(*) FROM events WHERE user_id = 'alice'")[0][0] == 0
    assert b"alice" not in b"".join(bytes(p) for (p,) in _raw(
        db, "SELECT payload FROM events WHERE payload IS NOT NULL"))
    code, out, _ = run(capsys, "verify", "--db", db)
    assert code == 0 and f"3 by erasure {result['erasure_id']}: GDPR request 17" in out
    report = run_json(capsys, "retention", "erased", "--db", db)
    (rec,) = report
    assert rec["kind"] == "erasure" and rec["erased"] == 3 and rec["reason"] == "GDPR request 17"
    assert rec["audit_event_id"] == result["audit_event_id"]
    events = run_json(capsys, "retention", "erased", "--db", db, "--events")
    assert len(events) == 3 and all(e["erased_at"] for e in events)
    code, out, _ = run(capsys, "retention", "erased", "--db", db)
    assert code == 0 and result["erasure_id"] in out
    # the request is in the log as audit.erasure, with counts and without the user id
    log = run_json(capsys, "log", "--db", db, "--type", "audit.erasure")
    assert log[0]["params"]["erased"] == 3 and "alice" not in json.dumps(log)
    # again: nothing left to erase, still exit 0
    again = run_json(capsys, "erase", "--db", db, "--user", "alice", "--reason", "again")
    assert again["erased"] == 0


def test_hold_refuses_erasure_and_retention(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    created = run_json(capsys, "hold", "create", "--db", db, "--reason", "case 9",
                       "--session", "s-b")
    assert created["matching_events"] == 2
    listed = run_json(capsys, "hold", "list", "--db", db)
    assert [h["id"] for h in listed] == [created["id"]]
    code, out, err = run(capsys, "erase", "--db", db, "--session", "s-b", "--reason", "x")
    assert code == 1
    assert "refused: 2 matching events are under legal hold" in err and created["id"] in err
    assert _payloads(db)["t-b:agent.error"]
    code, out, _ = run(capsys, "retention", "apply", "--db", db)
    assert "erased 1 payloads" in out and "kept 1 expired payloads under legal hold" in out
    assert _payloads(db)["t-b:agent.reasoning"]
    code, out, err = run(capsys, "hold", "release", created["id"], "--db", db)
    assert code == 0 and "released" in err
    assert run_json(capsys, "hold", "list", "--db", db) == []
    assert run_json(capsys, "hold", "list", "--db", db, "--all")[0]["released_at"]
    code, out, err = run(capsys, "hold", "release", created["id"], "--db", db)
    assert code == 0 and "already released" in err
    code, out, _ = run(capsys, "erase", "--db", db, "--session", "s-b", "--reason", "x")
    assert code == 0 and "erased 2 payloads" in out
    types = [e["event_type"] for e in run_json(capsys, "log", "--db", db, "--type",
                                               "audit.legal_hold,audit.legal_hold_released")]
    assert types == ["audit.legal_hold", "audit.legal_hold_released"]
    code, out, _ = run(capsys, "verify", "--db", db)
    assert code == 0


def test_hold_by_time_range(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.strftime("%Y-%m-%d", time.gmtime((NOW_DAY - 10) * DAY))
    end = time.strftime("%Y-%m-%d", time.gmtime((NOW_DAY - 9) * DAY))
    created = run_json(capsys, "hold", "create", "--db", db, "--reason", "audit 2026",
                       "--from", start, "--to", end)
    assert created["matching_events"] == 1
    code, out, _ = run(capsys, "retention", "apply", "--db", db)
    assert "erased 1 payloads" in out and "kept 1" in out
    assert _payloads(db)["t-a1:agent.reasoning"] and not _payloads(db)["t-b:agent.reasoning"]


def test_erase_dry_run_changes_nothing(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "erase", "--db", db, "--trace", "t-b", "--reason", "x",
                      "--dry-run")
    assert result["erased"] == 2 and result["audit_event_id"] is None
    assert all(_payloads(db).values())
    assert run_json(capsys, "retention", "erased", "--db", db) == []


@pytest.mark.parametrize(("args", "code", "message"), [
    (["hold", "release", "hold_000000000000"], 1, "no legal hold 'hold_000000000000'"),
    (["hold", "create", "--reason", "x"], 2, "needs at least one of --trace"),
    (["hold", "create", "--reason", "  ", "--trace", "t"], 2, "needs a --reason"),
    (["hold", "create", "--reason", "x", "--from", "2026-13-45"], 2, "--from"),
    (["hold", "create", "--reason", "x", "--from", "2026-02-01", "--to", "2026-01-01"], 2,
     "--from must be before --to"),
    (["erase", "--reason", "x"], 2, "exactly one of --user ID, --session ID, --trace ID"),
    (["erase", "--reason", "x", "--user", "a", "--trace", "t"], 2, "(got --user, --trace)"),
    (["erase", "--user", "a"], 2, "--reason"),
    (["retention", "status", "--format", "xml"], 2, "unknown --format 'xml'"),
    (["retention", "erased", "--since", "yesterday-ish"], 2, "--since"),
])
def test_bad_input_is_a_clear_error(db: str, capsys: pytest.CaptureFixture[str],
                                    args: list[str], code: int, message: str) -> None:
    before = _payloads(db)
    got, out, err = run(capsys, *args, "--db", db)
    assert got == code, (out, err)
    assert message in err, err
    assert _payloads(db) == before


def test_bad_config_and_missing_db(db: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "r.toml"
    bad.write_text("[tiers]\ndebug = 0\n")
    code, _, err = run(capsys, "retention", "apply", "--db", db, "--config", str(bad))
    assert code == 2 and "debug = 0 must be a whole number of days" in err
    code, _, err = run(capsys, "retention", "status", "--db", str(tmp_path / "none.db"))
    assert code == 1 and "no audit database" in err
    short = tmp_path / "short.toml"
    short.write_text("[tiers]\ncritical = 90\n")
    code, _, err = run(capsys, "retention", "apply", "--db", db, "--config", str(short))
    assert code == 0 and "warning" in err and "'critical'" in err and "Art. 19" in err



@pytest.mark.parametrize(("selector", "value", "held"), [
    ("--user", "bob", {"t-b:agent.reasoning", "t-b:agent.error"}),
    ("--agent", "Router", None),  # every event of the fixture
    ("--trace", "t-a2", {"t-a2:agent.tool_call", "t-a2:agent.decision"}),
])
def test_hold_selectors_keep_exactly_their_events(db: str, capsys: pytest.CaptureFixture[str],
                                                  selector: str, value: str,
                                                  held: set[str] | None) -> None:
    run_json(capsys, "hold", "create", "--db", db, "--reason", "r", selector, value)
    for target in ("alice", "bob"):
        run(capsys, "erase", "--db", db, "--user", target, "--reason", "x")
    kept = {k for k, v in _payloads(db).items() if v}
    assert kept == (set(_payloads(db)) if held is None else held)
    assert main(["verify", "--db", db]) == 0
