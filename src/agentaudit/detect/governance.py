"""Governance rules: approvals, repeated rejections, budgets, handoff loops, acting after a stop.

State is per trace or per agent, bounded, and warmed from the store on first need (an approval
given before a collector restart still counts).
"""

from __future__ import annotations

from typing import Any

from agentaudit.detect._base import BoundedDict, History, Rule
from agentaudit.detect.firing import Firing
from agentaudit.events import AuditEvent

__all__ = ["ActingAfterStopRule", "ApprovalRule", "BudgetRule", "HandoffLoopRule",
           "RejectionsRule"]

_TRACES = 50_000
HUMAN = "agent.human_intervention"


def _kind(ev: AuditEvent) -> str:
    params = ev.params or {}
    return str(params.get("kind") or ev.action or "")


def _trace_key(ev: AuditEvent) -> tuple[str, str]:
    return (ev.tenant, ev.trace_id or ev.event_id)


class ApprovalRule(Rule):
    """A listed tool is called without a human approval earlier in its trace."""

    name = "approval_required"
    event_types = frozenset({"agent.tool_call", HUMAN})

    def __init__(self, settings: dict[str, Any], history: History | None) -> None:
        super().__init__(settings, history)
        self.tools = frozenset(settings["tools"])
        self.kinds = frozenset(settings["approval_kinds"])
        self.approvals: BoundedDict[tuple[str, str], list[str]] = BoundedDict(_TRACES)

    def _needs_approval(self, ev: AuditEvent) -> bool:
        param = self.settings["amount_param"]
        if not param:
            return True
        value = (ev.params or {}).get(param)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True  # a call without the amount cannot show it is below the limit
        return value >= self.settings["min_amount"]

    def observe(self, ev: AuditEvent) -> list[Firing]:
        if ev.event_type == HUMAN and _kind(ev) in self.kinds:
            self.approvals.setdefault(_trace_key(ev), []).append(ev.event_id)
            return []
        if ev.event_type != "agent.tool_call" or ev.action not in self.tools:
            return []
        if not self._needs_approval(ev) or self.approvals.get(_trace_key(ev)):
            return []
        if self.history is not None and ev.trace_id:
            stored = [e for e in self.history.trace_events_of(ev.tenant, ev.trace_id, HUMAN,
                                                              ev.timestamp)
                      if _kind(e) in self.kinds]
            if stored:
                self.approvals[_trace_key(ev)] = [e.event_id for e in stored]
                return []
        amount = (ev.params or {}).get(self.settings["amount_param"])
        why = (f" for {self.settings['amount_param']} = {amount}" if amount is not None else "")
        return [self.fire(
            ev, f"{ev.action} called without a human approval",
            f"{ev.agent_name} called {ev.action!r}{why} with no "
            f"{'/'.join(sorted(self.kinds))} earlier in trace {ev.trace_id}; the policy "
            f"requires one (min_amount {self.settings['min_amount']}).",
            [ev.event_id], f"{ev.event_id}", tool=ev.action, amount=amount)]


class RejectionsRule(Rule):
    """Humans rejected the same agent ``count`` times within ``window_seconds``."""

    name = "repeated_rejections"
    event_types = frozenset({HUMAN})

    def __init__(self, settings: dict[str, Any], history: History | None) -> None:
        super().__init__(settings, history)
        self.seen: BoundedDict[tuple[str, str], list[tuple[float, str]]] = BoundedDict(_TRACES)

    def observe(self, ev: AuditEvent) -> list[Firing]:
        if ev.event_type != HUMAN or _kind(ev) != "rejection":
            return []
        s = self.settings
        scope = ev.trace_id if s["scope"] == "trace" and ev.trace_id else ev.agent_name
        key = (ev.tenant, f"{s['scope']}:{scope}")
        recent = self.seen.get(key)
        if recent is None:
            recent = []
            if self.history is not None and s["scope"] == "trace" and ev.trace_id:
                recent = [(e.timestamp, e.event_id) for e in self.history.trace_events_of(
                    ev.tenant, ev.trace_id, HUMAN, self.cutoff or ev.timestamp)
                    if _kind(e) == "rejection"]
        recent = [(t, i) for t, i in recent if t > ev.timestamp - s["window_seconds"]]
        recent.append((ev.timestamp, ev.event_id))
        self.seen[key] = recent
        if len(recent) < s["count"]:
            return []
        where = f"trace {ev.trace_id}" if s["scope"] == "trace" else f"agent {ev.agent_name}"
        by = sorted({str((ev.params or {}).get("by"))} - {"None"})
        return [self.fire(
            ev, f"{len(recent)} human rejections of {ev.agent_name}",
            f"Humans rejected {ev.agent_name} {len(recent)} times within "
            f"{s['window_seconds']:g}s in {where} (threshold {s['count']}); last by "
            f"{', '.join(by) or 'unknown'}. The agent keeps proposing what people refuse.",
            [i for _, i in reversed(recent)], f"{key[1]}", rejections=len(recent))]


class BudgetRule(Rule):
    """An agent's cost or tokens in a UTC day crosses ``warn_at`` of its budget, then 100%."""

    name = "budget"

    def __init__(self, settings: dict[str, Any], history: History | None) -> None:
        super().__init__(settings, history)
        self.spend: BoundedDict[tuple[str, str, int], list[float]] = BoundedDict(10_000)

    def observe(self, ev: AuditEvent) -> list[Firing]:
        tokens = ev.token_count
        if tokens is None and (ev.prompt_tokens is not None or ev.completion_tokens is not None):
            tokens = (ev.prompt_tokens or 0) + (ev.completion_tokens or 0)
        if not tokens and not ev.cost_usd:
            return []
        day = int(ev.timestamp // 86400)
        key = (ev.tenant, ev.agent_name, day)
        spent = self.spend.get(key)
        if spent is None:
            spent = [0.0, 0.0]
            if self.history is not None:
                cost, toks = self.history.day_spend(ev.tenant, ev.agent_name, day * 86400.0,
                                                    self.cutoff or ev.timestamp)
                spent = [cost, float(toks)]
            self.spend[key] = spent
        before = list(spent)
        spent[0] += ev.cost_usd or 0.0
        spent[1] += tokens or 0
        out = []
        limits = {**self.settings, **self.settings["agents"].get(ev.agent_name, {})}
        for i, (metric, unit) in enumerate((("daily_cost_usd", "USD"), ("daily_tokens",
                                                                          "tokens"))):
            budget = float(limits.get(metric) or 0)
            if budget <= 0:
                continue
            for level, share in (("warning", float(limits["warn_at"])), ("exceeded", 1.0)):
                if before[i] < share * budget <= spent[i]:
                    sev = self.settings["severity"] if level == "exceeded" else "low"
                    out.append(self.fire(
                        ev, f"{ev.agent_name}: daily {unit} budget {level}",
                        f"{ev.agent_name} has spent {spent[i]:,.2f} {unit} today (UTC day "
                        f"{day}), {spent[i] / budget:.0%} of its budget {budget:,.2f}; "
                        f"{'the budget is exceeded' if level == 'exceeded' else 'warning at '}"
                        f"{'' if level == 'exceeded' else format(share, '.0%')}.",
                        [ev.event_id], f"{ev.agent_name}|{metric}|{day}|{level}", severity=sev,
                        metric=metric, spent=round(spent[i], 6), budget=budget, level=level))
        return out


class HandoffLoopRule(Rule):
    """Work handed back to an agent already in the trace's handoff chain (A→B→A)."""

    name = "handoff_loop"
    event_types = frozenset({"agent.handoff"})

    def __init__(self, settings: dict[str, Any], history: History | None) -> None:
        super().__init__(settings, history)
        self.chains: BoundedDict[tuple[str, str], tuple[list[str], list[str], int]] = \
            BoundedDict(_TRACES)

    def observe(self, ev: AuditEvent) -> list[Firing]:
        if ev.event_type != "agent.handoff":
            return []
        params = ev.params or {}
        src, dst = str(params.get("from_agent") or ev.agent_name), params.get("to_agent")
        if not dst:
            return []
        key = _trace_key(ev)
        state = self.chains.get(key)
        if state is None:
            state = ([], [], 0)
            if self.history is not None and ev.trace_id:
                for e in self.history.trace_events_of(ev.tenant, ev.trace_id, "agent.handoff",
                                                      self.cutoff or ev.timestamp):
                    p = e.params or {}
                    if p.get("to_agent"):
                        state = self._step(state, str(p.get("from_agent") or e.agent_name),
                                           str(p["to_agent"]), e.event_id)
        state = self._step(state, src, str(dst), ev.event_id)
        self.chains[key] = state
        path, ids, returns = state
        if returns <= self.settings["max_returns"]:
            return []
        return [self.fire(
            ev, f"Handoff loop in trace {ev.trace_id}: {' → '.join(path[-6:])}",
            f"Work went back to an agent that already had it {returns} time(s) in this trace "
            f"(allowed: {self.settings['max_returns']}): {' → '.join(path)}. The agents may be "
            "bouncing a task they cannot finish.",
            list(reversed(ids)), f"{ev.trace_id or ev.event_id}", path=path, returns=returns)]

    @staticmethod
    def _step(state: tuple[list[str], list[str], int], src: str, dst: str,
              event_id: str) -> tuple[list[str], list[str], int]:
        path, ids, returns = state
        if not path:
            path = [src]
        if dst in path:
            returns += 1
        return path + [dst], ids + [event_id], returns


class ActingAfterStopRule(Rule):
    """A human stopped an agent (``params.action`` in ``stop_actions``); it acts again."""

    name = "acting_after_stop"
    _QUIET = frozenset({"agent.error", "agent.security", "agent.compliance",
                        "agent.human_intervention"})

    def __init__(self, settings: dict[str, Any], history: History | None) -> None:
        super().__init__(settings, history)
        self.stops = frozenset(settings["stop_actions"])
        self.resumes = frozenset(settings["resume_actions"])
        self.stopped: dict[tuple[str, str], tuple[float, str] | None] = {}

    def _command(self, ev: AuditEvent) -> tuple[str, str] | None:
        """(target agent, stop|resume) of a human command, or None."""
        params = ev.params or {}
        action = str(params.get("action") or params.get("command") or "").lower()
        kind = "stop" if action in self.stops else "resume" if action in self.resumes else None
        if kind is None:
            return None
        return str(params.get("target_agent") or ev.agent_name), kind

    def observe(self, ev: AuditEvent) -> list[Firing]:
        if ev.event_type == HUMAN:
            cmd = self._command(ev)
            if cmd is not None:
                target, kind = cmd
                self.stopped[(ev.tenant, target)] = (
                    (ev.timestamp, ev.event_id) if kind == "stop" else None)
            return []
        key = (ev.tenant, ev.agent_name)
        if key not in self.stopped:
            self.stopped[key] = None if self.history is None else self.history.last_stop(
                ev.tenant, ev.agent_name, self.cutoff or ev.timestamp,
                sorted(self.stops), sorted(self.resumes))
        stop = self.stopped[key]
        if stop is None or ev.event_type in self._QUIET:
            return []
        at, stop_id = stop
        if ev.timestamp - at <= self.settings["grace_seconds"]:
            return []
        if ev.event_type == "agent.decision" and ev.action == "finish":
            return []
        return [self.fire(
            ev, f"{ev.agent_name} acted after being stopped",
            f"{ev.agent_name} recorded {ev.event_type} ({ev.action or '-'}) "
            f"{ev.timestamp - at:,.0f}s after a human stopped it (event {stop_id}) and before "
            "any resume.", [ev.event_id, stop_id], f"{ev.agent_name}|{stop_id}",
            stop_event=stop_id, seconds_after_stop=round(ev.timestamp - at, 3))]
