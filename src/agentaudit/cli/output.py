"""Where and how the CLI writes data: stdout or ``-o FILE``; table, json, jsonl or csv.

Event writers stream: ``json`` is one array written an object at a time, so an export of
millions of events never holds them in memory.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

from agentaudit.cli.errors import UsageProblem
from agentaudit.events import AuditEvent, event_to_dict

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "EVENT_FIELDS",
    "EventWriter",
    "check_choice",
    "event_writer",
    "flat_event",
    "make_console",
    "open_output",
    "stream_events",
    "to_json",
    "write_events",
]

EVENT_FIELDS: tuple[str, ...] = AuditEvent.__struct_fields__
_NESTED = frozenset(("params", "result", "tags"))


def check_choice(option: str, value: str | None, choices: Iterable[str]) -> str:
    """``value`` when it is one of ``choices``; otherwise a usage error naming the option."""
    allowed = list(choices)
    if value not in allowed:
        raise UsageProblem(f"unknown {option} {value!r}: choose one of {', '.join(allowed)}")
    return value


def _encoder() -> Any:
    import msgspec

    return msgspec.json.Encoder(enc_hook=repr)


def to_json(data: Any, indent: int = 2) -> str:
    """``data`` as JSON text (non-JSON values become their repr, never an error)."""
    import msgspec

    raw = _encoder().encode(data)
    return (msgspec.json.format(raw, indent=indent) if indent else raw).decode()


@contextlib.contextmanager
def open_output(path: str | None, *, newline: str | None = None) -> Iterator[IO[str]]:
    """``path`` opened for writing (UTF-8), or stdout when ``path`` is None or ``-``."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8", newline=newline) as fh:
        yield fh


def make_console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """A Rich console that prints payload text literally (no markup, emoji codes or colour
    guessing). Off a terminal it is 160 columns wide unless ``COLUMNS`` says otherwise."""
    from rich.console import Console

    target = file if file is not None else (sys.stderr if stderr else sys.stdout)
    width = None
    if not target.isatty():
        try:
            width = int(os.environ.get("COLUMNS", "")) or 160
        except ValueError:
            width = 160
    return Console(file=target, width=width, markup=False, emoji=False, highlight=False,
                   soft_wrap=False)


def flat_event(ev: AuditEvent, encode: Callable[[Any], bytes] | None = None) -> dict[str, Any]:
    """All fields by name, with nested values (params, tags, non-text results) as JSON text."""
    encode = encode or _encoder().encode
    data = event_to_dict(ev)
    for key in _NESTED:
        value = data[key]
        if value is not None and not isinstance(value, str):
            data[key] = encode(value).decode()
    return data


class EventWriter:
    """Writes events one by one in a data format; ``close`` finishes the document."""

    def __init__(self, fh: IO[str], fmt: str) -> None:
        self.fh = fh
        self.fmt = fmt
        self.count = 0
        self._encode = _encoder().encode
        self._csv: Any = None
        if fmt == "csv":
            self._csv = csv.writer(fh, lineterminator="\n")
            self._csv.writerow(EVENT_FIELDS)
        elif fmt == "json":
            fh.write("[")

    def write(self, ev: AuditEvent) -> None:
        if self.fmt == "csv":
            self._csv.writerow(["" if v is None else v for v in flat_event(ev, self._encode).values()])
            self.count += 1
            return
        data = event_to_dict(ev)
        if self.fmt == "json":
            self.fh.write(("\n" if self.count == 0 else ",\n") + self._encode(data).decode())
        else:
            self.fh.write(self._encode(data).decode() + "\n")
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.fh.write("\n]\n" if self.count else "]\n")
        self.fh.flush()


def event_writer(fh: IO[str], fmt: str) -> EventWriter:
    """A writer of ``fmt`` (json, jsonl or csv) on ``fh``."""
    return EventWriter(fh, check_choice("--format", fmt, ("json", "jsonl", "csv")))


def stream_events(fh: IO[str], events: Iterable[AuditEvent], fmt: str) -> int:
    """Write ``events`` in ``fmt`` to an open file; return how many."""
    writer = event_writer(fh, fmt)
    for ev in events:
        writer.write(ev)
    writer.close()
    return writer.count


def write_events(events: Iterable[AuditEvent], fmt: str, output: str | None) -> int:
    """Write ``events`` in ``fmt`` to ``output`` (stdout when None); return how many."""
    check_choice("--format", fmt, ("json", "jsonl", "csv"))
    with open_output(output, newline="" if fmt == "csv" else None) as fh:
        return stream_events(fh, events, fmt)
