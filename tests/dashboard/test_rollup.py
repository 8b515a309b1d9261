"""The dashboard's rollups give the same figures as SQL over the events, and stay exact as new
events arrive (caught up by seq)."""

from __future__ import annotations

import time

from agentaudit.demo import run_demo
from agentaudit.events import AuditEvent
from agentaudit.server.dashboard import data
from agentaudit.server.dashboard.rollup import Rollups
from agentaudit.store import Store, open_store


def _sql_totals(store: Store, since: float, until: float) -> dict[str, float]:
    t = store.aggregate("totals", "default", since, until, None, 1)[0]
    esc = store.aggregate("cmp_totals", "default", since, until, None, 1)
    return {"events": t["events"], "errors": t["errors"] or 0, "handoffs": t["handoffs"] or 0,
            "cost": round(t["cost_usd"], 9), "agents": t["agents"],
            "escalations": (esc[0].get("escalations") or 0) if esc else 0}


def _rollup_totals(ov: dict[str, float]) -> dict[str, float]:
    return {"events": ov["events"], "errors": ov["errors"], "handoffs": ov["handoffs"],
            "cost": round(ov["cost_usd"], 9), "agents": ov["agents_active"],
            "escalations": ov["escalations"]}


def test_rollups_match_sql_and_catch_up(backend: str) -> None:
    """On both backends: the rollups (SQLite's or PostgreSQL's SQL) equal the reports' SQL."""
    now = time.time()
    run_demo(backend, traces=60, days=20, now=now)
    import agentaudit.reports  # noqa: F401  (registers cmp_totals)

    with open_store(backend, create=False) as store:
        rollups = Rollups(fresh_seconds=0.0)
        rollups.build(store)
        for window in data.WINDOWS:
            ov = data.overview(rollups, store, "default", window, now=now)
            assert _rollup_totals(ov) == _sql_totals(store, ov["since"], ov["until"] + 1e-6), \
                window
            assert sum(b["events"] for b in ov["series"]) == ov["events"]
        rows, since = data.agents(rollups, store, "default", now - 7 * 86400, now)
        sql_rows = store.aggregate("agents", "default", since, now + 1e-6, None, 100)
        assert {(r["agent_name"], r["events"], r["errors"]) for r in rows} == \
            {(r["agent_name"], r["events"], r["errors"]) for r in sql_rows}

        before = data.overview(rollups, store, "default", "15m", now=time.time())
        store.append_batch([AuditEvent(event_type="agent.error", agent_name="Late",
                                       action="fetch_url", error_type="TimeoutError")
                            for _ in range(5)])
        after = data.overview(rollups, store, "default", "15m", now=time.time())
        assert after["events"] == before["events"] + 5
        assert after["errors"] == before["errors"] + 5
        assert any(a["agent_name"] == "Late" and a["errors"] == 5 for a in after["top_agents"])
        late = AuditEvent(event_type="agent.tool_call", agent_name="Late", action="lookup",
                          timestamp=time.time() - 3 * 86400)  # arrives late, for an old hour
        week = data.overview(rollups, store, "default", "7d", now=time.time())["events"]
        store.append_batch([late])
        assert data.overview(rollups, store, "default", "7d", now=time.time())["events"] == \
            week + 1
        view = data.agent_view(rollups, store, "default", "Late", time.time() - 600, time.time())
        assert view is not None and view["errors_by_type"] == {"TimeoutError": 5}
        assert data.agent_view(rollups, store, "default", "Nobody", now - 600, now) is None
