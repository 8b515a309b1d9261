"""Timeline tables and headers drawn without Rich.

Importing and running Rich costs ~50 ms, a quarter of the start-up budget of ``agentaudit
trace``; a timeline is a simple grid, so it is drawn here with the same box characters as Rich's
tables. Colours are ANSI codes, used only on a terminal and never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from typing import IO, Any

from agentaudit.query import TimelineRow

__all__ = [
    "STATUS_ICONS",
    "Palette",
    "format_duration",
    "group_header",
    "output_width",
    "status_label",
    "timeline_table",
]

STATUS_ICONS = {"ok": "✅", "error": "❌", "warning": "⚠️"}
_STATUS_STYLES = {"ok": "green", "error": "bold red", "warning": "yellow"}
_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


class Palette:
    """Wraps text in ANSI styles, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_file(cls, fh: IO[str]) -> Palette:
        return cls(fh.isatty() and not os.environ.get("NO_COLOR")
                   and os.environ.get("TERM") != "dumb")

    def __call__(self, text: str, style: str) -> str:
        if not self.enabled or not style or not text:
            return text
        codes = ";".join(_ANSI[s] for s in style.split())
        return f"\x1b[{codes}m{text}\x1b[0m"


def output_width(fh: IO[str]) -> int:
    """The terminal's width; off a terminal ``COLUMNS`` or 160 (as ``output.make_console``)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    if fh.isatty():
        try:
            return os.get_terminal_size(fh.fileno()).columns
        except (OSError, ValueError):
            return 80
    return 160


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: wide East Asian characters and emoji count 2, and so does
    a narrow symbol followed by U+FE0F (emoji presentation: ``⚠️``), as Rich counts them."""
    if text.isascii():
        return len(text)
    width = 0
    last = 0
    for ch in text:
        code = ord(ch)
        if code < 0x300:
            last = 1
        elif code == 0xFE0F:
            last = 1 if last == 1 else 0  # widens a preceding narrow symbol to 2
        elif unicodedata.combining(ch) or 0xFE00 <= code <= 0xFE0E or code == 0x200D:
            last = 0
        else:
            last = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        width += last
    return width


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken at spaces where possible."""
    if cell_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while cell_width(word) > width:  # a word longer than the column: fold it
            cut = width
            while cell_width(word[:cut]) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines or [""]


def format_duration(ms: float | None) -> str:
    """``8.5 ms``, ``120 ms``, ``1.25 s``, ``3m 20s``; empty for None."""
    if ms is None:
        return ""
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(round(ms / 1000)), 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def status_label(status: str) -> str:
    """``✅ ok``, ``❌ error`` or ``⚠️ warning``."""
    return f"{STATUS_ICONS.get(status, '•')} {status}"


def plain_action(row: TimelineRow) -> str:
    """The action without the event type's name (for tables that show the type beside it)."""
    kind = row.event_type.removeprefix("agent.")
    return "" if row.action == kind else row.action.removeprefix(kind + " ")


# Columns that give up width when a table is too wide, and how narrow each may get: first down
# to a comfortable width (details first), then to the least that still reads.
_SHRINK = ((("details", 30), ("action", 16), ("type", 12), ("agent", 10)),
           (("details", 10), ("action", 8), ("type", 6), ("agent", 6)))


def _fit(widths: list[int], headers: list[str], width: int) -> None:
    excess = sum(widths) + 3 * len(widths) + 1 - width
    for stage in _SHRINK:
        for name, least in stage:
            if excess <= 0:
                return
            if name in headers:
                i = headers.index(name)
                give = max(0, min(excess, widths[i] - least))
                widths[i] -= give
                excess -= give


def timeline_table(rows: Sequence[TimelineRow], width: int, palette: Palette, *,
                   with_type: bool = False) -> str:
    """Time, agent, [type,] action, details, duration, status: one row per event, boxed."""
    headers = ["time", "agent", *(["type"] if with_type else []), "action", "details",
               "duration", "status"]
    cells = [[r.time, r.agent, *([r.event_type.removeprefix("agent.")] if with_type else []),
              plain_action(r) if with_type else r.action, r.details, format_duration(r.duration),
              status_label(r.status)] for r in rows]
    widths = [max([cell_width(h), *(cell_width(c[i]) for c in cells)])
              for i, h in enumerate(headers)]
    _fit(widths, headers, width)
    right = {headers.index("duration")}
    styles = {0: "dim", 1: "cyan"}

    def line(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end

    def row_lines(values: list[str], sep: str, header: bool, status: str = "") -> list[str]:
        wrapped = [_wrap(v, widths[i]) for i, v in enumerate(values)]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for i, lines in enumerate(wrapped):
                text = lines[k] if k < len(lines) else ""
                pad = " " * (widths[i] - cell_width(text))
                text = pad + text if i in right else text + pad
                style = "bold" if header else (_STATUS_STYLES.get(status, "")
                                               if i == len(values) - 1 else styles.get(i, ""))
                parts.append(palette(text, style))
            out.append(sep + sep.join(f" {p} " for p in parts) + sep)
        return out

    out = [line("┏", "━", "┳", "┓"), *row_lines(headers, "┃", True), line("┡", "━", "╇", "┩")]
    for r, values in zip(rows, cells, strict=True):
        out += row_lines(values, "│", False, r.status)
    out.append(line("└", "─", "┴", "┘"))
    return "\n".join(out) + "\n"


def group_header(kind: str, ident: str, summary: dict[str, Any], palette: Palette) -> str:
    """``Trace <id> · task t · agents Router → Billing · 9 events · 1.20 s · 1 error``."""
    traces, tasks = summary["trace_ids"], summary["task_ids"]
    parts: list[tuple[str, str]] = []
    if len(traces) == 1 and traces[0] != ident:
        parts.append((f"trace {traces[0]}", ""))
    elif len(traces) > 1:
        parts.append((f"{len(traces)} traces", ""))
    if tasks and tasks != [ident]:
        parts.append(("task " + ", ".join(tasks[:3]) + (" …" if len(tasks) > 3 else ""), ""))
    path = summary["handoff_path"]
    parts.append(("agents " + (" → ".join(path) if len(path) > 1 else
                               ", ".join(summary["agents"])), "cyan"))
    n, e, w = summary["events"], summary["errors"], summary["warnings"]
    parts.append((f"{n} event{'s' * (n != 1)}", ""))
    parts.append((format_duration(summary["duration_ms"]) or "0 ms", ""))
    parts.append((f"{e} error{'s' * (e != 1)}", "bold red" if e else "green"))
    if w:
        parts.append((f"{w} warning{'s' * (w != 1)}", "yellow"))
    if summary.get("cost_usd"):
        parts.append((f"${summary['cost_usd']:.4f}", ""))
    head = palette(kind, "bold") + " " + palette(ident, "bold cyan")
    return " · ".join([head, *(palette(text, style) for text, style in parts)]) + "\n"
