"""``agentaudit ask "PHRASE"``: every seed phrase and its variants route to the right command,
run it against a demo store, and anything else lists the phrases (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentaudit.ask import PHRASES, normalize, period_of, route
from agentaudit.cli import main
from agentaudit.demo import run_demo

DOCS = Path(__file__).resolve().parents[1] / "docs" / "mcp.md"

SEED = {
    "Show me the audit log": "log",
    "Trace task 42": "trace",
    "Generate compliance report": "report compliance",
    "What did the agent do?": "session",
    "Show error summary": "errors",
    "Audit agent Billing": "agent",
    "Run forensic analysis": "forensics",
    "Export audit data": "export",
    "Verify integrity": "verify",
}

ARGS = {
    "Trace task 42": {"id": "42"},
    "trace task refund-incident": {"id": "refund-incident"},
    "Trace refund-incident": {"id": "refund-incident"},
    "what did the agent do in session sess-7": {"session": "sess-7"},
    "What did Billing do?": {"agent": "Billing"},
    "what did the agents do in task refund-incident": {"id": "refund-incident"},
    "errors in the last hour": {"period": "1h"},
    "Errors in the last 24 hours": {"period": "24h"},
    "show me the errors of agent Billing": {"agent": "Billing"},
    "error summary for the past week": {"period": "1w"},
    "Audit agent Billing": {"agent": "Billing"},
    "audit the agent Support over the last 2 days": {"agent": "Support", "period": "2d"},
    "Run forensic analysis on refund-incident": {"id": "refund-incident"},
    "please run a forensic analysis of task refund-incident.": {"id": "refund-incident"},
    "export audit data for task refund-incident": {"id": "refund-incident"},
    "Show me the audit log for the last 15 minutes": {"period": "15m"},
    "compliance report for the last 7 days": {"period": "7d"},
    "Generate compliance report": {},
    "What did the agent do?": {},
}

NOT_GUESSED = ["make me a sandwich", "delete the audit log", "trace", "audit agent",
               "what did the agent eat", "errors in the last fortnight", "show me everything", ""]


@pytest.mark.parametrize(("text", "command"), list(SEED.items()))
def test_seed_phrases_route_to_their_commands(text: str, command: str) -> None:
    found = route(text)
    assert found is not None and found.phrase.command == command


@pytest.mark.parametrize(("text", "command"), [
    (variant, p.command) for p in PHRASES for variant in (p.example, *p.variants)
    if "[" not in variant])
def test_every_listed_variant_routes(text: str, command: str) -> None:
    found = route(text)
    assert found is not None and found.phrase.command == command
    assert route(text.upper()) is not None  # case does not matter
    assert route(f"  please {text}?  ") is not None  # nor politeness and punctuation


@pytest.mark.parametrize(("text", "args"), list(ARGS.items()))
def test_arguments_are_read_from_the_phrase(text: str, args: dict[str, str]) -> None:
    found = route(text)
    assert found is not None and found.args == args


@pytest.mark.parametrize("text", NOT_GUESSED)
def test_phrases_it_must_not_guess(text: str) -> None:
    assert route(text) is None


def test_helpers() -> None:
    assert normalize("  Could you   trace task 42, please?") == "trace task 42"
    assert [period_of(t) for t in ("hour", "24 hours", "2 weeks", "min", None)] == [
        "1h", "24h", "2w", "1m", None]
    with pytest.raises(ValueError, match="fortnight"):
        period_of("fortnight")


def test_docs_list_every_phrase_and_tool() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for p in PHRASES:
        assert f"“{p.example}”" in text and f"`{p.tool}`" in text, p.example
        assert f"`agentaudit {p.command}" in text, p.command


# -- end to end, through the CLI ---------------------------------------------------------------

@pytest.fixture
def demo_db(tmp_path: Path) -> str:
    path = tmp_path / "demo.db"
    run_demo(str(path), traces=40, seed=1)
    return str(path)


def _ask(capsys: pytest.CaptureFixture[str], db: str, phrase: str) -> tuple[int, str, str]:
    code = main(["ask", phrase, "--db", db])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("phrase", "code", "expected", "ran"), [
    ("Show me the audit log", 0, "status", "agentaudit log"),
    ("trace task refund-incident", 0, "Task refund-incident", "agentaudit trace refund-incident"),
    ("Generate compliance report", None, "Compliance Report", "agentaudit report compliance"),
    ("What did the agent do?", 0, "agents Router", "agentaudit trace "),
    ("Show error summary", 0, "Error summary", "agentaudit errors --since 24h"),
    ("errors in the last hour", 0, "Error summary", "agentaudit errors --since 1h"),
    ("Audit agent Billing", 0, "Agent Billing", "agentaudit agent Billing --since 7d"),
    ("Run forensic analysis on refund-incident", 0, "process_refund",
     "agentaudit forensics refund-incident"),
    ("Run forensic analysis", 0, "Incident Forensics", "agentaudit forensics "),
    ("export audit data for task refund-incident", 0, '"task_id":"refund-incident"',
     "agentaudit export --trace refund-incident"),
    ("Verify integrity", 0, "intact", "agentaudit verify"),
])
def test_ask_runs_the_command(capsys: pytest.CaptureFixture[str], demo_db: str, phrase: str,
                              code: int | None, expected: str, ran: str) -> None:
    rc, out, err = _ask(capsys, demo_db, phrase)
    assert rc in ((0, 1) if code is None else (code,)), err  # compliance: 1 when not compliant
    assert expected in out
    assert f"running `{ran}" in err


def test_ask_session_and_unknown_trace(capsys: pytest.CaptureFixture[str], demo_db: str) -> None:
    from agentaudit.store import open_store

    store = open_store(demo_db, create=False)
    session = store.trace_events("default", "refund-incident")[0].session_id
    store.close()
    rc, out, _ = _ask(capsys, demo_db, f"what did the agent do in session {session}")
    assert rc == 0 and out.startswith(f"Session {session}")
    rc, out, err = _ask(capsys, demo_db, "Trace task 42")
    assert rc == 1 and "no trace or task '42'" in err


@pytest.mark.parametrize("phrase", ["make me a sandwich", "delete the audit log"])
def test_ask_lists_phrases_when_it_does_not_understand(
        capsys: pytest.CaptureFixture[str], demo_db: str, phrase: str) -> None:
    rc, out, err = _ask(capsys, demo_db, phrase)
    assert rc == 2 and out == ""
    assert f"I do not understand {phrase!r}" in err
    for p in PHRASES:
        assert f"“{p.example}”" in err and f"agentaudit {p.command}" in err
