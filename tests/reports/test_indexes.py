"""The reports give the same answers whichever indexes the store has (the planner's choice
must never change a number): with the covering indexes proposed for migration
0004_report_indexes and with the narrow ones of 0001."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from agentaudit import reports as R
from agentaudit.reports.period import Period
from agentaudit.store import open_store
from reports.store_builder import NOW, Scenario

NARROW = """
DROP INDEX IF EXISTS ix_events_agent_time;
CREATE INDEX ix_events_agent_time ON events (tenant, agent_name, timestamp);
DROP INDEX IF EXISTS ix_events_type_time;
DROP INDEX IF EXISTS ix_events_trace;
CREATE INDEX ix_events_trace ON events (trace_id);
DROP INDEX IF EXISTS ix_events_parent;
"""
COVERING = """
DROP INDEX IF EXISTS ix_events_agent_time;
CREATE INDEX ix_events_agent_time ON events (tenant, agent_name, timestamp, event_type, action,
    duration_ms, cost_usd, token_count, prompt_tokens, completion_tokens, model, confidence);
CREATE INDEX IF NOT EXISTS ix_events_type_time ON events (tenant, event_type, timestamp, action,
    agent_name, duration_ms);
DROP INDEX IF EXISTS ix_events_trace;
CREATE INDEX ix_events_trace ON events (trace_id, event_type, action, timestamp, seq, tenant);
CREATE INDEX IF NOT EXISTS ix_events_parent ON events (parent_event_id, trace_id, tenant,
    event_type, action) WHERE parent_event_id IS NOT NULL;
ANALYZE;
"""


def _all(path: Path, whole: Period) -> dict[str, Any]:
    store = open_store(str(path), create=False)
    try:
        return {
            "summary": R.summary_report(store, "default", whole),
            "tools": R.tool_usage_report(store, "default", whole),
            "errors": R.errors_report(store, "default", whole),
            "compliance": R.compliance_report(store, "default", whole, now=NOW),
            "cost": R.cost_report(store, "default", whole),
            "agent": R.agent_report(store, "default", "Support", whole),
        }
    finally:
        store.close()


def test_same_answers_with_either_index_set(scenario: Scenario, db_path: Path,
                                            whole: Period) -> None:
    scenario.store.close()
    answers = []
    for script in (NARROW, COVERING):
        db = sqlite3.connect(db_path)
        db.executescript(script)
        db.close()
        answers.append(_all(db_path, whole))
    assert answers[0] == answers[1]
    assert answers[1]["summary"]["total_events"] == 26
