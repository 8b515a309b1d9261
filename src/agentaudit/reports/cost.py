"""``report cost``: what agents spent, per agent, model, task, user, trace and day.

The cost of an event with tokens is ``prompt_tokens × input price + completion_tokens × output
price`` (prices in USD per million tokens, by model, from ``prices.toml`` shipped with the package
or ``--prices FILE``). Events of a model missing from the table count with the ``cost_usd`` they
recorded; those models are listed as unpriced. Everything is summed in SQL.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentaudit.exceptions import ConfigError
from agentaudit.query import iso_time
from agentaudit.reports._sql import Scope, inum, usd
from agentaudit.reports.period import Period, buckets_json, day_bounds

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["PriceTable", "cost_report", "load_prices"]

PriceTable = dict[str, tuple[float, float]]


def _default_prices_text() -> str:
    return resources.files("agentaudit.reports").joinpath("prices.toml").read_text("utf-8")


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The price table: ``{model: (usd per 1M input tokens, usd per 1M output tokens)}``."""
    from agentaudit.reports.policy import line_of

    name = str(path) if path else "prices.toml (built in)"
    try:
        text = Path(path).read_text("utf-8") if path else _default_prices_text()
    except OSError as e:
        raise ConfigError(f"cannot read the price table {path}: {e.strerror or e}") from e
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: {e}") from e
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{name}: expected tables [models.\"NAME\"] with input and output "
                          "prices")
    table: PriceTable = {}
    for model, entry in models.items():
        prices = []
        for key in ("input", "output"):
            v = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                line = line_of(text, f'models."{model}"', key) or line_of(text, "models", model)
                raise ConfigError(f"{name}:{line or '?'}: models.{model}.{key} must be a "
                                  "non-negative number (USD per 1M tokens)")
            prices.append(float(v))
        table[str(model)] = (prices[0], prices[1])
    return table


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"cost_usd": usd(r["cost_usd"]), "prompt_tokens": inum(r["prompt_tokens"]),
            "completion_tokens": inum(r["completion_tokens"]), "calls": inum(r["calls"])}


def _answer(data: dict[str, Any]) -> str:
    """One paragraph answering "why did we spend this much?"."""
    total = data["total_cost_usd"]
    if not total:
        return "No cost was recorded in this period."
    parts = [f"${total:,.2f} was spent in this period"]
    for dim, label in (("by_model", "model"), ("by_agent", "agent")):
        rows = data[dim]
        if rows:
            top = rows[0]
            parts.append(f"the top {label} is {top['key']} (${top['cost_usd']:,.2f}, "
                         f"{top['cost_usd'] / total:.0%})")
    if data["top_traces"]:
        t = data["top_traces"][0]
        parts.append(f"the most expensive trace {t['trace_id']} cost ${t['cost_usd']:,.4f}")
    return "; ".join(parts) + "."


def cost_report(store: Store, tenant: str, period: Period, agent: str | None = None,
                prices: PriceTable | None = None, top: int = 10) -> dict[str, Any]:
    """Cost per agent, model, task, user, day and the top traces by cost."""
    table = load_prices() if prices is None else prices
    scope = Scope(store, tenant, period, agent)
    prices_json = json.dumps({m: list(p) for m, p in table.items()})
    by: dict[str, list[dict[str, Any]]] = {d: [] for d in (
        "total", "agent", "model", "task", "user", "trace", "unpriced")}
    for r in scope.rows("rpt_cost_breakdown", limit=top, prices=prices_json):
        entry = {"key": r["key"], **_row(r)}
        if r["dim"] == "trace":
            entry = {"trace_id": r["key"], "task_id": r["task_id"], "user_id": r["user_id"],
                     "start": iso_time(r["first_ts"]), **_row(r)}
        by[r["dim"]].append(entry)
    total = by["total"][0] if by["total"] else {"cost_usd": 0.0, "prompt_tokens": 0,
                                                 "completion_tokens": 0, "calls": 0}
    bounds = day_bounds(period)
    days = {inum(r["bucket"]): r for r in scope.rows(
        "rpt_cost_series", limit=len(bounds) + 1, prices=prices_json, bounds=buckets_json(bounds))}
    data: dict[str, Any] = {
        "report": "cost", "tenant": tenant, "agent": agent, "period": period.to_dict(),
        "total_cost_usd": total["cost_usd"],
        "prompt_tokens": total["prompt_tokens"],
        "completion_tokens": total["completion_tokens"],
        "metered_calls": total["calls"],
        "by_agent": by["agent"], "by_model": by["model"], "by_task": by["task"],
        "by_user": by["user"],
        "by_day": [{"key": label, **(_row(days[i]) if i in days else {
            "cost_usd": 0.0, "prompt_tokens": 0, "completion_tokens": 0, "calls": 0})}
            for i, (label, _, _) in enumerate(bounds)],
        "top_traces": by["trace"],
        "unpriced_models": [{"model": u["key"], "calls": u["calls"],
                             "recorded_cost_usd": u["cost_usd"]} for u in by["unpriced"]],
        "prices": {m: {"input": p[0], "output": p[1]} for m, p in sorted(table.items())},
    }
    data["answer"] = _answer(data)
    return data
