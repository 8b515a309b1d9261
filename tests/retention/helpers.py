"""Backdated events in every tier, written straight through the store (the injectable clock of
these tests is the ``timestamp`` of each event and the ``now`` of each call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentaudit.events import AuditEvent, EventType
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


def open_store(path: Path) -> SQLiteStore:
    return SQLiteStore(path, synchronous="normal")


def payload_of(store: SQLiteStore, event_id: str) -> tuple[Any, Any]:
    row = store.connection.execute(
        "SELECT payload, erased FROM events WHERE event_id = ?", (event_id,)).fetchone()
    return row[0], row[1]
