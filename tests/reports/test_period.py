"""Periods, calendar days and hours in a time zone (DST included)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from agentaudit.exceptions import ConfigError
from agentaudit.reports.period import (
    Period,
    day_bounds,
    day_period,
    hour_bounds,
    parse_date,
    resolve_period,
)


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_day_period_utc_and_zone() -> None:
    assert day_period(date(2026, 3, 10)) == Period(ts(2026, 3, 10), ts(2026, 3, 11), "UTC")
    berlin = day_period(date(2026, 3, 10), "Europe/Berlin")
    assert (berlin.since, berlin.until) == (ts(2026, 3, 9, 23), ts(2026, 3, 10, 23))
    assert berlin.to_dict() == {"from": "2026-03-09T23:00:00.000Z",
                                "to": "2026-03-10T23:00:00.000Z", "tz": "Europe/Berlin"}


def test_dst_days_have_23_and_25_hours() -> None:
    spring = day_period(date(2026, 3, 29), "Europe/Berlin")
    autumn = day_period(date(2026, 10, 25), "Europe/Berlin")
    assert spring.seconds == 23 * 3600 and len(hour_bounds(spring)) == 23
    assert autumn.seconds == 25 * 3600 and len(hour_bounds(autumn)) == 25
    labels = [h[0] for h in hour_bounds(spring)]
    assert labels[:4] == ["00:00", "01:00", "03:00", "04:00"]


def test_day_bounds_are_clipped_to_the_period() -> None:
    p = Period(ts(2026, 3, 10, 12), ts(2026, 3, 12, 6))
    assert day_bounds(p) == [("2026-03-10", p.since, ts(2026, 3, 11)),
                             ("2026-03-11", ts(2026, 3, 11), ts(2026, 3, 12)),
                             ("2026-03-12", ts(2026, 3, 12), p.until)]
    assert hour_bounds(Period(ts(2026, 3, 10, 5, 30), ts(2026, 3, 10, 7)))[0][0] == "05:30"


def test_parse_date_and_errors() -> None:
    now = ts(2026, 3, 10, 23, 30)
    assert parse_date(None, now=now) == date(2026, 3, 10)
    assert parse_date("today", "Asia/Tokyo", now=now) == date(2026, 3, 11)
    assert parse_date("yesterday", now=now) == date(2026, 3, 9)
    assert parse_date("2026-01-02") == date(2026, 1, 2)
    with pytest.raises(ConfigError, match="cannot read the date"):
        parse_date("02/01/2026")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        day_period(date(2026, 1, 1), "Mars/Olympus")
    with pytest.raises(ConfigError, match="the period is empty"):
        resolve_period("2026-03-10", "2026-03-09")
    with pytest.raises(ConfigError, match="cannot read the time"):
        resolve_period("yesterday-ish", None)
