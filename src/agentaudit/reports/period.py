"""Report periods: ``--from/--to`` (what ``agentaudit.query.parse_time`` reads), a default length,
and calendar days in a time zone (``--tz``) for the daily report and per-day groupings.

Day and hour boundaries are computed here, in Python, with ``zoneinfo`` (so days of 23 or 25 hours
around DST changes are right) and passed to SQL as a JSON list of ``[start, end)`` epoch pairs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentaudit.exceptions import ConfigError
from agentaudit.query import iso_time, parse_time

__all__ = [
    "Period",
    "buckets_json",
    "day_bounds",
    "day_period",
    "hour_bounds",
    "parse_date",
    "resolve_period",
    "resolve_tz",
]

_MAX_DAYS = 3660  # ten years of per-day figures at most


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval ``[since, until)`` in epoch seconds and the zone of its days."""

    since: float
    until: float
    tz: str = "UTC"

    def to_dict(self) -> dict[str, str | None]:
        """``{from, to}`` as ISO 8601 UTC (what every report's JSON carries)."""
        return {"from": iso_time(self.since), "to": iso_time(self.until), "tz": self.tz}

    @property
    def seconds(self) -> float:
        return self.until - self.since


def resolve_tz(name: str | None) -> tzinfo:
    """The IANA zone ``name`` (``Europe/Berlin``); UTC when None."""
    if not name or name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(f"unknown time zone {name!r}: use an IANA name such as "
                          "Europe/Berlin or America/New_York") from e


def _tz_name(name: str | None) -> str:
    return "UTC" if not name or name.upper() in ("UTC", "Z") else name


def resolve_period(since: str | float | None, until: str | float | None, *,
                   default: str = "24h", tz: str | None = None,
                   now: float | None = None) -> Period:
    """The period of ``--from``/``--to``: ``until`` defaults to now, ``since`` to ``default``
    before ``until``. Raises ``ConfigError`` when unreadable or empty."""
    current = time.time() if now is None else now
    end = _when(until, current) if until is not None else current
    start = _when(since, current) if since is not None else end + parse_time(default, now=0.0)
    if start >= end:
        raise ConfigError(f"the period is empty: --from {iso_time(start)} is not before "
                          f"--to {iso_time(end)}")
    resolve_tz(tz)
    return Period(start, end, _tz_name(tz))


def _when(value: str | float, now: float) -> float:
    return float(value) if isinstance(value, (int, float)) else parse_time(value, now=now)


def parse_date(text: str | None, tz: str | None = None, now: float | None = None) -> date:
    """``--date``: an ISO date, ``today`` or ``yesterday`` (in ``tz``); default today."""
    zone = resolve_tz(tz)
    today = datetime.fromtimestamp(time.time() if now is None else now, zone).date()
    if text is None or text.strip().lower() == "today":
        return today
    if text.strip().lower() == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(text.strip())
    except ValueError as e:
        raise ConfigError(f"cannot read the date {text!r}: use YYYY-MM-DD, today or "
                          "yesterday") from e


def _midnight(d: date, zone: tzinfo) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()


def day_period(d: date, tz: str | None = None) -> Period:
    """The calendar day ``d`` in ``tz`` (default UTC) as a period."""
    zone = resolve_tz(tz)
    return Period(_midnight(d, zone), _midnight(d + timedelta(days=1), zone), _tz_name(tz))


def day_bounds(period: Period) -> list[tuple[str, float, float]]:
    """The calendar days (in the period's zone) that overlap the period, clipped to it:
    ``(YYYY-MM-DD, start, end)``."""
    zone = resolve_tz(period.tz)
    first = datetime.fromtimestamp(period.since, zone).date()
    last = datetime.fromtimestamp(period.until, zone).date()
    if (last - first).days >= _MAX_DAYS:
        raise ConfigError(f"the period {iso_time(period.since)} → {iso_time(period.until)} is "
                          "longer than ten years: choose a shorter one with --from/--to")
    out = []
    d = first
    while d <= last:
        lo = max(_midnight(d, zone), period.since)
        hi = min(_midnight(d + timedelta(days=1), zone), period.until)
        if hi > lo:
            out.append((d.isoformat(), lo, hi))
        d += timedelta(days=1)
    return out


def hour_bounds(period: Period) -> list[tuple[str, float, float]]:
    """The hours of the period: ``(HH:MM in its zone, start, end)`` (a day has 23 or 25 of them
    when DST changes)."""
    zone = resolve_tz(period.tz)
    out = []
    t = period.since
    n = 0
    while t < period.until and n < 24 * _MAX_DAYS:
        hi = min((t // 3600 + 1) * 3600, period.until)
        label = datetime.fromtimestamp(t, zone).strftime("%H:%M")
        out.append((label, t, hi))
        t = hi
        n += 1
    return out


def buckets_json(bounds: list[tuple[str, float, float]]) -> str:
    """Bounds as the JSON the SQL templates read with ``json_each(:bounds)``: ``[[lo, hi], …]``."""
    return json.dumps([[lo, hi] for _, lo, hi in bounds])
