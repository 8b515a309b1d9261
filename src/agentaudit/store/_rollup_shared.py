"""What the report rollups of both backends share (``_sqlite_rollup``, ``_pg_rollup``): the
grain of a cell, how a period splits into whole hours read from the cells and ragged edges read
from the events, and the conditions on a cell's event type that the rolled templates count."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

__all__ = ["ERR", "ESC", "FAR", "FINISH", "GRAIN", "HANDOFF", "INV", "count_where", "split"]

GRAIN = 3600  # seconds per rollup bucket (an hour)
FAR = 1e15  # an open end of a period (about 31 million years)

# conditions on a cell (or an edge event) of the rollup
INV = "event_type = 'agent.invocation'"
ERR = "event_type = 'agent.error'"
ESC = "event_type = 'agent.human_intervention' AND action = 'escalation'"
FINISH = "event_type = 'agent.decision' AND action = 'finish'"
HANDOFF = "event_type = 'agent.handoff'"


def count_where(condition: str) -> str:
    """How many events of the facts ``f`` meet ``condition`` (0, not NULL, when none)."""
    return f"coalesce(sum(events) FILTER (WHERE {condition}), 0)"


def split(bounds: Sequence[Sequence[float | None]]) -> tuple[str, str]:
    """``:rolled`` and ``:raw`` for buckets ``[lo, hi)``: JSON lists of ``[bucket index, first
    hour, end hour]`` read from the rollup and of ``[bucket index, lo, hi]`` read from the
    events. Hours before 1970-01-01T01:00 are never rolled (CAST truncates toward zero)."""
    rolled: list[list[float]] = []
    raw: list[list[float]] = []
    for i, (lo_v, hi_v) in enumerate(bounds):
        lo = -FAR if lo_v is None else float(lo_v)
        hi = FAR if hi_v is None else float(hi_v)
        if hi <= lo:
            continue
        first, end = max(math.ceil(lo / GRAIN), 1), math.floor(hi / GRAIN)
        if first >= end:
            raw.append([i, lo, hi])
            continue
        rolled.append([i, first, end])
        if lo < first * GRAIN:
            raw.append([i, lo, first * GRAIN])
        if end * GRAIN < hi:
            raw.append([i, end * GRAIN, hi])
    return json.dumps(rolled), json.dumps(raw)
