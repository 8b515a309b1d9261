"""``ServerSettings``: everything ``agentaudit serve`` can be told, in one validated object.

Defaults come from documented ``AGENTAUDIT_*`` environment variables (``from_env``); explicit
values (command-line flags) win over them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from agentaudit.exceptions import ConfigError
from agentaudit.store import default_store_url

__all__ = ["ENV_VARS", "ServerSettings", "is_loopback"]

MiB = 1024 * 1024
MAX_WORKERS = 64

# Setting name -> environment variable read by ``ServerSettings.from_env``.
ENV_VARS: dict[str, str] = {
    "host": "AGENTAUDIT_HOST",
    "port": "AGENTAUDIT_PORT",
    "db": "AGENTAUDIT_DB",
    "auth_disabled": "AGENTAUDIT_NO_AUTH",
    "max_body_bytes": "AGENTAUDIT_MAX_BODY_BYTES",
    "max_decompressed_bytes": "AGENTAUDIT_MAX_DECOMPRESSED_BYTES",
    "max_batch_events": "AGENTAUDIT_MAX_BATCH_EVENTS",
    "max_event_bytes": "AGENTAUDIT_MAX_EVENT_BYTES",
    "queue_max_events": "AGENTAUDIT_QUEUE_EVENTS",
    "commit_interval": "AGENTAUDIT_COMMIT_INTERVAL",
    "max_commit_events": "AGENTAUDIT_MAX_COMMIT_EVENTS",
    "synchronous": "AGENTAUDIT_SYNCHRONOUS",
    "sse_heartbeat": "AGENTAUDIT_SSE_HEARTBEAT",
    "sse_poll_interval": "AGENTAUDIT_SSE_POLL_INTERVAL",
    "retry_after": "AGENTAUDIT_RETRY_AFTER",
    "redact": "AGENTAUDIT_REDACT",
    "redact_config": "AGENTAUDIT_REDACT_CONFIG",
    "retention_interval": "AGENTAUDIT_RETENTION_INTERVAL",
    "retention_config": "AGENTAUDIT_RETENTION_CONFIG",
    "detect": "AGENTAUDIT_DETECT",
    "detect_rules": "AGENTAUDIT_DETECT_RULES",
    "workers": "AGENTAUDIT_WORKERS",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """How the collector listens, where it stores, and the limits it enforces.

    ``max_body_bytes`` caps the body as sent (before decompression), ``max_decompressed_bytes``
    after it; ``max_batch_events`` caps events (or spans) per request and ``max_event_bytes`` one
    event's JSON. The writer holds at most ``queue_max_events`` events waiting to commit; beyond
    that requests are refused (503 with ``Retry-After: retry_after``) instead of buffered. It
    commits whatever is waiting, up to ``max_commit_events`` per transaction, after waiting
    ``commit_interval`` seconds for more to arrive (0: commit as soon as the last commit ends).
    ``sse_poll_interval`` is how often the live feed looks for events that other processes
    wrote to the store. ``redact`` turns redaction at ingest on (the default policy, or the TOML file
    ``redact_config``); see docs/redaction.md. Every ``retention_interval`` seconds (0: never)
    the writer applies the retention policy of ``retention_config`` (docs/retention.md).
    ``detect`` runs the detection rules on what is stored (the packaged rules, or the TOML file
    ``detect_rules``, whose ``[alerts]`` table names the alert sinks); see docs/detection.md.
    ``workers`` processes share the listening socket, each with its own writer on the same store
    (``agentaudit.server.workers``; docs/deploy.md).
    """

    host: str = "127.0.0.1"
    port: int = 4318
    db: str = field(default_factory=default_store_url)
    auth_disabled: bool = False
    max_body_bytes: int = 16 * MiB
    max_decompressed_bytes: int = 64 * MiB
    max_batch_events: int = 10_000
    max_event_bytes: int = 1 * MiB
    queue_max_events: int = 200_000
    commit_interval: float = 0.0
    max_commit_events: int = 20_000
    synchronous: str = "full"
    sse_heartbeat: float = 15.0
    sse_poll_interval: float = 0.5
    retry_after: int = 1
    read_pool_size: int = 8
    redact: bool = True
    redact_config: str = ""
    retention_interval: float = 3600.0
    retention_config: str = ""
    detect: bool = True
    detect_rules: str = ""
    workers: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not between 0 and 65535")
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_batch_events",
                     "max_event_bytes", "queue_max_events", "max_commit_events",
                     "read_pool_size", "retry_after"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)!r}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers must be between 1 and {MAX_WORKERS}, not "
                              f"{self.workers!r}")
        if self.retention_interval < 0:
            raise ConfigError(f"retention_interval must be >= 0 seconds (0 turns periodic "
                              f"retention off), not {self.retention_interval!r}")
        if self.commit_interval < 0 or self.sse_heartbeat <= 0 or self.sse_poll_interval <= 0:
            raise ConfigError("commit_interval must be >= 0, sse_heartbeat and "
                              "sse_poll_interval > 0")
        if self.synchronous not in ("full", "normal", "extra"):
            raise ConfigError(f"synchronous must be full, normal or extra (durable), "
                              f"not {self.synchronous!r}")
        if self.auth_disabled and not is_loopback(self.host):
            raise ConfigError(f"refusing to disable authentication on the non-loopback address "
                              f"{self.host!r}: bind 127.0.0.1 or create API keys "
                              "(agentaudit keys create)")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings from ``AGENTAUDIT_*`` variables; ``overrides`` that are not None win."""
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name, var in ENV_VARS.items():
            raw = os.environ.get(var)
            if raw is not None and (name != "db" or raw):
                values[name] = _parse(var, raw, str(types[name]))
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(types)
        if unknown:
            raise ConfigError(f"unknown server settings: {sorted(unknown)}")
        return cls(**values)

    def replace(self, **changes: Any) -> ServerSettings:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


def _parse(var: str, raw: str, kind: str) -> Any:
    try:
        if kind == "bool":
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(raw)
            return low in _TRUE
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as e:
        raise ConfigError(f"{var}={raw!r} is not a valid {kind}") from e
    return raw
