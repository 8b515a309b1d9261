"""The ``agentaudit`` command line on SQLite files the tests write with the SDK.

Most tests call ``main()`` in-process (fast); the error paths, ``--follow`` and the import budget
run the real entry point in a subprocess, to prove one-line errors without a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from agentaudit.cli import main
from agentaudit.events import AuditEvent
from agentaudit.sdk.logger import AuditLogger

SRC = str(Path(__file__).resolve().parents[1] / "src")
# The seed schema's field names: every JSON/CSV event carries at least these.
SEED_FIELDS = {"event_id", "event_type", "agent_name", "task_id", "session_id", "action",
               "params", "result", "reasoning", "confidence", "source", "parent_event_id",
               "trace_id", "timestamp", "duration_ms", "token_count", "model", "version",
               "error", "error_type"}
ALL_FIELDS = list(AuditEvent.__struct_fields__)


# -- fixtures and helpers ------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """17 events in tenant ``default`` (two traces in session s1 and a lone error) and one event
    in tenant ``acme``."""
    monkeypatch.setenv("COLUMNS", "250")
    db = tmp_path / "audit.db"
    audit = AuditLogger(str(db))
    with audit.trace("refund", agent="Router", session_id="s1", user_id="u1",
                     task_id="task-1") as t:
        refund_trace = t.trace_id
        t.reasoning("customer wants a refund [urgent]")
        with t.tool_call("get_order", {"id": 1}) as c:
            c.result = {"status": "delivered", "amount": 20}
        with t.handoff("Billing", context_summary="refund order 1") as b:
            b.decision("approve", confidence=0.9, reasoning="within policy")
            b.token_usage("gpt-4o", 120, 30, cost_usd=0.0021)
    with audit.trace("lookup", agent="Support", session_id="s1", task_id="task-2") as t2:
        lookup_trace = t2.trace_id
        try:
            with t2.tool_call("search_kb", {"q": "refund policy"}):
                raise TimeoutError("kb timed out")
        except TimeoutError:
            pass
        t2.decision("escalate", confidence=0.3)
        t2.human("escalation", by="alice", reason="low confidence")
    audit.log_error("Billing", ValueError("bad amount"), {"order": 1})
    audit.flush()
    audit.close()
    other = AuditLogger(str(db), tenant="acme")
    other.log_decision("Other", "noop", confidence=1.0)
    other.flush()
    other.close()
    return {"db": str(db), "refund_trace": refund_trace, "lookup_trace": lookup_trace}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``agentaudit ARGS`` in-process: exit code, stdout, stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, COLUMNS="250", PYTHONPATH=SRC + os.pathsep + os.environ.get(
        "PYTHONPATH", ""))
    env.pop("AGENTAUDIT_DEBUG", None)
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """The real entry point (``python -m agentaudit.cli``) in a subprocess."""
    return subprocess.run([sys.executable, "-m", "agentaudit.cli", *args], capture_output=True,
                          text=True, timeout=60, env=cli_env(**env), cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("agentaudit: error: ")
    for word in words:
        assert word in lines[0]


# -- log -----------------------------------------------------------------------------------------

def test_log_prints_a_table_oldest_first(store: dict[str, Any], capsys: Any) -> None:
    code, out, err = run(capsys, "log", "--db", store["db"])
    assert code == 0 and err == ""
    lines = [ln for ln in out.splitlines() if ln.startswith("│")]
    assert len(lines) == 17
    assert "time" in out and "details" in out and "status" in out
    assert lines[0].split("│")[2].strip() == "Router"
    assert "invocation" in lines[0] and "refund" in lines[0]
    assert "ValueError: bad amount" in lines[-1]
    assert "customer wants a refund [urgent]" in out  # payload text is not Rich markup
    assert sum("❌ error" in ln for ln in lines) == 2
    assert sum("⚠️ warning" in ln for ln in lines) == 2
    assert sum("✅ ok" in ln for ln in lines) == 13
    assert "Other" not in out  # another tenant


def test_log_limit_keeps_the_most_recent(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "log", "--db", store["db"], "--limit", "3", "--format", "json")
    events = json.loads(out)
    assert code == 0 and len(events) == 3
    assert [e["action"] for e in events] == ["escalation", "finish", None]
    assert events[-1]["error_type"] == "ValueError"


def test_log_json_is_one_array_of_events(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "log", "--db", store["db"], "--format", "json")
    events = json.loads(out)
    assert code == 0 and isinstance(events, list) and len(events) == 17
    assert all(isinstance(e, dict) and list(e) == ALL_FIELDS for e in events)
    assert set(events[0]) >= SEED_FIELDS
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    call = next(e for e in events if e["action"] == "get_order")
    assert call["params"] == {"id": 1} and call["event_type"] == "agent.tool_call"
    assert call["trace_id"] == store["refund_trace"] and call["tenant"] == "default"


def test_log_jsonl_is_one_event_per_line(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "log", "--db", store["db"], "--format", "jsonl")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 17
    assert all(set(json.loads(ln)) == set(ALL_FIELDS) for ln in lines)


def test_log_csv_has_a_header_of_all_fields(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "log", "--db", store["db"], "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ALL_FIELDS and len(rows) == 18
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    call = next(r for r in records if r["action"] == "get_order")
    assert json.loads(call["params"]) == {"id": 1}
    result = next(r for r in records if r["event_type"] == "agent.tool_result")
    assert json.loads(result["result"]) == {"status": "delivered", "amount": 20}
    assert call["confidence"] == "" and float(call["timestamp"]) > 0


def test_log_writes_to_a_file(store: dict[str, Any], capsys: Any, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, "log", "--db", store["db"], "--format", "jsonl", "-o", str(target))
    assert code == 0 and out == ""
    assert len(target.read_text().splitlines()) == 17


@pytest.mark.parametrize(("args", "count"), [
    (["--agent", "Support"], 6),
    (["--type", "error"], 2),
    (["--type", "tool_call,error"], 4),
    (["-t", "agent.decision", "-t", "handoff"], 6),
    (["--tenant", "acme"], 1),
    (["--since", "1h"], 17),
    (["--since", "2100-01-01"], 0),
    (["--until", "2000-01-01T00:00:00Z"], 0),
])
def test_log_filters(store: dict[str, Any], capsys: Any, args: list[str], count: int) -> None:
    code, out, _ = run(capsys, "log", "--db", store["db"], "--format", "jsonl", *args)
    assert code == 0 and len(out.splitlines()) == count


def test_log_says_when_nothing_matches(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "log", "--db", store["db"], "--agent", "Nobody")
    assert code == 0 and out.strip() == "No events match."


def test_db_defaults_to_the_environment(store: dict[str, Any], capsys: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTAUDIT_DB", store["db"])
    code, out, _ = run(capsys, "log", "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 17


# -- trace ---------------------------------------------------------------------------------------

def test_trace_prints_header_and_timeline(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "trace", store["refund_trace"], "--db", store["db"])
    header, *rest = out.splitlines()
    assert code == 0
    assert header.startswith(f"Trace {store['refund_trace']} · task task-1 · ")
    assert "agents Router → Billing" in header and "10 events" in header
    assert "0 errors" in header and "$0.0021" in header
    rows = [ln for ln in rest if ln.startswith("│")]
    assert len(rows) == 10
    assert all("✅ ok" in r for r in rows)
    assert any("handoff to Billing" in r and "Router → Billing: refund order 1" in r for r in rows)
    assert any("decision approve" in r and "confidence 0.90" in r for r in rows)


def test_trace_by_task_id(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "trace", "task-2", "--db", store["db"])
    header = out.splitlines()[0]
    assert code == 0
    assert header.startswith(f"Task task-2 · trace {store['lookup_trace']} · agents Support")
    assert "6 events" in header and "1 error" in header and "2 warnings" in header
    assert "❌ error" in out and "⚠️ warning" in out
    assert "TimeoutError: kb timed out" in out


def test_trace_events_as_data(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "trace", "task-1", "--db", store["db"], "--format", "json")
    events = json.loads(out)
    assert code == 0 and len(events) == 10
    assert {e["trace_id"] for e in events} == {store["refund_trace"]}
    code, out, _ = run(capsys, "trace", "task-1", "--db", store["db"], "--format", "csv")
    assert out.splitlines()[0] == ",".join(ALL_FIELDS) and len(out.splitlines()) == 11


def test_trace_graph_json(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "trace", "task-1", "--db", store["db"], "--graph", "json")
    graph = json.loads(out)
    assert code == 0
    assert set(graph) == {"trace_ids", "nodes", "edges", "handoff_path"}
    assert graph["handoff_path"] == ["Router", "Billing"]
    assert len(graph["nodes"]) == 10 and len(graph["edges"]) == 9
    assert [e["type"] for e in graph["edges"]].count("handoff") == 1
    assert set(graph["edges"][0]) == {"from", "to", "type"}


def test_trace_graph_mermaid_and_dot(store: dict[str, Any], capsys: Any, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "trace", "task-1", "--db", store["db"], "--graph", "mermaid")
    assert code == 0 and out.startswith("flowchart TD\n")
    assert out.count("==>|handoff|") == 1 and out.count(" --> ") == 8
    target = tmp_path / "trace.dot"
    code, out, _ = run(capsys, "trace", "task-1", "--db", store["db"], "--graph", "dot",
                       "-o", str(target))
    dot = target.read_text()
    assert code == 0 and out == ""
    assert dot.startswith("digraph trace {") and dot.count(" -> ") == 9


@pytest.mark.parametrize("columns", ["250", "100", "60"])
def test_timeline_boxes_line_up_at_any_width(store: dict[str, Any], capsys: Any,
                                             monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    from agentaudit.cli.plain import cell_width

    monkeypatch.setenv("COLUMNS", columns)
    for args in (["trace", "task-2"], ["log"], ["session", "s1"]):
        code, out, _ = run(capsys, *args, "--db", store["db"])
        tables = out.split("┏")[1:]
        assert code == 0 and tables
        for table in tables:
            lines = ("┏" + table.split("┘")[0] + "┘").splitlines()
            widths = {cell_width(ln) for ln in lines}
            assert len(widths) == 1, (args, widths)
            if columns != "60":  # below the fixed columns' width a table may overflow
                assert widths.pop() <= int(columns)


def test_trace_fast_path_matches_typer(store: dict[str, Any], capsys: Any) -> None:
    from agentaudit.cli.app import run_app

    fast = run(capsys, "trace", "task-2", "--db", store["db"])
    code = run_app(["trace", "task-2", "--db", store["db"]])
    assert (code, *capsys.readouterr()) == fast


# -- session, agent, errors ----------------------------------------------------------------------

def test_session_groups_timelines_by_trace(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "session", "s1", "--db", store["db"])
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("Session s1 · 2 traces · task task-1, task-2 · ")
    assert "16 events" in lines[0] and "1 error" in lines[0]
    headers = [ln for ln in lines if ln.startswith("Trace ")]
    assert [h.split()[1] for h in headers] == [store["refund_trace"], store["lookup_trace"]]
    assert sum(ln.startswith("│") for ln in lines) == 16


def test_session_as_jsonl(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "session", "s1", "--db", store["db"], "--format", "jsonl")
    events = [json.loads(ln) for ln in out.splitlines()]
    assert code == 0 and len(events) == 16
    assert {e["session_id"] for e in events} == {"s1"}


def test_agent_overview_json(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "agent", "Router", "--db", store["db"], "--format", "json")
    ov = json.loads(out)
    assert code == 0
    assert (ov["agent"], ov["events"], ov["invocations"], ov["errors"]) == ("Router", 6, 1, 0)
    assert ov["tools"][0]["tool"] == "get_order" and ov["tools"][0]["calls"] == 1
    assert ov["tools"][0]["avg_latency_ms"] is not None
    assert ov["handoffs_out"] == {"Billing": 1}
    assert ov["decisions"]["count"] == 1 and ov["decisions"]["avg_confidence"] is None
    assert ov["since"].endswith("Z") and ov["until"] is None


def test_agent_overview_table(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "agent", "Support", "--db", store["db"], "--since", "1d")
    assert code == 0
    assert out.startswith("Agent Support (")
    for text in ("Tools used", "search_kb", "Decisions: 2, average confidence 0.30, 1 below 0.5",
                 "Errors by type", "TimeoutError"):
        assert text in out


def test_errors_summary_json(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "errors", "--db", store["db"], "--format", "json")
    s = json.loads(out)
    assert code == 0
    assert (s["total_events"], s["total_errors"]) == (17, 2)
    assert s["error_rate"] == pytest.approx(2 / 17)
    assert s["error_types"] == {"TimeoutError": 1, "ValueError": 1}
    assert s["errors_by_agent"] == {"Support": 1, "Billing": 1}
    assert s["errors_by_tool"] == {"search_kb": 1}
    assert {e["message"] for e in s["most_common_errors"]} == {"kb timed out", "bad amount"}


def test_errors_summary_table(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "errors", "--db", store["db"], "--agent", "Support")
    assert code == 0 and "Error summary (agent Support, " in out
    assert "total errors  1" in out and "kb timed out" in out and "bad amount" not in out
    code, out, _ = run(capsys, "errors", "--db", store["db"], "--since", "2100-01-01")
    assert code == 0 and "No errors in this period." in out


# -- export --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_export_to_a_file(store: dict[str, Any], capsys: Any, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"out.{fmt}"
    code, out, err = run(capsys, "export", "--db", store["db"], "--format", fmt, "-o", str(target))
    text = target.read_text()
    assert code == 0 and out == ""
    assert "exported 17 events to" in err
    assert not (tmp_path / f"out.{fmt}.partial").exists()
    if fmt == "jsonl":
        assert len(text.splitlines()) == 17
    elif fmt == "json":
        assert len(json.loads(text)) == 17
    else:
        assert len(list(csv.reader(io.StringIO(text)))) == 18


def test_export_to_stdout_with_filters(store: dict[str, Any], capsys: Any) -> None:
    code, out, _ = run(capsys, "export", "--db", store["db"], "--trace", "task-2")
    assert code == 0 and len(out.splitlines()) == 6
    code, out, _ = run(capsys, "export", "--db", store["db"], "--trace", store["refund_trace"],
                       "--agent", "Billing", "--format", "csv")
    assert code == 0 and len(out.splitlines()) == 1 + 4


def test_export_streams_every_event(tmp_path: Path, capsys: Any) -> None:
    db = tmp_path / "big.db"
    audit = AuditLogger(str(db))
    for i in range(12_345):
        audit.log_decision(f"Agent{i % 7}", "route", confidence=0.5, task_id=f"t{i}")
    audit.flush()
    audit.close()
    target = tmp_path / "all.jsonl"
    code, _, err = run(capsys, "export", "--db", str(db), "-o", str(target))
    assert code == 0 and "exported 12,345 events" in err
    ids = [json.loads(ln)["event_id"] for ln in target.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12_345
    code, out, _ = run(capsys, "export", "--db", str(db), "--format", "csv")
    assert code == 0 and len(out.splitlines()) == 12_346


def test_export_names_an_event_whose_text_is_not_utf8(store: dict[str, Any],
                                                      tmp_path: Path) -> None:
    """A doctored row (bytes that are not UTF-8 stored as text) stops the export with the
    event named; no partial file is left."""
    import sqlite3

    with sqlite3.connect(store["db"]) as raw:
        victim = raw.execute("SELECT event_id FROM events WHERE tenant = 'default' AND seq = 3"
                             ).fetchone()[0]
        raw.execute("UPDATE events SET agent_name = CAST(X'61C3FF' AS TEXT) "
                    "WHERE tenant = 'default' AND seq = 3")
    target = tmp_path / "out.jsonl"
    proc = run_cli("export", "--db", store["db"], "-o", str(target))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.splitlines()[-1]  # after the progress bar's line
    assert last.startswith("agentaudit: error: ")
    for word in (victim, "agent_name", "not valid UTF-8", "agentaudit verify"):
        assert word in last
    assert not target.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_export_parquet_needs_pyarrow(store: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        proc = run_cli("export", "--db", store["db"], "--format", "parquet", "-o", str(target))
        assert_one_line_error(proc, 1, "pyarrow")
        assert not target.exists()
        return
    proc = run_cli("export", "--db", store["db"], "--format", "parquet", "-o", str(target))
    assert proc.returncode == 0 and pq.read_table(target).num_rows == 17


# -- demo ----------------------------------------------------------------------------------------

def test_demo_writes_a_store_with_an_incident(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("agentaudit.demo")
    db = tmp_path / "demo.db"
    code, out, _ = run(capsys, "demo", "--db", str(db), "--traces", "30", "--days", "1",
                       "--seed", "3")
    assert code == 0 and out.startswith("Wrote ") and " in 30 traces to " in out
    task = out.split("Try: agentaudit trace --db ")[1].split()[1]
    code, out, _ = run(capsys, "trace", task, "--db", str(db))
    assert code == 0 and out.startswith(("Task ", "Trace "))


# -- errors: one line, no traceback, the right exit code -----------------------------------------

def test_missing_database_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    for args in (["log"], ["trace", "x"], ["session", "x"], ["agent", "x"], ["errors"],
                 ["export"]):
        proc = run_cli(*args, "--db", str(missing))
        assert_one_line_error(proc, 1, str(missing))
    assert not missing.exists()
    proc = run_cli("log", cwd=tmp_path)  # the default ./agentaudit.db
    assert_one_line_error(proc, 1, "agentaudit.db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "code", "words"), [
    (["log", "--since", "yesterday"], 2, ["--since", "'yesterday'"]),
    (["errors", "--until", "2026-13-45"], 2, ["--until", "'2026-13-45'"]),
    (["log", "--since", "1h", "--until", "2h"], 2, ["--since"]),
    (["log", "--format", "xml"], 2, ["--format", "'xml'"]),
    (["trace", "task-1", "--format", "yaml"], 2, ["--format", "'yaml'"]),
    (["trace", "task-1", "--graph", "png"], 2, ["--graph", "'png'"]),
    (["agent", "Router", "--format", "csv"], 2, ["--format"]),
    (["export", "--format", "xlsx"], 2, ["--format"]),
    (["log", "--type", "nonsense"], 2, ["--type", "'nonsense'"]),
    (["log", "--limit", "0"], 2, ["--limit"]),
    (["log", "--limit", "many"], 2, ["--limit"]),
    (["log", "--follow", "--format", "json"], 2, ["--follow"]),
    (["log", "--bogus"], 2, ["--bogus"]),
    (["trace"], 2, ["ID"]),
    (["nosuchcommand"], 2, ["nosuchcommand"]),
    (["trace", "no-such-trace"], 1, ["no trace or task 'no-such-trace'"]),
    (["trace", "task-1", "--tenant", "acme"], 1, ["'acme'"]),
    (["session", "no-such-session"], 1, ["no session 'no-such-session'"]),
    (["agent", "Nobody"], 1, ["no agent named 'Nobody'"]),
    (["agent", "Router", "--since", "2100-01-01"], 1, ["no events"]),
    (["export", "--trace", "nope"], 1, ["'nope'"]),
    (["export", "--format", "parquet"], 2, ["-o FILE"]),
])
def test_bad_input_prints_one_line(store: dict[str, Any], args: list[str], code: int,
                                   words: list[str]) -> None:
    proc = run_cli(*args, "--db", store["db"])
    assert_one_line_error(proc, code, *words)


def test_unwritable_output_is_one_line(store: dict[str, Any], tmp_path: Path) -> None:
    proc = run_cli("export", "--db", store["db"], "-o", str(tmp_path / "no" / "such" / "f.jsonl"))
    assert_one_line_error(proc, 1, "cannot write", "f.jsonl: No such file")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    proc = run_cli("log", "--db", str(junk))
    assert_one_line_error(proc, 1)


def test_help_works_everywhere(capsys: Any) -> None:
    for args in ([], ["--help"], ["-h"], *([c, "--help"] for c in
                 ("log", "trace", "session", "agent", "errors", "export", "demo"))):
        code, out, err = run(capsys, *args)
        assert code == 0 and out.startswith("Usage: agentaudit") and err == ""
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("agentaudit ")


# -- follow --------------------------------------------------------------------------------------

def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _wait_for(lines: queue.Queue[str], text: str, timeout: float = 15.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{text!r} did not appear within {timeout} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if text in line:
            return line


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("fmt", ["table", "jsonl"])
def test_log_follow_prints_new_events(store: dict[str, Any], fmt: str) -> None:
    # Ctrl-C in a terminal: SIGINT at its default, whatever this test run inherited (a job
    # started in the background by a non-interactive shell has it ignored, and so would the CLI)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentaudit.cli", "log", "--follow", "--db", store["db"],
         "--format", fmt, "--agent", "Latecomer"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        preexec_fn=_sigint_default)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        if fmt == "table":
            _wait_for(lines, "details")  # the header: the initial query is done
        audit = AuditLogger(store["db"])
        audit.log_decision("Someone", "ignored")
        audit.log_decision("Latecomer", "arrive", confidence=0.25)
        audit.flush()
        line = _wait_for(lines, "Latecomer")
        if fmt == "jsonl":
            ev = json.loads(line)
            assert (ev["action"], ev["confidence"]) == ("arrive", 0.25)
        else:
            assert "arrive" in line and "⚠️ warning" in line
        audit.log_decision("Latecomer", "again")
        audit.close()
        assert "again" in _wait_for(lines, "Latecomer")
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends --follow cleanly
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        assert proc.stdout is not None and proc.stderr is not None
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert "Traceback" not in stderr
    assert lines.empty() or "Someone" not in "".join(lines.queue)


# -- start-up cost -------------------------------------------------------------------------------

def test_trace_does_not_import_typer_or_the_sdk(store: dict[str, Any]) -> None:
    code = (
        "import sys\n"
        "from agentaudit.cli import main\n"
        f"assert main(['trace', 'task-1', '--db', {store['db']!r}]) == 0\n"
        "heavy = [m for m in ('typer', 'rich', 'agentaudit.sdk', 'agentaudit.sdk.logger')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_importing_the_cli_is_light() -> None:
    code = ("import sys, agentaudit.cli\n"
            "heavy = [m for m in ('typer', 'rich', 'rich.console', 'agentaudit.sdk',\n"
            "                     'agentaudit.store', 'agentaudit.query') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
