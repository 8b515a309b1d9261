"""Behavioural anomalies against a synthetic baseline with an injected spike."""

from __future__ import annotations

import random

from agentaudit.detect import detect_history
from agentaudit.detect.anomaly import RollingBaseline
from agentaudit.events import AuditEvent

from .helpers import T0, engine, ev

BUCKET = 600
DAY0 = (T0 // 86400) * 86400  # midnight UTC


def _baseline(days: int = 2, seed: int = 1) -> list[AuditEvent]:
    """Worker: 3-8 tool calls per 10 minutes from 08:00 to 20:00 UTC, an error now and then,
    about 2,000 tokens per call."""
    rng = random.Random(seed)
    out = []
    for d in range(days):
        for b in range(8 * 6, 20 * 6):
            start = DAY0 + d * 86400 + b * BUCKET
            for _ in range(rng.randint(3, 8)):
                ts = start + rng.random() * BUCKET
                tool = rng.choice(("search", "lookup", "summarise"))
                out.append(ev("tool_call", agent="Worker", ts=ts, action=tool))
                out.append(ev("llm_response", agent="Worker", ts=ts + 0.1,
                              token_count=rng.randint(1500, 2500)))
                if rng.random() < 0.03:
                    out.append(ev("error", agent="Worker", ts=ts + 0.2, action=tool,
                                  error="timeout"))
    return out


def _spike_at(day: int, hour: int) -> float:
    return DAY0 + day * 86400 + hour * 3600


def test_baseline_alone_does_not_fire() -> None:
    eng = engine("anomaly")
    assert eng.evaluate(_baseline()) == []


def test_injected_tool_call_spike_fires_once_with_its_z_score_explained() -> None:
    eng = engine("anomaly")
    assert eng.evaluate(_baseline()) == []
    at = _spike_at(2, 10)
    spike = [ev("tool_call", agent="Worker", ts=at + i, action="search") for i in range(120)]
    firings = eng.evaluate(spike)
    assert [f.details["metric"] for f in firings] == ["tool_calls"]
    f = firings[0]
    d = f.details
    assert d["z"] >= 8 and d["count"] >= 30
    assert abs((d["count"] - d["mean"]) / d["sd"] - d["z"]) < 0.01
    # nights are idle buckets of the baseline: 5.5 calls per active bucket, half the day
    assert 1.5 <= d["mean"] <= 4 and d["baseline_buckets"] >= 144
    assert f"z = {d['z']:.1f}" in f.explanation and f"{d['mean']:.2f}" in f.explanation
    assert f.evidence[0] in {e.event_id for e in spike}


def test_error_spike_and_token_spike_fire() -> None:
    eng = engine("anomaly")
    eng.evaluate(_baseline())
    at = _spike_at(2, 11)
    errors = [ev("error", agent="Worker", ts=at + i, error="boom") for i in range(40)]
    tokens = [ev("llm_response", agent="Worker", ts=at + 100 + i, token_count=90_000)
              for i in range(5)]
    metrics = sorted(f.details["metric"] for f in eng.evaluate(errors + tokens))
    assert metrics == ["errors", "tokens"]


def test_new_tool_fires_only_once_the_agent_has_a_history() -> None:
    eng = engine("anomaly", anomaly={"new_tool_min_calls": 100})
    first = ev("tool_call", agent="Fresh", action="anything")
    assert eng.evaluate([first]) == []  # no history yet: every tool is new
    eng.evaluate(_baseline())
    odd = ev("tool_call", agent="Worker", ts=_spike_at(2, 9), action="delete_all_files")
    [f] = eng.evaluate([odd])
    assert f.details["metric"] == "new_tool" and "delete_all_files" in f.title
    assert eng.evaluate([ev("tool_call", agent="Worker", ts=_spike_at(2, 9) + 5,
                            action="delete_all_files")]) == []


def test_unusual_hour_fires_at_night_not_in_working_hours() -> None:
    eng = engine("anomaly", anomaly={"unusual_hour_min_events": 500,
                                     "unusual_hour_min_days": 1.0})
    eng.evaluate(_baseline())
    day = ev("tool_call", agent="Worker", ts=_spike_at(2, 14), action="search")
    night = ev("tool_call", agent="Worker", ts=_spike_at(2, 3) + 86400, action="search")
    firings = eng.evaluate([day, night])
    assert [f.details["metric"] for f in firings] == ["unusual_hour"]
    assert "03:00" in firings[0].title and "0 of its" in firings[0].explanation


def test_rolling_baseline_counts_idle_buckets_as_zero_and_floors_sd() -> None:
    b = RollingBaseline(60, 10)
    for minute in (0, 3):  # active, 2 idle minutes, active
        b.add(minute * 60 + 1, 4)
    b.add(5 * 60, 1)
    mean, sd, n = b.stats()
    assert n == 5 and list(b.history) == [4, 0, 0, 4, 0]
    assert mean == 1.6 and sd >= 1.0


def test_history_warms_the_baseline_of_a_new_engine(backend: str) -> None:
    """A restarted collector (or `detect --since`) reads the baseline from the store."""
    from agentaudit.store import open_store

    with open_store(backend) as store:
        store.append_batch(_baseline())
        at = _spike_at(2, 10)
        store.append_batch([ev("tool_call", agent="Worker", ts=at + i, action="search")
                            for i in range(120)])
        firings, _ = detect_history(store, "default", since=_spike_at(2, 0))
    assert [f.details["metric"] for f in firings] == ["tool_calls"]
    assert firings[0].details["baseline_buckets"] >= 144


def test_unusual_hour_needs_days_of_history_not_just_many_events() -> None:
    eng = engine("anomaly", anomaly={"unusual_hour_min_events": 100})
    busy = [ev("tool_call", agent="Busy", ts=DAY0 + 14 * 3600 + i, action="search")
            for i in range(500)]
    midnight = ev("tool_call", agent="Busy", ts=DAY0 + 86400 + 60, action="search")
    assert eng.evaluate([*busy, midnight]) == []  # 500 events in one afternoon: no baseline
