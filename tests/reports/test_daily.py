"""report daily: the seed's "Agent Audit Summary — {date}" for a UTC or local day."""

from __future__ import annotations

from datetime import date

from agentaudit.reports import daily_report
from reports.store_builder import NOW, Scenario


def test_daily_utc(scenario: Scenario) -> None:
    r = daily_report(scenario.store, "default", date(2026, 3, 10), now=NOW)
    assert r["title"] == "Agent Audit Summary — 2026-03-10"
    assert r["period"] == {"from": "2026-03-10T00:00:00.000Z", "to": "2026-03-11T00:00:00.000Z",
                           "tz": "UTC"}
    o = r["overview"]
    assert (o["total_events"], o["total_errors"], o["traces"], o["human_escalations"]) == (
        26, 1, 3, 1)
    assert r["top_agents"][0]["agent"] == "Billing"
    assert r["errors"]["error_types"] == [{"error_type": "TimeoutError", "count": 1,
                                           "percent": 100.0}]
    assert len(r["by_hour"]) == 24
    assert [(h["bucket"], h["events"]) for h in r["by_hour"] if h["events"]] == [
        ("10:00", 14), ("11:00", 10), ("12:00", 2)]
    icons = {c["name"]: c["icon"] for c in r["compliance"]["checks"]}
    assert icons["tool_approval"] == "❌" and icons["token_budget"] == "✅"
    assert r["compliance"]["compliant"] is False


def test_daily_in_a_time_zone(scenario: Scenario) -> None:
    # In Honolulu (UTC-10) the scenario (10:00-12:00 UTC) falls at 00:00-02:00 on 10 March,
    # and 9 March holds nothing.
    r = daily_report(scenario.store, "default", date(2026, 3, 10), "Pacific/Honolulu", now=NOW)
    assert r["period"]["from"] == "2026-03-10T10:00:00.000Z"
    assert r["overview"]["total_events"] == 26
    assert [h["bucket"] for h in r["by_hour"] if h["events"]] == ["00:00", "01:00", "02:00"]
    before = daily_report(scenario.store, "default", date(2026, 3, 9), "Pacific/Honolulu",
                          now=NOW)
    assert before["overview"]["total_events"] == 0
    assert before["compliance"]["compliant"] is True
