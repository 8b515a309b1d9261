"""``agentaudit mcp``: a real MCP client (the ``mcp`` package's) talks to the server subprocess
over stdio, lists the tools and calls each one against a demo store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentaudit.demo import run_demo
from agentaudit.mcp_server import MAX_EVENTS, TOOL_NAMES
from agentaudit.query import parse_time
from agentaudit.store import EventQuery, open_store

SRC = str(Path(__file__).resolve().parents[1] / "src")
TIMEOUT = 60.0
SINCE = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()  # covers the demo's week


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    run_demo(str(path), traces=40, seed=1)
    return path


def _env() -> dict[str, str]:
    """This test's environment (its own signing key and config dirs) for the server."""
    pythonpath = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath}


def _with_session(db: Path, body: Callable[[Any], Awaitable[None]]) -> None:
    """Start ``agentaudit mcp --db db``, initialise a client session and run ``body`` on it."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "agentaudit.cli", "mcp", "--db", str(db)],
                                   env=_env())

    async def main() -> None:
        with anyio.fail_after(TIMEOUT):
            async with stdio_client(params) as (read, write), ClientSession(
                    read, write, read_timeout_seconds=TIMEOUT) as session:
                await session.initialize()
                await body(session)

    anyio.run(main)


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_lists_the_nine_tools_with_schemas(demo_db: Path) -> None:
    seen: dict[str, Any] = {}

    async def body(session: Any) -> None:
        seen.update({t.name: t for t in (await session.list_tools()).tools})

    _with_session(demo_db, body)
    assert set(seen) == set(TOOL_NAMES)
    for name, tool in seen.items():
        assert tool.description, name
        assert tool.input_schema["type"] == "object", name
        assert tool.annotations.read_only_hint is True, name
    assert seen["trace_task"].input_schema["required"] == ["trace_id"]
    assert seen["audit_agent"].input_schema["required"] == ["agent_name"]
    for arg in ("since", "until", "agent_name"):
        assert arg in seen["show_error_summary"].input_schema["properties"]
    assert seen["export_audit_data"].input_schema["properties"]["format"]["enum"] == [
        "jsonl", "csv", "json"]


def _store_facts(db: Path) -> dict[str, Any]:
    """What the store itself says, to compare the tools' answers with."""
    since = parse_time(SINCE)
    store = open_store(str(db), create=False)
    try:
        totals = store.aggregate("totals", "default", since, None, None, limit=1)[0]
        by_agent = store.aggregate("errors_by_agent", "default", since, None, None, limit=20)
        incident = store.trace_events("default", "refund-incident")
        return {"events": store.count(EventQuery()), "errors": int(totals["errors"]),
                "by_agent": {r["agent_name"]: int(r["count"]) for r in by_agent},
                "incident": len(incident), "session": incident[0].session_id}
    finally:
        store.close()


def test_every_tool_answers_from_the_store(demo_db: Path) -> None:
    facts = _store_facts(demo_db)
    calls = {
        "show_audit_log": {"limit": 5},
        "log_capped": ("show_audit_log", {"limit": 500}),
        "trace_task": {"trace_id": "refund-incident"},
        "generate_compliance_report": {"since": SINCE},
        "what_did_the_agent_do": {"session_id": facts["session"]},
        "latest": ("what_did_the_agent_do", {}),
        "show_error_summary": {"since": SINCE},
        "audit_agent": {"agent_name": "Billing", "since": SINCE},
        "run_forensic_analysis": {"trace_id": "refund-incident"},
        "export_audit_data": {"trace_id": "refund-incident", "limit": 3},
        "verify_integrity": {},
    }
    results: dict[str, Any] = {}

    async def body(session: Any) -> None:
        await session.list_tools()
        for key, spec in calls.items():
            name, args = spec if isinstance(spec, tuple) else (key, spec)
            results[key] = await session.call_tool(name, args)

    _with_session(demo_db, body)
    for key, result in results.items():
        assert not result.is_error, (key, _text(result))
        assert len(_text(result)) <= 21_000, key
    _check_answers(results, facts)


def _check_answers(r: dict[str, Any], facts: dict[str, Any]) -> None:
    log = r["show_audit_log"].structured_content
    assert len(log["events"]) == 5 and log["total"] == facts["events"]
    assert "agentaudit log" in _text(r["show_audit_log"])
    assert len(r["log_capped"].structured_content["events"]) == MAX_EVENTS

    trace = _text(r["trace_task"])
    assert "process_refund" in trace and "TimeoutError" in trace
    assert r["trace_task"].structured_content["handoff_path"] == ["Router", "Support", "Billing"]
    assert r["trace_task"].structured_content["summary"]["events"] == facts["incident"]

    compliance = r["generate_compliance_report"].structured_content
    assert compliance["report"] == "compliance" and compliance["checks"]
    assert "Compliance Report" in _text(r["generate_compliance_report"])

    assert _text(r["what_did_the_agent_do"]).startswith(f"Session {facts['session']}")
    assert "refund-incident" in _text(r["what_did_the_agent_do"])
    assert _text(r["latest"]).startswith(("Trace ", "Task "))

    errors = r["show_error_summary"].structured_content
    assert errors["total_errors"] == facts["errors"] > 0
    assert errors["errors_by_agent"] == facts["by_agent"]
    assert f"{facts['errors']} errors in {facts['events']} events" in _text(
        r["show_error_summary"])

    agent = r["audit_agent"].structured_content
    assert agent["agent"] == "Billing" and agent["events"] > 0

    forensics = _text(r["run_forensic_analysis"])
    assert "Incident Forensics" in forensics and "process_refund" in forensics

    export = _text(r["export_audit_data"])
    lines = [json.loads(line) for line in export.splitlines() if line.startswith("{")]
    assert len(lines) == 3 and all(e["task_id"] == "refund-incident" for e in lines)
    assert r["export_audit_data"].structured_content["total"] == facts["incident"]
    assert "agentaudit export --format jsonl --trace refund-incident" in export

    assert "intact" in _text(r["verify_integrity"])
    assert r["verify_integrity"].structured_content["ok"] is True


def test_bad_requests_are_tool_errors(demo_db: Path) -> None:
    calls = [
        ("trace_task", {"trace_id": "no-such-trace"}, "no trace or task 'no-such-trace'"),
        ("show_error_summary", {"since": "yesterdayish"}, "cannot read the time"),
        ("audit_agent", {"agent_name": "Nobody"}, "no agent named 'Nobody'"),
        ("what_did_the_agent_do", {"session_id": "nope"}, "no session 'nope'"),
        ("export_audit_data", {"format": "xml"}, "unknown format 'xml'"),
        ("show_audit_log", {"since": "1h", "until": "2h"}, "is not before"),
        ("show_audit_log", {"event_type": "nonsense"}, "unknown --type"),
    ]
    results: list[Any] = []

    async def body(session: Any) -> None:
        for name, args, _ in calls:
            results.append(await session.call_tool(name, args))
        results.append(await session.call_tool("verify_integrity", {}))  # still serving

    _with_session(demo_db, body)
    for (name, _, message), result in zip(calls, results, strict=False):
        assert result.is_error, name
        assert message in _text(result), (name, _text(result))
    assert not results[-1].is_error


def test_missing_database_fails_before_serving(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "agentaudit.cli", "mcp", "--db",
                           str(tmp_path / "missing.db")], env=_env(), capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("agentaudit: error:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[str]) -> None:
    """Until the server accepts connections (bounded by ``TIMEOUT``)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the server did not listen on port {port}")


def test_http_transport(demo_db: Path) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agentaudit.cli", "mcp", "--db", str(demo_db),
                             "--http", "--port", str(port)], env=_env(), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    texts: list[str] = []

    async def main() -> None:
        with anyio.fail_after(TIMEOUT):
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as streams, \
                    ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                result = await session.call_tool("trace_task", {"trace_id": "refund-incident"})
                texts.append(_text(result))

    try:
        _wait_for_port(port, proc)
        anyio.run(main)
    finally:
        proc.terminate()
        proc.communicate(timeout=TIMEOUT)
    assert "process_refund" in texts[0]
