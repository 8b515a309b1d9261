"""``agentaudit retention`` (status, apply, erased), ``agentaudit hold`` (create, list, release)
and ``agentaudit erase``: retention tiers, legal holds and erasure (docs/retention.md).

Declarations only import Typer; the store and the retention package load when a command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentaudit.cli.options import Db, Tenant

if TYPE_CHECKING:
    from agentaudit.store.base import Store

__all__ = ["erase_command", "hold_app", "retention_app"]

Config = Annotated[str | None, typer.Option(
    "--config", envvar="AGENTAUDIT_RETENTION_CONFIG", metavar="FILE",
    help="The retention config (TOML: days per tier, classification rules, per tenant). "
         "Default: $AGENTAUDIT_RETENTION_CONFIG, else the seed's tiers (debug 7, info 30, "
         "compliance 365, critical 730 days).")]
Format = Annotated[str, typer.Option("--format", metavar="table|json",
                                     help="table (Rich) or json.")]
_PROGRESS_FROM = 20_000  # show a progress bar when erasing at least this many payloads

retention_app = typer.Typer(
    name="retention", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Retention tiers: what is stored per tier and day, erase expired payloads, list "
         "what was erased.")
hold_app = typer.Typer(
    name="hold", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Legal holds: held events are never erased, by retention or on request, until the "
         "hold is released.")


@retention_app.command("status")
def status_command(db: Db = None, tenant: Tenant = "default", config: Config = None,
                   fmt: Format = "table") -> int:
    """Per tier and day: events, payloads kept, erased, held, payload bytes and expiry.

    Rows whose expiry has passed hold payloads that `retention apply` erases ("due").
    """
    from agentaudit.retention import load_config, retention_status

    _check_format(fmt)
    policy = load_config(config).policy(tenant)
    with _open(db) as store:
        status = retention_status(store, policy)
    _warn(status["warnings"])
    if fmt == "json":
        return _print_json(status)
    _print_status(status)
    return 0


@retention_app.command("apply")
def apply_command(
    db: Db = None, tenant: Tenant = "default", config: Config = None,
    all_tenants: Annotated[bool, typer.Option(
        "--all-tenants", help="Apply to every tenant in the store (each with its own "
                              "policy).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be erased; change nothing, record nothing.")
    ] = False,
    vacuum: Annotated[bool, typer.Option(
        "--vacuum", help="Afterwards run a full VACUUM: compacts pages that erasure left "
                         "partly empty (small payloads) and turns on incremental "
                         "auto-vacuum for files created before it. Rewrites the file and "
                         "blocks writers while it runs. On PostgreSQL: VACUUM FULL of the "
                         "payload partitions whose rows were erased.")] = False,
    compact: Annotated[str | None, typer.Option(
        "--compact-before", metavar="DATE",
        help="Also drop whole envelopes of events before DATE (which must be older than every "
             "tier), keeping their leaf hashes and a signed checkpoint so the log and every "
             "later event still verify. Held events and everything after them are kept. "
             "Compacted events can no longer be read or exported. SQLite only (PostgreSQL "
             "keeps envelopes append-only).")] = None,
    fmt: Format = "table",
) -> int:
    """Erase the payloads whose tier's time is up (envelopes and leaves stay, so `verify`
    still passes), except events under a legal hold. Records an audit.retention_run event
    with the counts; then frees the pages (incremental vacuum)."""
    from agentaudit.retention import apply_retention, load_config

    _check_format(fmt)
    before = _time("--compact-before", compact)
    conf = load_config(config)
    with _open(db) as store:
        if before is not None:
            _refuse_compaction(store)
        tenants = store.info().tenants if all_tenants else [tenant]
        if not tenants:
            from agentaudit.exceptions import NotFound

            raise NotFound("the store holds no tenant's log yet")
        _warn(conf.warnings(tenants))
        runs = []
        for name in tenants:
            with _progress(f"erasing ({name})") as progress:
                runs.append(apply_retention(store, conf.policy(name), dry_run=dry_run,
                                            full_vacuum=vacuum, progress=progress))
        if vacuum and not dry_run and not any(r.space for r in runs):
            runs[-1].space = store.reclaim_space(full=True)
        compactions = [] if before is None else _compact(store, conf, tenants, before, dry_run)
        if not dry_run:
            for name in tenants:
                store.checkpoint(name)
    if fmt == "json":
        return _print_json([{**r.as_dict(), **({"compaction": c.as_dict()} if c else {})}
                            for r, c in zip(runs, compactions or [None] * len(runs),
                                            strict=True)])
    for run in runs:
        _print_run(run)
    for c in compactions:
        verb = "would compact" if dry_run else "compacted"
        print(f"tenant {c.tenant!r}: {verb} {c.dropped} events (seq {c.from_seq}.."
              f"{c.to_seq - 1}); leaf hashes and a signed checkpoint at size {c.to_seq} kept"
              if c.dropped else f"tenant {c.tenant!r}: nothing to compact")
    return 0


def _compact(store: Any, conf: Any, tenants: list[str], before: float,
             dry_run: bool) -> list[Any]:
    from agentaudit.retention import compact_before

    return [compact_before(store, conf.policy(t), before, dry_run=dry_run) for t in tenants]


@retention_app.command("erased")
def erased_command(
    db: Db = None, tenant: Tenant = "default",
    since: Annotated[str | None, typer.Option(
        "--since", metavar="TIME", help="Only erasures from TIME on (7d, 2026-11-01, …).")
    ] = None,
    events: Annotated[bool, typer.Option(
        "--events", help="List the erased events themselves (seq, event id, type, time, "
                         "when and why erased) instead of the runs and requests.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N",
                                       help="At most N events with --events.")] = 1000,
    fmt: Format = "table",
) -> int:
    """The erasure report: every retention run and erasure request that erased payloads
    (when, why, how many, which audit event records it)."""
    from agentaudit.cli.commands import parse_period

    _check_format(fmt)
    start, _ = parse_period(since, None)
    with _open(db) as store:
        if events:
            rows = store.erased_events(tenant, start, limit)
        else:
            rows = [r.__dict__ for r in store.erasure_records(tenant, start)]
    if fmt == "json":
        return _print_json(rows)
    _print_erased(rows, events)
    return 0


@hold_app.command("create")
def hold_create(
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                        help="Why (a case or matter reference); recorded.")],
    db: Db = None, tenant: Tenant = "default",
    trace: Annotated[str | None, typer.Option("--trace", metavar="ID",
                                              help="Hold the events of this trace.")] = None,
    session: Annotated[str | None, typer.Option("--session", metavar="ID",
                                                help="Hold the events of this session.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", metavar="NAME",
                                              help="Hold the events of this agent.")] = None,
    user: Annotated[str | None, typer.Option("--user", metavar="ID",
                                             help="Hold the events of this user.")] = None,
    from_: Annotated[str | None, typer.Option(
        "--from", metavar="TIME", help="Hold events from TIME on (ISO date or datetime, UTC; "
                                       "30d for 30 days ago).")] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="TIME",
                                           help="Hold events before TIME.")] = None,
    fmt: Format = "table",
) -> int:
    """Place a legal hold. Criteria combine (all must match); the hold also covers matching
    events recorded later. Recorded as an audit.legal_hold event."""
    from agentaudit.retention import create_hold

    _check_format(fmt)
    start, end = _time("--from", from_), _time("--to", to)
    with _open(db, sign=tenant) as store:
        hold, matching = create_hold(store, tenant, reason, trace=trace, session=session,
                                     agent=agent, user=user, from_ts=start, to_ts=end)
    if fmt == "json":
        return _print_json({**hold.__dict__, "matching_events": matching})
    print(f"created legal hold {hold.id} ({_criteria(hold)}): {matching} stored events match")
    return 0


@hold_app.command("list")
def hold_list(
    db: Db = None, tenant: Tenant = "default",
    all_: Annotated[bool, typer.Option("--all", help="Include released holds.")] = False,
    fmt: Format = "table",
) -> int:
    """List the legal holds of a tenant (active ones; --all adds released ones)."""
    _check_format(fmt)
    with _open(db) as store:
        holds = [(h, store.held_events(h))
                 for h in store.list_holds(tenant, active_only=not all_)]
    if fmt == "json":
        return _print_json([{**h.__dict__, "matching_events": n} for h, n in holds])
    _print_holds(holds)
    return 0


@hold_app.command("release")
def hold_release(
    hold_id: Annotated[str, typer.Argument(metavar="ID", help="The hold id (hold_…, as "
                                                               "`hold list` shows).")],
    db: Db = None, tenant: Tenant = "default",
) -> int:
    """Release a legal hold: its events follow their tiers again. Recorded as an
    audit.legal_hold_released event."""
    from agentaudit.retention import release_hold

    with _open(db, sign=tenant) as store:
        hold, newly = release_hold(store, hold_id, tenant)
    print(f"released legal hold {hold.id}" if newly
          else f"legal hold {hold.id} was already released", file=sys.stderr)
    return 0


def erase_command(
    reason: Annotated[str, typer.Option(
        "--reason", metavar="TEXT", help="Why (e.g. the GDPR Art. 17 request reference); "
                                         "recorded.")],
    db: Db = None, tenant: Tenant = "default",
    user: Annotated[str | None, typer.Option("--user", metavar="ID",
                                             help="Erase the payloads of this user's events.")
                    ] = None,
    session: Annotated[str | None, typer.Option("--session", metavar="ID",
                                                help="Erase the payloads of this session.")
                       ] = None,
    trace: Annotated[str | None, typer.Option("--trace", metavar="ID",
                                              help="Erase the payloads of this trace.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only; change nothing.")
                       ] = False,
    fmt: Format = "table",
) -> int:
    """Erase personal data on request (GDPR Art. 17): the payloads of one user's, session's
    or trace's events. Envelopes and leaves stay, so `verify` still passes.

    Events under a legal hold are refused and named (exit 1; the others are erased). The
    request is an audit.erasure event; `agentaudit retention erased` lists every erasure.
    """
    from agentaudit.retention import erase

    _check_format(fmt)
    with _open(db, sign=None if dry_run else tenant) as store:
        result = erase(store, tenant, reason=reason, user=user, session=session, trace=trace,
                       dry_run=dry_run)
    if fmt == "json":
        _print_json(result.as_dict())
    else:
        _print_erasure(result)
    if result.refused_held:
        holds = "; ".join(f"{h.id} ({h.reason}): {n} events" for h, n in result.holds)
        print(f"agentaudit: refused: {result.refused_held} matching events are under legal "
              f"hold ({holds}); release the hold first (agentaudit hold release ID)",
              file=sys.stderr)
        return 1
    return 0


# -- helpers -------------------------------------------------------------------------------------

@contextmanager
def _open(db: str | None, sign: str | None = None) -> Iterator[Any]:
    """The store at ``db`` (SQLite or PostgreSQL); with ``sign`` (a tenant), a checkpoint
    covering what the command appended is signed before closing."""
    from agentaudit.store import default_store_url, open_store

    store: Store = open_store(db or default_store_url(), create=False)
    try:
        yield store
        if sign is not None:
            store.checkpoint(sign)  # type: ignore[attr-defined]
    finally:
        store.close()


def _refuse_compaction(store: Any) -> None:
    """Compaction drops envelopes: a backend whose envelopes are append-only refuses it before
    anything else of the command runs."""
    if not getattr(store, "supports_compaction", True):
        from agentaudit.exceptions import ConfigError

        raise ConfigError(f"--compact-before is not available on the {store.backend} backend: "
                          "its envelopes are append-only (retention erases payloads, and "
                          "empties a whole day of payloads when all of it is due)")


def _check_format(fmt: str) -> None:
    from agentaudit.cli.output import check_choice

    check_choice("--format", fmt, ("table", "json"))


def _time(option: str, text: str | None) -> float | None:
    from agentaudit.cli.errors import UsageProblem
    from agentaudit.query import InvalidTime, parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except InvalidTime as e:
        raise UsageProblem(f"{option}: {e}") from e


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        print(f"agentaudit: warning: {w}", file=sys.stderr)


def _print_json(data: Any) -> int:
    from agentaudit.cli.output import to_json

    typer.echo(to_json(data))
    return 0


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress callback that shows a bar (on stderr) once a run is big enough."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if total < _PROGRESS_FROM:
            return
        if "bar" not in state:
            from rich.progress import Progress

            from agentaudit.cli.output import make_console

            state["bar"] = Progress(console=make_console(stderr=True), transient=True)
            state["bar"].start()
            state["task"] = state["bar"].add_task(label, total=total)
        state["bar"].update(state["task"], completed=done)
    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


def _table(*columns: str) -> Any:
    from rich.table import Table

    return Table(*columns, box=None, pad_edge=False)


def _print(table: Any) -> None:
    from agentaudit.cli.output import make_console

    make_console().print(table)


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _print_status(status: dict[str, Any]) -> None:
    print(f"retention of tenant {status['tenant']!r} at {status['at']}")
    tiers = _table("tier", "days", "events", "payloads", "erased", "held", "payload bytes",
                   "due now")
    for t in status["tiers"]:
        tiers.add_row(t["tier"], str(t["days"]), str(t["events"]), str(t["payloads"]),
                      str(t["erased"]), str(t["held"]), _size(t["payload_bytes"]), str(t["due"]))
    _print(tiers)
    if status["rules"]:
        print("rules (first match wins): " + "; ".join(status["rules"]))
    if not status["days"]:
        return
    print()
    days = _table("tier", "day", "events", "payloads", "erased", "held", "payload bytes",
                  "expires", "due")
    for d in status["days"]:
        days.add_row(d["tier"], d["date"], str(d["events"]), str(d["payloads"]),
                     str(d["erased"]), str(d["held"]), _size(d["payload_bytes"]),
                     d["expires"][:10], str(d["due"]) if d["expired"] else "")
    _print(days)


def _print_run(run: Any) -> None:
    verb = "would erase" if run.dry_run else "erased"
    tiers = ", ".join(f"{t} {c['erased']}" for t, c in run.by_tier.items() if c["erased"])
    print(f"tenant {run.tenant!r}: {verb} {run.erased} payloads ({_size(run.payload_bytes)})"
          + (f" [{tiers}]" if tiers else "")
          + (f"; kept {run.kept_by_hold} expired payloads under legal hold"
             if run.kept_by_hold else ""))
    if run.audit_event_id:
        print(f"  recorded as audit.retention_run {run.audit_event_id} (run {run.id})")
    if run.space and "bytes_before" in run.space:  # PostgreSQL: payload partitions
        s = run.space
        print(f"  payload partitions: {_size(s['bytes_before'])} -> {_size(s['bytes_after'])}")
    elif run.space:
        s = run.space
        freed = (s["pages_before"] - s["pages_after"]) * s["page_size"]
        print(f"  file: {s['pages_before']} -> {s['pages_after']} pages ({_size(freed)} freed)")
        if s["auto_vacuum"] != 2:
            print("  note: this file predates incremental auto-vacuum; run `agentaudit "
                  "retention apply --vacuum` once to reclaim space", file=sys.stderr)



def _print_erased(rows: list[dict[str, Any]], events: bool) -> None:
    from agentaudit.query import iso_time

    if not rows:
        print("nothing has been erased")
        return
    if events:
        table = _table("seq", "event id", "type", "agent", "time", "erased at", "why")
        for r in rows:
            table.add_row(str(r["seq"]), r["event_id"], r["event_type"], r["agent_name"],
                          iso_time(r["timestamp"]), iso_time(r["erased_at"]), r["reason"])
    else:
        table = _table("id", "kind", "at", "selector", "reason", "erased", "bytes",
                       "refused (held)", "audit event")
        for r in rows:
            table.add_row(r["id"], r["kind"], iso_time(r["at"]), r["selector"] or "",
                          r["reason"], str(r["erased"]), _size(r["payload_bytes"]),
                          str(r["refused_held"]), r["audit_event_id"] or "")
    _print(table)


def _criteria(hold: Any) -> str:
    from agentaudit.query import iso_time

    parts = []
    for name, value in hold.criteria().items():
        shown = iso_time(value) if name in ("from_ts", "to_ts") else value
        parts.append(f"{name.removesuffix('_ts').removesuffix('_id').removesuffix('_name')}="
                     f"{shown}")
    return ", ".join(parts)


def _print_holds(holds: list[tuple[Any, int]]) -> None:
    from agentaudit.query import iso_time

    if not holds:
        print("no legal holds")
        return
    table = _table("id", "created", "criteria", "events", "reason", "released")
    for h, n in holds:
        table.add_row(h.id, iso_time(h.created_at), _criteria(h), str(n), h.reason,
                      iso_time(h.released_at) or "")
    _print(table)


def _print_erasure(result: Any) -> None:
    verb = "would erase" if result.dry_run else "erased"
    print(f"{verb} {result.erased} payloads ({_size(result.payload_bytes)}) of "
          f"{result.selector} {result.recorded_as} in tenant {result.tenant!r}"
          + (f"; {result.already_erased} were already erased" if result.already_erased else ""))
    if result.audit_event_id:
        print(f"  erasure {result.id}, recorded as audit.erasure {result.audit_event_id}")
    if result.erased == 0 and result.already_erased == 0 and not result.refused_held:
        print(f"  note: no stored event with a payload matches this {result.selector}",
              file=sys.stderr)
