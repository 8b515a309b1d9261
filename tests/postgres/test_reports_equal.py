"""The same demo seed written to SQLite and to PostgreSQL gives equal reports (JSON) and both
logs verify."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from agentaudit import reports
from agentaudit.demo import run_demo
from agentaudit.integrity.checkpoint import load_or_create_signing_key
from agentaudit.integrity.verify import verify_log
from agentaudit.reports.period import Period
from agentaudit.store import Store, open_store

NOW = 1_790_000_000.0


def _all_reports(store: Store, incident: str) -> dict[str, Any]:
    period = Period(NOW - 8 * 86400, NOW)
    return {
        "summary": reports.summary_report(store, "default", period),
        "tool_usage": reports.tool_usage_report(store, "default", period),
        "errors": reports.errors_report(store, "default", period),
        "compliance": reports.compliance_report(store, "default", period, now=NOW),
        "cost": reports.cost_report(store, "default", period),
        "agent": reports.agent_report(store, "default", "Router", period),
        "agent_one_day": reports.summary_report(store, "default",
                                                Period(NOW - 86400, NOW), agent="Support"),
        "daily": reports.daily_report(store, "default", date.fromtimestamp(NOW - 86400),
                                      now=NOW),
        "forensics": reports.forensics_report(store, "default", incident),
    }


def test_demo_reports_equal_on_both_backends(pg_url: str, tmp_path: Path) -> None:
    lite = str(tmp_path / "demo.db")
    results = [run_demo(url, traces=150, now=NOW, seed=11) for url in (lite, pg_url)]
    assert results[0].events == results[1].events > 1000
    vkey = load_or_create_signing_key("agentaudit").verifier_key()
    docs = []
    for url, result in zip((lite, pg_url), results, strict=True):
        with open_store(url) as store:
            report = verify_log(store, "default", vkey=vkey)
            assert report.ok and report.size == result.events, report.damage
            docs.append(json.dumps(_all_reports(store, result.incident_trace_id),
                                   sort_keys=True, default=str))
    sqlite_doc, pg_doc = (json.loads(d) for d in docs)
    for name in sqlite_doc:
        assert sqlite_doc[name] == pg_doc[name], name
    assert docs[0] == docs[1]
