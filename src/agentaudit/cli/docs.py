"""docs/cli.md, generated from the CLI's own help so that the two cannot drift apart.

    python -m agentaudit.cli.docs > docs/cli.md      # or: --write (writes docs/cli.md)

``tests/test_docs.py`` fails when docs/cli.md differs from ``render_cli_docs()``.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

__all__ = ["COMMAND_GUIDES", "cli_commands", "render_cli_docs"]

# The seed's trigger phrase of each command, and a short paragraph on when to use it.
COMMAND_GUIDES: dict[str, tuple[str, str]] = {
    "log": ("Show me the audit log",
            "Like a log file, newest last: `agentaudit log` shows the 50 "
            "most recent events of the tenant, and `--follow` keeps the terminal open on new "
            "ones, like `tail -f`. Filter by agent, event type and time window; `--format "
            "jsonl` pipes events into other tools."),
    "trace": ("Trace task [id]",
              "Everything that happened in one task, across every agent it passed through: "
              "give a trace id or a task id. The header names the agents in handoff order, "
              "the number of events, the duration and the errors; `--graph mermaid` or "
              "`--graph dot` draws who called whom, and `--format json` gives the events "
              "themselves."),
    "session": ("What did the agent do?",
                "A user's session, trace by trace: every task the agents worked on in the "
                "session, each as its own timeline, in the order they began."),
    "agent": ("Audit agent [name]",
              "One agent's record over a period (default: the last 7 days): how often it ran, "
              "which tools it used and how fast they answered, how confident its decisions "
              "were, which errors it hit, whom it handed work to, and what it cost. Computed "
              "in SQL, so it stays fast on large stores."),
    "errors": ("Show error summary",
               "What went wrong in a period (default: the last 24 hours): the error rate, the "
               "error types, the most common messages, and which agents and tools failed."),
    "export": ("Export audit data",
               "Every field of every matching event, for auditors, notebooks and other "
               "systems. Events are streamed from the store, so exports of any size run in "
               "constant memory; a file is written under a temporary name and appears only "
               "when complete."),
    "report compliance": ("Generate compliance report",
                          "Checks a period against a compliance policy and shows, for each "
                          "check, the value found, the threshold and the evidence."),
    "forensics": ("Run forensic analysis",
                  "Investigates one trace or task after an incident: what happened, the root "
                  "cause, the impact and the evidence."),
    "detect": ("Did anything suspicious happen?",
               "Runs the detection rules (prompt injection, exfiltration, anomalies against each "
               "agent's baseline, approvals, rejections, budgets, handoff loops, acting after a "
               "stop) over stored history and prints what would have fired, with the evidence "
               "event ids; nothing is written. `agentaudit serve` runs the same rules live "
               "(docs/detection.md)."),
    "demo": ("Show me what agentaudit does",
             "Writes a realistic multi-agent workload (routers, support, billing, tools, "
             "handoffs, human approvals, errors) with one refund incident to investigate, to "
             "`demo.db` unless told otherwise. It never writes to `$AGENTAUDIT_DB`."),
}

_INTRO = """\
# The `agentaudit` command line

<!-- Generated from the CLI's help by `python -m agentaudit.cli.docs --write`; do not edit. -->

Every command that reads takes `--db` (a file path or `sqlite:///path`; default
`$AGENTAUDIT_DB`, else `./agentaudit.db`) and `--tenant` (default `default`). Reading never
creates a database: a missing file is an error. Commands that print data take
`--format table|json|jsonl|csv` (`json` is one array of events with the event schema's field
names, `jsonl` one event per line, `csv` a header of all fields with nested values as JSON) and
`-o FILE` to write to a file instead of stdout.

Times (`--since`, `--until`) are relative (`30s`, `15m`, `1h`, `7d`, `2w` ago), ISO dates
(`2026-11-01`, UTC midnight), ISO datetimes (`2026-11-01T10:00:00Z`; no offset means UTC) or
epoch seconds.

Errors print one line, `agentaudit: error: <reason>`, on stderr. Exit codes: `0` success, `1`
not found or the store cannot be read, `2` a usage error (unknown option or format, unreadable
time), `130` interrupted. Set `AGENTAUDIT_DEBUG=1` to see a traceback as well.
"""


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _option_row(param: Any) -> tuple[str, str, str]:
    # Short options first; sorted, because Click keeps the help option's names in a set.
    flags = sorted([*param.opts, *param.secondary_opts], key=lambda n: (n.startswith("--"), n))
    names = ", ".join(f"`{n}`" for n in flags)
    if param.param_type_name == "argument":
        names = f"`{param.metavar or param.name.upper()}`"
    elif not getattr(param, "is_flag", False):
        names += f" `{param.metavar or param.type.name.upper()}`"
    help_text = getattr(param, "help", None) or ""
    envvar = getattr(param, "envvar", None)
    if envvar:
        help_text += f" Environment: `{envvar}`."
    default = param.default
    shown = ("" if default is None or default is False or param.param_type_name == "argument"
             or isinstance(default, (list, tuple)) or callable(default) else f"`{default}`")
    return _cell(names), _cell(help_text), shown


def _params_table(params: list[Any]) -> list[str]:
    lines = ["| Argument or option | Description | Default |", "|---|---|---|"]
    for p in params:
        lines.append("| {} | {} | {} |".format(*_option_row(p)))
    return lines


def cli_commands() -> list[tuple[str, Any, Any]]:
    """``(name, command, context)`` of every visible command, sub-commands of groups included
    (``"keys create"``), in the order the CLI lists them."""
    import typer

    from agentaudit.cli.app import app

    group = typer.main.get_command(app)
    root = typer.Context(group, info_name="agentaudit", **group.context_settings)
    found: list[tuple[str, Any, Any]] = [("", group, root)]

    def walk(parent: Any, ctx: Any, prefix: str) -> None:
        for name in parent.list_commands(ctx):
            command = parent.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            sub = typer.Context(command, info_name=name, parent=ctx, **command.context_settings)
            found.append((f"{prefix}{name}", command, sub))
            if hasattr(command, "list_commands"):
                walk(command, sub, f"{prefix}{name} ")

    walk(group, root, "")
    return found


def render_cli_docs() -> str:
    """The Markdown of docs/cli.md: intro, command index, then each command's help."""
    (_, _, root), *commands = cli_commands()
    out = [_INTRO, "| You ask | Command | What it shows |", "|---|---|---|"]
    for name, command, _ in commands:
        phrase = COMMAND_GUIDES.get(name, ("", ""))[0]
        anchor = "agentaudit-" + name.replace(" ", "-")
        out.append(f"| {phrase and f'“{phrase}”'} | [`agentaudit {name}`](#{anchor}) "
                   f"| {_cell(command.get_short_help_str(limit=200))} |")
    out += ["", "Options of `agentaudit` itself:", ""]
    out += _params_table(root.command.get_params(root))
    for name, command, ctx in commands:
        phrase, guide = COMMAND_GUIDES.get(name, ("", ""))
        out += ["", f"## agentaudit {name}", ""]
        if phrase:
            out += [f"> “{phrase}”", ""]
        if guide:
            out += [guide, ""]
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += ["```text", f"agentaudit {name} {usage}", "```", ""]
        out += [inspect.cleandoc(command.help or ""), ""]
        out += _params_table(command.get_params(ctx))
    return "\n".join(out) + "\n"


def _main(argv: list[str]) -> int:
    text = render_cli_docs()
    if argv[:1] == ["--write"]:
        target = Path(argv[1]) if len(argv) > 1 else Path("docs/cli.md")
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
