"""agentaudit: an audit-grade, tamper-evident flight recorder for multi-agent AI systems."""

from __future__ import annotations

from agentaudit.events import AuditEvent, EventType, HumanKind
from agentaudit.exceptions import AuditError

__all__ = ["AuditError", "AuditEvent", "AuditLogger", "EventType", "HumanKind", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The SDK is imported lazily so that ``agentaudit trace`` starts fast.
    if name == "AuditLogger":
        from agentaudit.sdk.logger import AuditLogger

        return AuditLogger
    raise AttributeError(f"module 'agentaudit' has no attribute {name!r}")
