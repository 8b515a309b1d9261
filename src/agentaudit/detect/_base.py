"""What every rule shares: its settings, the firing it builds, payload text and the history
interface the engine warms its state from."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from agentaudit.detect.firing import Firing
from agentaudit.events import AuditEvent

__all__ = ["BoundedDict", "History", "Rule", "event_text", "payload_texts"]

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


_json = msgspec.json.Encoder(enc_hook=repr).encode


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    # JSON in C is far cheaper than walking the structure in Python; newlines come back so
    # that line-anchored patterns still see them.
    return _json(value).decode("utf-8", "replace").replace("\\n", "\n")


def event_text(ev: AuditEvent, max_chars: int = 20000, params_only: bool = False) -> str:
    """The payload of an event as one text: params, result, reasoning and error (``params``
    and ``result`` as JSON unless they are strings), one per line; longer than ``max_chars``,
    its first and last halves."""
    values = (ev.params,) if params_only else (ev.params, ev.result, ev.reasoning, ev.error)
    parts = [_text_of(v) for v in values if v is not None]
    text = parts[0] if len(parts) == 1 else "\n".join(parts)
    if len(text) > max_chars:
        half = max_chars // 2
        text = text[:half] + "\n" + text[-half:]
    return text


def payload_texts(ev: AuditEvent, max_chars: int = 20000) -> list[str]:
    """``[event_text(ev)]``, or ``[]`` when the event has no payload text."""
    text = event_text(ev, max_chars)
    return [text] if text else []


class Rule:
    """A detection rule: ``observe`` each stored event in time order, return its firings."""

    name = "?"
    event_types: frozenset[str] | None = None  # the types it observes (None: every event)

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
