"""Test helpers for users of agentaudit: assert on the audit events your agents emit.

    from agentaudit.testing import capture_events

    with capture_events() as events:
        run_my_agent()
    assert [e.event_type for e in events][:1] == ["agent.invocation"]
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from agentaudit.events import AuditEvent

__all__ = ["CapturedEvents", "capture_events"]


class CapturedEvents(list[AuditEvent]):
    """The events recorded while capturing, in the order they were logged, with filters."""

    def of_type(self, event_type: str) -> list[AuditEvent]:
        return [e for e in self if e.event_type == event_type]

    def by_agent(self, agent_name: str) -> list[AuditEvent]:
        return [e for e in self if e.agent_name == agent_name]

    def actions(self) -> list[str | None]:
        return [e.action for e in self]


@contextmanager
def capture_events() -> Iterator[CapturedEvents]:
    """Collect every event any ``AuditLogger`` of this process records inside the block.

    Events still go to the logger's store as usual; capturing only observes them.
    """
    from agentaudit.sdk.logger import CAPTURE_HOOKS

    captured = CapturedEvents()
    lock = threading.Lock()

    def hook(ev: AuditEvent) -> None:
        with lock:
            captured.append(ev)

    CAPTURE_HOOKS.append(hook)
    try:
        yield captured
    finally:
        CAPTURE_HOOKS.remove(hook)
