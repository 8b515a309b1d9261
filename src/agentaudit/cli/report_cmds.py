"""``agentaudit report …`` (summary, tool-usage, errors, compliance, daily, cost, agent) and
``agentaudit forensics TRACE_ID``.

Options follow the rest of the CLI (``--db``, ``--tenant``, ``-o FILE``); periods are ``--from``
and ``--to`` (``--since``/``--until`` are accepted too). Reports print Markdown by default;
``--format json`` is the source of truth, ``html`` a self-contained page, ``csv`` the main table.
Exit codes: 0, 1 when ``report compliance`` finds a failing check (or the store cannot be read),
2 for usage errors and bad policy files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentaudit.cli.options import Db, Output, Tenant

if TYPE_CHECKING:
    from agentaudit.reports.period import Period
    from agentaudit.store import Store

__all__ = ["forensics_command", "report_app"]

report_app = typer.Typer(
    name="report",
    help="Reports over a period: summary, tool usage, errors, compliance (policy checks with "
         "evidence), the daily summary, cost, and one agent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Format = Annotated[str, typer.Option(
    "--format", metavar="md|json|html|csv",
    help="md (Markdown), json (the report's data: the source of truth), html (one "
         "self-contained page with charts) or csv (the main table).")]
From = Annotated[str | None, typer.Option(
    "--from", "--since", metavar="TIME",
    help="Start of the period: 30s, 15m, 1h, 7d, 2w ago, an ISO date (2026-11-01, UTC) or "
         "datetime (2026-11-01T10:00:00Z), or epoch seconds. Default: 24h before --to.")]
To = Annotated[str | None, typer.Option(
    "--to", "--until", metavar="TIME", help="End of the period (same forms). Default: now.")]
AgentFilter = Annotated[str | None, typer.Option("--agent", metavar="NAME",
                                                 help="Only events of this agent.")]
Tz = Annotated[str | None, typer.Option(
    "--tz", metavar="ZONE",
    help="IANA time zone (Europe/Berlin) of day boundaries in per-day figures. Default: UTC.")]
PolicyFile = Annotated[str | None, typer.Option(
    "--policy", metavar="FILE",
    help="A compliance policy (TOML, or YAML with PyYAML installed). Default: the built-in "
         "policy (see docs/reports.md).")]


def _period(since: str | None, until: str | None, tz: str | None) -> Period:
    from agentaudit.reports.period import resolve_period

    return resolve_period(since, until, default="24h", tz=tz)


def _emit(data: dict[str, Any], fmt: str, output: str | None) -> None:
    from agentaudit.cli.output import check_choice, open_output
    from agentaudit.reports.render import FORMATS, render

    check_choice("--format", fmt, FORMATS)
    text = render(data, fmt)
    with open_output(output, newline="" if fmt == "csv" else None) as fh:
        fh.write(text)


def _run(db: str | None, fmt: str, output: str | None,
         build: Callable[[Store], dict[str, Any]]) -> dict[str, Any]:
    from agentaudit.cli.commands import open_reader
    from agentaudit.cli.output import check_choice
    from agentaudit.reports.render import FORMATS

    check_choice("--format", fmt, FORMATS)  # before touching the store
    store = open_reader(db)
    try:
        data = build(store)
    finally:
        store.close()
    _emit(data, fmt, output)
    return data


@report_app.command("summary")
def summary_command(db: Db = None, tenant: Tenant = "default", since: From = None,
                    until: To = None, agent: AgentFilter = None, tz: Tz = None,
                    fmt: Format = "md", output: Output = None) -> int:
    """The summary of a period: events, errors and error rate, handoffs, human escalations,
    agents active and the top agents (invocations, errors, average duration)."""
    from agentaudit.reports.summary import summary_report

    period = _period(since, until, tz)
    _run(db, fmt, output, lambda s: summary_report(s, tenant, period, agent))
    return 0


@report_app.command("tool-usage")
def tool_usage_command(db: Db = None, tenant: Tenant = "default", since: From = None,
                       until: To = None, agent: AgentFilter = None, fmt: Format = "md",
                       output: Output = None) -> int:
    """Per tool: calls, errors, error rate, and average, p50, p95 and p99 latency."""
    from agentaudit.reports.tools import tool_usage_report

    period = _period(since, until, None)
    _run(db, fmt, output, lambda s: tool_usage_report(s, tenant, period, agent))
    return 0


@report_app.command("errors")
def errors_command(db: Db = None, tenant: Tenant = "default", since: From = None,
                   until: To = None, agent: AgentFilter = None, fmt: Format = "md",
                   output: Output = None) -> int:
    """Error types, the most common messages, errors by agent and by tool, bursts, retries
    without backoff, and suggested actions."""
    from agentaudit.reports.errors import errors_report

    period = _period(since, until, None)
    _run(db, fmt, output, lambda s: errors_report(s, tenant, period, agent))
    return 0


@report_app.command("compliance")
def compliance_command(db: Db = None, tenant: Tenant = "default", since: From = None,
                       until: To = None, agent: AgentFilter = None, tz: Tz = None,
                       policy: PolicyFile = None, fmt: Format = "md",
                       output: Output = None) -> int:
    """Check the period against a compliance policy; each check shows its value, threshold and
    evidence. Exit code 0 when compliant, 1 when a check fails, 2 for a bad policy file."""
    from agentaudit.reports.compliance import compliance_report
    from agentaudit.reports.policy import load_policy

    rules = load_policy(policy)
    period = _period(since, until, tz)
    data = _run(db, fmt, output, lambda s: compliance_report(s, tenant, period, agent, rules))
    return 0 if data["compliant"] else 1


@report_app.command("daily")
def daily_command(db: Db = None, tenant: Tenant = "default", date: Annotated[
        str | None, typer.Option("--date", metavar="DATE",
                                 help="The day: YYYY-MM-DD, today or yesterday (in --tz). "
                                      "Default: today.")] = None,
                  tz: Tz = None, agent: AgentFilter = None, policy: PolicyFile = None,
                  fmt: Format = "md", output: Output = None) -> int:
    """The "Agent Audit Summary" of one day: overview, top agents, error summary with
    percentages and the compliance checks (✅/⚠️/❌)."""
    from agentaudit.reports.daily import daily_report
    from agentaudit.reports.period import parse_date
    from agentaudit.reports.policy import load_policy

    rules = load_policy(policy)
    day = parse_date(date, tz)
    _run(db, fmt, output, lambda s: daily_report(s, tenant, day, tz, agent, rules))
    return 0


@report_app.command("cost")
def cost_command(db: Db = None, tenant: Tenant = "default", since: From = None,
                 until: To = None, agent: AgentFilter = None, tz: Tz = None,
                 prices: Annotated[str | None, typer.Option(
                     "--prices", metavar="FILE",
                     help="A price table (TOML: [models.\"NAME\"] input = …, output = …, USD "
                          "per 1M tokens). Default: the built-in table.")] = None,
                 top: Annotated[int, typer.Option("--top", metavar="N",
                                                  help="Rows per breakdown.")] = 10,
                 fmt: Format = "md", output: Output = None) -> int:
    """Why did we spend this much? Cost per agent, model, task, user and day from token counts
    and a price table, and the most expensive traces."""
    from agentaudit.cli.errors import UsageProblem
    from agentaudit.reports.cost import cost_report, load_prices

    if top < 1:
        raise UsageProblem(f"--top must be at least 1, not {top}")
    table = load_prices(prices)
    period = _period(since, until, tz)
    _run(db, fmt, output, lambda s: cost_report(s, tenant, period, agent, table, top))
    return 0


@report_app.command("agent")
def agent_report_command(
        name: Annotated[str, typer.Argument(metavar="NAME", help="The agent's name.")],
        db: Db = None, tenant: Tenant = "default", since: From = None, until: To = None,
        fmt: Format = "md", output: Output = None) -> int:
    """Everything one agent did in a period: invocations, tools, decisions with their
    confidence distribution, handoffs in and out, errors and cost."""
    from agentaudit.reports.agent import agent_report

    period = _period(since, until, None)
    _run(db, fmt, output, lambda s: agent_report(s, tenant, name, period))
    return 0


def forensics_command(
        trace_id: Annotated[str, typer.Argument(metavar="TRACE_ID",
                                                help="A trace id or a task id.")],
        db: Db = None, tenant: Tenant = "default", fmt: Format = "md",
        output: Output = None) -> int:
    """Run forensic analysis of one trace (or task): the timeline with ✅/❌/⚠️ status, the root
    cause (first failing tool, repeated failures, circuit breaker, fallback, escalation), the
    impact (agents, users, cost) and recommendations."""
    from agentaudit.reports.forensics import forensics_report

    _run(db, fmt, output, lambda s: forensics_report(s, tenant, trace_id))
    return 0
