"""``forensics TRACE_ID``: the seed's "Incident Forensics" report of one trace (or task).

A trace holds a few dozen events, so this report reads them (``Store.trace_events``) and derives
the timeline (``agentaudit.query.timeline``), the root cause (first failing tool and its error,
repeated failures, circuit breaker, fallback, escalation), the impact (agents, users, cost) and
recommendations from rules.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from agentaudit.events import AuditEvent, EventType
from agentaudit.exceptions import NotFound
from agentaudit.query import iso_time, timeline, trace_summary, truncate

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["STATUS_ICONS", "forensics_report", "forensics_from_events"]

STATUS_ICONS = {"ok": "✅", "error": "❌", "warning": "⚠️"}


def _kind(ev: AuditEvent) -> str | None:
    if ev.event_type != EventType.HUMAN_INTERVENTION:
        return None
    return str((ev.params or {}).get("kind") or ev.action or "")


def _tool_errors(events: list[AuditEvent]) -> list[AuditEvent]:
    called = {ev.event_id: ev.action for ev in events if ev.event_type == EventType.TOOL_CALL}
    return [ev for ev in events if ev.event_type == EventType.ERROR
            and ev.parent_event_id in called and ev.action == called[ev.parent_event_id]]


def _ref(ev: AuditEvent) -> dict[str, Any]:
    return {"event_id": ev.event_id, "time": iso_time(ev.timestamp), "agent": ev.agent_name}


def _fallback(events: list[AuditEvent], failing: str, after: float) -> dict[str, Any] | None:
    results = {ev.parent_event_id for ev in events if ev.event_type == EventType.TOOL_RESULT}
    for ev in events:
        if (ev.event_type == EventType.TOOL_CALL and ev.timestamp >= after
                and ev.action != failing and ev.event_id in results):
            return {**_ref(ev), "tool": ev.action}
    return None


def _root_cause(events: list[AuditEvent]) -> dict[str, Any]:
    tool_errors = _tool_errors(events)
    errors = [ev for ev in events if ev.event_type == EventType.ERROR]
    first = tool_errors[0] if tool_errors else errors[0] if errors else None
    failures = Counter(ev.action for ev in tool_errors)
    repeated = [{"tool": t, "failures": n,
                 "error_types": sorted({ev.error_type or "Error" for ev in tool_errors
                                        if ev.action == t})}
                for t, n in failures.most_common() if n >= 2]
    breaker = next((ev for ev in events if ev.event_type == EventType.DECISION
                    and "circuit" in (ev.action or "").lower()), None)
    escalations = [ev for ev in events if _kind(ev) == "escalation"]
    cause: dict[str, Any] = {"first_failure": None, "repeated_failures": repeated,
                             "circuit_breaker": None, "fallback": None, "escalation": None}
    if first is not None:
        cause["first_failure"] = {**_ref(first), "tool": first.action if first in tool_errors
                                  else None, "error_type": first.error_type,
                                  "error": first.error, "duration_ms": first.duration_ms}
    if breaker is not None:
        cause["circuit_breaker"] = {**_ref(breaker), "decision": breaker.action,
                                    "reasoning": breaker.reasoning, "params": breaker.params,
                                    "confidence": breaker.confidence}
    if first is not None and first in tool_errors:
        last = max(ev.timestamp for ev in tool_errors if ev.action == first.action)
        cause["fallback"] = _fallback(events, str(first.action), last)
    if escalations:
        e = escalations[0]
        cause["escalation"] = {**_ref(e), "by": (e.params or {}).get("by"), "reason": e.reasoning}
    cause["summary"] = _cause_sentence(cause)
    return cause


def _cause_sentence(c: dict[str, Any]) -> str:
    first = c["first_failure"]
    if first is None:
        return "No failure was recorded in this trace."
    what = first["tool"] or "the agent"
    rep = next((r for r in c["repeated_failures"] if r["tool"] == first["tool"]), None)
    text = (f"{what} failed {rep['failures']} times" if rep else f"{what} failed") + \
        f" ({first['error_type'] or 'Error'}: {truncate(first['error'] or '', 100)})"
    steps = []
    if c["circuit_breaker"]:
        steps.append(f"{c['circuit_breaker']['agent']} opened a circuit breaker")
    if c["fallback"]:
        steps.append(f"fell back to {c['fallback']['tool']}")
    if c["escalation"]:
        steps.append(f"escalated to {c['escalation']['by']}")
    return text + ("; " + ", ".join(steps) if steps else "") + "."


def _impact(events: list[AuditEvent]) -> dict[str, Any]:
    summary = trace_summary(events)
    failed_ms = sum(ev.duration_ms or 0.0 for ev in _tool_errors(events))
    tokens = sum((ev.prompt_tokens or 0) + (ev.completion_tokens or 0) for ev in events)
    finish = [ev for ev in events if ev.event_type == EventType.DECISION
              and ev.action == "finish" and ev.parent_event_id is not None]
    root = finish[-1].result if finish else None
    return {
        "agents": summary["agents"],
        "agents_with_errors": sorted({ev.agent_name for ev in events
                                      if ev.event_type == EventType.ERROR}),
        "users": sorted({ev.user_id for ev in events if ev.user_id}),
        "sessions": sorted({ev.session_id for ev in events if ev.session_id}),
        "duration_ms": summary["duration_ms"],
        "time_in_failed_calls_ms": round(failed_ms, 1),
        "cost_usd": round(summary["cost_usd"] or 0.0, 6),
        "tokens": tokens,
        "outcome": root.get("outcome") if isinstance(root, dict) else None,
    }


def _recommendations(cause: dict[str, Any], events: list[AuditEvent]) -> list[str]:
    recs: list[str] = []
    first = cause["first_failure"]
    tool = (first or {}).get("tool")
    etypes = {ev.error_type for ev in _tool_errors(events)}
    if tool and "TimeoutError" in etypes:
        recs.append(f"Timeouts leave the outcome of {tool} unknown: make it idempotent "
                    "(an idempotency key per request) so that retries and fallbacks cannot "
                    "execute it twice, and verify with the provider that no attempt succeeded.")
        recs.append(f"Alert on {tool}'s p95 latency and timeout rate "
                    "(`agentaudit report tool-usage`).")
    if "RateLimitError" in etypes:
        recs.append("Add exponential backoff with jitter and request a higher quota for the "
                    "rate-limited calls.")
    if "ValidationError" in etypes:
        recs.append("Validate tool arguments before calling and fix the prompt that produced "
                    "them.")
    if cause["repeated_failures"] and not cause["circuit_breaker"]:
        recs.append(f"{cause['repeated_failures'][0]['tool']} failed repeatedly without a "
                    "circuit breaker: stop calling a failing dependency after N failures.")
    if cause["circuit_breaker"] and not cause["fallback"]:
        recs.append("The circuit breaker opened but no fallback ran: define one (a queue, a "
                    "manual path) so the user is not left waiting.")
    if cause["escalation"]:
        recs.append(f"Follow up the escalation to {cause['escalation']['by']} until it is "
                    "closed, and record its resolution as an event of this task.")
    low = [ev for ev in events if ev.event_type == EventType.DECISION
           and ev.confidence is not None and ev.confidence < 0.5]
    if low:
        recs.append(f"{len(low)} decision(s) had confidence below 0.5: ask for confirmation "
                    "before acting on such decisions.")
    if not recs:
        recs.append("No failure or risk signal in this trace; nothing to change.")
    return recs


def forensics_from_events(events: list[AuditEvent], ref: str) -> dict[str, Any]:
    """The forensics report of a trace's events (in time order)."""
    summary = trace_summary(events)
    rows = [dict(r.to_dict(), icon=STATUS_ICONS.get(r.status, "")) for r in timeline(events)]
    cause = _root_cause(events)
    status = ("failed" if summary["errors"] and not cause["fallback"] and not cause["escalation"]
              else "degraded" if summary["errors"] or summary["warnings"] else "ok")
    return {
        "report": "forensics",
        "title": f"Incident Forensics — {ref}",
        "ref": ref,
        "trace_ids": summary["trace_ids"],
        "task_ids": summary["task_ids"],
        "start": summary["start"],
        "end": summary["end"],
        "status": status,
        "handoff_path": summary["handoff_path"],
        "events": summary["events"],
        "errors": summary["errors"],
        "warnings": summary["warnings"],
        "timeline": rows,
        "root_cause": cause,
        "impact": _impact(events),
        "recommendations": _recommendations(cause, events),
    }


def forensics_report(store: Store, tenant: str, trace_or_task_id: str) -> dict[str, Any]:
    """Forensics of the trace with this id, or of the traces of this task id."""
    events = store.trace_events(tenant, trace_or_task_id)
    if not events:
        raise NotFound(f"no trace or task {trace_or_task_id!r} in tenant {tenant!r}")
    return forensics_from_events(events, trace_or_task_id)
