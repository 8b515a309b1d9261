"""``agentaudit detect`` (the rules over history) and ``agentaudit alerts list|ack``.

Exit codes of ``detect``: 0 when nothing would have fired, 1 when something would have (like
``report compliance``), 2 for usage errors and bad rules files.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentaudit.cli.options import Db, Output, Tenant

if TYPE_CHECKING:
    from agentaudit.detect.firing import Firing
    from agentaudit.store import Store
    from agentaudit.store._alerts import Alert

__all__ = ["alerts_app", "detect_command"]

RulesFile = Annotated[str | None, typer.Option(
    "--rules", metavar="FILE",
    help="A rules file (TOML) merged over the packaged rules. Default: $AGENTAUDIT_DETECT_RULES, "
         "else the packaged rules (see docs/detection.md).")]
Fmt = Annotated[str, typer.Option("--format", metavar="table|json", help="table or json.")]


def detect_command(
    db: Db = None,
    tenant: Tenant = "default",
    since: Annotated[str, typer.Option(
        "--since", metavar="TIME",
        help="Start of the period: 30s, 15m, 1h, 7d, 2w ago, an ISO date or datetime, or "
             "epoch seconds.")] = "7d",
    until: Annotated[str | None, typer.Option("--until", metavar="TIME",
                                              help="End of the period (same forms).")] = None,
    rules: RulesFile = None,
    rule: Annotated[list[str] | None, typer.Option(
        "--rule", metavar="NAME", help="Only this rule (repeat for several).")] = None,
    fmt: Fmt = "table",
    output: Output = None,
) -> int:
    """Run the detection rules over stored history and print what would have fired (nothing
    is written). Baselines are warmed from the history before --since.

    Exit 0 when nothing would have fired, 1 when something would have, 2 for usage errors and
    bad rules files.
    """
    import os

    from agentaudit.cli.commands import open_reader, parse_period
    from agentaudit.cli.output import check_choice, open_output, to_json
    from agentaudit.detect import load_rules
    from agentaudit.detect.rules import RULE_NAMES, RuleSet

    check_choice("--format", fmt, ("table", "json"))
    start, end = parse_period(since, until)
    assert start is not None
    ruleset = load_rules(rules or os.environ.get("AGENTAUDIT_DETECT_RULES") or None)
    if rule:
        from agentaudit.cli.errors import UsageProblem

        unknown = set(rule) - set(RULE_NAMES)
        if unknown:
            raise UsageProblem(f"--rule: unknown rule(s) {sorted(unknown)}; known: "
                               f"{', '.join(RULE_NAMES)}")
        ruleset = RuleSet({n: {**r, "enabled": r["enabled"] and n in rule}
                           for n, r in ruleset.rules.items()}, ruleset.options,
                          ruleset.alerts, ruleset.source)
    with open_reader(db) as store:
        firings, engine = _run(store, tenant, start, end, ruleset)
    with open_output(output) as fh:
        if fmt == "json":
            fh.write(to_json({"tenant": tenant, "since": start, "until": end,
                              "rules": ruleset.source, "events": engine.stats["events"],
                              "firings": [f.to_dict() for f in firings]}) + "\n")
        else:
            _print_firings(fh, firings, engine.stats["events"])
    return 1 if firings else 0


def _run(store: Any, tenant: str, start: float, end: float | None,
         ruleset: Any) -> tuple[list[Firing], Any]:
    from agentaudit.detect import detect_history
    from agentaudit.store.base import EventQuery

    total = store.count(EventQuery(tenant=tenant, since=start, until=end))
    if total < 20_000 or not sys.stderr.isatty():
        return detect_history(store, tenant, start, end, ruleset)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("detecting", total=total)
        return detect_history(store, tenant, start, end, ruleset,
                              progress=lambda n: bar.advance(task, n))


def _print_firings(fh: Any, firings: list[Firing], events: int) -> None:
    from rich.table import Table

    from agentaudit.cli.output import make_console
    from agentaudit.query import iso_time

    console = make_console(fh)
    if not firings:
        console.print(f"Nothing would have fired over {events:,} events.")
        return
    table = Table("time", "severity", "rule", "agent", "title", "evidence", "repeats",
                  box=None, show_lines=False)
    for f in firings:
        table.add_row(iso_time(f.timestamp) or "", f.severity, f.rule, f.agent, f.title,
                      ", ".join(f.evidence[:3]) + (" …" if len(f.evidence) > 3 else ""),
                      str(f.occurrences - 1) if f.occurrences > 1 else "")
    console.print(table)
    console.print(f"{len(firings)} firing(s) over {events:,} events; explanations: "
                  "--format json")


alerts_app = typer.Typer(
    name="alerts", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Alerts raised by the detection rules of `agentaudit serve`: list and acknowledge.",
)


def _open(db: str | None) -> Store:
    """The store, when its backend keeps alerts (SQLite and PostgreSQL do)."""
    from agentaudit.exceptions import ConfigError
    from agentaudit.store import default_store_url, open_store
    from agentaudit.store._alerts import NOT_SUPPORTED, alerts_of

    store = open_store(db or default_store_url(), create=False)
    if alerts_of(store) is None:
        store.close()
        raise ConfigError(f"the {store.backend} backend: {NOT_SUPPORTED}")
    return store


@alerts_app.command("list")
def alerts_list(
    db: Db = None,
    tenant: Tenant = "default",
    status: Annotated[str, typer.Option("--status", metavar="open|acked|all",
                                        help="Which alerts.")] = "open",
    since: Annotated[str | None, typer.Option(
        "--since", metavar="TIME", help="Only alerts seen from TIME on (7d, ISO date, …).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N",
                                       help="At most N alerts, newest first.")] = 50,
    fmt: Fmt = "table",
) -> int:
    """List alerts, newest first: one per incident, with how often it recurred."""
    from agentaudit.cli.commands import parse_period
    from agentaudit.cli.output import check_choice, to_json
    from agentaudit.store._alerts import AlertStorage

    check_choice("--format", fmt, ("table", "json"))
    check_choice("--status", status, ("open", "acked", "all"))
    start, _ = parse_period(since, None)
    with _open(db) as store:
        assert isinstance(store, AlertStorage)
        alerts = store.list_alerts(tenant, None if status == "all" else status, start, limit)
    if fmt == "json":
        typer.echo(to_json([a.to_dict() for a in alerts]))
    else:
        _print_alerts(alerts)
    return 0


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="The alert id (`alerts list`).")],
    db: Db = None,
    tenant: Tenant = "default",
    by: Annotated[str | None, typer.Option("--by", metavar="NAME",
                                           help="Who acknowledges (default: $USER).")] = None,
    note: Annotated[str | None, typer.Option("--note", metavar="TEXT",
                                             help="Why, or what was done.")] = None,
) -> int:
    """Acknowledge an alert; the acknowledgement is itself an audit event (audit.alert_acked)."""
    import getpass

    from agentaudit.events import AuditEvent
    from agentaudit.exceptions import NotFound
    from agentaudit.store._alerts import AlertStorage

    who = by or getpass.getuser()
    with _open(db) as store:
        assert isinstance(store, AlertStorage)
        alert, newly = store.ack_alert(alert_id, tenant, who, note)
        if alert is None:
            raise NotFound(f"no alert {alert_id} in tenant {tenant!r}")
        if newly:
            store.append_batch([AuditEvent(
                event_type="audit.alert_acked", agent_name="agentaudit", tenant=tenant,
                action="alert_acked", source="cli", parent_event_id=alert.event_id,
                params={"alert_id": alert.id, "rule": alert.rule, "by": who,
                        **({"note": note} if note else {})},
                timestamp=alert.acked_at or 0.0)])
    print(f"acknowledged alert {alert.id}" if newly else
          f"alert {alert.id} was already acknowledged by {alert.acked_by}", file=sys.stderr)
    return 0


def _print_alerts(alerts: list[Alert]) -> None:
    from rich.table import Table

    from agentaudit.cli.output import make_console
    from agentaudit.query import iso_time

    table = Table("id", "last seen", "severity", "rule", "agent", "title", "count", "status",
                  box=None)
    for a in alerts:
        table.add_row(str(a.id), iso_time(a.last_seen) or "", a.severity, a.rule,
                      a.agent_name or "", a.title, str(a.occurrences),
                      a.status if a.status == "open" else f"acked by {a.acked_by}")
    make_console().print(table if alerts else "No alerts.")
