"""Charts for the HTML reports, drawn here as inline SVG (no JavaScript, no external assets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

__all__ = ["bar_chart", "column_chart"]

_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if v != int(v) else f"{int(v)}"


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, width: int = 640,
              fmt: Callable[[float], str] = _fmt, color: str = "#3b6fb6") -> str:
    """Horizontal bars, one per ``(label, value)``, largest scale = the largest value."""
    if not items:
        return ""
    row, label_w, pad = 22, 170, 8
    height = row * len(items) + 2 * pad + 18
    top = max((v for _, v in items), default=0) or 1
    bar_w = width - label_w - 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}>',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="12" font-weight="600">{escape(title)}</text>']
    for i, (label, value) in enumerate(items):
        y = pad + 18 + i * row
        w = max(1.0, bar_w * (value / top)) if value > 0 else 0.0
        short = label if len(label) <= 26 else label[:25] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
                     f"{escape(short)}</text>")
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" '
                     f'fill="{color}" rx="2"/>')
        parts.append(f'<text x="{label_w + w + 5:.1f}" y="{y + 14}">{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], *,
                 title: str, width: int = 720, height: int = 200) -> str:
    """Columns per bucket (``labels``), one colour per series ``(name, values, colour)``,
    drawn side by side on one scale, with a legend."""
    if not labels or not series:
        return ""
    left, bottom, top_pad = 44, 34, 30
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max((max(vals, default=0) for _, vals, _ in series), default=0) or 1
    slot = plot_w / len(labels)
    bar = max(1.0, slot * 0.8 / len(series))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}>',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="12" font-weight="600">{escape(title)}</text>']
    x_legend = left
    for name, _, color in series:
        parts.append(f'<rect x="{x_legend}" y="18" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x_legend + 14}" y="27">{escape(name)}</text>')
        x_legend += 24 + 7 * len(name)
    base = top_pad + plot_h
    parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" '
                 'stroke="#999"/>')
    parts.append(f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">'
                 f"{escape(_fmt(top))}</text>")
    parts.append(f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>')
    step = max(1, len(labels) // 12)
    for i, label in enumerate(labels):
        x0 = left + i * slot + slot * 0.1
        for j, (_, vals, color) in enumerate(series):
            v = vals[i] if i < len(vals) else 0
            h = plot_h * (v / top)
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{base - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{color}"/>')
        if i % step == 0:
            parts.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{base + 14}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
