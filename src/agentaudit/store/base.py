"""The backend-neutral store contract. SQL dialects stay inside the backends."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentaudit.events import AuditEvent
from agentaudit.exceptions import StoreError

__all__ = ["SAMPLE_STEP", "AppendResult", "EventQuery", "Page", "Store", "StoreInfo",
           "sample_stride"]

# A sample of a period's rows is those whose ``id`` is a multiple of a stride (the compliance
# report's PII scan, aggregation ``cmp_payloads``). A stride above SAMPLE_STEP is rounded up to a
# multiple of it: a backend may index the rows whose id is a multiple of SAMPLE_STEP and find a
# sample there instead of walking every row of the period (PostgreSQL's ix_events_sample).
SAMPLE_STEP = 64


def sample_stride(rows: int, cap: int) -> int:
    """The stride that samples at most ``cap`` of ``rows`` rows evenly (1: all of them)."""
    stride = max(1, -(-rows // max(1, cap)))
    return stride if stride <= SAMPLE_STEP else -(-stride // SAMPLE_STEP) * SAMPLE_STEP


@dataclass(frozen=True)
class AppendResult:
    """What one ``append_batch`` did: events newly stored and events already present."""

    accepted: int
    duplicates: int


@dataclass
class EventQuery:
    """Filters shared by the CLI, the HTTP API and the dashboard. ``None`` means no filter."""

    tenant: str = "default"
    agent: str | None = None
    event_types: Sequence[str] | None = None
    since: float | None = None
    until: float | None = None
    trace_id: str | None = None
    session_id: str | None = None
    task_id: str | None = None
    user_id: str | None = None
    errors_only: bool = False
    after_seq: int | None = None  # only events sequenced after this (live feeds, --follow)
    limit: int = 100
    newest_first: bool = False
    cursor: str | None = None


@dataclass
class Page:
    """One page of events in the query's order, and the cursor of the next page (or None)."""

    data: list[AuditEvent]
    next_cursor: str | None = None


@dataclass
class StoreInfo:
    """Facts about a store for ``stats`` and health checks."""

    backend: str
    location: str
    events: int
    tenants: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Store(abc.ABC):
    """One append-only log of audit events per tenant, and the queries over it.

    Implementations are used from one thread at a time (the SDK's writer thread owns one; the
    CLI and each server worker open their own).
    """

    backend: str = "?"

    @abc.abstractmethod
    def append_batch(self, events: Sequence[AuditEvent]) -> AppendResult:
        """Store validated events durably in one transaction, assigning each tenant's ``seq``.

        Idempotent on (tenant, event_id): events already stored, or repeated within the batch,
        are counted as duplicates and stored once.
        """

    @abc.abstractmethod
    def query(self, q: EventQuery) -> Page:
        """Events matching ``q`` in time order (or newest first), one page at a time."""

    @abc.abstractmethod
    def iter_events(self, q: EventQuery, batch_size: int = 5000) -> Iterator[AuditEvent]:
        """Every event matching ``q`` in time order, streamed (``q.limit`` is ignored)."""

    @abc.abstractmethod
    def count(self, q: EventQuery) -> int:
        """How many events match ``q``."""

    @abc.abstractmethod
    def get_event(self, tenant: str, event_id: str) -> AuditEvent | None:
        """One event by id, or None."""

    @abc.abstractmethod
    def trace_events(self, tenant: str, trace_or_task_id: str) -> list[AuditEvent]:
        """Every event of a trace, given its trace id or a task id of the trace, in time order."""

    @abc.abstractmethod
    def aggregate(self, sql_name: str, tenant: str, since: float | None, until: float | None,
                  agent: str | None = None, limit: int = 20,
                  **params: Any) -> list[dict[str, Any]]:
        """A named aggregation computed in SQL over the period (extra named ``params`` go to the
        query)."""

    @abc.abstractmethod
    def info(self) -> StoreInfo:
        """Backend, location, event count and tenants."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_cursor(timestamp: float, seq: int) -> str:
    """The opaque ``Page.next_cursor`` after the event at (``timestamp``, ``seq``)."""
    return f"{timestamp!r}:{seq}"


def parse_cursor(cursor: str) -> tuple[float, int]:
    """(timestamp, seq) of a cursor made by ``make_cursor``; StoreError when it is not one."""
    try:
        ts, seq = cursor.rsplit(":", 1)
        return float(ts), int(seq)
    except ValueError as e:
        raise StoreError(f"bad cursor {cursor!r}") from e
