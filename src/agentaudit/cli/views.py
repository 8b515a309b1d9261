"""Rich renderings: agent overviews, error summaries and the ``log --follow`` stream.

Timelines of ``log``, ``trace`` and ``session`` are drawn by ``plain``, which does not import Rich.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agentaudit.cli.plain import format_duration, plain_action, status_label
from agentaudit.query import TimelineRow

__all__ = ["agent_overview_view", "error_summary_view", "status_text", "stream_table"]

_STATUS_STYLES = {"ok": "green", "error": "bold red", "warning": "yellow"}


def status_text(status: str) -> Text:
    """``✅ ok``, ``❌ error`` or ``⚠️ warning``, coloured."""
    return Text(status_label(status), style=_STATUS_STYLES.get(status, ""))


_STREAM_WIDTHS = (("time", 24), ("agent", 14), ("type", 18), ("action", 22), ("details", 0),
                  ("duration", 9), ("status", 10))


def stream_table(rows: Sequence[TimelineRow], width: int, *, header: bool) -> Table:
    """Borderless one-line rows with fixed column widths, so that batches printed one after
    another (``log --follow``) line up under one header."""
    fixed = sum(w for _, w in _STREAM_WIDTHS) + len(_STREAM_WIDTHS)
    table = Table(box=None, show_header=header, header_style="bold", padding=(0, 1, 0, 0),
                  show_edge=False)
    for name, w in _STREAM_WIDTHS:
        table.add_column(name, width=w or max(20, width - fixed), no_wrap=True,
                         overflow="ellipsis", justify="right" if name == "duration" else "left")
    for r in rows:
        table.add_row(r.time, r.agent, r.event_type.removeprefix("agent."), plain_action(r),
                      r.details, format_duration(r.duration), status_text(r.status))
    return table


def _pairs(title: str, pairs: Sequence[tuple[str, Any]]) -> RenderableType:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column()
    for k, v in pairs:
        table.add_row(k, "" if v is None else str(v))
    return Group(Text(title, style="bold"), table)


def _counts(title: str, key: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column(key)
    table.add_column("count", justify="right")
    for k, v in counts.items():
        table.add_row(k, str(v))
    return table


def _num(v: float | None, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def agent_overview_view(ov: dict[str, Any]) -> RenderableType:
    """Summary, tools, decisions, errors by type and handoffs of one agent."""
    period = f"{ov['since'] or 'the start'} → {ov['until'] or 'now'}"
    cost = ov["cost"]
    parts: list[RenderableType] = [_pairs(f"Agent {ov['agent']} ({period})", [
        ("events", ov["events"]),
        ("invocations", ov["invocations"]),
        ("traces", ov["traces"]),
        ("errors", f"{ov['errors']} ({ov['error_rate']:.1%})"),
        ("handoffs out", ov["handoffs"]),
        ("human interventions", ov["human_interventions"]),
        ("first seen", ov["first_seen"]),
        ("last seen", ov["last_seen"]),
        ("cost", f"${cost['cost_usd']:.4f}"),
        ("tokens", f"{cost['prompt_tokens']} prompt + {cost['completion_tokens']} completion"),
    ])]
    if ov["tools"]:
        tools = Table(title="Tools used", title_justify="left", header_style="bold")
        for name in ("tool", "calls", "errors", "avg latency", "max latency"):
            tools.add_column(name, justify="left" if name == "tool" else "right")
        for t in ov["tools"]:
            tools.add_row(t["tool"], str(t["calls"]), str(t["errors"]),
                          format_duration(t["avg_latency_ms"]), format_duration(t["max_latency_ms"]))
        parts.append(tools)
    dec = ov["decisions"]
    if dec["count"]:
        decisions = Table(title=f"Decisions: {dec['count']}, average confidence "
                                f"{_num(dec['avg_confidence'], '.2f') or 'n/a'}, "
                                f"{dec['low_confidence']} below 0.5",
                          title_justify="left", header_style="bold")
        for name in ("decision", "count", "avg confidence", "min confidence"):
            decisions.add_column(name, justify="left" if name == "decision" else "right")
        for d in dec["by_action"]:
            decisions.add_row(str(d["decision"]), str(d["count"]),
                              _num(d["avg_confidence"], ".2f"), _num(d["min_confidence"], ".2f"))
        parts.append(decisions)
    if ov["errors_by_type"]:
        parts.append(_counts("Errors by type", "error type", ov["errors_by_type"]))
    if ov["handoffs_out"]:
        parts.append(_counts("Handoffs out", "to agent", ov["handoffs_out"]))
    return Group(*_spaced(parts))


def error_summary_view(s: dict[str, Any]) -> RenderableType:
    """Totals, error types, most common errors, and errors by agent and by tool."""
    scope = f"agent {s['agent']}, " if s.get("agent") else ""
    period = f"{scope}{s['since'] or 'the start'} → {s['until'] or 'now'}"
    parts: list[RenderableType] = [_pairs(f"Error summary ({period})", [
        ("total events", s["total_events"]),
        ("total errors", s["total_errors"]),
        ("error rate", f"{s['error_rate']:.2%}"),
    ])]
    if not s["total_errors"]:
        parts.append(Text("No errors in this period.", style="green"))
        return Group(*_spaced(parts))
    parts.append(_counts("Error types", "error type", s["error_types"]))
    common = Table(title="Most common errors", title_justify="left", header_style="bold")
    common.add_column("error type")
    common.add_column("message", overflow="fold")
    common.add_column("count", justify="right")
    from agentaudit.query import truncate

    for e in s["most_common_errors"]:
        common.add_row(str(e["error_type"]), truncate(e["message"] or "", 100), str(e["count"]))
    parts.append(common)
    parts.append(_counts("Errors by agent", "agent", s["errors_by_agent"]))
    if s["errors_by_tool"]:
        parts.append(_counts("Errors by tool", "tool", s["errors_by_tool"]))
    return Group(*_spaced(parts))


def _spaced(parts: list[RenderableType]) -> list[RenderableType]:
    out: list[RenderableType] = []
    for p in parts:
        if out:
            out.append(Text(""))
        out.append(p)
    return out
