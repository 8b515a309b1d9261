"""What every rule shares: its settings, the firing it builds, payload text and the history
interface the engine warms its state from."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

from agentaudit.detect.firing import Firing
from agentaudit.events import AuditEvent

__all__ = ["BoundedDict", "History", "Rule", "payload_texts"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently set keys beyond ``limit`` (per-trace state)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        if len(self) > self.limit:
            self.popitem(last=False)


class History(Protocol):
    """Read access to what was stored before ``before`` (a timestamp): the engine asks once per
    agent or trace, so a restarted collector keeps its baselines and trace state."""

    def agent_history(self, tenant: str, agent: str, since: float, before: float,
                      bucket_seconds: int) -> dict[str, Any]: ...
    def day_spend(self, tenant: str, agent: str, day_start: float,
                  before: float) -> tuple[float, int]: ...
    def trace_events_of(self, tenant: str, trace_id: str, event_type: str,
                        before: float) -> list[AuditEvent]: ...
    def last_stop(self, tenant: str, agent: str, before: float, stop_actions: list[str],
                  resume_actions: list[str]) -> tuple[float, str] | None: ...


def _strings(obj: Any, out: list[str], budget: list[int]) -> None:
    if budget[0] <= 0:
        return
    if isinstance(obj, str):
        out.append(obj)
        budget[0] -= len(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _strings(v, out, budget)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _strings(v, out, budget)


def payload_texts(ev: AuditEvent, max_chars: int = 20000) -> list[str]:
    """The strings of an event's params, result, reasoning and error (up to ``max_chars``)."""
    out: list[str] = []
    budget = [max_chars]
    for value in (ev.params, ev.result, ev.reasoning, ev.error):
        if value is not None:
            _strings(value, out, budget)
    return out


class Rule:
    """A detection rule: ``observe`` each stored event in time order, return its firings."""

    name = "?"

    def __init__(self, settings: dict[str, Any], history: History | None) -> None:
        self.settings = settings
        self.history = history
        self.cutoff = 0.0  # events before this are in ``history``; after it the engine feeds us

    def observe(self, ev: AuditEvent) -> list[Firing]:
        raise NotImplementedError

    def fire(self, ev: AuditEvent, title: str, explanation: str, evidence: list[str],
             key: str, severity: str | None = None, **details: Any) -> Firing:
        s = self.settings
        return Firing(rule=self.name, severity=severity or s["severity"], kind=s["kind"],
                      title=title, explanation=explanation, evidence=evidence,
                      tenant=ev.tenant, agent=ev.agent_name, timestamp=ev.timestamp,
                      dedup_key=f"{ev.tenant}|{self.name}|{key}", trace_id=ev.trace_id,
                      task_id=ev.task_id, session_id=ev.session_id, details=details)
