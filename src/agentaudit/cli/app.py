"""The Typer application: the documented interface of every command.

Command bodies live in ``commands``, ``export`` and ``demo`` as plain functions; this module only
declares arguments, options and help text (which ``agentaudit.cli.docs`` turns into docs/cli.md).
"""

from __future__ import annotations

from typing import Annotated

import typer

from agentaudit.cli.assist_cmds import ask_command, mcp_command
from agentaudit.cli.db_cmds import db_app
from agentaudit.cli.detect_cmds import alerts_app, detect_command
from agentaudit.cli.options import Db, Output, Tenant
from agentaudit.cli.report_cmds import forensics_command, report_app
from agentaudit.cli.retention_cmds import erase_command, hold_app, retention_app
from agentaudit.cli.serve_cmds import keys_app, serve_command

__all__ = ["app", "run_app"]

app = typer.Typer(
    name="agentaudit",
    help="agentaudit: an audit-grade, tamper-evident flight recorder for multi-agent AI systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)

# -- shared options ------------------------------------------------------------------------------

DataFormat = Annotated[str, typer.Option(
    "--format", metavar="table|json|jsonl|csv",
    help="table (Rich), json (one array of events), jsonl (one event per line) or csv "
         "(a header of all fields; nested values as JSON).")]
SummaryFormat = Annotated[str, typer.Option("--format", metavar="table|json",
                                            help="table (Rich) or json (the summary object).")]
Until = Annotated[str | None, typer.Option(
    "--until", metavar="TIME", help="Only events before TIME (same forms as --since).")]
AgentFilter = Annotated[str | None, typer.Option("--agent", metavar="NAME",
                                                 help="Only events of this agent.")]
_SINCE_HELP = ("Only events from TIME on: 30s, 15m, 1h, 7d, 2w ago, an ISO date (2026-11-01, UTC) "
               "or datetime (2026-11-01T10:00:00Z), or epoch seconds.")


def _since(default_help: str = "") -> object:
    return typer.Option("--since", metavar="TIME", help=_SINCE_HELP + default_help)


def _version(value: bool) -> None:
    if value:
        from agentaudit import __version__

        typer.echo(f"agentaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """agentaudit: an audit-grade, tamper-evident flight recorder for multi-agent AI systems."""


# -- commands ------------------------------------------------------------------------------------

@app.command("log")
def log_command(
    db: Db = None,
    tenant: Tenant = "default",
    agent: AgentFilter = None,
    event_type: Annotated[list[str] | None, typer.Option(
        "--type", "-t", metavar="TYPE",
        help="Only events of this type: tool_call, decision, error, handoff, … "
             "(repeat or comma-separate for several).")] = None,
    since: Annotated[str | None, _since()] = None,
    until: Until = None,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N",
                                       help="How many of the most recent events to show.")] = 50,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f",
        help="Keep printing new events as they are recorded (polling every 0.5 s) until "
             "Ctrl-C.")] = False,
    fmt: DataFormat = "table",
    output: Output = None,
) -> int:
    """Show the audit log: the most recent events, printed oldest first.

    Columns: time, agent, type, action, details, duration and status (ok, warning or error).
    """
    from agentaudit.cli.commands import run_log

    return run_log(db, tenant, agent, event_type, since, until, limit, follow, fmt, output)


@app.command("trace")
def trace_command(
    trace_id: Annotated[str, typer.Argument(metavar="ID", help="A trace id or a task id.")],
    db: Db = None,
    tenant: Tenant = "default",
    graph: Annotated[str | None, typer.Option(
        "--graph", metavar="json|mermaid|dot",
        help="Print the parent/child graph of the trace instead of its timeline: json "
             "(nodes, edges, handoff_path), a Mermaid flowchart or Graphviz DOT.")] = None,
    fmt: DataFormat = "table",
    output: Output = None,
) -> int:
    """Trace a task: every event of one trace, across agents, as a timeline.

    A header gives the trace id, the agents (in handoff order), the number of events, the
    duration and the errors; each row shows time, agent, action, details, duration and status.
    """
    from agentaudit.cli.commands import run_trace

    return run_trace(db, tenant, trace_id, graph, fmt, output)


@app.command("session")
def session_command(
    session_id: Annotated[str, typer.Argument(metavar="ID", help="A session id.")],
    db: Db = None,
    tenant: Tenant = "default",
    fmt: DataFormat = "table",
    output: Output = None,
) -> int:
    """What did the agent do? A session's events as timelines, one per trace."""
    from agentaudit.cli.commands import run_session

    return run_session(db, tenant, session_id, fmt, output)


@app.command("agent")
def agent_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The agent's name.")],
    db: Db = None,
    tenant: Tenant = "default",
    since: Annotated[str, _since(" Default: 7d.")] = "7d",
    until: Until = None,
    fmt: SummaryFormat = "table",
    output: Output = None,
) -> int:
    """Audit an agent: events, invocations, tools used (calls, average latency), decisions
    (count, average confidence), errors by type, handoffs out and cost over a period."""
    from agentaudit.cli.commands import run_agent

    return run_agent(db, tenant, name, since, until, fmt, output)


@app.command("errors")
def errors_command(
    db: Db = None,
    tenant: Tenant = "default",
    since: Annotated[str, _since(" Default: 24h.")] = "24h",
    until: Until = None,
    agent: AgentFilter = None,
    fmt: SummaryFormat = "table",
    output: Output = None,
) -> int:
    """Show the error summary: error rate, error types, the most common errors, and errors by
    agent and by tool over a period."""
    from agentaudit.cli.commands import run_errors

    return run_errors(db, tenant, since, until, agent, fmt, output)


@app.command("export")
def export_command(
    db: Db = None,
    tenant: Tenant = "default",
    fmt: Annotated[str, typer.Option(
        "--format", metavar="jsonl|csv|json|parquet",
        help="jsonl (one event per line), csv (a header of all fields), json (one array) or "
             "parquet (needs pyarrow and -o).")] = "jsonl",
    output: Output = None,
    since: Annotated[str | None, _since()] = None,
    until: Until = None,
    agent: AgentFilter = None,
    trace: Annotated[str | None, typer.Option(
        "--trace", metavar="ID", help="Only the events of this trace (a trace id or task id).")
    ] = None,
    bundle: Annotated[str | None, typer.Option(
        "--bundle", metavar="FILE",
        help="Write an evidence bundle instead: one zip with the selected events (envelope, "
             "payload, salt), inclusion proofs, the signed checkpoint and the verifier key, "
             "checked offline with `agentaudit verify --bundle FILE`. Each event is checked "
             "first: a selected event that does not verify stops the export (exit 1, naming "
             "it) and no file is written.")] = None,
    vkey: Annotated[str | None, typer.Option(
        "--vkey", metavar="KEY",
        help="With --bundle: the verifier key of the machine that signs the log (the text "
             "printed by `agentaudit checkpoint --vkey` there, or a file holding it), for a "
             "machine that holds only a copy of the log. Default: this machine's key.")] = None,
) -> int:
    """Export audit data: every field of every matching event, streamed from the store.

    Writing to a file shows a progress bar on stderr; the file appears only when complete.
    """
    if bundle is not None:
        from agentaudit.cli.integrity_cmds import run_bundle_export

        if output is not None or fmt != "jsonl":
            from agentaudit.cli.errors import UsageProblem

            raise UsageProblem("--bundle FILE names the bundle it writes; -o and --format are "
                               "for the plain export")

        return run_bundle_export(db, tenant, bundle, since, until, trace, agent, vkey)
    if vkey is not None:
        from agentaudit.cli.errors import UsageProblem

        raise UsageProblem("--vkey only applies to --bundle")
    from agentaudit.cli.export import run_export

    return run_export(db, tenant, fmt, output, since, until, agent, trace)


@app.command("demo")
def demo_command(
    db: Annotated[str, typer.Option(
        "--db", metavar="PATH",
        help="Where to write the demo workload (never $AGENTAUDIT_DB, so that demo events "
             "cannot land in a real audit log).")] = "demo.db",
    tenant: Tenant = "default",
    traces: Annotated[int, typer.Option("--traces", metavar="N",
                                        help="How many traces (agent tasks) to write.")] = 1000,
    events: Annotated[int | None, typer.Option(
        "--events", metavar="N",
        help="Write about N events in all (more or fewer traces' worth of steps).")] = None,
    days: Annotated[float, typer.Option("--days", metavar="D",
                                        help="Spread the traces over the last D days.")] = 7.0,
    seed: Annotated[int, typer.Option("--seed", metavar="S",
                                      help="Random seed: the same seed writes the same data.")
                    ] = 42,
) -> int:
    """Write a realistic multi-agent demo workload, including one refund incident, to a store."""
    from agentaudit.cli.demo import run_demo_command

    return run_demo_command(db, tenant, traces, events, days, seed)


Vkey = Annotated[str | None, typer.Option(
    "--vkey", metavar="KEY",
    help="The verifier key to trust (the text printed by `agentaudit checkpoint --vkey` on the "
         "machine that signs the log, or a file holding it). Default: this machine's key.")]


@app.command("verify")
def verify_command(
    db: Db = None,
    tenant: Tenant = "default",
    vkey: Vkey = None,
    witness: Annotated[str | None, typer.Option(
        "--witness", metavar="NOTE_FILE",
        help="A checkpoint saved earlier (e.g. by `agentaudit checkpoint > witness.note`): the "
             "log must still extend it, so a rollback or rewrite is caught.")] = None,
    bundle: Annotated[str | None, typer.Option(
        "--bundle", metavar="FILE",
        help="Verify an evidence bundle offline instead of a database.")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="text|json",
                                     help="text or json (the full report).")] = "text",
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, metavar="N",
        help="Processes checking the rows of a large log (default: one per CPU; 1: only this "
             "process). The result is the same.")] = None,
) -> int:
    """Prove the record was not altered: recompute every leaf, root and signature.

    Exit 0 when intact; 1 naming the first bad seq/event and the kind of damage (modified,
    missing, inserted, reordered, truncated, bad signature, inconsistent with witness); 2 for
    usage errors. Erased payloads are reported as erased, not as tampering.
    """
    from agentaudit.cli.integrity_cmds import run_verify

    return run_verify(db, tenant, vkey, witness, bundle, fmt, workers)


@app.command("checkpoint")
def checkpoint_command(
    db: Db = None,
    tenant: Tenant = "default",
    vkey: Annotated[bool, typer.Option(
        "--vkey", help="Print this machine's verifier key instead (give it to auditors).")
    ] = False,
    new: Annotated[bool, typer.Option(
        "--new", help="Sign a checkpoint of the current log head first (needs the log's "
                      "signing key).")] = False,
) -> int:
    """Print the latest signed checkpoint (a C2SP signed note); save it elsewhere as a witness."""
    from agentaudit.cli.integrity_cmds import run_checkpoint

    return run_checkpoint(db, tenant, vkey, new)


@app.command("prove")
def prove_command(
    event_id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="The event to prove.")],
    db: Db = None,
    tenant: Tenant = "default",
    fmt: Annotated[str, typer.Option("--format", metavar="text|json",
                                     help="text, or json (the proof document).")] = "text",
) -> int:
    """The inclusion proof of one event against the latest checkpoint, checkable by anyone."""
    from agentaudit.cli.integrity_cmds import run_prove

    return run_prove(db, tenant, event_id, fmt)


app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(report_app, name="report")
app.command("forensics")(forensics_command)
app.command("ask")(ask_command)
app.command("mcp")(mcp_command)
app.add_typer(retention_app, name="retention")
app.add_typer(hold_app, name="hold")
app.command("erase")(erase_command)
app.command("detect")(detect_command)
app.add_typer(alerts_app, name="alerts")


def run_app(args: list[str]) -> int:
    """Run the Typer application without its own error handling (``main`` does that)."""
    command = typer.main.get_command(app)
    rv = command.main(args=args or ["--help"], prog_name="agentaudit", standalone_mode=False)
    return rv if isinstance(rv, int) else 0
