"""Backdated events in every tier, written straight through the store (the injectable clock of
these tests is the ``timestamp`` of each event and the ``now`` of each call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentaudit.events import AuditEvent, EventType
from agentaudit.store.base import Store
from agentaudit.store.rows import LOG_COLUMNS
from agentaudit.store.sqlite import SQLiteStore

DAY = 86400
TODAY = 20_400  # 2025-11-08 (UTC days since the epoch)
NOW = TODAY * DAY + 12 * 3600.0  # noon
PAD = "x" * 3000  # payloads larger than a page, so erasing them frees whole pages

# One event type per tier (the seed's classification).
TYPE_OF_TIER = {
    "debug": EventType.REASONING,
    "info": EventType.TOOL_CALL,
    "compliance": EventType.DECISION,
    "critical": EventType.ERROR,
}


def event(tier: str, day: int, **fields: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "event_type": str(TYPE_OF_TIER[tier]), "agent_name": "Router",
        "timestamp": day * DAY + 3600.0, "params": {"note": PAD, "tier": tier},
        "action": "lookup", "trace_id": f"t-{tier}-{day}", "session_id": f"s-{day}",
    }
    values.update(fields)
    return AuditEvent(**values)


OPENED: list[Store] = []  # closed after each test (tests/retention/conftest.py)


def open_store(path: Path | str) -> Any:
    """A SQLite file (a path) or a PostgreSQL database (a ``postgresql://`` URL: the
    ``backend`` fixture), opened as the retention tests use it."""
    if str(path).startswith("postgresql://"):
        from agentaudit.store import open_store as open_url

        store = open_url(str(path))
        OPENED.append(store)
        return store
    return SQLiteStore(path, synchronous="normal")


def payload_of(store: Store, event_id: str, tenant: str = "default") -> tuple[Any, Any]:
    """(stored payload, why it was erased) of one event, on either backend."""
    row = store.log_row(tenant, event_id)  # type: ignore[attr-defined]
    assert row is not None, event_id
    return row[LOG_COLUMNS.index("payload")], row[LOG_COLUMNS.index("erased")]
