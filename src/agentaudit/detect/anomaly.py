"""Behaviour against the agent's own baseline.

Per agent, fixed buckets (``bucket_seconds``) count tool calls, errors and tokens. The baseline
of a metric is its last ``window_buckets`` closed buckets (idle buckets count as zero, from the
agent's first activity on). A bucket fires when its running count reaches
``z = (count - mean) / sd >= z_threshold`` and ``count >= min_count``; ``sd`` is floored at
``sqrt(mean)`` (Poisson noise) and 1, so a flat baseline does not make every blip infinite.
The alert states count, mean, sd and z. Also: a tool the agent never used in its history (once
it has a history), and activity in an hour of day that holds almost none of its events.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Any

from agentaudit.detect._base import History, Rule
from agentaudit.detect.firing import Firing
from agentaudit.events import AuditEvent

__all__ = ["AnomalyRule", "RollingBaseline"]

_LABEL = {"tool_calls": "tool calls", "errors": "errors", "tokens": "tokens"}
_INDEX = {"tool_calls": 0, "errors": 1, "tokens": 2}
# What counts as activity for the hours of day an agent works: starting work, calling tools,
# failing (not every step it records).
_ACTIVITY = frozenset({"agent.invocation", "agent.tool_call", "agent.error"})


class RollingBaseline:
    """Counts per fixed bucket; mean and sd of the last ``window`` closed buckets."""

    __slots__ = ("bucket", "count", "fired", "history", "sum", "sumsq", "width")

    def __init__(self, width: int, window: int) -> None:
        self.width = width
        self.history: collections.deque[float] = collections.deque(maxlen=window)
        self.sum = self.sumsq = 0.0
        self.bucket: int | None = None
        self.count = 0.0
        self.fired = False

    def _push(self, value: float) -> None:
        h = self.history
        if len(h) == h.maxlen:
            old = h[0]
            self.sum -= old
            self.sumsq -= old * old
        h.append(value)
        self.sum += value
        self.sumsq += value * value

    def seed(self, counts: dict[int, float], current: int) -> None:
        """Load history: ``counts`` by bucket index; ``current`` is the open bucket."""
        if not any(counts.values()):
            return  # no history: the baseline starts with the agent's first activity
        past = [b for b in counts if b < current]
        if past:
            start = max(min(past), current - (self.history.maxlen or 0))
            for b in range(start, current):
                self._push(counts.get(b, 0.0))
        self.bucket = current
        self.count = counts.get(current, 0.0)

    def add(self, ts: float, amount: float) -> bool:
        """Count ``amount`` at ``ts``; True when it landed in the open bucket (not a late one)."""
        b = int(ts // self.width)
        if self.bucket is None:
            self.bucket = b
        elif b > self.bucket:
            gap = min(b - self.bucket - 1, self.history.maxlen or 0)
            self._push(self.count)
            for _ in range(gap):
                self._push(0.0)
            self.bucket, self.count, self.fired = b, 0.0, False
        elif b < self.bucket:
            return False
        self.count += amount
        return True

    def stats(self) -> tuple[float, float, int]:
        """(mean, floored sd, buckets) of the baseline."""
        n = len(self.history)
        if n == 0:
            return 0.0, 1.0, 0
        mean = self.sum / n
        var = max(0.0, self.sumsq / n - mean * mean)
        return mean, max(math.sqrt(var), math.sqrt(mean), 1.0), n


class _Agent:
    __slots__ = ("calls", "first_seen", "hours", "indexed", "metrics", "tools", "total")

    def __init__(self, metrics: dict[str, RollingBaseline]) -> None:
        self.metrics = metrics
        self.indexed = [(_INDEX[m], m, b) for m, b in metrics.items()]
        self.tools: set[str] = set()
        self.calls = 0  # tool calls seen (history included)
        self.hours = [0] * 24
        self.total = 0
        self.first_seen: float | None = None


def _amounts(ev: AuditEvent) -> tuple[float, float, float]:
    """(tool calls, errors, tokens) this event adds."""
    et = ev.event_type
    tokens = ev.token_count
    if tokens is None and (ev.prompt_tokens is not None or ev.completion_tokens is not None):
        tokens = (ev.prompt_tokens or 0) + (ev.completion_tokens or 0)
    return (1.0 if et == "agent.tool_call" else 0.0, 1.0 if et == "agent.error" else 0.0,
            float(tokens or 0))


class AnomalyRule(Rule):
    name = "anomaly"

    def __init__(self, settings: dict[str, Any], history: History | None) -> None:
        super().__init__(settings, history)
        self.width = int(settings["bucket_seconds"])
        self.window = int(settings["window_buckets"])
        self.agents: dict[tuple[str, str], _Agent] = {}
        self.baseline_seconds = 168 * 3600.0
        self.new_tool = bool(settings["new_tool"])
        self.new_tool_min_calls = settings["new_tool_min_calls"]
        self.unusual_hour = bool(settings["unusual_hour"])
        self.hour_min_events = settings["unusual_hour_min_events"]
        self.hour_max_share = settings["unusual_hour_max_share"]
        self.hour_min_seconds = float(settings["unusual_hour_min_days"]) * 86400

    def _agent(self, ev: AuditEvent) -> _Agent:
        key = (ev.tenant, ev.agent_name)
        state = self.agents.get(key)
        if state is None:
            metrics = {m: RollingBaseline(self.width, self.window)
                       for m in self.settings["metrics"]}
            state = _Agent(metrics)
            self._warm(ev, state)
            self.agents[key] = state
        return state

    def _warm(self, ev: AuditEvent, state: _Agent) -> None:
        if self.history is None:
            return
        cutoff = self.cutoff or ev.timestamp
        h = self.history.agent_history(ev.tenant, ev.agent_name, cutoff - self.baseline_seconds,
                                       cutoff, self.width)
        current = int(cutoff // self.width)
        for metric, base in state.metrics.items():
            base.seed(h.get(metric, {}), current)
        state.tools = set(h.get("tools", ()))
        state.calls = int(h.get("calls", 0))
        state.hours = list(h.get("hours", [0] * 24))
        state.total = sum(state.hours)
        state.first_seen = h.get("first_seen")

    def observe(self, ev: AuditEvent) -> list[Firing]:
        et = ev.event_type
        active = et in _ACTIVITY
        if not active and ev.token_count is None and ev.prompt_tokens is None \
                and ev.completion_tokens is None:
            return []  # nothing this rule counts
        state = self.agents.get((ev.tenant, ev.agent_name)) or self._agent(ev)
        if state.first_seen is None:
            state.first_seen = ev.timestamp
        out: list[Firing] = []
        s = self.settings
        amounts = _amounts(ev)
        for i, metric, base in state.indexed:
            amount = amounts[i]
            if amount and base.add(ev.timestamp, amount) and not base.fired:
                firing = self._check(ev, metric, base)
                if firing is not None:
                    base.fired = True
                    out.append(firing)
        if ev.event_type == "agent.tool_call" and ev.action:
            if (self.new_tool and ev.action not in state.tools
                    and state.calls >= self.new_tool_min_calls):
                out.append(self.fire(
                    ev, f"{ev.agent_name} used a tool it never used before: {ev.action}",
                    f"{ev.agent_name} called {ev.action!r} for the first time after "
                    f"{state.calls} calls of {len(state.tools)} other tool(s) "
                    f"({', '.join(sorted(state.tools)[:8])}).",
                    [ev.event_id], f"{ev.agent_name}|new_tool|{ev.action}",
                    metric="new_tool", tool=ev.action, known_tools=sorted(state.tools)[:50],
                    calls_before=state.calls))
            state.tools.add(ev.action)
            state.calls += 1
        if not active:
            return out
        hour = int(ev.timestamp // 3600) % 24
        if (self.unusual_hour and state.total >= self.hour_min_events
                and state.hours[hour] < self.hour_max_share * state.total
                and ev.timestamp - state.first_seen >= self.hour_min_seconds):
            share = state.hours[hour] / state.total
            day = int(ev.timestamp // 86400)
            out.append(self.fire(
                ev, f"{ev.agent_name} active at an unusual hour ({hour:02d}:00 UTC)",
                f"{ev.agent_name} acted at {hour:02d}:00-{hour:02d}:59 UTC; only "
                f"{state.hours[hour]} of its {state.total} baseline events "
                f"({share:.2%}) over {(ev.timestamp - state.first_seen) / 86400:.1f} days fall "
                f"in that hour (threshold "
                f"{s['unusual_hour_max_share']:.2%}).",
                [ev.event_id], f"{ev.agent_name}|hour|{day}|{hour}",
                metric="unusual_hour", hour=hour, share=round(share, 6),
                baseline_events=state.total))
        state.hours[hour] += 1
        state.total += 1
        return out

    def _check(self, ev: AuditEvent, metric: str, base: RollingBaseline) -> Firing | None:
        s = self.settings
        mean, sd, n = base.stats()
        if n < s["min_baseline_buckets"] or base.count < s["min_count"]:
            return None
        z = (base.count - mean) / sd
        threshold = float(s["z_by_metric"].get(metric, s["z_threshold"]))
        if z < threshold:
            return None
        label = _LABEL[metric]
        minutes = self.width / 60
        start = base.bucket * self.width if base.bucket is not None else ev.timestamp
        return self.fire(
            ev, f"{ev.agent_name}: {label} far above its baseline",
            f"{ev.agent_name} reached {base.count:g} {label} in the {minutes:g}-minute bucket "
            f"from {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))}; its baseline "
            f"over the previous {n} buckets is {mean:.2f} \u00b1 {sd:.2f}, so z = {z:.1f} "
            f"(threshold {threshold:g}).",
            [ev.event_id], f"{ev.agent_name}|{metric}|{base.bucket}",
            metric=metric, count=base.count, mean=round(mean, 4), sd=round(sd, 4),
            z=round(z, 2), baseline_buckets=n, bucket_seconds=self.width,
            bucket_start=start)
