"""report cost: token counts x the price table, recorded cost for unpriced models, per day."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentaudit.exceptions import ConfigError
from agentaudit.reports import cost_report, load_prices
from agentaudit.reports.period import Period
from reports.store_builder import T0, Scenario, Writer


def test_cost_by_every_dimension(scenario: Scenario, whole: Period) -> None:
    r = cost_report(scenario.store, "default", whole)
    # gpt-4o 1000 x 2.50 + 100 x 10.00 per 1M = 0.0035; claude-3-5-haiku 2000 x 0.80 + 500 x
    # 4.00 per 1M = 0.0036; mystery-model has no price: its recorded 0.02
    assert r["total_cost_usd"] == 0.0271
    assert (r["prompt_tokens"], r["completion_tokens"], r["metered_calls"]) == (3050, 650, 3)
    assert [(m["key"], m["cost_usd"]) for m in r["by_model"]] == [
        ("mystery-model", 0.02), ("claude-3-5-haiku", 0.0036), ("gpt-4o", 0.0035)]
    assert [(a["key"], a["cost_usd"]) for a in r["by_agent"]] == [
        ("Support", 0.02), ("Research", 0.0036), ("Billing", 0.0035)]
    assert [(u["key"], u["cost_usd"]) for u in r["by_user"]] == [
        ("u2", 0.02), ("u3", 0.0036), ("u1", 0.0035)]
    assert [t["key"] for t in r["by_task"]] == ["task-2", "task-3", "task-1"]
    assert r["top_traces"][0] == {"trace_id": "b" * 32, "task_id": "task-2", "user_id": "u2",
                                  "start": "2026-03-10T11:00:05.000Z", "cost_usd": 0.02,
                                  "prompt_tokens": 50, "completion_tokens": 50, "calls": 1}
    assert r["unpriced_models"] == [{"model": "mystery-model", "calls": 1,
                                     "recorded_cost_usd": 0.02}]
    assert r["by_day"][0] == {"key": "2026-03-10", "cost_usd": 0.0271, "prompt_tokens": 3050,
                              "completion_tokens": 650, "calls": 3}
    assert r["by_day"][1]["cost_usd"] == 0.0
    assert r["answer"].startswith("$0.03 was spent in this period; the top model is "
                                  "mystery-model ($0.02, 74%)")


def test_price_file_overrides(scenario: Scenario, whole: Period, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."mystery-model"]\ninput = 100\noutput = 0\n', encoding="utf-8")
    r = cost_report(scenario.store, "default", whole, prices=load_prices(prices))
    # now mystery-model is priced (50 x 100 / 1M = 0.005) and the others are not (recorded:
    # gpt-4o 0.01, claude none -> 0)
    assert r["total_cost_usd"] == 0.015
    assert sorted(u["model"] for u in r["unpriced_models"]) == ["claude-3-5-haiku", "gpt-4o"]


def test_bad_price_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[models."m"]\ninput = 1\noutput = -2\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml:3: models.m.output must be a non-negative"):
        load_prices(bad)
    bad.write_text("[models\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1"):
        load_prices(bad)
    with pytest.raises(ConfigError, match="cannot read the price table"):
        load_prices(tmp_path / "missing.toml")
    assert load_prices()["gpt-4o"] == (2.5, 10.0)


def test_days_in_a_time_zone(writer: Writer) -> None:
    # 23:30 UTC on 10 March is 08:30 on 11 March in Tokyo
    writer.add("token_usage", "A", T0 + 13.5 * 3600, model="gpt-4o", prompt_tokens=1_000_000,
               completion_tokens=0, trace_id="4" * 32)
    store = writer.close()
    span = (T0 - 10 * 3600, T0 + 38 * 3600)
    utc = cost_report(store, "default", Period(*span))
    assert [(d["key"], d["cost_usd"]) for d in utc["by_day"]] == [("2026-03-10", 2.5),
                                                                  ("2026-03-11", 0.0)]
    tokyo = cost_report(store, "default", Period(*span, tz="Asia/Tokyo"))
    # the same 48 hours run from 09:00 on 10 March to 09:00 on 12 March in Tokyo
    assert [(d["key"], d["cost_usd"]) for d in tokyo["by_day"]] == [
        ("2026-03-10", 0.0), ("2026-03-11", 2.5), ("2026-03-12", 0.0)]
    empty = cost_report(store, "default", Period(T0, T0 + 60))
    assert (empty["total_cost_usd"], empty["top_traces"]) == (0.0, [])
    assert empty["answer"] == "No cost was recorded in this period."
    store.close()
