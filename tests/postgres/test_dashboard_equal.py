"""The dashboard's figures are equal on SQLite and PostgreSQL for the same demo seed: overview,
agents, one agent (handoff targets read from payloads), the trace list, a trace page (paged by
row keys) with its erased payloads, and the alerts panel."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from agentaudit.demo import run_demo
from agentaudit.events import AuditEvent
from agentaudit.server.dashboard import data
from agentaudit.server.dashboard.rollup import Rollups
from agentaudit.store import Store, open_store


def _alert(trace_id: str, evidence: str, ts: float) -> AuditEvent:
    return AuditEvent(event_type="agent.security", agent_name="Billing",
                      action="prompt_injection", trace_id=trace_id, timestamp=ts,
                      source="agentaudit.detect", params={"severity": "high",
                                                          "evidence": [evidence]})


def _view(store: Store, incident: str, now: float) -> dict[str, Any]:
    rollups = Rollups()
    rollups.build(store)
    out: dict[str, Any] = {w: data.overview(rollups, store, "default", w, now=now)
                           for w in ("15m", "24h", "7d", "30d")}
    out["agents"] = data.agents(rollups, store, "default", now - 7 * 86400, now)
    out["router"] = data.agent_view(rollups, store, "default", "Router", now - 7 * 86400, now)
    out["support"] = data.agent_view(rollups, store, "default", "Support", now - 86400, now)
    rows, cursor = data.search_traces(store, "default", data.TraceFilter(), page_size=10)
    out["traces"] = [{k: v for k, v in r.items() if k != "trace_id"} for r in rows]
    out["has_more"] = cursor is not None
    out["errors"] = data.search_traces(store, "default", data.TraceFilter(status="error"),
                                       page_size=5)[0]
    view = data.trace_view(store, "default", incident, 1, 3)
    second = data.trace_view(store, "default", incident, 2, 3)
    assert view is not None and second is not None
    head = {**view["head"], **{k: sorted(view["head"][k].split(","))  # pages sort them
                               for k in ("agents", "task_ids")}}
    out["trace"] = {"head": head, "events": view["events"], "pages": view["pages"],
                    "shown": [(e.event_type, e.agent_name, e.action) for e in view["shown"]],
                    "page2": [(e.event_type, e.action) for e in second["shown"]],
                    "first": [e.event_type for e in second["first"]],
                    "marks": [(e.event_type, e.agent_name) for e in view["marks"]],
                    "erased": sorted(view["erased"].values())}
    alerts, _ = data.alerts(rollups, store, "default", limit=5)
    out["alerts"] = [(e.event_type, e.action, e.agent_name) for e in alerts]
    return _rounded(json.loads(json.dumps(out, sort_keys=True, default=str)))


def _rounded(doc: Any) -> Any:
    """Floats to 12 significant digits: a sum of costs may differ in its last bit when the two
    databases add a group's rows in another order (the pages show 4 decimals)."""
    if isinstance(doc, float):
        return float(f"{doc:.12g}")
    if isinstance(doc, dict):
        return {k: _rounded(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_rounded(v) for v in doc]
    return doc


def test_dashboard_figures_equal_on_both_backends(pg_url: str, tmp_path: Path) -> None:
    now = time.time()
    urls = (str(tmp_path / "demo.db"), pg_url)
    docs = []
    for url in urls:
        result = run_demo(url, traces=80, days=10, now=now, seed=5)
        with open_store(url) as store:
            [first] = store.trace_events("default", result.incident_trace_id)[:1]
            store.append_batch([_alert(result.incident_trace_id, first.event_id, now - 30)])
            docs.append(_view(store, "refund-incident", now))
    lite, pg = docs
    for key in lite:
        assert lite[key] == pg[key], key
    assert lite["7d"]["events"] > 500 and lite["router"]["handoffs_out"]
    assert lite["trace"]["pages"] > 1 and lite["trace"]["page2"]
    assert lite["alerts"] == [["agent.security", "prompt_injection", "Billing"]]


def test_trace_page_marks_payloads_dropped_by_retention(pg_url: str) -> None:
    """A day of payloads dropped on PostgreSQL: the trace page lists every event of the trace
    as erased, with the reason, and still shows its envelopes."""
    now = time.time()
    result = run_demo(pg_url, traces=10, days=1, now=now, seed=3)
    with open_store(pg_url) as store:
        events = store.trace_events("default", result.incident_trace_id)
        days = {int(e.timestamp // 86400) for e in events}
        for day in days:
            assert store.drop_payload_day(day, "retention: 1 day")  # type: ignore[attr-defined]
        view = data.trace_view(store, "default", "refund-incident", 1, 500)
    assert view is not None and view["events"] == len(events)
    assert view["erased"] == {e.event_id: "retention: 1 day" for e in events}
    assert [e.event_id for e in view["shown"]] == [e.event_id for e in events]
    assert all(e.params is None and e.result is None for e in view["shown"])
