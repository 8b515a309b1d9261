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


def _pico_prices(table: PriceTable) -> dict[str, tuple[int, int]]:
    """The price table as integer pico-dollars per token (USD per million tokens x 10^6)."""
    return {m: (round(p[0] * 1e6), round(p[1] * 1e6)) for m, p in table.items()}


def _dollars(pico: Any) -> float:
    """Integer pico-dollars (what costs are summed in, exactly) as rounded dollars."""
    return usd(int(pico or 0) / 1e12)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    # rows of rpt_cost_top: whole nano-dollars + pico-dollars left; folded rows: pico-dollars
    cost = int(r.get("cost_nano") or 0) * 1000 + int(r.get("cost_pico") or 0)
    return {"cost_usd": _dollars(cost), "prompt_tokens": inum(r.get("prompt_tokens")),
            "completion_tokens": inum(r.get("completion_tokens")), "calls": inum(r.get("calls"))}


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


def _fold(rows: list[dict[str, Any]], bounds: list[tuple[str, float, float]],
          prices: dict[str, tuple[int, int]]
          ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[dict[str, Any]],
                     dict[str, Any], dict[str, dict[str, Any]]]:
    """Price the (agent, bucket, model) rows of rpt_cost_agents and sum them by agent, model,
    day and total (costs stay integer pico-dollars until ``_row``)."""
    by_agent: dict[str, dict[str, Any]] = {}
    by_model: dict[str, dict[str, Any]] = {}
    by_day: list[dict[str, Any]] = [{} for _ in bounds]
    total: dict[str, Any] = {}
    unpriced: dict[str, dict[str, Any]] = {}
    for r in rows:
        for model, pt, ct, calls, rec, rec_pico in json.loads(r["m"] or "[]"):
            recorded = (rec or 0) * 10**12 + (rec_pico or 0)
            price = prices.get(model) if model is not None else None
            cost = pt * price[0] + ct * price[1] if price is not None else recorded or 0
            v = {"cost_pico": cost, "prompt_tokens": pt or 0, "completion_tokens": ct or 0,
                 "calls": calls or 0}
            for acc in (by_agent.setdefault(r["agent"], {}), by_model.setdefault(model, {}),
                        by_day[inum(r["bucket"])], total):
                for k, x in v.items():
                    acc[k] = acc.get(k, 0) + x
            if price is None and model is not None:
                u = unpriced.setdefault(model, {"calls": 0, "recorded_cost_usd": 0})
                u["calls"] += calls or 0
                u["recorded_cost_usd"] += recorded or 0
    return by_agent, by_model, by_day, total, unpriced


def _ranked(groups: dict[Any, dict[str, Any]], top: int) -> list[dict[str, Any]]:
    rows = [{"key": k, **_row(v)} for k, v in groups.items()]
    rows.sort(key=lambda r: (-r["cost_usd"], str(r["key"])))
    return rows[:top]


def cost_report(store: Store, tenant: str, period: Period, agent: str | None = None,
                prices: PriceTable | None = None, top: int = 10) -> dict[str, Any]:
    """Cost per agent, model, task, user, day and the top traces by cost."""
    table = load_prices() if prices is None else prices
    scope = Scope(store, tenant, period, agent)
    pico = _pico_prices(table)
    prices_json = json.dumps({m: list(p) for m, p in pico.items()})
    bounds = day_bounds(period)
    by_agent, by_model, by_day, total, unpriced = _fold(scope.rows(
        "rpt_cost_agents", limit=1_000_000, bounds=buckets_json(bounds)), bounds, pico)
    tops: dict[str, list[dict[str, Any]]] = {"task": [], "user": [], "trace": []}
    for r in scope.rows("rpt_cost_top", limit=top, prices=prices_json):
        entry = {"key": r["key"], **_row(r)}
        if r["dim"] == "trace":
            entry = {"trace_id": r["key"], "task_id": r["task_id"], "user_id": r["user_id"],
                     "start": iso_time(r["first_ts"]), **_row(r)}
        tops[r["dim"]].append(entry)
    t = _row(total)
    data: dict[str, Any] = {
        "report": "cost", "tenant": tenant, "agent": agent, "period": period.to_dict(),
        "total_cost_usd": t["cost_usd"],
        "prompt_tokens": t["prompt_tokens"],
        "completion_tokens": t["completion_tokens"],
        "metered_calls": t["calls"],
        "by_agent": _ranked(by_agent, top), "by_model": _ranked(by_model, top),
        "by_task": tops["task"], "by_user": tops["user"],
        "by_day": [{"key": label, **_row(d)} for (label, _, _), d in zip(bounds, by_day,
                                                                          strict=True)],
        "top_traces": tops["trace"],
        "unpriced_models": [{"model": m, "calls": u["calls"],
                             "recorded_cost_usd": _dollars(u["recorded_cost_usd"])}
                            for m, u in sorted(unpriced.items(), key=lambda kv: -kv[1]["calls"])],
        "prices": {m: {"input": p[0], "output": p[1]} for m, p in sorted(table.items())},
    }
    data["answer"] = _answer(data)
    return data
