"""``agentaudit mcp`` (the MCP server) and ``agentaudit ask "PHRASE"`` (the phrases on the
command line). ``ask`` runs the same functions as the commands it routes to; a phrase it does not
understand prints the phrases it does and exits 2.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentaudit.cli.options import Db, Tenant

if TYPE_CHECKING:
    from agentaudit.ask import Route

__all__ = ["ask_command", "mcp_command", "phrase_list", "run_route"]


def mcp_command(
    db: Db = None,
    tenant: Tenant = "default",
    http: Annotated[bool, typer.Option(
        "--http", help="Serve streamable HTTP on 127.0.0.1:PORT (path /mcp) instead of stdio.")
    ] = False,
    port: Annotated[int, typer.Option("--port", metavar="PORT",
                                      help="The port of --http.")] = 8765,
    key: Annotated[str | None, typer.Option(
        "--key", envvar="AGENTAUDIT_API_KEY", metavar="KEY",
        help="With --db http://collector: a read key; the tools see only its tenant. "
             "Default: $AGENTAUDIT_API_KEY.")] = None,
) -> int:
    """Run a Model Context Protocol server whose read-only tools answer the phrases
    (show_audit_log, trace_task, generate_compliance_report, what_did_the_agent_do,
    show_error_summary, audit_agent, run_forensic_analysis, export_audit_data,
    verify_integrity). Speaks MCP over stdin/stdout unless --http is given. With
    --db http://host:4318 the tools answer through that collector's query API with the read key
    --key, scoped to the key's tenant."""
    from agentaudit.mcp_server import run_server

    run_server(db, tenant, http=http, port=port, key=key)
    return 0


def ask_command(
    phrase: Annotated[list[str], typer.Argument(
        metavar="PHRASE", help="What you want, in words: \"trace task 42\", \"errors in the "
                               "last hour\", \"audit agent Billing\", …")],
    db: Db = None,
    tenant: Tenant = "default",
) -> int:
    """Ask in words: the seed's phrases and close variants, matched without a language model,
    run the command they name. Anything else prints the phrases it understands (exit 2)."""
    from agentaudit.ask import route

    text = " ".join(phrase)
    found = route(text)
    if found is None:
        print(f"agentaudit ask: I do not understand {text!r}. Phrases I understand:\n"
              + phrase_list(), file=sys.stderr)
        return 2
    return run_route(found, db, tenant)


def phrase_list() -> str:
    """The phrases ``ask`` understands, one a line, with the command each runs."""
    from agentaudit.ask import PHRASES

    width = max(len(p.example) for p in PHRASES) + 4
    return "".join(f"  “{p.example}”".ljust(width + 2) + f"agentaudit {p.command}\n"
                   for p in PHRASES)


def _announce(*argv: str | None) -> None:
    shown = " ".join(shlex.quote(a) for a in argv if a is not None)
    print(f"agentaudit ask: running `agentaudit {shown}`", file=sys.stderr)


def _latest(db: str | None, tenant: str, *, errors_only: bool = False) -> str:
    from agentaudit.cli.commands import open_reader
    from agentaudit.mcp_server import latest_trace

    store = open_reader(db)
    try:
        return latest_trace(store, tenant, errors_only=errors_only)
    finally:
        store.close()


def run_route(found: Route, db: str | None, tenant: str) -> int:
    """Run the command ``found`` names with the CLI's own functions; its exit code."""
    from agentaudit.cli import commands

    a: dict[str, Any] = found.args
    command, ident, agent, period = found.phrase.command, a.get("id"), a.get("agent"), a.get(
        "period")
    if command == "session":
        if a.get("session"):
            _announce("session", a["session"])
            return commands.run_session(db, tenant, a["session"])
        if agent and not ident:
            command = "log"
        else:
            command, ident = "trace", ident or _latest(db, tenant)
    if command == "log":
        _announce("log", *(("--agent", agent) if agent else ()),
                  *(("--since", period) if period else ()))
        return commands.run_log(db, tenant, agent, None, period, None, 50, False, "table", None)
    if command == "trace":
        assert ident is not None  # the trace pattern requires one
        _announce("trace", ident)
        return commands.run_trace(db, tenant, ident)
    return _run_report(command, db, tenant, ident, agent, period)


def _run_report(command: str, db: str | None, tenant: str, ident: str | None,
                agent: str | None, period: str | None) -> int:
    from agentaudit.cli import commands

    if command == "errors":
        _announce("errors", "--since", period or "24h", *(("--agent", agent) if agent else ()))
        return commands.run_errors(db, tenant, period or "24h", None, agent)
    if command == "agent":
        _announce("agent", agent, "--since", period or "7d")
        return commands.run_agent(db, tenant, str(agent), period or "7d")
    if command == "report compliance":
        from agentaudit.cli.report_cmds import compliance_command

        _announce("report", "compliance", *(("--since", period) if period else ()))
        return compliance_command(db=db, tenant=tenant, since=period, until=None, agent=None,
                                  tz=None, policy=None, fmt="md", output=None)
    if command == "forensics":
        from agentaudit.cli.report_cmds import forensics_command

        ident = ident or _latest(db, tenant, errors_only=True)
        _announce("forensics", ident)
        return forensics_command(trace_id=ident, db=db, tenant=tenant, fmt="md", output=None)
    if command == "export":
        from agentaudit.cli.export import run_export

        _announce("export", *(("--trace", ident) if ident else ()),
                  *(("--since", period) if period else ()))
        return run_export(db, tenant, "jsonl", None, period, None, None, ident)
    from agentaudit.cli.integrity_cmds import run_verify

    _announce("verify")
    return run_verify(db, tenant, None, None, None, "text")
