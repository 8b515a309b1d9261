"""docs/cli.md is generated from the CLI's help, is up to date, and covers every command."""

from __future__ import annotations

from pathlib import Path

from agentaudit.cli.docs import COMMAND_GUIDES, cli_commands, render_cli_docs

CLI_MD = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _commands() -> dict[str, list[str]]:
    """Every command of the CLI (sub-commands as ``"keys create"``) and its option strings."""
    return {name: [opt for p in command.get_params(ctx) for opt in [*p.opts, *p.secondary_opts]
                   if opt.startswith("-")]
            for name, command, ctx in cli_commands()[1:]}


def test_cli_md_is_up_to_date() -> None:
    assert CLI_MD.read_text(encoding="utf-8") == render_cli_docs(), (
        "docs/cli.md is stale: run `PYTHONPATH=src python -m agentaudit.cli.docs --write`")


def test_every_command_and_option_is_documented() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    commands = _commands()
    assert {"log", "trace", "session", "agent", "errors", "export", "demo"} <= set(commands)
    sections = text.split("\n## agentaudit ")[1:]
    documented = {s.split("\n", 1)[0]: s for s in sections}
    assert set(documented) == set(commands)
    for name, options in commands.items():
        for opt in options:
            assert f"`{opt}`" in documented[name], f"{opt} of {name} is not documented"


def test_trigger_phrases_map_to_commands() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    expected = {
        "Show me the audit log": "log",
        "Trace task [id]": "trace",
        "What did the agent do?": "session",
        "Show error summary": "errors",
        "Audit agent [name]": "agent",
        "Export audit data": "export",
        "Generate compliance report": "report compliance",
        "Run forensic analysis": "forensics",
    }
    for phrase, command in expected.items():
        assert COMMAND_GUIDES[command][0] == phrase
        assert f"| “{phrase}” | [`agentaudit {command}`]" in text
        assert f"## agentaudit {command}\n\n> “{phrase}”" in text
