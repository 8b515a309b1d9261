"""``agentaudit export``: every field of every matching event, streamed from the store.

Events are read page by page (``Store.iter_events``) and written as they come, so memory stays
flat however large the export. A file is written under a temporary name and renamed when
complete, so an interrupted export never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from agentaudit.cli.commands import open_reader, parse_period
from agentaudit.cli.errors import UsageProblem
from agentaudit.cli.output import (
    EVENT_FIELDS,
    check_choice,
    flat_event,
    make_console,
    stream_events,
    write_events,
)
from agentaudit.exceptions import AuditError, NotFound

if TYPE_CHECKING:
    from agentaudit.events import AuditEvent
    from agentaudit.store import EventQuery, Store

__all__ = ["EXPORT_FORMATS", "run_export"]

EXPORT_FORMATS = ("jsonl", "csv", "json", "parquet")
_INT_FIELDS = frozenset(("token_count", "prompt_tokens", "completion_tokens", "seq"))
_FLOAT_FIELDS = frozenset(("confidence", "timestamp", "duration_ms", "cost_usd"))
_PARQUET_BATCH = 10_000


def run_export(db: str | None, tenant: str, fmt: str = "jsonl", output: str | None = None,
               since: str | None = None, until: str | None = None, agent: str | None = None,
               trace: str | None = None) -> int:
    """Export the events matching the filters to ``output`` (stdout when None)."""
    from agentaudit.store import EventQuery

    check_choice("--format", fmt, EXPORT_FORMATS)
    to_file = output not in (None, "-")
    if fmt == "parquet":
        if not to_file:
            raise UsageProblem("--format parquet writes a file: give -o FILE")
        try:
            import pyarrow  # noqa: F401
        except ImportError as e:
            raise AuditError("--format parquet needs pyarrow, which is not installed "
                             "(pip install pyarrow), or use --format jsonl or csv") from e
    start, end = parse_period(since, until)
    store = open_reader(db)
    try:
        q = EventQuery(tenant=tenant, agent=agent, trace_id=trace, since=start, until=end)
        if trace is not None:
            q = _trace_or_task(store, q, trace)
        if not to_file:
            write_events(store.iter_events(q), fmt, None)
            return 0
        assert output is not None
        total = store.count(q)
        written = _export_file(store.iter_events(q), fmt, output, total)
    finally:
        store.close()
    make_console(stderr=True).print(f"exported {written:,} events to {output}")
    return 0


def _trace_or_task(store: Store, q: EventQuery, ident: str) -> EventQuery:
    """``--trace`` takes a trace id, or a task id as ``agentaudit trace`` does."""
    if store.count(q):
        return q
    by_task = replace(q, trace_id=None, task_id=ident)
    if store.count(by_task):
        return by_task
    raise NotFound(f"no trace or task {ident!r} in tenant {q.tenant!r}")


def _export_file(events: Iterable[AuditEvent], fmt: str, output: str, total: int) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    partial = f"{output}.partial"
    try:  # fail on an unwritable path before any progress is drawn
        fh = open(partial, "w", encoding="utf-8", newline="" if fmt == "csv" else None)  # noqa: SIM115
    except OSError as e:
        raise AuditError(f"cannot write {output}: {e.strerror or e}") from e
    progress = Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=make_console(stderr=True))
    task = progress.add_task("export", total=total)

    def counted(source: Iterable[AuditEvent]) -> Iterator[AuditEvent]:
        n = 0
        for ev in source:
            yield ev
            n += 1
            if n % 2000 == 0:
                progress.update(task, completed=n)
        progress.update(task, completed=n)

    try:
        with fh, progress:
            if fmt == "parquet":
                fh.close()
                written = _write_parquet(counted(events), partial)
            else:
                written = stream_events(fh, counted(events), fmt)
        os.replace(partial, output)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return written


def _write_parquet(events: Iterable[AuditEvent], path: str,
                   flatten: Callable[[AuditEvent], dict[str, object]] = flat_event) -> int:
    """Events as Parquet: typed numeric columns, text columns, nested values as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def arrow_type(name: str) -> object:
        if name in _INT_FIELDS:
            return pa.int64()
        return pa.float64() if name in _FLOAT_FIELDS else pa.string()

    schema = pa.schema([(name, arrow_type(name)) for name in EVENT_FIELDS])
    written = 0
    batch: list[dict[str, object]] = []
    with pq.ParquetWriter(path, schema) as writer:
        for ev in events:
            batch.append(flatten(ev))
            if len(batch) >= _PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written += len(batch)
                batch.clear()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            written += len(batch)
    return written
