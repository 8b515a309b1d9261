"""Reports on a million-event store: each report's time against the seed's approach.

The store is the demo workload (``agentaudit.demo.run_demo(path, events=N)``), built once and
cached as bench/out/trace_demo_N.db (git-ignored; bench/trace_query.py shares it). ``--db PATH``
measures an existing store instead.

Measured in each run, over the whole store (every event, all days), in the same process:

* each report of ``agentaudit.reports`` — summary, tool-usage, errors, compliance (default
  policy: seven checks, PII scan capped at 10,000 payloads), daily (the busiest day), cost —
  target <= 1 s each; agent and forensics for information;
* the seed's approach as the baseline: every event loaded into Python with
  ``store.iter_events`` and aggregated with ``collections.Counter`` (event types, agents, errors,
  tools, error types), which any report of the seed paid.

Figures are medians of ``--runs`` (default 3) with min-max; the ratio is baseline / report,
computed within each run.

    cd /work/main && PYTHONPATH=src .venv/bin/python bench/reports.py
    PYTHONPATH=src .venv/bin/python bench/reports.py --db demo.db --runs 5 --json
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common as C
from trace_query import ensure_store

from agentaudit import reports as R
from agentaudit.reports.period import day_bounds
from agentaudit.store import EventQuery, Store, open_store

TARGET_S = 1.0
TIMED = ("summary", "tool-usage", "errors", "compliance", "daily", "cost")
INFO = ("agent", "forensics")


def seed_baseline(store: Store, tenant: str, period: R.Period) -> dict[str, Any]:
    """The seed's way: every event into Python, counted with Counter."""
    types: collections.Counter[str] = collections.Counter()
    agents: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    tools: collections.Counter[str] = collections.Counter()
    n = 0
    for ev in store.iter_events(EventQuery(tenant=tenant, since=period.since,
                                           until=period.until)):
        n += 1
        types[ev.event_type] += 1
        agents[ev.agent_name] += 1
        if ev.event_type == "agent.error":
            errors[ev.error_type or "Unknown"] += 1
        elif ev.event_type == "agent.tool_call":
            tools[ev.action or "?"] += 1
    return {"total_events": n, "total_errors": sum(errors.values()), "types": types,
            "agents": agents, "errors": errors, "tools": tools}


def _span(store: Store, tenant: str) -> tuple[R.Period, datetime, int]:
    """The whole store as a period, its first full day, and its number of events."""
    db = store.connection  # type: ignore[attr-defined]
    first, last, n = db.execute("SELECT min(timestamp), max(timestamp), count(*) FROM events "
                                "WHERE tenant = ?", (tenant,)).fetchone()
    if first is None:
        raise SystemExit("the store is empty")
    period = R.Period(float(first), float(last) + 1.0)
    full = max(day_bounds(period), key=lambda d: d[2] - d[1])
    return period, datetime.fromisoformat(full[0]).replace(tzinfo=UTC), int(n)


def reports(store: Store, tenant: str, period: R.Period, day: datetime,
            incident: str) -> dict[str, Callable[[], Any]]:
    now = period.until + 3600
    return {
        "summary": lambda: R.summary_report(store, tenant, period),
        "tool-usage": lambda: R.tool_usage_report(store, tenant, period),
        "errors": lambda: R.errors_report(store, tenant, period),
        "compliance": lambda: R.compliance_report(store, tenant, period, now=now),
        "daily": lambda: R.daily_report(store, tenant, day.date(), now=now),
        "cost": lambda: R.cost_report(store, tenant, period),
        "agent": lambda: R.agent_report(store, tenant, "Billing", period),
        "forensics": lambda: R.forensics_report(store, tenant, incident),
    }


def one_run(path: Path, tenant: str, baseline: bool) -> C.Metrics:
    m: C.Metrics = {}
    store = open_store(str(path), create=False)
    try:
        period, day, m["events"] = _span(store, tenant)
        for name, fn in reports(store, tenant, period, day, "refund-incident").items():
            t0 = time.perf_counter()
            data = fn()
            m[name] = time.perf_counter() - t0
            assert data["report"] == name
        if baseline:
            t0 = time.perf_counter()
            seed = seed_baseline(store, tenant, period)
            m["seed_baseline"] = time.perf_counter() - t0
            assert seed["total_events"] == m["events"]
            for name in TIMED:
                m[f"ratio_{name}"] = m["seed_baseline"] / m[name]
    finally:
        store.close()
    return m


def main() -> int:
    p = C.parser(__doc__)
    p.add_argument("--events", type=int, default=1_000_000, help="size of the demo store")
    p.add_argument("--db", help="measure this store instead of the cached demo store")
    p.add_argument("--tenant", default="default")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached store")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the seed's load-everything baseline (it takes a while)")
    args = p.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    path, how = ensure_store(args)
    C.note(args.json, f"store: {path} ({how}); {args.runs} runs")
    runs = C.run_repeated(args.runs, lambda i: one_run(path, args.tenant, not args.no_baseline),
                          args.json)
    stats = C.summarise(runs)
    env = C.environment()
    if args.json:
        C.emit_json({"store": str(path), "how": how, "environment": env, "results": stats})
        return 0
    rows = []
    for name in (*TIMED, *INFO):
        median = stats[name]["median"]
        target = C.verdict(median <= TARGET_S) if name in TIMED else "(info)"
        ratio = C.cell(stats, f"ratio_{name}", 0) + "x" if f"ratio_{name}" in stats else "—"
        rows.append([name, C.cell(stats, name, 3), target, ratio])
    if "seed_baseline" in stats:
        rows.append(["seed: iter_events + Counter", C.cell(stats, "seed_baseline", 2), "—",
                     "1x"])
    print(f"Reports over {path.name}: {int(stats.get('events', {}).get('median', 0)):,} events "
          f"(whole store); seconds, median (min-max) of {args.runs} runs")
    print(C.env_line(env))
    print()
    print(C.table(["report", "seconds", f"<= {TARGET_S:g} s", "faster than seed"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
