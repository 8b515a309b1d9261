"""Answers over the store, shared by the CLI, the HTTP API and the dashboard.

Per-trace views (``timeline``, ``trace_graph``, ``trace_summary``) work on the few events of one
trace or session. Period views (``agent_overview``, ``error_summary``) are built only from the
store's named SQL aggregations: they never load a period's events into Python.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from agentaudit.events import AuditEvent, EventType
from agentaudit.exceptions import ConfigError, NotFound

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = [
    "InvalidTime",
    "TimelineRow",
    "agent_overview",
    "error_summary",
    "event_action",
    "event_details",
    "event_status",
    "graph_to_dot",
    "graph_to_mermaid",
    "handoff_path",
    "iso_time",
    "parse_time",
    "timeline",
    "trace_graph",
    "trace_summary",
    "truncate",
]


class InvalidTime(ConfigError, ValueError):
    """A time given on the command line or in a query string cannot be read."""


# -- times ---------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_EPOCH = re.compile(r"\d{1,11}(?:\.\d+)?")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_TS = 32503680000.0  # year 3000, as in events.validate_event


def parse_time(text: str, now: float | None = None) -> float:
    """UTC epoch seconds of ``30s``/``15m``/``1h``/``7d``/``2w`` ago, an ISO date or datetime,
    ``now``, or epoch seconds. Dates are UTC midnight; datetimes without an offset are UTC."""
    s = text.strip() if isinstance(text, str) else ""
    current = time.time() if now is None else now
    m = _RELATIVE.fullmatch(s)
    if m:
        return current - float(m[1]) * _UNIT_SECONDS[m[2].lower()]
    if s.lower() == "now":
        return current
    if _EPOCH.fullmatch(s):
        value = float(s)
        if value < _MAX_TS:
            return value
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    except (ValueError, OverflowError):
        pass
    raise InvalidTime(
        f"cannot read the time {text!r}: use a relative time (30s, 15m, 1h, 7d, 2w), an ISO date "
        "(2026-11-01) or datetime (2026-11-01T10:00:00Z), or epoch seconds"
    )


def iso_time(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds: ``2026-11-01T10:00:00.123Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


# -- text helpers --------------------------------------------------------------------------------

def truncate(text: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters, ending in ``…`` when cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _value(v: Any, limit: int = 60) -> str:
    """A short rendering of any payload value; large containers are cut before encoding."""
    if isinstance(v, str):
        return truncate(v, limit)
    if isinstance(v, dict):
        return _kv(v, limit)
    if isinstance(v, list) and len(v) > 20:
        v = [*v[:20], "…"]
    try:
        return truncate(json.dumps(v, ensure_ascii=False, default=str), limit)
    except (TypeError, ValueError):
        return truncate(repr(v), limit)


def _kv(d: dict[str, Any], limit: int = 100) -> str:
    parts: list[str] = []
    used = 0
    for k, v in d.items():
        part = f"{k}={_value(v, 40)}"
        parts.append(part)
        used += len(part) + 2
        if used > limit:
            break
    return truncate(", ".join(parts), limit)


# -- one event -----------------------------------------------------------------------------------

def _short_type(event_type: str) -> str:
    return event_type.removeprefix("agent.")


def event_action(ev: AuditEvent) -> str:
    """The event type's short name and its action: ``tool_call get_order``."""
    kind = _short_type(ev.event_type)
    action = ev.action
    if not action or action == kind:
        return kind
    if action.startswith(kind + " "):  # "handoff to Billing"
        return action
    return f"{kind} {action}"


def _handoff_ends(ev: AuditEvent) -> tuple[str, str | None]:
    p = ev.params or {}
    to = p.get("to_agent") or (ev.action or "").removeprefix("handoff to ").strip() or None
    return str(p.get("from_agent") or ev.agent_name), None if to is None else str(to)


def event_details(ev: AuditEvent, limit: int = 120) -> str:
    """A short human summary of what the event says."""
    et = ev.event_type
    p = ev.params or {}
    text: str
    if et == EventType.ERROR:
        text = f"{ev.error_type or 'Error'}: {ev.error or ''}".rstrip(": ")
    elif et == EventType.HANDOFF:
        frm, to = _handoff_ends(ev)
        text = f"{frm} → {to or '?'}"
        why = p.get("context_summary") or ev.reasoning
        if why:
            text += f": {why}"
    elif et == EventType.HUMAN_INTERVENTION:
        kind = p.get("kind") or ev.action or "intervention"
        text = f"{kind} by {p['by']}" if p.get("by") else str(kind)
        if ev.reasoning:
            text += f": {ev.reasoning}"
    elif et == EventType.DECISION:
        text = ev.action or "decision"
        if ev.confidence is not None:
            text += f" (confidence {ev.confidence:.2f})"
        if ev.reasoning:
            text += f": {ev.reasoning}"
        elif ev.result is not None:
            text += f" → {_value(ev.result)}"
    elif et == EventType.TOOL_CALL:
        text = _kv(p) if p else ""
    elif et == EventType.TOOL_RESULT:
        text = "" if ev.result is None else f"→ {_value(ev.result, limit)}"
    elif et == EventType.INVOCATION:
        text = str(p.get("task") or (_kv(p) if p else ""))
    elif et in (EventType.LLM_RESPONSE, EventType.TOKEN_USAGE):
        parts = [ev.model or ""]
        if ev.prompt_tokens is not None or ev.completion_tokens is not None:
            parts.append(f"{ev.prompt_tokens or 0}+{ev.completion_tokens or 0} tokens")
        elif ev.token_count is not None:
            parts.append(f"{ev.token_count} tokens")
        if ev.cost_usd is not None:
            parts.append(f"${ev.cost_usd:.4f}")
        if ev.result is not None:
            parts.append(_value(ev.result))
        text = " · ".join(x for x in parts if x)
    elif ev.reasoning:
        text = ev.reasoning
    else:
        text = _kv(p) if p else "" if ev.result is None else _value(ev.result, limit)
    return truncate(text, limit)


def _is_retry(ev: AuditEvent) -> bool:
    if "retry" in (ev.action or "").lower():
        return True
    for d in (ev.tags or {}, ev.params or {}):
        for key in ("retry", "retries", "attempt"):
            v = d.get(key)
            if v is None or v in (False, "false", "0", 0):
                continue
            if key == "attempt":
                try:
                    if int(v) > 1:
                        return True
                except (TypeError, ValueError):
                    continue
            else:
                return True
    return False


def event_status(ev: AuditEvent) -> str:
    """``error`` for errors; ``warning`` for escalations, low-confidence decisions and retries."""
    et = ev.event_type
    if et == EventType.ERROR:
        return "error"
    if et == EventType.HUMAN_INTERVENTION and (
            (ev.params or {}).get("kind") or ev.action) == "escalation":
        return "warning"
    if et == EventType.DECISION and ev.confidence is not None and ev.confidence < 0.5:
        return "warning"
    return "warning" if _is_retry(ev) else "ok"


# -- timelines and graphs ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One line of a timeline; ``duration`` is in milliseconds."""

    time: str
    agent: str
    action: str
    details: str
    duration: float | None
    status: str
    event_id: str
    parent_event_id: str | None
    event_type: str
    trace_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def timeline(events: Iterable[AuditEvent]) -> list[TimelineRow]:
    """The events as timeline rows, in the order given (the store returns time order)."""
    return [
        TimelineRow(time=iso_time(ev.timestamp) or "", agent=ev.agent_name,
                    action=event_action(ev), details=event_details(ev),
                    duration=ev.duration_ms, status=event_status(ev), event_id=ev.event_id,
                    parent_event_id=ev.parent_event_id, event_type=ev.event_type,
                    trace_id=ev.trace_id)
        for ev in events
    ]


def handoff_path(events: Sequence[AuditEvent]) -> list[str]:
    """The agents a trace passed through: its first agent, then each handoff's receiver."""
    path: list[str] = [events[0].agent_name] if events else []
    for ev in events:
        if ev.event_type != EventType.HANDOFF:
            continue
        frm, to = _handoff_ends(ev)
        if path[-1] != frm:
            path.append(frm)
        if to:
            path.append(to)
    return path


def trace_graph(events: Sequence[AuditEvent]) -> dict[str, Any]:
    """Nodes (events), parent→child edges (``handoff`` where the agent changes) and the path."""
    by_id = {ev.event_id: ev for ev in events}
    nodes = [{"id": ev.event_id, "agent": ev.agent_name, "type": ev.event_type,
              "action": event_action(ev), "status": event_status(ev),
              "timestamp": iso_time(ev.timestamp)} for ev in events]
    edges = []
    for ev in events:
        parent = by_id.get(ev.parent_event_id) if ev.parent_event_id else None
        if parent is None:
            continue
        kind = ("handoff" if parent.event_type == EventType.HANDOFF
                or parent.agent_name != ev.agent_name else "child")
        edges.append({"from": parent.event_id, "to": ev.event_id, "type": kind})
    trace_ids = list(dict.fromkeys(ev.trace_id for ev in events if ev.trace_id))
    return {"trace_ids": trace_ids, "nodes": nodes, "edges": edges,
            "handoff_path": handoff_path(events)}


def _mermaid_label(text: str) -> str:
    return (truncate(text, 60).replace("#", "#35;").replace('"', "#quot;")
            .replace("<", "#lt;").replace(">", "#gt;"))


def graph_to_mermaid(graph: dict[str, Any]) -> str:
    """A Mermaid ``flowchart TD``; handoffs are thick labelled arrows, errors red."""
    ids = {n["id"]: f"n{i}" for i, n in enumerate(graph["nodes"])}
    lines = ["flowchart TD"]
    for n in graph["nodes"]:
        lines.append(f'    {ids[n["id"]]}["{_mermaid_label(n["agent"] + ": " + n["action"])}"]')
    for e in graph["edges"]:
        arrow = "==>|handoff|" if e["type"] == "handoff" else "-->"
        lines.append(f"    {ids[e['from']]} {arrow} {ids[e['to']]}")
    for status, style in (("error", "fill:#fdd,stroke:#c00"), ("warning", "fill:#ffd,stroke:#c90")):
        marked = [ids[n["id"]] for n in graph["nodes"] if n["status"] == status]
        if marked:
            lines.append(f"    classDef {status} {style}")
            lines.append(f"    class {','.join(marked)} {status}")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    """``text`` quoted for DOT: backslashes and quotes escaped, whitespace collapsed."""
    return '"' + " ".join(text.replace("\\", "\\\\").replace('"', '\\"').split()) + '"'


def graph_to_dot(graph: dict[str, Any]) -> str:
    """A Graphviz digraph; handoffs bold and labelled, errors red, warnings orange."""
    colors = {"error": "red", "warning": "orange"}
    lines = ["digraph trace {", "    rankdir=TB;", '    node [shape=box, fontname="Helvetica"];']
    for n in graph["nodes"]:
        label = _dot_string(truncate(n["agent"], 40))[:-1] + "\\n" + _dot_string(
            truncate(n["action"], 60))[1:]
        attrs = f"label={label}"
        if n["status"] in colors:
            attrs += f", color={colors[n['status']]}"
        lines.append(f"    {_dot_string(n['id'])} [{attrs}];")
    for e in graph["edges"]:
        attrs = ' [style=bold, label="handoff"]' if e["type"] == "handoff" else ""
        lines.append(f"    {_dot_string(e['from'])} -> {_dot_string(e['to'])}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def trace_summary(events: Sequence[AuditEvent]) -> dict[str, Any]:
    """Header facts of a trace (or of any group of events): ids, agents, counts, span, cost."""
    statuses = [event_status(ev) for ev in events]
    start = min((ev.timestamp for ev in events), default=None)
    end = max((ev.timestamp for ev in events), default=None)
    costs = [ev.cost_usd for ev in events if ev.cost_usd is not None]
    return {
        "trace_ids": list(dict.fromkeys(ev.trace_id for ev in events if ev.trace_id)),
        "task_ids": list(dict.fromkeys(ev.task_id for ev in events if ev.task_id)),
        "agents": list(dict.fromkeys(ev.agent_name for ev in events)),
        "handoff_path": handoff_path(events),
        "events": len(events),
        "errors": statuses.count("error"),
        "warnings": statuses.count("warning"),
        "start": iso_time(start),
        "end": iso_time(end),
        "duration_ms": None if start is None or end is None else (end - start) * 1000.0,
        "cost_usd": sum(costs) if costs else None,
    }


# -- period views, computed in SQL ---------------------------------------------------------------

def _one(store: Store, name: str, tenant: str, since: float | None, until: float | None,
         agent: str | None = None) -> dict[str, Any]:
    rows = store.aggregate(name, tenant, since, until, agent, limit=1)
    return rows[0] if rows else {}


def _int(v: Any) -> int:
    return int(v or 0)


def agent_overview(store: Store, tenant: str, agent: str, since: float | None,
                   until: float | None) -> dict[str, Any]:
    """What one agent did in a period: volume, tools, decisions, errors, handoffs and cost.

    Raises ``NotFound`` when the agent has no events in the period.
    """
    totals = _one(store, "totals", tenant, since, until, agent)
    events = _int(totals.get("events"))
    if events == 0:
        from agentaudit.store import EventQuery

        if store.query(EventQuery(tenant=tenant, agent=agent, limit=1)).data:
            raise NotFound(f"agent {agent!r} has no events between {iso_time(since) or 'the start'}"
                           f" and {iso_time(until) or 'now'}")
        raise NotFound(f"no agent named {agent!r} in tenant {tenant!r}")
    row = _one(store, "agents", tenant, since, until, agent)
    dec = _one(store, "decision_totals", tenant, since, until, agent)
    errors = _int(totals.get("errors"))
    return {
        "agent": agent,
        "tenant": tenant,
        "since": iso_time(since),
        "until": iso_time(until),
        "events": events,
        "invocations": _int(row.get("invocations")),
        "traces": _int(totals.get("traces")),
        "errors": errors,
        "error_rate": errors / events,
        "handoffs": _int(totals.get("handoffs")),
        "human_interventions": _int(totals.get("human_interventions")),
        "first_seen": iso_time(totals.get("first_ts")),
        "last_seen": iso_time(totals.get("last_ts")),
        "tools": [
            {"tool": r["tool"], "calls": _int(r["calls"]), "errors": _int(r["errors"]),
             "avg_latency_ms": r["avg_latency_ms"], "max_latency_ms": r["max_latency_ms"]}
            for r in store.aggregate("tool_usage", tenant, since, until, agent, limit=50)
        ],
        "decisions": {
            "count": _int(dec.get("decisions")),
            "avg_confidence": dec.get("avg_confidence"),
            "low_confidence": _int(dec.get("low_confidence")),
            "by_action": [
                {"decision": r["decision"], "count": _int(r["count"]),
                 "avg_confidence": r["avg_confidence"], "min_confidence": r["min_confidence"]}
                for r in store.aggregate("decisions", tenant, since, until, agent, limit=20)
            ],
        },
        "errors_by_type": {r["error_type"]: _int(r["count"]) for r in
                           store.aggregate("error_types", tenant, since, until, agent, limit=20)},
        "handoffs_out": {str(r["agent"]): _int(r["count"]) for r in
                         store.aggregate("handoffs_out", tenant, since, until, agent, limit=20)},
        "cost": {"cost_usd": float(totals.get("cost_usd") or 0.0),
                 "prompt_tokens": _int(totals.get("prompt_tokens")),
                 "completion_tokens": _int(totals.get("completion_tokens"))},
    }


def error_summary(store: Store, tenant: str, since: float | None, until: float | None,
                  agent: str | None = None) -> dict[str, Any]:
    """The seed's error summary (same key names), plus ``errors_by_tool`` and the period."""
    totals = _one(store, "totals", tenant, since, until, agent)
    total = _int(totals.get("events"))
    errors = _int(totals.get("errors"))

    def counts(name: str, key: str) -> dict[str, int]:
        rows = store.aggregate(name, tenant, since, until, agent, limit=20)
        return {str(r[key]): _int(r["count"]) for r in rows}

    return {
        "tenant": tenant,
        "agent": agent,
        "since": iso_time(since),
        "until": iso_time(until),
        "total_events": total,
        "total_errors": errors,
        "error_rate": errors / total if total else 0.0,
        "error_types": counts("error_types", "error_type"),
        "most_common_errors": [
            {"error_type": r["error_type"], "message": r["message"], "count": _int(r["count"])}
            for r in store.aggregate("error_messages", tenant, since, until, agent, limit=10)
        ],
        "errors_by_agent": counts("errors_by_agent", "agent_name"),
        "errors_by_tool": counts("errors_by_tool", "tool"),
    }
