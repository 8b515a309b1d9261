"""``agentaudit db migrate`` and ``agentaudit db check`` against a real database."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from agentaudit.cli import main


def test_migrate_then_check(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate", "--db", pg_url, "--days-ahead", "3"]) == 0
    assert "0001_events" in capsys.readouterr().out
    assert main(["db", "migrate", "--db", pg_url]) == 0  # repeatable
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and [c["name"] for c in doc["checks"]] == [
        "schema", "partitions", "roles", "retention", "alerts", "rollups"]


def test_check_names_what_is_wrong(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "check", "--db", pg_url]) == 1
    assert "FAIL schema" in capsys.readouterr().out
    assert main(["db", "migrate", "--db", pg_url, "--days-ahead", "0"]) == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("GRANT UPDATE ON events TO agentaudit_ingest")
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
    capsys.readouterr()
    assert main(["db", "check", "--db", pg_url, "--days-ahead", "5"]) == 1
    out = capsys.readouterr().out
    assert "agentaudit_ingest has UPDATE on events" in out
    assert "trigger events_append_only missing or disabled" in out
    assert "days without a partition ahead" in out


def test_db_commands_refuse_sqlite(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "check", "--db", "x.db"]) == 2
    assert "SQLite" in capsys.readouterr().err


_TRUNCATE_DAY = "agentaudit_truncate_payload_day(integer, bigint[], text, double precision)"

# (what breaks it, the check that fails, what it says): what migrations 0004, 0005 and 0006
# added
_BREAKAGES = [
    ("ALTER TABLE legal_holds DISABLE ROW LEVEL SECURITY", "retention",
     "row-level security off on legal_holds"),
    ("ALTER TABLE erasures DISABLE ROW LEVEL SECURITY", "retention",
     "row-level security off on erasures"),
    (f"GRANT EXECUTE ON FUNCTION {_TRUNCATE_DAY} TO PUBLIC", "retention",
     "PUBLIC may EXECUTE agentaudit_truncate_payload_day"),
    (f"GRANT EXECUTE ON FUNCTION {_TRUNCATE_DAY} TO agentaudit_ingest", "retention",
     "agentaudit_ingest may EXECUTE agentaudit_truncate_payload_day"),
    (f"REVOKE EXECUTE ON FUNCTION {_TRUNCATE_DAY} FROM agentaudit_retention", "retention",
     "agentaudit_retention lacks EXECUTE on agentaudit_truncate_payload_day"),
    ("GRANT EXECUTE ON FUNCTION agentaudit_drop_payload_day(integer, text) TO PUBLIC", "roles",
     "PUBLIC may EXECUTE agentaudit_drop_payload_day"),
    ("GRANT UPDATE (tenant) ON event_payloads TO agentaudit_retention", "retention",
     "agentaudit_retention may UPDATE event_payloads.tenant"),
    ("REVOKE UPDATE (erased_at) ON event_payloads FROM agentaudit_retention", "retention",
     "agentaudit_retention lacks UPDATE on event_payloads.erased_at"),
    ("GRANT UPDATE ON legal_holds TO agentaudit_retention", "retention",
     "agentaudit_retention may UPDATE legal_holds.reason"),
    ("GRANT DELETE ON erasures TO agentaudit_retention", "retention",
     "agentaudit_retention has DELETE on erasures"),
    ("GRANT INSERT ON legal_holds TO agentaudit_ingest", "retention",
     "agentaudit_ingest has INSERT on legal_holds"),
    ("GRANT SELECT ON erasures TO PUBLIC", "retention", "PUBLIC has SELECT on erasures"),
    ("CREATE POLICY leak ON legal_holds FOR SELECT TO agentaudit_reader USING (true)",
     "retention", "policy leak lets agentaudit_reader read every tenant's rows of legal_holds"),
    ("ALTER TABLE alert_deliveries DISABLE ROW LEVEL SECURITY", "alerts",
     "row-level security off on alert_deliveries"),
    ("GRANT UPDATE (severity, evidence) ON alerts TO agentaudit_ingest", "alerts",
     "agentaudit_ingest may UPDATE alerts.evidence; agentaudit_ingest may UPDATE "
     "alerts.severity"),
    ("GRANT DELETE ON alerts TO agentaudit_ingest", "alerts",
     "agentaudit_ingest has DELETE on alerts"),
    ("GRANT UPDATE ON alert_deliveries TO agentaudit_ingest", "alerts",
     "agentaudit_ingest may UPDATE alert_deliveries.status"),
    ("GRANT INSERT ON alerts TO agentaudit_reader", "alerts",
     "agentaudit_reader has INSERT on alerts"),
    ("GRANT SELECT ON alert_deliveries TO PUBLIC", "alerts",
     "PUBLIC has SELECT on alert_deliveries"),
    ("CREATE POLICY leak ON alert_deliveries TO PUBLIC USING (true)", "alerts",
     "policy leak lets public read every tenant's rows of alert_deliveries"),
    ("REVOKE USAGE ON SEQUENCE alerts_id_seq FROM agentaudit_ingest", "alerts",
     "agentaudit_ingest lacks USAGE on sequence alerts_id_seq"),
    ("ALTER TABLE open_work DISABLE ROW LEVEL SECURITY", "rollups",
     "row-level security off on open_work"),
    ("GRANT DELETE ON rollup TO agentaudit_ingest", "rollups",
     "agentaudit_ingest has DELETE on rollup"),
    ("REVOKE UPDATE ON rollup FROM agentaudit_ingest", "rollups",
     "agentaudit_ingest lacks UPDATE on rollup"),
    ("GRANT UPDATE ON closers TO agentaudit_reader", "rollups",
     "agentaudit_reader has UPDATE on closers"),
    ("CREATE POLICY leak ON rollup FOR SELECT TO agentaudit_reader USING (true)", "rollups",
     "policy leak lets agentaudit_reader read every tenant's rows of rollup"),
    ("ALTER TABLE error_messages DISABLE ROW LEVEL SECURITY", "rollups",
     "row-level security off on error_messages"),
    ("GRANT UPDATE (error_type) ON error_facts TO agentaudit_ingest", "rollups",
     "agentaudit_ingest may UPDATE error_facts.error_type"),
    ("GRANT DELETE ON error_messages TO agentaudit_ingest", "rollups",
     "agentaudit_ingest has DELETE on error_messages"),
    ("CREATE POLICY leak ON error_messages FOR SELECT TO agentaudit_reader USING (true)",
     "rollups", "policy leak lets agentaudit_reader read every tenant's rows of error_messages"),
    ("ALTER TABLE interventions DISABLE ROW LEVEL SECURITY", "rollups",
     "row-level security off on interventions"),
    ("GRANT UPDATE ON interventions TO agentaudit_ingest", "rollups",
     "agentaudit_ingest has UPDATE on interventions"),
    ("GRANT DELETE ON call_tags TO agentaudit_ingest", "rollups",
     "agentaudit_ingest has DELETE on call_tags"),
    ("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'call_tags_d' || "
     "floor(extract(epoch FROM now()) / 86400)::int); END $$", "rollups",
     "payload days without a call_tags partition"),
    ("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'error_messages_d' || "
     "floor(extract(epoch FROM now()) / 86400)::int); END $$", "rollups",
     "payload days without an error_messages partition"),
    ("GRANT UPDATE ON call_numbers TO agentaudit_ingest", "rollups",
     "agentaudit_ingest has UPDATE on call_numbers"),
    ("CREATE POLICY leak ON approvers FOR SELECT TO agentaudit_reader USING (true)",
     "rollups", "policy leak lets agentaudit_reader read every tenant's rows of approvers"),
    ("ALTER TABLE approvers DISABLE ROW LEVEL SECURITY", "rollups",
     "row-level security off on approvers"),
    ("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'call_numbers_d' || "
     "floor(extract(epoch FROM now()) / 86400)::int); END $$", "rollups",
     "payload days without a call_numbers partition"),
    ("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'approvers_d' || "
     "floor(extract(epoch FROM now()) / 86400)::int); END $$", "rollups",
     "payload days without an approvers partition"),
]


@pytest.mark.parametrize(("breakage", "check", "message"), _BREAKAGES,
                         ids=[b[0][:60] for b in _BREAKAGES])
def test_check_names_what_migrations_0004_and_0005_lost(
        pg_url: str, capsys: pytest.CaptureFixture[str], breakage: str, check: str,
        message: str) -> None:
    assert main(["db", "migrate", "--db", pg_url, "--days-ahead", "2"]) == 0
    assert main(["db", "check", "--db", pg_url]) == 0
    capsys.readouterr()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(breakage)  # type: ignore[arg-type]
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    failed = {c["name"]: c["detail"] for c in doc["checks"] if not c["ok"]}
    assert list(failed) == [check], failed
    assert message in failed[check]
    assert main(["db", "check", "--db", pg_url]) == 1
    assert f"FAIL {check}" in capsys.readouterr().out


def test_check_names_a_role_that_could_erase(pg_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Role memberships are the cluster's, not the database's: broken and put back here."""
    assert main(["db", "migrate", "--db", pg_url]) == 0
    capsys.readouterr()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("GRANT agentaudit_retention TO agentaudit_reader")
        try:
            assert main(["db", "check", "--db", pg_url]) == 1
        finally:
            conn.execute("REVOKE agentaudit_retention FROM agentaudit_reader")
    out = capsys.readouterr().out
    assert "agentaudit_reader is a member of agentaudit_retention" in out
    assert "agentaudit_reader has UPDATE on event_payloads" in out  # what it inherits
    assert main(["db", "check", "--db", pg_url]) == 0


def test_check_finds_events_missing_from_the_rollup(pg_url: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Events written by a collector that does not keep the rollups (an older version still
    running after the migration) are named: the cells no longer count the log."""
    from agentaudit.store import open_store

    from .conftest import events

    with open_store(pg_url) as s:
        s.append_batch(events(20))
        s.use_rollups = False  # type: ignore[attr-defined]  # as a collector from before 0006
        s.append_batch(events(3, start=1_790_000_000.0))
    capsys.readouterr()
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 1
    failed = {c["name"]: c["detail"] for c in json.loads(capsys.readouterr().out)["checks"]
              if not c["ok"]}
    assert "rollups" in failed and "roles" not in failed  # (no partitions made ahead here)
    assert "the rollup of tenant default counts 20 events, its log 23" in failed["rollups"]
    assert "the rollup_day of tenant default counts 20 events, its log 23" in failed["rollups"]
    # the remedy the message names
    assert main(["db", "migrate", "--db", pg_url, "--rebuild-rollups"]) == 0
    assert "report rollups rebuilt for 1 tenants: default" in capsys.readouterr().out
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 0
    with open_store(pg_url) as s:
        for table in ("rollup", "rollup_day"):
            assert s.connection.execute(  # type: ignore[attr-defined]
                f"SELECT sum(events) FROM {table}").fetchone()[0] == 23


def test_check_finds_events_missing_from_the_day_cells(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A collector from before 0010 keeps the hourly cells but not the day cells: named."""
    from agentaudit.store import open_store

    from .conftest import events

    with open_store(pg_url) as s:
        s.append_batch(events(6))
        s.connection.execute(  # type: ignore[attr-defined]
            "UPDATE rollup_day SET events = events - 2 WHERE ctid = "
            "(SELECT min(ctid) FROM rollup_day WHERE events >= 2)")
    capsys.readouterr()
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 1
    failed = {c["name"]: c["detail"] for c in json.loads(capsys.readouterr().out)["checks"]
              if not c["ok"]}
    assert "the rollup_day of tenant default counts 4 events, its log 6" in failed["rollups"]
    assert "the rollup of tenant" not in failed["rollups"]
    assert main(["db", "migrate", "--db", pg_url, "--rebuild-rollups"]) == 0
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 0


def _errors(n: int) -> list[Any]:
    from agentaudit.events import AuditEvent

    return [AuditEvent(event_type="agent.error", agent_name="A", action="t", trace_id="tr",
                       error="boom", error_type="E", timestamp=1_790_000_000.0 + i)
            for i in range(n)]


def _approvals(n: int) -> list[Any]:
    from agentaudit.events import AuditEvent

    return [AuditEvent(event_type="agent.human_intervention", agent_name="Human",
                       action="approval", trace_id=f"tr-{i}", params={"by": "alice"},
                       timestamp=1_790_000_000.0 + i) for i in range(n)]


@pytest.mark.parametrize(("table", "batch", "kept", "message"), [
    ("error_facts", _errors(5), 3, "the error facts of tenant default hold 3 errors, its rollup 5"),
    ("interventions", _approvals(4), 1, "the interventions of tenant default hold 1, its log 4"),
], ids=["error facts (before 0007)", "interventions (before 0008)"])
def test_check_finds_what_an_older_collector_left_out(
        pg_url: str, capsys: pytest.CaptureFixture[str], table: str, batch: list[Any],
        kept: int, message: str) -> None:
    """Events written by a collector that keeps the rollups but not these facts (a version
    from before their migration) are named, and the rebuild puts them back."""
    from agentaudit.store import open_store

    with open_store(pg_url) as s:
        s.append_batch(batch)
        # as that collector: its last events are in the log, not in the facts
        s.connection.execute(f"DELETE FROM {table} WHERE seq >= {kept}")  # type: ignore[attr-defined]
    capsys.readouterr()
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 1
    failed = {c["name"]: c["detail"] for c in json.loads(capsys.readouterr().out)["checks"]
              if not c["ok"]}
    assert message in failed["rollups"]
    assert main(["db", "migrate", "--db", pg_url, "--rebuild-rollups"]) == 0
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 0
    with open_store(pg_url) as s:
        assert s.connection.execute(  # type: ignore[attr-defined]
            f"SELECT count(*) FROM {table}").fetchone()[0] == len(batch)


def test_check_finds_metered_events_missing_from_the_cost_facts(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A collector from before 0011 keeps the rollups but not the cost facts: named, and the
    rebuild puts them back."""
    from agentaudit.events import AuditEvent
    from agentaudit.store import open_store

    calls = [AuditEvent(event_type="agent.llm_response", agent_name="A", model="m",
                        trace_id=f"tr-{i % 2}", task_id="job", prompt_tokens=5,
                        timestamp=1_790_000_000.0 + i) for i in range(5)]
    with open_store(pg_url) as s:
        s.append_batch(calls)
        s.connection.execute(  # type: ignore[attr-defined]
            "DELETE FROM cost_groups WHERE dim = 'trace' AND key = 'tr-1'")
    capsys.readouterr()
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 1
    failed = {c["name"]: c["detail"] for c in json.loads(capsys.readouterr().out)["checks"]
              if not c["ok"]}
    assert ("the cost facts of tenant default count 3 metered events by trace, its rollup 5"
            in failed["rollups"])
    assert "by task" not in failed["rollups"]
    assert main(["db", "migrate", "--db", pg_url, "--rebuild-rollups"]) == 0
    assert main(["db", "check", "--db", pg_url, "--format", "json"]) == 0
