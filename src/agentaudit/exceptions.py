"""The exception hierarchy of agentaudit. Every error the package raises on purpose is one of these::

    AuditError
    ├── ConfigError            bad settings, key files, URLs
    ├── ValidationError        an event field is wrong (names the field)
    ├── StoreError             the store cannot be opened, read or written
    │   └── NotFound           a trace, session, event or agent is not in the store
    ├── IntegrityError         the log does not verify
    │   └── TamperDetected     names the first bad seq / event_id and the kind of damage
    └── IngestError            a request to the collector is unacceptable
        └── BadRequest
            └── UnsupportedMediaType   (agentaudit.ingest.otlp; HTTP 415)

The SDK never lets any of these reach agent code; the CLI turns them into one-line messages.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "BadRequest",
    "ConfigError",
    "IngestError",
    "IntegrityError",
    "NotFound",
    "StoreError",
    "TamperDetected",
    "ValidationError",
]


class AuditError(Exception):
    """Root of every error agentaudit raises on purpose."""


class ConfigError(AuditError):
    """Settings, URLs or key material are unusable."""


class ValidationError(AuditError, ValueError):
    """An event field has a wrong type or value; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid event field {field!r}: {reason}")
        self.field = field
        self.reason = reason


class StoreError(AuditError):
    """The store could not be opened, read or written."""


class NotFound(StoreError):
    """A requested trace, session, agent or event does not exist."""


class IntegrityError(AuditError):
    """The audit log does not verify."""


class TamperDetected(IntegrityError):
    """Verification found damage: ``kind`` at ``seq`` / ``event_id``."""

    def __init__(self, kind: str, message: str, seq: int | None = None, event_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.seq = seq
        self.event_id = event_id


class IngestError(AuditError):
    """A request to the collector cannot be accepted."""


class BadRequest(IngestError):
    """The request body or parameters are malformed (HTTP 400)."""
