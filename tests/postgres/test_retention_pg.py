"""Retention, legal holds and erasure on a real PostgreSQL server: a day whose payloads are all
due is emptied whole, a partly due day loses its due rows one by one, holds keep payloads,
``verify`` passes after every step and names what was erased and why, every change is an
``audit.*`` event, tenants stay apart and only the retention role erases."""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest
from tests.retention.helpers import DAY, event

from agentaudit.cli import main
from agentaudit.integrity.checkpoint import load_or_create_signing_key
from agentaudit.integrity.verify import verify_log
from agentaudit.retention import apply_retention, create_hold, erase, load_config
from agentaudit.store import open_store
from agentaudit.store._pg_schema import INGEST_ROLE, READER_ROLE, RETENTION_ROLE

from .conftest import as_role, login_role

TODAY = int(time.time() // DAY)
POLICY = load_config().policy("default")
WHOLE = TODAY - 10  # only debug events: the whole day is due
PARTIAL = TODAY - 9  # debug (due) and critical (kept) events


def _vkey() -> str:
    return load_or_create_signing_key("agentaudit").verifier_key()


def _fill(url: str) -> dict[str, Any]:
    evs = {
        "whole": [event("debug", WHOLE, user_id="alice", session_id="s-a", trace_id="t-a1"),
                  event("debug", WHOLE, user_id="bob", session_id="s-b", trace_id="t-b1",
                        timestamp=WHOLE * DAY + 7200.0)],
        "partial_due": event("debug", PARTIAL, user_id="bob", session_id="s-b", trace_id="t-b"),
        "partial_kept": event("critical", PARTIAL, user_id="bob", session_id="s-b",
                              trace_id="t-b"),
        "young": event("info", TODAY - 1, user_id="alice", session_id="s-a", trace_id="t-a2"),
    }
    with open_store(url) as s:
        s.append_batch([*evs["whole"], evs["partial_due"], evs["partial_kept"], evs["young"]])
        s.checkpoint()
    return evs


def _payload(url: str, event_id: str) -> tuple[Any, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT payload, erased FROM events_v WHERE event_id = %s",
                           (event_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def _rows_in_day(url: str, day: int) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM event_payloads_d{day}").fetchone()[0])


def _verify(url: str) -> Any:
    with open_store(url) as s:
        report = verify_log(s, "default", vkey=_vkey())
    assert report.ok, report.damage
    return report


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_status_dry_run_and_apply_whole_and_partial_day(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    evs = _fill(pg_url)
    status = run_json(capsys, "retention", "status", "--db", pg_url)
    debug = next(t for t in status["tiers"] if t["tier"] == "debug")
    assert debug["events"] == 3 and debug["due"] == 3 and debug["payload_bytes"] > 9000
    code, out, _ = run(capsys, "retention", "status", "--db", pg_url)
    assert code == 0 and "expires" in out
    code, out, _ = run(capsys, "retention", "apply", "--db", pg_url, "--dry-run")
    assert code == 0 and "would erase 3 payloads" in out
    assert _rows_in_day(pg_url, WHOLE) == 2 and _payload(pg_url, evs["partial_due"].event_id)[0]
    code, out, _ = run(capsys, "retention", "apply", "--db", pg_url)
    assert code == 0 and "erased 3 payloads" in out and "audit.retention_run" in out
    # the whole day: its partition emptied at once, the day's reason recorded once
    assert _rows_in_day(pg_url, WHOLE) == 0
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT reason FROM payload_days_dropped WHERE day = %s",
                            (WHOLE,)).fetchone() == ("retention: debug tier, 7 days",)
    # the partial day: the due row erased in place, the critical one kept
    assert _rows_in_day(pg_url, PARTIAL) == 2
    assert _payload(pg_url, evs["partial_due"].event_id) == (
        None, "retention: debug tier, 7 days")
    assert _payload(pg_url, evs["partial_kept"].event_id)[0] is not None
    assert _payload(pg_url, evs["young"].event_id)[0] is not None
    code, out, _ = run(capsys, "verify", "--db", pg_url)
    assert code == 0, out
    assert "3 payloads were erased (3 by retention: debug tier, 7 days)" in out
    report = run_json(capsys, "verify", "--db", pg_url)
    assert len(report["erased"]) == 3
    after = {t["tier"]: t for t in run_json(capsys, "retention", "status", "--db",
                                            pg_url)["tiers"]}
    assert after["debug"]["erased"] == 3 and after["debug"]["due"] == 0
    (rec,) = run_json(capsys, "retention", "erased", "--db", pg_url)
    assert rec["kind"] == "retention" and rec["erased"] == 3
    erased = run_json(capsys, "retention", "erased", "--db", pg_url, "--events")
    assert len(erased) == 3 and all(e["erased_at"] and e["reason"] for e in erased)
    runs = run_json(capsys, "log", "--db", pg_url, "--type", "audit.retention_run")
    assert runs[0]["params"]["erased"] == 3
    # nothing left: a second run erases nothing, and a late event of the emptied day lands
    code, out, _ = run(capsys, "retention", "apply", "--db", pg_url)
    assert code == 0 and "erased 0 payloads" in out
    late = event("info", WHOLE, trace_id="late")
    with open_store(pg_url) as s:
        assert s.append_batch([late]).accepted == 1
        assert s.get_event("default", late.event_id).params is not None  # type: ignore[union-attr]
        s.checkpoint()
    _verify(pg_url)


def test_hold_blocks_retention_and_erasure_until_released(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    evs = _fill(pg_url)
    created = run_json(capsys, "hold", "create", "--db", pg_url, "--reason", "case 9",
                       "--session", "s-b")
    assert created["matching_events"] == 3
    assert [h["id"] for h in run_json(capsys, "hold", "list", "--db", pg_url)] == [created["id"]]
    code, _, err = run(capsys, "erase", "--db", pg_url, "--session", "s-b", "--reason", "x")
    assert code == 1
    assert "refused: 3 matching events are under legal hold" in err and created["id"] in err
    code, out, _ = run(capsys, "retention", "apply", "--db", pg_url)
    assert "erased 1 payloads" in out and "kept 2 expired payloads under legal hold" in out
    # the held event shares the whole day with a due one: no truncation, one row erased
    assert _rows_in_day(pg_url, WHOLE) == 2
    assert _payload(pg_url, evs["whole"][1].event_id)[0] is not None
    assert _payload(pg_url, evs["whole"][0].event_id)[0] is None
    _verify(pg_url)
    code, _, err = run(capsys, "hold", "release", created["id"], "--db", pg_url)
    assert code == 0 and "released" in err
    assert run_json(capsys, "hold", "list", "--db", pg_url) == []
    assert run_json(capsys, "hold", "list", "--db", pg_url, "--all")[0]["released_at"]
    code, out, _ = run(capsys, "erase", "--db", pg_url, "--session", "s-b", "--reason", "x")
    assert code == 0 and "erased 3 payloads" in out
    types = [e["event_type"] for e in run_json(capsys, "log", "--db", pg_url, "--type",
                                               "audit.legal_hold,audit.legal_hold_released")]
    assert types == ["audit.legal_hold", "audit.legal_hold_released"]
    _verify(pg_url)


@pytest.mark.parametrize(("selector", "value", "gone"), [
    ("--user", "alice", {"t-a1", "t-a2"}),
    ("--session", "s-b", {"t-b1", "t-b"}),
    ("--trace", "t-a2", {"t-a2"}),
])
def test_erase_by_user_session_trace(pg_url: str, capsys: pytest.CaptureFixture[str],
                                     selector: str, value: str, gone: set[str]) -> None:
    _fill(pg_url)
    result = run_json(capsys, "erase", "--db", pg_url, selector, value, "--reason", "GDPR 17")
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT trace_id, payload IS NULL, user_id FROM events_v "
                            "WHERE event_type LIKE 'agent.%'").fetchall()
    assert {t for t, erased, _u in rows if erased} == gone
    assert result["erased"] == sum(1 for _t, erased, _u in rows if erased)
    assert all(u is None for _t, erased, u in rows if erased)
    if selector == "--user":
        assert "alice" not in json.dumps(result) and result["recorded_as"].startswith("sha256:")
    code, out, _ = run(capsys, "verify", "--db", pg_url)
    assert code == 0 and f"by erasure {result['erasure_id']}: GDPR 17" in out
    (rec,) = run_json(capsys, "retention", "erased", "--db", pg_url)
    assert rec["kind"] == "erasure" and rec["audit_event_id"] == result["audit_event_id"]
    (logged,) = run_json(capsys, "log", "--db", pg_url, "--type", "audit.erasure")
    assert logged["params"]["erased"] == result["erased"]


def test_hold_placed_after_planning_is_honoured(pg_url: str) -> None:
    from agentaudit.retention.job import commit_retention, plan_retention

    evs = _fill(pg_url)
    with open_store(pg_url) as s:
        run_, groups = plan_retention(s, POLICY)
        assert run_.erased == 3
        with open_store(pg_url) as other:  # another process places a hold meanwhile
            create_hold(other, "default", "late", trace="t-b1")
        commit_retention(s, run_, groups)
        assert run_.erased == 2 and run_.kept_by_hold == 1
        (record,) = s.erasure_records("default")
        assert record.erased == 2 and record.refused_held == 1
    assert _payload(pg_url, evs["whole"][1].event_id)[0] is not None
    assert _rows_in_day(pg_url, WHOLE) == 2  # not emptied: a held row is in it
    _verify(pg_url)


def test_tenants_stay_apart(pg_url: str) -> None:
    same_day = [event("debug", WHOLE, tenant="acme"), event("debug", WHOLE, tenant="globex")]
    with open_store(pg_url) as s:
        s.append_batch(same_day)
        hold, _ = create_hold(s, "globex", "globex case", agent="Router")
        acme = apply_retention(s, load_config().policy("acme"))
        assert acme.erased == 1 and acme.kept_by_hold == 0  # globex's hold is not acme's
        assert s.list_holds("acme") == [] and s.erasure_records("globex") == []
        assert s.get_event("globex", same_day[1].event_id).params is not None  # type: ignore[union-attr]
        # the same trace id in both tenants: acme's erasure finds only its own (erased) event
        assert erase(s, "acme", reason="r", trace=same_day[1].trace_id).already_erased == 1
    # the day also holds globex's row: it was not emptied
    assert _rows_in_day(pg_url, WHOLE) == 2
    reader = login_role(pg_url, READER_ROLE)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenant_readers (role_name, tenant) VALUES (%s, 'acme')",
                     (reader,))
    with psycopg.connect(as_role(pg_url, reader)) as conn:
        assert conn.execute("SELECT count(*) FROM legal_holds").fetchone()[0] == 0
        assert {r[0] for r in conn.execute("SELECT tenant FROM erasures")} == {"acme"}
    with open_store(as_role(pg_url, reader), readonly=True) as s:
        assert s.list_holds() == [] and len(s.erasure_records("acme")) == 2
    for tenant in ("acme", "globex"):
        with open_store(pg_url) as s:
            s.checkpoint(tenant)
            assert verify_log(s, tenant, vkey=_vkey()).ok
    assert hold.tenant == "globex"


def test_only_the_retention_role_erases(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    evs = _fill(pg_url)
    ingest = as_role(pg_url, login_role(pg_url, INGEST_ROLE))
    code, _, err = run(capsys, "erase", "--db", ingest, "--user", "alice", "--reason", "x")
    assert code == 1 and "permission denied" in err and "Traceback" not in err
    code, _, err = run(capsys, "retention", "apply", "--db", ingest)
    assert code == 1 and "permission denied" in err
    code, _, err = run(capsys, "hold", "create", "--db", ingest, "--reason", "r", "--trace", "t")
    assert code == 1 and "permission denied" in err
    with psycopg.connect(ingest, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT agentaudit_truncate_payload_day(%s, '{}'::bigint[], 'x', 0)",
                         (WHOLE,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE event_payloads SET payload = NULL")
    assert _payload(pg_url, evs["whole"][0].event_id)[0] is not None  # nothing erased
    retention = as_role(pg_url, login_role(pg_url, RETENTION_ROLE))
    code, out, err = run(capsys, "retention", "apply", "--db", retention)
    assert code == 0 and "erased 3 payloads" in out, err
    code, out, err = run(capsys, "erase", "--db", retention, "--user", "alice", "--reason", "x")
    assert code == 0 and "erased 1 payloads" in out, err
    with psycopg.connect(retention, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied|append-only"):
        conn.execute("DELETE FROM events WHERE seq = 1")
    assert _rows_in_day(pg_url, WHOLE) == 0
    _verify(pg_url)


def test_compaction_is_refused_with_a_reason(pg_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    evs = _fill(pg_url)
    code, _, err = run(capsys, "retention", "apply", "--db", pg_url, "--compact-before",
                       "2020-01-01")
    assert code == 2 and "--compact-before is not available on the postgresql backend" in err
    assert _payload(pg_url, evs["whole"][0].event_id)[0] is not None  # nothing done at all


def test_serve_applies_retention_periodically(pg_url: str, tmp_path: Any) -> None:
    import os

    from tests.server.conftest import Server, wait_for

    evs = _fill(pg_url)
    with open_store(pg_url) as s:
        create_hold(s, "default", "case 1", trace="t-b")
        s.checkpoint()

    def runs() -> int:
        with psycopg.connect(pg_url) as conn:
            return int(conn.execute("SELECT count(*) FROM events "
                                    "WHERE event_type = 'audit.retention_run'").fetchone()[0])

    server = Server(pg_url, tmp_path / "home", "--no-auth",  # type: ignore[arg-type]
                    env={"AGENTAUDIT_RETENTION_INTERVAL": "0.3",
                         "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]}).start()
    try:
        wait_for(lambda: _rows_in_day(pg_url, WHOLE) == 0)  # the whole day, emptied
        wait_for(lambda: runs() == 1)
        time.sleep(1.0)  # later runs find nothing to erase and record nothing
        assert runs() == 1
        assert _payload(pg_url, evs["partial_due"].event_id)[0] is not None  # held
        assert _payload(pg_url, evs["young"].event_id)[0] is not None
    finally:
        server.stop()
    assert main(["verify", "--db", pg_url]) == 0


@pytest.mark.parametrize("pattern", ["agent.tool_*", "payments.?efund", "a[bc]*", "x.y",
                                     "*", "[^a]*", "100%_done", "(re)+"])
def test_rule_globs_match_as_sqlite_glob_does(pattern: str) -> None:
    import re
    import sqlite3

    from agentaudit.store._pg_retention import glob_regex

    names = ["agent.tool_call", "agent.toolbox", "payments.refund", "payments.Refund", "abc",
             "ac", "b", "x.y", "xzy", "", "100%_done", "1000_done", "(re)+", "rere"]
    with sqlite3.connect(":memory:") as db:
        for name in names:
            want = bool(db.execute("SELECT ? GLOB ?", (name, pattern)).fetchone()[0])
            assert bool(re.search(glob_regex(pattern), name)) == want, (pattern, name)


def test_space_is_given_back(pg_url: str) -> None:
    import secrets

    big = {"blob": secrets.token_hex(10_000)}  # incompressible: TOAST keeps it whole
    whole = [event("debug", WHOLE, params=big) for _ in range(30)]
    mixed = [event("debug", PARTIAL, params=big) for _ in range(30)]
    mixed.append(event("critical", PARTIAL))
    with open_store(pg_url) as s:
        s.append_batch(whole + mixed)
        before = s.payload_bytes_on_disk()  # type: ignore[attr-defined]
        run_ = apply_retention(s, POLICY, full_vacuum=True)
        assert run_.erased == 60 and run_.space is not None
        assert run_.space["partitions_vacuumed"] == 1  # the partial day; the whole one emptied
        assert s.payload_bytes_on_disk() < before // 4  # type: ignore[attr-defined]
        s.checkpoint()
    assert _rows_in_day(pg_url, WHOLE) == 0 and _rows_in_day(pg_url, PARTIAL) == 31
    _verify(pg_url)


def test_a_day_emptied_whole_keeps_the_reasons_of_earlier_erasures(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    evs = _fill(pg_url)
    result = run_json(capsys, "erase", "--db", pg_url, "--user", "alice", "--reason", "GDPR 1")
    assert result["erased"] == 2  # t-a1 (the whole day) and t-a2 (young)
    code, out, _ = run(capsys, "retention", "apply", "--db", pg_url)
    assert code == 0 and "erased 2 payloads" in out
    # bob's payload was the last one of the day: emptied whole, alice's erased row kept
    assert _rows_in_day(pg_url, WHOLE) == 1
    assert _payload(pg_url, evs["whole"][0].event_id) == (
        None, f"erasure {result['erasure_id']}: GDPR 1")
    assert _payload(pg_url, evs["whole"][1].event_id) == (None, "retention: debug tier, 7 days")
    code, out, _ = run(capsys, "verify", "--db", pg_url)
    assert code == 0 and "4 payloads were erased" in out
    assert "2 by retention: debug tier, 7 days" in out
    assert f"2 by erasure {result['erasure_id']}: GDPR 1" in out


def test_a_day_shared_by_tenants_is_emptied_by_the_last_run(pg_url: str) -> None:
    acme, globex = event("debug", WHOLE, tenant="acme"), event("debug", WHOLE, tenant="globex")
    with open_store(pg_url) as s:
        s.append_batch([acme, globex])
        assert apply_retention(s, load_config().policy("acme")).erased == 1
        assert _rows_in_day(pg_url, WHOLE) == 2  # globex's payload is still there
        assert s.get_event("globex", globex.event_id).params is not None  # type: ignore[union-attr]
        assert apply_retention(s, load_config().policy("globex")).erased == 1
        assert _rows_in_day(pg_url, WHOLE) == 1  # acme's erased row, put back
        for tenant, ev in (("acme", acme), ("globex", globex)):
            s.checkpoint(tenant)
            report = verify_log(s, tenant, vkey=_vkey())
            assert report.ok and [(e, r) for _s, e, r in report.erased] == [
                (ev.event_id, "retention: debug tier, 7 days")]
