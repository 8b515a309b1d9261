"""The demo's simulation primitives: simulated time, deterministic ids, tools, models and faults.

Everything random comes from seeded ``random.Random`` instances, so one seed and one ``now`` give
the same events, ids included.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Any

from agentaudit.sdk.context import Trace

__all__ = [
    "MODEL_PRICES",
    "TOOLS",
    "TOOL_ERRORS",
    "ArrivalCurve",
    "RateLimitError",
    "SimClock",
    "Simulation",
    "ToolSpec",
    "ValidationError",
    "cost_usd",
]


class RateLimitError(Exception):
    """A provider answered HTTP 429."""


class ValidationError(Exception):
    """A tool or model rejected its input (the agent's own, not agentaudit's)."""


TOOL_ERRORS = (TimeoutError, RateLimitError, ValidationError)

# USD per million tokens (input, output), as listed by the providers in 2025.
MODEL_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "text-embedding-3-small": (0.02, 0.0),
}
# Output tokens per second, for simulated generation latency.
_SPEED = {"gpt-4o": 90.0, "gpt-4o-mini": 140.0, "claude-sonnet-4": 75.0,
          "claude-3-5-haiku": 130.0, "text-embedding-3-small": 1e9}
_PROVIDER = {"gpt-4o": "OpenAI", "gpt-4o-mini": "OpenAI", "claude-sonnet-4": "Anthropic",
             "claude-3-5-haiku": "Anthropic", "text-embedding-3-small": "OpenAI"}


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """What a call cost, from ``MODEL_PRICES``."""
    inp, out = MODEL_PRICES[model]
    return round((prompt_tokens * inp + completion_tokens * out) / 1e6, 8)


@dataclass(frozen=True)
class ToolSpec:
    """A tool's latency (lognormal: median and sigma, in seconds), timeout and fault rates."""

    median: float
    sigma: float
    timeout: float
    p_timeout: float = 0.0
    p_rate_limit: float = 0.0
    p_invalid: float = 0.0


TOOLS: dict[str, ToolSpec] = {
    "lookup_customer": ToolSpec(0.08, 0.5, 5, 0.01, 0.01, 0.01),
    "get_order": ToolSpec(0.12, 0.5, 5, 0.02, 0.0, 0.03),
    "track_shipment": ToolSpec(0.6, 0.7, 10, 0.08, 0.05),
    "search_kb": ToolSpec(0.35, 0.4, 8, 0.03, 0.01),
    "update_customer": ToolSpec(0.15, 0.4, 5, 0.01, 0.0, 0.10),
    "get_invoice": ToolSpec(0.15, 0.5, 5, 0.02, 0.01),
    "process_refund": ToolSpec(1.8, 0.5, 30, 0.06, 0.04, 0.02),
    "charge_card": ToolSpec(0.9, 0.5, 20, 0.05, 0.08, 0.03),
    "send_email": ToolSpec(0.45, 0.6, 10, 0.03, 0.06),
    "web_search": ToolSpec(1.2, 0.6, 10, 0.12, 0.12),
    "fetch_url": ToolSpec(0.7, 0.9, 10, 0.22, 0.03),
    "read_file": ToolSpec(0.02, 0.5, 2),
    "write_file": ToolSpec(0.04, 0.5, 2, 0.0, 0.0, 0.06),
    "run_tests": ToolSpec(25.0, 0.6, 120, 0.10),
    "create_pull_request": ToolSpec(1.1, 0.4, 15, 0.03, 0.08),
    "queue_manual_refund": ToolSpec(0.25, 0.3, 5),
}

# Scales every tool fault rate above; tuned so that about 4% of all events are agent.error.
FAULT_SCALE = 1.55

_RATE_LIMIT_TEXT = {
    "process_refund": "payment provider returned 429 Too Many Requests (refunds: 25/s); "
                      "retry after {s:.1f}s",
    "charge_card": "payment provider returned 429 Too Many Requests (charges: 100/s); "
                   "retry after {s:.1f}s",
    "web_search": "search API quota exceeded (100 requests/min); retry after {s:.1f}s",
    "send_email": "SMTP relay throttled: 120 messages/min for sender support@; "
                  "retry after {s:.1f}s",
    "create_pull_request": "GitHub API secondary rate limit hit; retry after {s:.1f}s",
}
_INVALID_TEXT = {
    "lookup_customer": "lookup_customer: email 'jane.doe@' is not a valid address",
    "get_order": "get_order: order_id 'ORD-{n}' does not match ^ORD-\\d{{6}}$",
    "update_customer": "update_customer: field 'phone' must be E.164, got '0{n}'",
    "process_refund": "process_refund: amount exceeds the captured charge for the order",
    "charge_card": "charge_card: card expired (exp 0{m}/24)",
    "write_file": "write_file: path '../.env' is outside the workspace",
}


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class SimClock:
    """Simulated time (the logger's ``clock``) and UUIDv7-shaped ids (its ``id_factory``)."""

    __slots__ = ("_bits", "_ms", "_prefix", "made", "t")

    def __init__(self, seed: int, t: float) -> None:
        self.t = t
        self._bits = random.Random(f"agentaudit-demo-ids:{seed}").getrandbits
        self._ms = -1
        self._prefix = ""
        self.made = 0  # ids handed out = events built

    def now(self) -> float:
        return self.t

    def new_id(self) -> str:
        """A UUIDv7: the simulated millisecond, version 7, variant and 74 seeded random bits."""
        self.made += 1
        ms = int(self.t * 1000)
        if ms != self._ms:
            self._ms = ms
            h = f"{ms:012x}"
            self._prefix = f"{h[:8]}-{h[8:]}-7"
        r = self._bits(76).to_bytes(10, "big").hex()  # r[0] is always "0"
        return self._prefix + r[1:4] + "-" + _VARIANT[r[4]] + r[5:8] + "-" + r[8:]

    def sortable_id(self, prefix: str) -> str:
        """A short id that sorts by simulated time (so the store's indexes grow at one end)."""
        return f"{prefix}{int(self.t * 1000):011x}{self._bits(24):06x}"

    def new_trace_id(self) -> str:
        """A W3C trace id (32 hex digits) that sorts by simulated time."""
        return f"{int(self.t * 1000):012x}{self._bits(80):020x}"


@dataclass(frozen=True)
class _Window:
    """A period in which one tool fails far more often (a degraded dependency)."""

    start: float
    end: float
    tool: str
    factor: float


class Simulation:
    """Shared state of a demo run: time, randomness, tool and model behaviour."""

    def __init__(self, sim: SimClock, rng: random.Random, start: float, end: float,
                 incident_at: float) -> None:
        self.sim = sim
        self.rng = rng
        self.windows = [_Window(incident_at - 5400, incident_at + 1800, "process_refund", 6.0)]
        span = max(end - start, 1.0)
        for tool, hours, factor in (("web_search", 3, 5.0), ("charge_card", 1.5, 6.0),
                                    ("fetch_url", 2, 3.0), ("track_shipment", 4, 5.0)):
            at = start + rng.random() * span
            self.windows.append(_Window(at, at + hours * 3600, tool, factor))
        self.llm_storm = start + rng.random() * span  # an hour of 429s from one provider
        self.storm_provider = rng.choice(("OpenAI", "Anthropic"))

    # -- time ----------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        self.sim.t += seconds

    def think(self) -> None:
        """A few milliseconds of agent bookkeeping between steps."""
        self.sim.t += 0.004 + self.rng.random() * 0.05

    def human_wait(self, median: float = 240.0) -> None:
        """Minutes pass while a person reads and answers (capped at 40 minutes)."""
        self.sim.t += min(self.rng.lognormvariate(math.log(median), 0.9), 2400.0)

    # -- tools ---------------------------------------------------------------------------------

    def _fault(self, name: str, spec: ToolSpec) -> Exception | None:
        now = self.sim.t
        factor = FAULT_SCALE
        for w in self.windows:
            if w.tool == name and w.start <= now < w.end:
                factor *= w.factor
        x = self.rng.random()
        if x < spec.p_timeout * factor:
            return TimeoutError(f"{name} timed out after {spec.timeout:g}s")
        x -= spec.p_timeout * factor
        if x < spec.p_rate_limit * factor:
            text = _RATE_LIMIT_TEXT.get(name, "429 Too Many Requests; retry after {s:.1f}s")
            return RateLimitError(text.format(s=0.5 + self.rng.random() * 4))
        x -= spec.p_rate_limit * factor
        if x < spec.p_invalid * FAULT_SCALE:
            text = _INVALID_TEXT.get(name, f"{name}: request failed schema validation")
            return ValidationError(text.format(n=self.rng.randrange(1000, 99999),
                                               m=self.rng.randrange(1, 9)))
        return None

    def tool(self, t: Trace, name: str, params: dict[str, Any], result: Any,
             retries: int = 2) -> tuple[bool, Any]:
        """Call a tool inside ``t`` with simulated latency and faults, retrying with backoff.

        Returns ``(True, result)`` or ``(False, last_exception)``; every failure is logged by
        the SDK as agent.error because it is raised inside the ``tool_call`` block.
        """
        spec = TOOLS[name]
        rng = self.rng
        for attempt in range(retries + 1):
            fault = self._fault(name, spec)
            try:
                with t.tool_call(name, params) as call:
                    if fault is None:
                        self.sim.t += min(rng.lognormvariate(math.log(spec.median), spec.sigma),
                                          spec.timeout * 0.9)
                        call.result = result
                    else:
                        self.sim.t += (spec.timeout if isinstance(fault, TimeoutError)
                                       else 0.05 + rng.random() * 0.3)
                        raise fault
                return True, result
            except TOOL_ERRORS as e:
                if isinstance(e, ValidationError) or attempt == retries:
                    return False, e
                self.sim.t += (2 ** attempt) * (0.5 + rng.random())  # exponential backoff
        raise AssertionError("unreachable")

    # -- models --------------------------------------------------------------------------------

    def llm(self, t: Trace, model: str, prompt: int, completion: int, output: Any = None, *,
            metered_only: bool = False) -> None:
        """One model call: agent.llm_response with its output (or, for internal calls such as
        planning and embeddings, only agent.token_usage), with tokens, latency and cost."""
        rng = self.rng
        prompt = max(1, int(prompt * (0.7 + rng.random() * 0.6)))
        completion = max(0, int(completion * (0.5 + rng.random())))
        provider = _PROVIDER[model]
        p_429 = 0.03
        if provider == self.storm_provider and 0 <= self.sim.t - self.llm_storm < 3600:
            p_429 = 0.25
        if rng.random() < p_429:
            self.sim.t += 0.2 + rng.random() * 0.4
            wait = 1.0 + rng.random() * 6
            t.error(RateLimitError(f"{provider} API 429: rate limit reached for {model} "
                                   f"(tokens per min); retry after {wait:.1f}s"),
                    action="llm_call", model=model)
            self.sim.t += wait
        latency = (rng.lognormvariate(math.log(0.45), 0.4) + completion / _SPEED[model])
        self.sim.t += latency
        cost = cost_usd(model, prompt, completion)
        ms = round(latency * 1000, 1)
        if metered_only:
            t.token_usage(model, prompt, completion, cost_usd=cost, duration_ms=ms)
        else:
            t.llm_response(model, output, prompt, completion, cost_usd=cost, duration_ms=ms)

    def schema_error(self, t: Trace, model: str, detail: str) -> bool:
        """Now and then a model's structured output fails validation and is asked again."""
        if self.rng.random() >= 0.04:
            return False
        t.error(ValidationError(f"{model} output failed schema validation: {detail}"),
                action="parse_llm_output", model=model)
        return True


class ArrivalCurve:
    """Traffic over the period: busier on weekday afternoons (UTC), quieter at night and on
    weekends. ``at(p)`` maps a fraction of the work done to a time (the inverse CDF)."""

    _HOURLY = (0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.5, 0.8, 1.1, 1.3, 1.4, 1.45, 1.4, 1.45, 1.5,
               1.5, 1.4, 1.2, 1.0, 0.85, 0.7, 0.55, 0.4, 0.3)

    def __init__(self, start: float, end: float) -> None:
        self.edges = [start]
        self.cum = [0.0]
        t = start
        while t < end:
            nxt = min(end, (t // 3600 + 1) * 3600)
            hour = int(t // 3600)
            weekend = ((hour // 24) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
            w = self._HOURLY[hour % 24] * (0.55 if weekend else 1.0) * (nxt - t)
            self.edges.append(nxt)
            self.cum.append(self.cum[-1] + w)
            t = nxt

    def at(self, p: float) -> float:
        target = min(max(p, 0.0), 1.0) * self.cum[-1]
        i = min(max(bisect.bisect_right(self.cum, target), 1), len(self.cum) - 1)
        lo, hi = self.cum[i - 1], self.cum[i]
        frac = (target - lo) / (hi - lo) if hi > lo else 0.0
        return self.edges[i - 1] + frac * (self.edges[i] - self.edges[i - 1])
