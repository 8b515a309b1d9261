"""Server-side SVG for the dashboard: the waterfall of a trace page and the agent handoff graph.

Only presentation attributes (no ``style``), so the pages keep a strict Content-Security-Policy.
Period charts reuse ``agentaudit.reports.svg``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

from agentaudit.events import AuditEvent, EventType
from agentaudit.query import event_action, event_status
from agentaudit.reports import svg

__all__ = ["activity_chart", "agent_graph", "bar_chart", "waterfall"]

_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
_FILL = {"ok": "#3b6fb6", "warning": "#b7791f", "error": "#c0392b"}
_MARK = {"ok": "", "warning": "⚠ ", "error": "✖ "}


def activity_chart(series: Sequence[dict[str, Any]], title: str) -> Markup:
    """Events and errors per bucket as columns."""
    return Markup(svg.column_chart(
        [b["label"] for b in series],
        [("events", [b["events"] for b in series], "#3b6fb6"),
         ("errors", [b["errors"] for b in series], "#c0392b")], title=title, width=960))


def bar_chart(items: Sequence[tuple[str, float]], title: str, **kw: Any) -> Markup:
    return Markup(svg.bar_chart(items, title=title, **kw))


def waterfall(events: Sequence[AuditEvent], start: float, end: float) -> Markup:
    """One bar per event from its time for its duration, on the trace's time scale."""
    if not events:
        return Markup("")
    row, label_w, width = 18, 300, 980
    plot_w = width - label_w - 70
    span = max(end - start, 1e-3)
    height = row * len(events) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
             f'viewBox="0 0 {width} {height}" {_FONT}>',
             "<title>Waterfall: when each event happened and how long it took</title>",
             f'<text x="{label_w}" y="12">0 ms</text>',
             f'<text x="{width - 70}" y="12" text-anchor="end">{span * 1000:,.0f} ms</text>']
    for i, ev in enumerate(events):
        y = 20 + i * row
        status = event_status(ev)
        dur = (ev.duration_ms or 0.0) / 1000.0
        x = label_w + plot_w * max(0.0, ev.timestamp - dur - start) / span
        w = max(2.0, plot_w * dur / span)
        label = _MARK[status] + f"{ev.agent_name}: {event_action(ev)}"
        if len(label) > 44:
            label = label[:43] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">'
                     f"{escape(label)}</text>")
        parts.append(f'<rect x="{min(x, label_w + plot_w - 2):.1f}" y="{y + 2}" '
                     f'width="{w:.1f}" height="{row - 5}" fill="{_FILL[status]}">'
                     f"<title>{escape(label)} · {ev.duration_ms or 0:,.1f} ms · {status}"
                     "</title></rect>")
        if ev.duration_ms:
            parts.append(f'<text x="{min(x + w + 4, width - 66):.1f}" y="{y + 12}">'
                         f"{ev.duration_ms:,.0f} ms</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def handoff_edges(events: Sequence[AuditEvent]) -> dict[tuple[str, str], int]:
    """(from agent, to agent) -> number of handoffs in the trace."""
    edges: dict[tuple[str, str], int] = {}
    for ev in events:
        if ev.event_type != EventType.HANDOFF:
            continue
        p = ev.params or {}
        to = p.get("to_agent") or (ev.action or "").removeprefix("handoff to ").strip()
        if to:
            key = (str(p.get("from_agent") or ev.agent_name), str(to))
            edges[key] = edges.get(key, 0) + 1
    return edges


def agent_graph(agents: Sequence[str], edges: dict[tuple[str, str], int],
                failing: set[str]) -> Markup:
    """Agents as boxes left to right, handoffs as labelled arrows; failing agents marked ✖."""
    order = list(dict.fromkeys([*agents, *(a for e in edges for a in e)]))
    if not order:
        return Markup("")
    box_w, box_h, gap = 150, 40, 70
    width = len(order) * (box_w + gap)
    x_of = {a: 10 + i * (box_w + gap) for i, a in enumerate(order)}
    back = sum(1 for frm, to in edges if x_of[to] <= x_of[frm])
    height = box_h + 24 + 22 * back
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}>',
             "<title>Agents of the trace and the handoffs between them</title>",
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" '
             'fill="#333"/></marker></defs>']
    for a in order:
        bad = a in failing
        parts.append(f'<rect x="{x_of[a]}" y="10" width="{box_w}" height="{box_h}" rx="6" '
                     f'fill="{"#fde8e6" if bad else "#eef3fb"}" '
                     f'stroke="{"#c0392b" if bad else "#3b6fb6"}" stroke-width="2"/>')
        name = ("✖ " if bad else "") + (a if len(a) <= 18 else a[:17] + "…")
        parts.append(f'<text x="{x_of[a] + box_w / 2}" y="{10 + box_h / 2 + 4}" '
                     f'text-anchor="middle" font-weight="600">{escape(name)}</text>')
    extra = 0
    for (frm, to), n in edges.items():
        x1, x2 = x_of[frm], x_of[to]
        if x2 > x1:
            y = 10 + box_h / 2
            parts.append(f'<line x1="{x1 + box_w}" y1="{y}" x2="{x2 - 2}" y2="{y}" '
                         'stroke="#333" stroke-width="2" marker-end="url(#arrow)"/>')
            parts.append(f'<text x="{(x1 + box_w + x2) / 2}" y="{y - 6}" text-anchor="middle">'
                         f"{'handoff' if n == 1 else f'{n} handoffs'}</text>")
        else:  # a handoff back: a path under the boxes
            y = 10 + box_h + 14 + 22 * extra
            extra += 1
            parts.append(f'<path d="M{x1 + box_w / 2} {10 + box_h} V{y} H{x2 + box_w / 2} '
                         f'V{12 + box_h}" fill="none" stroke="#333" stroke-dasharray="4 3" '
                         'marker-end="url(#arrow)"/>')
            parts.append(f'<text x="{(x1 + x2 + box_w) / 2}" y="{y + 12}" '
                         f'text-anchor="middle">back ({n})</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
