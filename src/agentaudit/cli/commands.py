"""The read commands: ``log``, ``trace``, ``session``, ``agent`` and ``errors``.

Each ``run_*`` function takes plain values (so Typer and the fast path share it), validates them
before touching the store, opens the store read-only in spirit (``create=False``: reading never
creates a database) and returns the exit code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

from agentaudit.cli.errors import UsageProblem
from agentaudit.cli.output import check_choice, event_writer, open_output, to_json, write_events
from agentaudit.exceptions import NotFound
from agentaudit.query import InvalidTime, parse_time

if TYPE_CHECKING:
    from agentaudit.events import AuditEvent
    from agentaudit.store import EventQuery, Store

__all__ = [
    "DATA_FORMATS",
    "GRAPH_FORMATS",
    "open_reader",
    "parse_event_types",
    "parse_period",
    "run_agent",
    "run_errors",
    "run_log",
    "run_session",
    "run_trace",
]

DATA_FORMATS = ("table", "json", "jsonl", "csv")
SUMMARY_FORMATS = ("table", "json")
GRAPH_FORMATS = ("json", "mermaid", "dot")
FOLLOW_INTERVAL = 0.5


def open_reader(db: str | None) -> Store:
    """The store at ``db`` (default ``AGENTAUDIT_DB`` or ./agentaudit.db); never creates one."""
    from agentaudit.store import default_store_url, open_store

    return open_store(db or default_store_url(), create=False)


def _time(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except InvalidTime as e:
        raise UsageProblem(f"{option}: {e}") from e


def parse_period(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """``--since`` and ``--until`` as epoch seconds; a usage error when unreadable or reversed."""
    start, end = _time("--since", since), _time("--until", until)
    if start is not None and end is not None and start >= end:
        raise UsageProblem(f"--since {since!r} is not before --until {until!r}")
    return start, end


def parse_event_types(values: Sequence[str] | None) -> list[str] | None:
    """``--type`` values (``tool_call``, ``agent.tool_call``, ``audit.erasure``; repeated or
    comma-separated) as full event type names."""
    from agentaudit.events import EventType

    if not values:
        return None
    known = {t.value for t in EventType}
    types: list[str] = []
    for value in values:
        for name in filter(None, (v.strip() for v in value.split(","))):
            full = name if "." in name else f"agent.{name}"
            if full not in known and not full.startswith("audit."):
                short = ", ".join(sorted(t.removeprefix("agent.") for t in known
                                         if t.startswith("agent.")))
                raise UsageProblem(f"unknown --type {name!r}: choose from {short} or audit.*")
            types.append(full)
    return types


def _console(fh: IO[str]) -> Any:
    from agentaudit.cli.output import make_console

    return make_console(fh)


# -- log -----------------------------------------------------------------------------------------

def run_log(db: str | None, tenant: str, agent: str | None, types: Sequence[str] | None,
            since: str | None, until: str | None, limit: int, follow: bool, fmt: str,
            output: str | None, *, interval: float = FOLLOW_INTERVAL) -> int:
    """The most recent ``limit`` matching events, oldest first; ``follow`` keeps polling."""
    from agentaudit.store import EventQuery

    check_choice("--format", fmt, DATA_FORMATS)
    if follow and fmt == "json":
        raise UsageProblem("--follow streams events: use --format table, jsonl or csv")
    if limit < 1:
        raise UsageProblem(f"--limit must be at least 1, not {limit}")
    event_types = parse_event_types(types)
    start, end = parse_period(since, until)
    base = EventQuery(tenant=tenant, agent=agent, event_types=event_types, since=start,
                      until=end)
    store = open_reader(db)
    try:
        # Read the log's size first: anything sequenced after it is new to ``--follow``.
        mark = _max_seq(store, tenant) if follow else None
        events = store.query(replace(base, limit=limit, newest_first=True)).data[::-1]
        with open_output(output, newline="" if fmt == "csv" else None) as fh:
            emit = _emitter(fh, fmt, streaming=follow)
            emit(events, True)
            if follow:
                already = {ev.event_id for ev in events if (ev.seq or 0) > (mark or -1)}
                return _follow(store, base, -1 if mark is None else mark, already, emit,
                               interval)
    finally:
        store.close()
    return 0


def _max_seq(store: Store, tenant: str) -> int | None:
    rows = store.aggregate("max_seq", tenant, None, None, None, limit=1)
    value = rows[0]["max_seq"] if rows else None
    return None if value is None else int(value)


Emit = Callable[[list["AuditEvent"], bool], None]


def _emitter(fh: IO[str], fmt: str, *, streaming: bool) -> Emit:
    """A function printing batches of events; the first batch carries the table header."""
    if fmt != "table":
        writer = event_writer(fh, fmt)

        def emit_data(events: list[AuditEvent], first: bool) -> None:
            for ev in events:
                writer.write(ev)
            if streaming:
                fh.flush()
            else:
                writer.close()

        return emit_data

    from agentaudit.query import timeline

    if streaming:
        from agentaudit.cli.views import stream_table

        console = _console(fh)

        def stream_rows(events: list[AuditEvent], first: bool) -> None:
            rows = timeline(events)
            if rows or first:
                console.print(stream_table(rows, console.width, header=first))
            fh.flush()

        return stream_rows

    from agentaudit.cli import plain

    def emit_table(events: list[AuditEvent], first: bool) -> None:
        if events:
            fh.write(plain.timeline_table(timeline(events), plain.output_width(fh),
                                          plain.Palette.for_file(fh), with_type=True))
        else:
            fh.write("No events match.\n")

    return emit_table


def _follow(store: Store, base: EventQuery, after: int, already: set[str], emit: Emit,
            interval: float) -> int:
    """Poll for events sequenced after ``after`` until Ctrl-C; exit code 0."""
    from agentaudit.store import EventQuery

    types = set(base.event_types or ())

    def wanted(ev: AuditEvent) -> bool:
        return ((base.agent is None or ev.agent_name == base.agent)
                and (not types or ev.event_type in types)
                and (base.since is None or ev.timestamp >= base.since)
                and (base.until is None or ev.timestamp < base.until)
                and ev.event_id not in already)

    try:
        while True:
            # Only (tenant, seq) in SQL, so the poll is an index range scan of the new rows.
            fresh = list(store.iter_events(EventQuery(tenant=base.tenant, after_seq=after),
                                           batch_size=1000))
            if fresh:
                after = max(after, *(ev.seq or 0 for ev in fresh))
                emit([ev for ev in fresh if wanted(ev)], False)
                already.clear()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


# -- trace and session ---------------------------------------------------------------------------

def run_trace(db: str | None, tenant: str, trace_id: str, graph: str | None = None,
              fmt: str = "table", output: str | None = None) -> int:
    """The timeline (or graph, or events) of one trace, found by trace id or task id."""
    check_choice("--format", fmt, DATA_FORMATS)
    if graph is not None:
        check_choice("--graph", graph, GRAPH_FORMATS)
        if fmt != "table":
            raise UsageProblem("give either --graph or --format, not both")
    store = open_reader(db)
    try:
        events = store.trace_events(tenant, trace_id)
    finally:
        store.close()
    if not events:
        raise NotFound(f"no trace or task {trace_id!r} in tenant {tenant!r}")
    if graph is not None:
        from agentaudit import query

        g = query.trace_graph(events)
        text = (to_json(g) + "\n" if graph == "json" else
                query.graph_to_mermaid(g) if graph == "mermaid" else query.graph_to_dot(g))
        with open_output(output) as fh:
            fh.write(text)
        return 0
    if fmt != "table":
        write_events(events, fmt, output)
        return 0
    from agentaudit.cli import plain
    from agentaudit.query import timeline, trace_summary

    summary = trace_summary(events)
    kind = "Trace" if trace_id in summary["trace_ids"] else "Task"
    with open_output(output) as fh:
        palette = plain.Palette.for_file(fh)
        fh.write(plain.group_header(kind, trace_id, summary, palette))
        fh.write(plain.timeline_table(timeline(events), plain.output_width(fh), palette))
    return 0


def run_session(db: str | None, tenant: str, session_id: str, fmt: str = "table",
                output: str | None = None) -> int:
    """A session's events as timelines, one per trace, in the order the traces began."""
    from agentaudit.store import EventQuery

    check_choice("--format", fmt, DATA_FORMATS)
    store = open_reader(db)
    try:
        events = list(store.iter_events(EventQuery(tenant=tenant, session_id=session_id)))
    finally:
        store.close()
    if not events:
        raise NotFound(f"no session {session_id!r} in tenant {tenant!r}")
    if fmt != "table":
        write_events(events, fmt, output)
        return 0
    from agentaudit.cli import plain
    from agentaudit.query import timeline, trace_summary

    by_trace: dict[str, list[AuditEvent]] = {}
    for ev in events:
        by_trace.setdefault(ev.trace_id or "(no trace)", []).append(ev)
    with open_output(output) as fh:
        palette = plain.Palette.for_file(fh)
        width = plain.output_width(fh)
        overall = trace_summary(events)
        overall["handoff_path"] = []  # one path per trace, not across the session
        fh.write(plain.group_header("Session", session_id, overall, palette))
        for trace_id, trace_events in by_trace.items():
            fh.write("\n" + plain.group_header("Trace", trace_id, trace_summary(trace_events),
                                                palette))
            fh.write(plain.timeline_table(timeline(trace_events), width, palette))
    return 0


# -- agent and errors ----------------------------------------------------------------------------

def _print_summary(data: dict[str, Any], fmt: str, output: str | None,
                   view: Callable[[dict[str, Any]], Any]) -> None:
    with open_output(output) as fh:
        if fmt == "json":
            fh.write(to_json(data) + "\n")
        else:
            _console(fh).print(view(data))


def run_agent(db: str | None, tenant: str, name: str, since: str | None = "7d",
              until: str | None = None, fmt: str = "table", output: str | None = None) -> int:
    """One agent's overview over a period (default: the last 7 days)."""
    from agentaudit.cli.views import agent_overview_view
    from agentaudit.query import agent_overview

    return _summary_command(
        db, since, until, fmt, output, agent_overview_view,
        lambda store, start, end: agent_overview(store, tenant, name, start, end))


def run_errors(db: str | None, tenant: str, since: str | None = "24h", until: str | None = None,
               agent: str | None = None, fmt: str = "table", output: str | None = None) -> int:
    """The error summary over a period (default: the last 24 hours)."""
    from agentaudit.cli.views import error_summary_view
    from agentaudit.query import error_summary

    return _summary_command(
        db, since, until, fmt, output, error_summary_view,
        lambda store, start, end: error_summary(store, tenant, start, end, agent))


def _summary_command(db: str | None, since: str | None, until: str | None, fmt: str,
                     output: str | None, view: Any,
                     compute: Callable[[Store, float | None, float | None], dict[str, Any]]
                     ) -> int:
    """Check the options, compute one summary over the period and print it."""
    check_choice("--format", fmt, SUMMARY_FORMATS)
    start, end = parse_period(since, until)
    store = open_reader(db)
    try:
        data = compute(store, start, end)
    finally:
        store.close()
    _print_summary(data, fmt, output, view)
    return 0
