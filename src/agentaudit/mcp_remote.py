"""The MCP tools answered by a collector: ``agentaudit mcp --db http://host:4318 --key aa_…``.

Everything goes through the collector's read API (``/v1/events``, ``/v1/reports/{type}``) with
one read key, so the assistant sees that key's tenant and nothing else. ``CollectorReader`` is
the read side of the ``Store`` contract over HTTP (events, counts, traces); the period views
that need SQL aggregations (error summary, agent audit, compliance) come from the collector's
report endpoint. Integrity verification needs the store's raw log and is not offered remotely.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from agentaudit.events import AuditEvent, event_from_dict
from agentaudit.exceptions import ConfigError, NotFound
from agentaudit.mcp_server import AuditTools, ToolProblem, _cap_text
from agentaudit.store.base import EventQuery, Page

__all__ = ["COUNT_CAP", "CollectorReader", "CollectorTools", "check_collector"]

COUNT_CAP = 10_000  # events counted page by page at most; beyond, counts read "10000+"
_PAGE = 1000


class CollectorReader:
    """Reads a collector's events with a read key (the subset of ``Store`` the tools use)."""

    backend = "collector"

    def __init__(self, url: str, key: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._timeout = timeout

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON answer of ``GET path``; collector errors become ``ToolProblem``/``NotFound``
        with the collector's reason."""
        import urllib.error
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items()
                                        if v is not None})
        request = urllib.request.Request(f"{self.url}{path}" + (f"?{query}" if query else ""),
                                         headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        except (OSError, ValueError) as e:  # refused, timed out, not JSON
            raise ToolProblem(f"cannot reach the collector at {self.url}: {e}") from e
        try:
            reason = json.loads(body).get("error") or body.decode(errors="replace")[:200]
        except (ValueError, AttributeError):
            reason = body.decode(errors="replace")[:200]
        if status == 404:
            raise NotFound(reason)
        raise ToolProblem(f"the collector answered {status}: {reason}")

    @staticmethod
    def _params(q: EventQuery, limit: int) -> dict[str, Any]:
        return {"agent": q.agent, "type": ",".join(q.event_types) if q.event_types else None,
                "since": q.since, "until": q.until, "trace_id": q.trace_id,
                "session_id": q.session_id, "user_id": q.user_id, "task_id": q.task_id,
                "errors_only": "true" if q.errors_only else None, "limit": limit,
                "cursor": q.cursor, "order": "desc" if q.newest_first else "asc"}

    def query(self, q: EventQuery) -> Page:
        page = self.get("/v1/events", self._params(q, max(1, min(q.limit, _PAGE))))
        return Page([event_from_dict(d) for d in page["data"]], page.get("next_cursor"))

    def iter_events(self, q: EventQuery, batch_size: int = _PAGE) -> Iterator[AuditEvent]:
        page_q = replace(q, limit=min(batch_size, _PAGE), newest_first=False, cursor=None)
        while True:
            page = self.query(page_q)
            yield from page.data
            if page.next_cursor is None:
                return
            page_q.cursor = page.next_cursor

    def count(self, q: EventQuery) -> int:
        """Matching events, counted up to ``COUNT_CAP``."""
        n = 0
        page_q = replace(q, limit=_PAGE, cursor=None)
        while n < COUNT_CAP:
            page = self.query(page_q)
            n += len(page.data)
            if page.next_cursor is None:
                break
            page_q.cursor = page.next_cursor
        return n

    def trace_events(self, tenant: str, trace_or_task_id: str) -> list[AuditEvent]:
        events = list(self.iter_events(EventQuery(trace_id=trace_or_task_id)))
        if events:
            return events
        traces = dict.fromkeys(ev.trace_id for ev in self.iter_events(
            EventQuery(task_id=trace_or_task_id)) if ev.trace_id)
        out = [ev for t in traces for ev in self.iter_events(EventQuery(trace_id=t))]
        return sorted(out, key=lambda ev: (ev.timestamp, ev.seq or 0))

    def report(self, kind: str, **params: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"/v1/reports/{kind}", {**params, "format": "json"})
        return data

    def close(self) -> None:
        """Nothing to release: each request is its own connection."""


def check_collector(url: str, key: str | None) -> None:
    """Fail now, with the collector's reason, when it is unreachable or the key cannot read."""
    reader = CollectorReader(url, key, timeout=10.0)
    try:
        reader.get("/v1/events", {"limit": 1})
    except ToolProblem as e:
        raise ConfigError(str(e)) from e
    finally:
        reader.close()


class CollectorTools(AuditTools):
    """The nine tools over a collector's read API, in the read key's tenant."""

    def __init__(self, url: str, key: str | None) -> None:
        super().__init__(url, "default")
        self.key = key

    @contextmanager
    def store(self) -> Iterator[Any]:
        reader = CollectorReader(str(self.db), self.key)
        try:
            yield reader
        finally:
            reader.close()

    def _cli(self, command: str) -> str:
        return (f"ask for less, or run `agentaudit {command}` where the collector's database "
                f"is, with its --db")

    def _trace(self, store: Any, trace_id: str) -> list[AuditEvent]:
        events: list[AuditEvent] = store.trace_events(self.tenant, trace_id)
        if not events:
            raise NotFound(f"no trace or task {trace_id!r} for this key")
        return events

    def _report(self, kind: str, **params: Any) -> dict[str, Any]:
        with self.store() as reader:
            data: dict[str, Any] = reader.report(kind, **params)
        return data

    def show_error_summary(self, since: str | None = "24h", until: str | None = None,
                           agent_name: str | None = None) -> tuple[str, dict[str, Any]]:
        data = self._report("errors", since=since, until=until, agent=agent_name)
        lines = [f"{data['total_errors']} errors in {data['total_events']} events "
                 f"({data['error_rate']:.1%}) from {data['period']['from']}"]
        for title, key in (("Error types", "error_types"), ("By agent", "errors_by_agent"),
                           ("By tool", "errors_by_tool")):
            if data.get(key):
                lines.append(f"{title}: " + ", ".join(f"{k} {v}" for k, v in data[key].items()))
        for e in data.get("most_common_errors", [])[:5]:
            lines.append(f"  {e['count']}× {e['error_type']}: {e['message']}")
        for action in data.get("suggested_actions", [])[:3]:
            lines.append(f"Suggested: {action}")
        return _cap_text("\n".join(lines) + "\n", self._cli("report errors")), data

    def audit_agent(self, agent_name: str, since: str | None = "7d",
                    until: str | None = None) -> tuple[str, dict[str, Any]]:
        data = self._report("agent", since=since, until=until, agent=agent_name)
        errors = data.get("errors") or {}
        lines = [f"Agent {agent_name} from {data['period']['from']}: {data['events']} events, "
                 f"{data['invocations']} invocations, {data['traces']} traces, "
                 f"{errors.get('total_errors', 0)} errors, "
                 f"{data.get('human_interventions', 0)} human interventions"]
        for key in ("tools", "decisions", "handoffs_in", "handoffs_out", "cost"):
            if data.get(key):
                lines.append(f"{key}: {_short_json(data[key])}")
        return _cap_text("\n".join(lines) + "\n", self._cli(f"report agent {agent_name}")), data

    def generate_compliance_report(self, since: str | None = "24h", until: str | None = None,
                                   agent_name: str | None = None,
                                   format: str = "md") -> tuple[str, dict[str, Any]]:
        data = self._report("compliance", since=since, until=until, agent=agent_name)
        return self._report_text(data, format, "report compliance"), data

    def verify_integrity(self, vkey: str | None = None) -> tuple[str, dict[str, Any]]:
        raise ToolProblem("verifying integrity needs the log itself, which a read key cannot "
                          "fetch: run `agentaudit verify --db …` where the collector's database "
                          "is, or verify an evidence bundle (`agentaudit export --bundle`)")


def _short_json(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 600 else text[:600] + "…"
