"""``agentaudit mcp``: the seed's phrases as Model Context Protocol tools, read-only.

Each tool answers with concise text for the assistant plus the same facts as structured content.
Answers are capped (``MAX_EVENTS`` events, ``MAX_TEXT`` characters of text) and point to the CLI
for more; nothing here writes to the store or to files. Anticipated failures (an unknown trace,
an unreadable time, a missing database) come back as tool errors, never as a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from agentaudit.exceptions import AuditError, NotFound
from agentaudit.query import InvalidTime, parse_time

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.types import CallToolResult

    from agentaudit.events import AuditEvent
    from agentaudit.store import Store

__all__ = ["MAX_EVENTS", "MAX_TEXT", "TOOL_NAMES", "AuditTools", "audit_tools", "build_server",
           "is_collector_url", "latest_trace", "run_server"]

MAX_EVENTS = 50
MAX_TEXT = 20_000
TOOL_NAMES = ("show_audit_log", "trace_task", "generate_compliance_report",
              "what_did_the_agent_do", "show_error_summary", "audit_agent",
              "run_forensic_analysis", "export_audit_data", "verify_integrity")

Answer = tuple[str, dict[str, Any]]


class ToolProblem(AuditError):
    """A request the tools cannot answer; its message goes back to the assistant."""


def _period(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    try:
        start = parse_time(since) if since else None
        end = parse_time(until) if until else None
    except InvalidTime as e:
        raise ToolProblem(str(e)) from e
    if start is not None and end is not None and start >= end:
        raise ToolProblem(f"since {since!r} is not before until {until!r}")
    return start, end


def _limit(limit: int) -> int:
    if limit < 1:
        raise ToolProblem(f"limit must be at least 1, not {limit}")
    return min(limit, MAX_EVENTS)


def _cap_text(text: str, more: str) -> str:
    """``text`` cut to ``MAX_TEXT`` characters, with a pointer to the CLI when cut."""
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT].rsplit("\n", 1)[0] + f"\n… (cut at {MAX_TEXT} characters; {more})\n"


def _event_lines(events: Sequence[AuditEvent]) -> tuple[str, list[dict[str, Any]]]:
    """One line per event (time, agent, action, details, status) and the timeline rows."""
    from agentaudit.query import timeline

    rows = timeline(events)
    lines = [f"{r.time[11:23]}  {r.agent}  {r.action}"
             + (f"  {r.details}" if r.details else "")
             + ("" if r.status == "ok" else f"  [{r.status}]") for r in rows]
    return "\n".join(lines) + "\n", [r.to_dict() for r in rows]


def _group(kind: str, ident: str, events: Sequence[AuditEvent], limit: int,
           more: str) -> Answer:
    """Header and (the first ``limit``) event lines of a trace, task or session."""
    from agentaudit.cli.plain import Palette, group_header
    from agentaudit.query import trace_summary

    summary = trace_summary(events)
    shown = list(events[:limit])
    lines, rows = _event_lines(shown)
    text = group_header(kind, ident, summary, Palette(False)) + lines
    if len(events) > len(shown):
        text += f"… {len(events) - len(shown)} more events: {more}\n"
    return _cap_text(text, more), {"summary": summary, "events": rows,
                                   "truncated": len(events) > len(shown)}


def latest_trace(store: Store, tenant: str, *, errors_only: bool = False) -> str:
    """The trace (or task) id of the newest event (``errors_only``: the newest error)."""
    from agentaudit.store import EventQuery

    q = EventQuery(tenant=tenant, errors_only=errors_only, newest_first=True, limit=20)
    for ev in store.query(q).data:
        if ev.trace_id or ev.task_id:
            return str(ev.trace_id or ev.task_id)
    raise NotFound(f"no {'failing trace' if errors_only else 'trace'} in tenant {tenant!r}")


class AuditTools:
    """The tools' bodies as plain functions over one store (``db``) and tenant."""

    def __init__(self, db: str | None, tenant: str = "default") -> None:
        self.db = db
        self.tenant = tenant

    @contextmanager
    def store(self) -> Iterator[Store]:
        from agentaudit.cli.commands import open_reader

        store = open_reader(self.db)
        try:
            yield store
        finally:
            store.close()

    def _cmd(self, command: str) -> str:
        db = f" --db {self.db}" if self.db else ""
        tenant = f" --tenant {self.tenant}" if self.tenant != "default" else ""
        return f"agentaudit {command}{db}{tenant}"

    def _cli(self, command: str) -> str:
        return f"run `{self._cmd(command)}` for everything"

    def _trace(self, store: Store, trace_id: str) -> list[AuditEvent]:
        events = store.trace_events(self.tenant, trace_id)
        if not events:
            raise NotFound(f"no trace or task {trace_id!r} in tenant {self.tenant!r}")
        return events

    def _latest_trace(self, store: Store, *, errors_only: bool = False) -> str:
        return latest_trace(store, self.tenant, errors_only=errors_only)

    def show_audit_log(self, agent_name: str | None = None, event_type: str | None = None,
                       since: str | None = None, until: str | None = None,
                       limit: int = MAX_EVENTS) -> Answer:
        from agentaudit.cli.commands import parse_event_types
        from agentaudit.store import EventQuery

        n = _limit(limit)
        start, end = _period(since, until)
        q = EventQuery(tenant=self.tenant, agent=agent_name, since=start, until=end,
                       event_types=parse_event_types([event_type] if event_type else None),
                       limit=n, newest_first=True)
        with self.store() as store:
            events = store.query(q).data[::-1]
            total = store.count(q)
        if not events:
            return "No events match.\n", {"events": [], "total": 0}
        lines, rows = _event_lines(events)
        more = self._cli("log -n N") if total > len(events) else ""
        text = f"The {len(events)} most recent of {total} matching events, oldest first:\n"
        text += lines + (f"… {more}\n" if more else "")
        return _cap_text(text, more or self._cli("log")), {"events": rows, "total": total}

    def trace_task(self, trace_id: str, limit: int = MAX_EVENTS) -> Answer:
        from agentaudit.query import handoff_path

        n = _limit(limit)
        with self.store() as store:
            events = self._trace(store, trace_id)
        kind = "Trace" if any(ev.trace_id == trace_id for ev in events) else "Task"
        text, data = _group(kind, trace_id, events, n, self._cli(f"trace {trace_id}"))
        data["handoff_path"] = handoff_path(events)
        return text, data

    def what_did_the_agent_do(self, session_id: str | None = None, trace_id: str | None = None,
                              agent_name: str | None = None, since: str | None = None,
                              until: str | None = None, limit: int = MAX_EVENTS) -> Answer:
        if trace_id:
            return self.trace_task(trace_id, limit)
        if agent_name and not session_id:
            return self.show_audit_log(agent_name, None, since, until, limit)
        if not session_id:
            with self.store() as store:
                latest = self._latest_trace(store)
            return self.trace_task(latest, limit)
        from agentaudit.store import EventQuery

        n = _limit(limit)
        start, end = _period(since, until)
        q = EventQuery(tenant=self.tenant, session_id=session_id, agent=agent_name,
                       since=start, until=end)
        with self.store() as store:
            events = list(store.iter_events(q))
        if not events:
            raise NotFound(f"no session {session_id!r} in tenant {self.tenant!r}")
        return _group("Session", session_id, events, n, self._cli(f"session {session_id}"))

    def show_error_summary(self, since: str | None = "24h", until: str | None = None,
                           agent_name: str | None = None) -> Answer:
        from agentaudit.query import error_summary

        start, end = _period(since, until)
        with self.store() as store:
            data = error_summary(store, self.tenant, start, end, agent_name)
        lines = [f"{data['total_errors']} errors in {data['total_events']} events "
                 f"({data['error_rate']:.1%}) since {data['since'] or 'the start'}"]
        for title, key in (("Error types", "error_types"), ("By agent", "errors_by_agent"),
                           ("By tool", "errors_by_tool")):
            if data[key]:
                lines.append(f"{title}: " + ", ".join(f"{k} {v}" for k, v in data[key].items()))
        for e in data["most_common_errors"][:5]:
            lines.append(f"  {e['count']}× {e['error_type']}: {e['message']}")
        return "\n".join(lines) + "\n", data

    def audit_agent(self, agent_name: str, since: str | None = "7d",
                    until: str | None = None) -> Answer:
        from agentaudit.query import agent_overview

        start, end = _period(since, until)
        with self.store() as store:
            data = agent_overview(store, self.tenant, agent_name, start, end)
        lines = [f"Agent {agent_name} since {data['since'] or 'the start'}: {data['events']} "
                 f"events, {data['invocations']} invocations, {data['traces']} traces, "
                 f"{data['errors']} errors ({data['error_rate']:.1%}), {data['handoffs']} "
                 f"handoffs, {data['human_interventions']} human interventions"]
        for key in ("tools", "decisions", "errors_by_type", "handoffs_out", "cost"):
            if data.get(key):
                lines.append(f"{key}: {json.dumps(data[key], default=str)}")
        return _cap_text("\n".join(lines) + "\n", self._cli(f"agent {agent_name}")), data

    def generate_compliance_report(self, since: str | None = "24h", until: str | None = None,
                                   agent_name: str | None = None, format: str = "md") -> Answer:
        from agentaudit.reports.compliance import compliance_report

        period = self._report_period(since, until)
        with self.store() as store:
            data = compliance_report(store, self.tenant, period, agent_name)
        return self._report_text(data, format, "report compliance"), data

    def run_forensic_analysis(self, trace_id: str | None = None, format: str = "md") -> Answer:
        from agentaudit.reports.forensics import forensics_report

        with self.store() as store:
            ref = trace_id or self._latest_trace(store, errors_only=True)
            data = forensics_report(store, self.tenant, ref)
        return self._report_text(data, format, f"forensics {ref}"), _cap_lists(data)

    def _report_period(self, since: str | None, until: str | None) -> Any:
        from agentaudit.reports.period import resolve_period

        try:
            return resolve_period(since, until, default="24h")
        except (InvalidTime, AuditError) as e:
            raise ToolProblem(str(e)) from e

    def _report_text(self, data: dict[str, Any], fmt: str, command: str) -> str:
        from agentaudit.reports.render import render

        if fmt not in ("md", "json"):
            raise ToolProblem(f"unknown format {fmt!r}: choose md or json")
        return _cap_text(render(data, fmt), self._cli(command) + " (also --format html)")

    def export_audit_data(self, trace_id: str | None = None, agent_name: str | None = None,
                          session_id: str | None = None, since: str | None = None,
                          until: str | None = None, format: str = "jsonl",
                          limit: int = MAX_EVENTS) -> Answer:
        from dataclasses import replace

        from agentaudit.store import EventQuery

        if format not in ("jsonl", "csv", "json"):
            raise ToolProblem(f"unknown format {format!r}: choose jsonl, csv or json")
        n = _limit(limit)
        start, end = _period(since, until)
        q = EventQuery(tenant=self.tenant, agent=agent_name, session_id=session_id,
                       trace_id=trace_id, since=start, until=end, limit=n)
        with self.store() as store:
            if trace_id and not store.count(q):
                q = replace(q, trace_id=None, task_id=trace_id)
            total = store.count(q)
            if trace_id and not total:
                raise NotFound(f"no trace or task {trace_id!r} in tenant {self.tenant!r}")
            events = store.query(q).data
        text, shown = _excerpt(events, format)
        command = self._cmd(_export_args(trace_id, agent_name, since, until, format))
        if total > shown:
            text += f"… {shown} of {total} events; for all of them run `{command}`\n"
        return text, {
            "format": format, "total": total, "returned": shown, "command": command}

    def verify_integrity(self, vkey: str | None = None) -> Answer:
        from agentaudit.integrity.verify import verify_log

        with self.store() as store:
            report = verify_log(store, self.tenant, vkey=vkey)
        data = report.as_dict()
        if report.ok:
            text = (f"OK: the log of tenant {report.tenant!r} is intact: {report.size} events, "
                    f"{report.checkpoints} signed checkpoints")
            if report.unsigned_tail:
                text += f"; the newest {report.unsigned_tail} are not covered by a checkpoint yet"
        else:
            d = report.damage
            assert d is not None
            text = f"TAMPERED ({d.kind}): {d.message} (first bad seq {d.seq}, event {d.event_id})"
        if report.erased:
            text += f"\n{len(report.erased)} payloads were erased; their envelopes verify"
        data["erased"] = data["erased"][:MAX_EVENTS]
        return text + "\n", data


def _excerpt(events: Sequence[AuditEvent], fmt: str) -> tuple[str, int]:
    """``events`` in ``fmt``, as many as fit in ``MAX_TEXT`` characters, and how many fit."""
    import io

    from agentaudit.cli.output import stream_events

    for n in range(len(events), -1, -1):
        buf = io.StringIO()
        stream_events(buf, events[:n], fmt)
        if len(buf.getvalue()) <= MAX_TEXT or n == 0:
            return buf.getvalue(), n
    return "", 0  # pragma: no cover


def _export_args(trace_id: str | None, agent_name: str | None, since: str | None,
                 until: str | None, fmt: str) -> str:
    """The ``agentaudit export`` arguments that select what the tool excerpted."""
    opts = [f"{o} {v}" for o, v in (("--trace", trace_id), ("--agent", agent_name),
                                     ("--since", since), ("--until", until)) if v]
    return " ".join(["export", f"--format {fmt}", *opts, "-o FILE"])


def _cap_lists(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every top-level list cut to ``MAX_EVENTS`` items."""
    return {k: v[:MAX_EVENTS] if isinstance(v, list) else v for k, v in data.items()}


# -- the MCP server ------------------------------------------------------------------------------

DESCRIPTIONS = {
    "show_audit_log": "Show me the audit log: the most recent events (oldest first), optionally "
                      "of one agent, one event type or a time window.",
    "trace_task": "Trace task [id]: every event of one trace or task, across agents, with the "
                  "handoff path, errors and cost.",
    "generate_compliance_report": "Generate compliance report: check a period (default the "
                                  "last 24 hours) against the built-in compliance policy; each "
                                  "check shows its value, threshold and evidence.",
    "what_did_the_agent_do": "What did the agent do? The timeline of a session (session_id), a "
                             "trace or task (trace_id), an agent's recent events (agent_name), "
                             "or else of the most recent trace.",
    "show_error_summary": "Show error summary: error rate, error types, the most common errors, "
                          "and errors by agent and by tool over a period (default 24 hours).",
    "audit_agent": "Audit agent [name]: one agent's events, invocations, tools, decisions, "
                   "errors, handoffs and cost over a period (default 7 days).",
    "run_forensic_analysis": "Run forensic analysis of one trace or task (default: the most "
                             "recent failing trace): timeline, root cause, impact and "
                             "recommendations.",
    "export_audit_data": "Export audit data: an excerpt (at most 50 events) of the matching "
                         "events in jsonl, csv or json, with the `agentaudit export` command "
                         "that writes all of them. Writes nothing.",
    "verify_integrity": "Verify integrity: recompute every leaf, Merkle root and signed "
                        "checkpoint of the log and say whether the record is intact or where "
                        "it was altered.",
}

ARGUMENT_HELP = {
    "trace_id": "A trace id or a task id (e.g. refund-incident).",
    "agent_name": "The agent's name, e.g. Billing.",
    "session_id": "A session id.",
    "since": "Start of the period: 30s, 15m, 1h, 7d, 2w ago, an ISO date or datetime (UTC), "
             "or epoch seconds.",
    "until": "End of the period (same forms as since). Default: now.",
    "limit": f"How many events at most (capped at {MAX_EVENTS}).",
    "event_type": "Only events of this type: tool_call, decision, error, handoff, …",
    "format": "Text format of the answer.",
    "vkey": "The verifier key to trust. Default: this machine's key.",
}


def _as_tool(tools: AuditTools, name: str) -> Callable[..., CallToolResult]:
    """The method ``name`` as an MCP tool function: text plus structured content."""
    import functools

    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import CallToolResult, TextContent

    method = getattr(tools, name)

    @functools.wraps(method)
    def tool(**kwargs: Any) -> CallToolResult:
        try:
            text, data = method(**kwargs)
        except (AuditError, OSError) as e:
            raise ToolError(" ".join(str(e).split()) or type(e).__name__) from e
        structured = json.loads(json.dumps(data, default=str))
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content=structured)

    return tool


def is_collector_url(db: str | None) -> bool:
    """True when ``db`` names a collector (``http(s)://``) rather than a database."""
    return bool(db) and str(db).lower().startswith(("http://", "https://"))


def audit_tools(db: str | None, tenant: str = "default", key: str | None = None) -> AuditTools:
    """The tools over a database, or over a collector's read API with ``key``."""
    if not is_collector_url(db):
        return AuditTools(db, tenant)
    from agentaudit.exceptions import ConfigError
    from agentaudit.mcp_remote import CollectorTools

    if tenant != "default":
        raise ConfigError("--tenant does not apply to a collector: its read key decides the "
                          "tenant; give that tenant's read key with --key")
    return CollectorTools(str(db), key)


def build_server(db: str | None, tenant: str = "default", key: str | None = None) -> MCPServer:
    """The MCP server with the nine read-only tools over the store at ``db`` (or the collector
    at ``db``, read with ``key``)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    from agentaudit import __version__

    server: MCPServer = MCPServer(
        "agentaudit", version=__version__, log_level="WARNING",
        instructions="Answers questions about what AI agents did, from agentaudit's "
                     "tamper-evident audit log. All tools are read-only.")
    tools = audit_tools(db, tenant, key)
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                idempotent_hint=True, open_world_hint=False)
    for name in TOOL_NAMES:
        server.add_tool(_as_tool(tools, name), name=name, description=DESCRIPTIONS[name],
                        annotations=read_only, structured_output=False)
        registered = server._tool_manager.get_tool(name)  # the schema, to add argument help
        assert registered is not None
        for arg, prop in registered.parameters.get("properties", {}).items():
            prop.setdefault("description", ARGUMENT_HELP.get(arg, ""))
            if arg == "format":
                prop["enum"] = (["jsonl", "csv", "json"] if name == "export_audit_data"
                                else ["md", "json"])
    return server


def run_server(db: str | None, tenant: str = "default", *, http: bool = False,
               port: int = 8765, key: str | None = None) -> None:
    """Serve over stdio (default) or streamable HTTP on 127.0.0.1:``port`` until stopped."""
    if is_collector_url(db):
        from agentaudit.mcp_remote import check_collector

        audit_tools(db, tenant, key)  # a --tenant with a collector fails now
        check_collector(str(db), key)  # so do an unreachable collector and a bad key
    else:
        from agentaudit.cli.commands import open_reader

        open_reader(db).close()  # a missing database fails now, with a clear message
    server = build_server(db, tenant, key)
    if http:
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
