"""``agentaudit db migrate`` and ``agentaudit db check`` against a real database."""

from __future__ import annotations

import json

import psycopg
import pytest

from agentaudit.cli import main


def test_migrate_then_check(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate", "--db", pg_url, "--days-ahead", "3"]) == 0
    assert "0001_events" in capsys.readouterr().out
    assert main(["db", "migrate", "--db", pg_url]) == 0  # repeatable
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and [c["name"] for c in doc["checks"]] == ["schema", "partitions", "roles"]


def test_check_names_what_is_wrong(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "check", "--db", pg_url]) == 1
    assert "FAIL schema" in capsys.readouterr().out
    assert main(["db", "migrate", "--db", pg_url, "--days-ahead", "0"]) == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("GRANT UPDATE ON events TO agentaudit_ingest")
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
    capsys.readouterr()
    assert main(["db", "check", "--db", pg_url, "--days-ahead", "5"]) == 1
    out = capsys.readouterr().out
    assert "agentaudit_ingest has UPDATE on events" in out
    assert "trigger events_append_only missing or disabled" in out
    assert "days without a partition ahead" in out


def test_db_commands_refuse_sqlite(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "check", "--db", "x.db"]) == 2
    assert "SQLite" in capsys.readouterr().err
