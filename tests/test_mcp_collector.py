"""``agentaudit mcp --db http://collector --key READ_KEY``: a real MCP client talks to the MCP
server subprocess, which answers through a real collector subprocess, in the key's tenant only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from agentaudit.mcp_server import TOOL_NAMES

SRC = str(Path(__file__).resolve().parents[1] / "src")
TIMEOUT = 60.0


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUDIT_")}
    pythonpath = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    env.update({"PYTHONPATH": pythonpath, "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_STATE_HOME": str(home / "state")})
    return env


def _record(db: Path, tenant: str, agent: str, task: str, error_type: str) -> None:
    """One support trace of ``tenant``: a handoff to ``agent`` whose tool fails."""
    from agentaudit import AuditLogger

    class Failure(Exception):
        pass

    Failure.__name__ = error_type
    with AuditLogger(store=str(db), tenant=tenant, spool_dir=db.parent / f"spool-{tenant}") as a:
        with a.trace("ticket", agent="Router", task_id=task, session_id=f"s-{tenant}") as t:
            with t.handoff(agent, context_summary="refund") as h:
                try:
                    with h.tool_call("refund", {"order": "A1"}):
                        raise Failure(f"{tenant} gateway down")
                except Failure:
                    pass
                h.decision("escalate", confidence=0.4)
        a.flush(10)


@dataclass
class Setup:
    url: str
    keys: dict[str, str]
    home: Path


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    from agentaudit.server.keys import create_key_audited
    from agentaudit.store.sqlite import SQLiteStore

    home = tmp_path_factory.mktemp("mcp-collector")
    db = home / "audit.db"
    _record(db, "acme", "Billing", "task-acme", "PaymentError")
    _record(db, "globex", "Secret", "task-globex", "GlobexOnlyError")
    keys = {}
    with SQLiteStore(db) as store:
        for tenant in ("acme", "globex"):
            keys[f"{tenant}-read"] = create_key_audited(store, tenant, "read", None, "test")[1]
        keys["acme-ingest"] = create_key_audited(store, "acme", "ingest", None, "test")[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "agentaudit.cli", "serve", "--port",
                             str(port), "--db", str(db)], env=_env(home), stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert proc.poll() is None, (home / "serve.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield Setup(url, keys, home)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()


def _with_session(setup: Setup, key: str, body: Callable[[Any], Awaitable[None]]) -> None:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "agentaudit.cli", "mcp", "--db", setup.url],
        env={**_env(setup.home), "AGENTAUDIT_API_KEY": key})

    async def main() -> None:
        with anyio.fail_after(TIMEOUT):
            async with stdio_client(params) as (read, write), ClientSession(
                    read, write, read_timeout_seconds=TIMEOUT) as session:
                await session.initialize()
                await body(session)

    anyio.run(main)


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


CALLS = {
    "show_audit_log": {"limit": 50},
    "trace_task": {"trace_id": "task-acme"},
    "other_trace": ("trace_task", {"trace_id": "task-globex"}),
    "what_did_the_agent_do": {"session_id": "s-acme"},
    "latest": ("what_did_the_agent_do", {}),
    "show_error_summary": {"since": "1h"},
    "audit_agent": {"agent_name": "Billing", "since": "1h"},
    "other_agent": ("audit_agent", {"agent_name": "Secret", "since": "1h"}),
    "generate_compliance_report": {"since": "1h"},
    "run_forensic_analysis": {},
    "export_audit_data": {"since": "1h"},
    "verify_integrity": {},
}


def _call_all(setup: Setup, key: str) -> dict[str, Any]:
    results: dict[str, Any] = {}

    async def body(session: Any) -> None:
        assert {t.name for t in (await session.list_tools()).tools} == set(TOOL_NAMES)
        for name, spec in CALLS.items():
            tool, args = spec if isinstance(spec, tuple) else (name, spec)
            results[name] = await session.call_tool(tool, args)

    _with_session(setup, key, body)
    return results


def test_tools_answer_through_the_collector_in_the_keys_tenant(collector: Setup) -> None:
    r = _call_all(collector, collector.keys["acme-read"])
    for name in CALLS:
        everything = _text(r[name]) + json.dumps(r[name].structured_content or {})
        for leak in ("GlobexOnlyError", "globex gateway down", "s-globex"):  # globex's data
            assert leak not in everything, (name, leak)
        if name not in ("other_trace", "other_agent"):  # those echo the name they were asked
            assert "Secret" not in everything and "globex" not in everything.lower(), name
    ok = {n for n in CALLS if n not in ("other_trace", "other_agent", "verify_integrity")}
    for name in ok:
        assert not r[name].is_error, (name, _text(r[name]))

    log = r["show_audit_log"].structured_content
    assert log["total"] == len(log["events"]) == 8 + 2  # and the two audit.key_created
    assert {"Router", "Billing"} <= {e["agent"] for e in log["events"]}
    trace = r["trace_task"].structured_content
    assert trace["handoff_path"] == ["Router", "Billing"] and trace["summary"]["errors"] == 1
    assert "PaymentError" in _text(r["trace_task"])
    assert _text(r["what_did_the_agent_do"]).startswith("Session s-acme")
    assert _text(r["latest"]).startswith(("Trace ", "Task "))

    errors = r["show_error_summary"].structured_content
    assert errors["total_errors"] == 1 and errors["error_types"] == {"PaymentError": 1}
    assert "1 errors in 10 events" in _text(r["show_error_summary"])
    agent = r["audit_agent"].structured_content
    assert agent["agent"] == "Billing" and agent["invocations"] == 1
    assert r["generate_compliance_report"].structured_content["report"] == "compliance"
    assert "Compliance Report" in _text(r["generate_compliance_report"])
    forensics = _text(r["run_forensic_analysis"])
    assert "Incident Forensics" in forensics and "refund" in forensics
    export = [json.loads(line) for line in _text(r["export_audit_data"]).splitlines()
              if line.startswith("{")]
    assert len(export) == 10 and {e["tenant"] for e in export} == {"acme"}

    # another tenant's trace and agent do not exist for this key
    assert r["other_trace"].is_error and "task-globex" in _text(r["other_trace"])
    assert r["other_agent"].is_error
    assert r["verify_integrity"].is_error and "agentaudit verify" in _text(
        r["verify_integrity"])


def test_the_other_key_sees_the_other_tenant(collector: Setup) -> None:
    seen: dict[str, Any] = {}

    async def body(session: Any) -> None:
        seen["log"] = await session.call_tool("show_audit_log", {})
        seen["errors"] = await session.call_tool("show_error_summary", {"since": "1h"})
        seen["acme"] = await session.call_tool("trace_task", {"trace_id": "task-acme"})

    _with_session(collector, collector.keys["globex-read"], body)
    agents = {e["agent"] for e in seen["log"].structured_content["events"]}
    assert {"Router", "Secret"} <= agents and "Billing" not in agents
    assert seen["errors"].structured_content["error_types"] == {"GlobexOnlyError": 1}
    assert seen["acme"].is_error and "Billing" not in _text(seen["acme"])


@pytest.mark.parametrize("args, message", [
    (["--key", "aa_wrong"], "invalid API key"),
    ([], "missing API key"),
    (["--key", "INGEST"], "scope 'ingest'"),
    (["--key", "READ", "--tenant", "globex"], "--tenant does not apply"),
])
def test_bad_keys_fail_before_serving(collector: Setup, args: list[str], message: str) -> None:
    args = [collector.keys["acme-ingest"] if a == "INGEST" else
            collector.keys["acme-read"] if a == "READ" else a for a in args]
    proc = subprocess.run([sys.executable, "-m", "agentaudit.cli", "mcp", "--db", collector.url,
                           *args], env=_env(collector.home), capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.startswith("agentaudit: error:") and message in proc.stderr, proc.stderr
