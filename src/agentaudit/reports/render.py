"""Rendering a report's JSON dict as json, Markdown, HTML or CSV.

JSON is the source of truth; Markdown and HTML are rendered from it with the Jinja2 templates
under ``templates/`` (HTML: one self-contained file with inline CSS and server-side SVG charts),
CSV writes the report's main table.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from agentaudit.exceptions import ConfigError
from agentaudit.reports import svg

__all__ = ["FORMATS", "render"]

FORMATS = ("json", "md", "html", "csv")
_TEMPLATE = {"summary": "summary", "tool-usage": "tool_usage", "errors": "errors",
             "compliance": "compliance", "daily": "daily", "cost": "cost",
             "forensics": "forensics", "agent": "agent"}
ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "ok": "✅", "error": "❌", "warning": "⚠️"}


# -- filters -------------------------------------------------------------------------------------

def _num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}"
    return f"{int(v):,}"


def _pct(v: Any, digits: int = 1) -> str:
    return "—" if v is None else f"{float(v) * 100:.{digits}f}%"


def _ms(v: Any) -> str:
    if v is None:
        return "—"
    v = float(v)
    return f"{v / 1000:.1f} s" if v >= 10_000 else f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def _usd(v: Any) -> str:
    if v is None:
        return "—"
    v = float(v)
    return f"${v:,.2f}" if v >= 1 or v == 0 else f"${v:.4f}"


def _md(v: Any) -> str:
    """A value safe inside a Markdown table cell."""
    text = "—" if v is None else str(v)
    return " ".join(text.split()).replace("|", "\\|")


def _value(v: Any, unit: str = "count") -> str:
    """A check's value or threshold, readable (ratios as percentages)."""
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(x, unit)}" for k, x in v.items())
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return _pct(v) if unit == "ratio" else _num(v)


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agentaudit.reports", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(num=_num, pct=_pct, ms=_ms, usd=_usd, md=_md, value=_value,
                       icon=lambda s: ICONS.get(s, ""), tojson_pretty=lambda v: json.dumps(
                           v, indent=2, ensure_ascii=False, default=str))
    return env


# -- charts --------------------------------------------------------------------------------------

def _charts(data: dict[str, Any]) -> dict[str, str]:
    from markupsafe import Markup

    kind = data.get("report")
    charts: dict[str, str] = {}
    if kind in ("summary", "daily"):
        series = data.get("by_day") if kind == "summary" else data.get("by_hour")
        if series:
            charts["activity"] = svg.column_chart(
                [b["bucket"][5:] if kind == "summary" else b["bucket"] for b in series],
                [("events", [b["events"] for b in series], "#3b6fb6"),
                 ("errors", [b["errors"] for b in series], "#c0392b")],
                title="Events and errors per " + ("day" if kind == "summary" else "hour"))
        charts["agents"] = svg.bar_chart([(a["agent"], a["invocations"])
                                          for a in data.get("top_agents", [])],
                                         title="Invocations by agent")
    elif kind == "tool-usage":
        tools = data["tool_breakdown"][:15]
        charts["calls"] = svg.bar_chart([(t["tool"], t["calls"]) for t in tools],
                                        title="Calls by tool")
        charts["p95"] = svg.bar_chart([(t["tool"], t["p95_latency_ms"] or 0) for t in tools],
                                      title="p95 latency by tool", fmt=_ms, color="#8e44ad")
    elif kind == "errors":
        charts["types"] = svg.bar_chart(list(data["error_types"].items()),
                                        title="Errors by type", color="#c0392b")
        charts["tools"] = svg.bar_chart(list(data["errors_by_tool"].items())[:15],
                                        title="Errors by tool", color="#c0392b")
    elif kind == "cost":
        charts["models"] = svg.bar_chart([(m["key"] or "?", m["cost_usd"])
                                          for m in data["by_model"]],
                                         title="Cost by model", fmt=_usd, color="#27ae60")
        charts["days"] = svg.column_chart([d["key"][5:] for d in data["by_day"]],
                                          [("cost", [d["cost_usd"] for d in data["by_day"]],
                                            "#27ae60")], title="Cost per day (USD)")
    elif kind == "agent":
        dist = data["decisions"]["confidence_distribution"]
        charts["confidence"] = svg.bar_chart(list(dist.items()), title="Decisions by confidence")
    return {k: Markup(v) for k, v in charts.items() if v}


# -- formats -------------------------------------------------------------------------------------

def _csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    kind = data.get("report")
    if kind in ("summary", "daily"):
        return list(data["top_agents"])
    if kind == "tool-usage":
        return list(data["tool_breakdown"])
    if kind == "errors":
        return list(data["errors_by_type_and_tool"])
    if kind == "compliance":
        return [{"check": c["name"], "status": c["status"], "passed": c["passed"],
                 "value": json.dumps(c["value"]), "threshold": json.dumps(c["threshold"]),
                 "evidence": " ".join(c["evidence"]),
                 "recommendation": c["recommendation"] or ""} for c in data["checks"]]
    if kind == "cost":
        out = []
        for dim in ("by_agent", "by_model", "by_task", "by_user", "by_day"):
            out += [{"dimension": dim[3:], **r} for r in data[dim]]
        out += [{"dimension": "trace", "key": t["trace_id"], **{
            k: v for k, v in t.items() if k != "trace_id"}} for t in data["top_traces"]]
        return out
    if kind == "forensics":
        return [{k: r[k] for k in ("time", "agent", "action", "details", "duration", "status",
                                   "event_id", "parent_event_id", "event_type")}
                for r in data["timeline"]]
    if kind == "agent":
        return list(data["tools"])
    raise ConfigError(f"no CSV form for the {kind} report")


def _to_csv(data: dict[str, Any]) -> str:
    rows = _csv_rows(data)
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or ["empty"], lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def render(data: dict[str, Any], fmt: str) -> str:
    """The report ``data`` (a dict from one of the report functions) as ``fmt`` text."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        return _to_csv(data)
    if fmt not in ("md", "html"):
        raise ConfigError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    name = _TEMPLATE[str(data["report"])]
    template = _environment().get_template(f"{name}.{fmt}.j2")
    charts = _charts(data) if fmt == "html" else {}
    return str(template.render(r=data, charts=charts))
