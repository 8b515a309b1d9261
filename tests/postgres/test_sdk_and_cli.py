"""The SDK and the read commands of the CLI on a PostgreSQL store."""

from __future__ import annotations

import json

import pytest

from agentaudit import AuditLogger
from agentaudit.cli import main
from agentaudit.store import EventQuery, open_store


def test_sdk_logs_to_postgresql(pg_url: str) -> None:
    audit = AuditLogger(pg_url)
    ids = [audit.log_tool_call("Planner", "search", {"q": i}) for i in range(20)]
    audit.flush(timeout=30)
    audit.close()
    with open_store(pg_url) as s:
        assert [e.event_id for e in s.query(EventQuery(limit=50)).data] == ids


def test_cli_reads_and_verifies(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    audit = AuditLogger(pg_url)
    for i in range(5):
        audit.log_tool_call("Planner", "search", {"q": i})
    audit.close()
    assert main(["log", "--db", pg_url, "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5
    assert main(["verify", "--db", pg_url]) == 0
    assert "intact" in capsys.readouterr().out
