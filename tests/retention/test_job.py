"""The retention job on a real SQLite file and a real PostgreSQL database (``backend``):
backdated events in every tier are erased on the right day, held ones are kept, the log still
verifies, and (SQLite) the file shrinks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.retention.helpers import (
    DAY,
    NOW,
    TODAY,
    TYPE_OF_TIER,
    event,
    open_store,
    payload_of,
)

from agentaudit.events import AuditEvent
from agentaudit.integrity.verify import verify_log
from agentaudit.retention import (
    DEFAULT_DAYS,
    RetentionConfig,
    apply_retention,
    create_hold,
    expiry_of,
    load_config,
    release_hold,
    retention_status,
)
from agentaudit.store.base import Store

POLICY = load_config().policy("default")


def _audit_events(store: Store, event_type: str) -> list[AuditEvent]:
    from agentaudit.store.base import EventQuery

    return store.query(EventQuery(tenant="default", event_types=[event_type])).data


@pytest.mark.parametrize("tier", list(DEFAULT_DAYS))
def test_payload_erased_on_the_day_its_tier_expires(backend: str, tier: str) -> None:
    days = DEFAULT_DAYS[tier]
    store = open_store(backend)
    day = TODAY - days - 3
    ev = event(tier, day, timestamp=day * DAY + 86399.0)  # the last second of its day
    younger = event(tier, day + 1, timestamp=(day + 1) * DAY)
    store.append_batch([ev, younger])
    due = expiry_of(day, days)
    assert due == (day + days + 1) * DAY
    # one second before the day ends: kept (dry run and real run agree)
    assert apply_retention(store, POLICY, now=due - 1, dry_run=True).erased == 0
    assert apply_retention(store, POLICY, now=due - 1).erased == 0
    assert payload_of(store, ev.event_id)[0] is not None
    run = apply_retention(store, POLICY, now=due)
    assert run.erased == 1 and run.by_tier[tier]["erased"] == 1
    payload, why = payload_of(store, ev.event_id)
    assert payload is None and why == f"retention: {tier} tier, {days} days"
    assert payload_of(store, younger.event_id)[0] is not None  # its day is not over yet
    assert apply_retention(store, POLICY, now=due + DAY).erased == 1  # the next day's turn
    report = verify_log(store, "default")
    assert report.ok, report.damage
    assert {r for _s, _e, r in report.erased} == {f"retention: {tier} tier, {days} days"}


def _every_tier(store: Store) -> dict[str, list[AuditEvent]]:
    """For each tier: events of 1, 8, 31, 366 and 731 days ago."""
    by_tier = {t: [event(t, TODAY - k) for k in (1, 8, 31, 366, 731)] for t in TYPE_OF_TIER}
    store.append_batch([e for evs in by_tier.values() for e in evs])
    store.checkpoint()
    return by_tier


def test_every_tier_at_once_held_events_kept_and_log_verifies(backend: str) -> None:
    store = open_store(backend)
    by_tier = _every_tier(store)
    held = by_tier["debug"][2]  # 31 days old: expired in debug
    hold, matching = create_hold(store, "default", "case 42", trace=held.trace_id, now=NOW)
    assert matching == 1
    run = apply_retention(store, POLICY, now=NOW)
    expected = {"debug": [8, 31, 366, 731], "info": [31, 366, 731], "compliance": [366, 731],
                "critical": [731]}
    for tier, evs in by_tier.items():
        for ev, age in zip(evs, (1, 8, 31, 366, 731), strict=True):
            gone = age in expected[tier] and ev is not held
            assert (payload_of(store, ev.event_id)[0] is None) == gone, (tier, age)
    assert run.erased == 9 and run.kept_by_hold == 1
    assert run.by_tier["debug"] == {"erased": 3, "payload_bytes": run.by_tier["debug"][
        "payload_bytes"], "kept_by_hold": 1}
    # the run is in the verifiable log, with its counts
    (recorded,) = _audit_events(store, "audit.retention_run")
    assert recorded.params["erased"] == 9 and recorded.params["kept_by_hold"] == 1
    assert recorded.params["by_tier"]["critical"]["erased"] == 1
    store.checkpoint()
    report = verify_log(store, "default")
    assert report.ok and len(report.erased) == 9 and report.unsigned_tail == 0
    # released: the held payload goes on the next run
    release_hold(store, hold.id, "default", now=NOW + 1)
    assert apply_retention(store, POLICY, now=NOW + 2).erased == 1
    assert payload_of(store, held.event_id)[0] is None
    assert verify_log(store, "default").ok


def _snapshot(backend: str) -> list[object]:
    """Every row of the tables a retention run could change (either backend)."""
    if backend.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(backend) as conn:
            return [conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in  # type: ignore[arg-type]
                    ("events_v", "log_state", "checkpoints", "merkle_tiles", "legal_holds",
                     "erasures", "payload_days_dropped")]
    import sqlite3

    with sqlite3.connect(backend) as raw:
        return [raw.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in
                ("events", "log_state", "checkpoints", "merkle_tiles", "legal_holds",
                 "erasures")]


def test_hold_created_between_reading_and_erasing_is_honoured(backend: str) -> None:
    from agentaudit.retention.job import commit_retention, plan_retention

    store = open_store(backend)
    by_tier = _every_tier(store)
    run, groups = plan_retention(store, POLICY, now=NOW)  # e.g. on the collector's reader
    assert run.erased == 10
    late = by_tier["info"][2]
    other = open_store(backend)  # another process places a hold meanwhile
    create_hold(other, "default", "late hold", trace=late.trace_id, now=NOW)
    other.close()
    commit_retention(store, run, groups)
    assert payload_of(store, late.event_id)[0] is not None
    assert run.erased == 9 and run.kept_by_hold == 1 and run.by_tier["info"]["erased"] == 2
    (recorded,) = _audit_events(store, "audit.retention_run")
    assert recorded.params["erased"] == 9 and recorded.params["kept_by_hold"] == 1
    (record,) = store.erasure_records("default")
    assert record.erased == 9 and record.refused_held == 1
    assert verify_log(store, "default").ok


def test_dry_run_changes_nothing(backend: str) -> None:
    store = open_store(backend)
    _every_tier(store)
    before = _snapshot(backend)
    run = apply_retention(store, POLICY, now=NOW, dry_run=True)
    assert run.erased == 10 and run.audit_event_id is None and run.space is None
    assert _snapshot(backend) == before


def test_status_per_tier_and_day(backend: str) -> None:
    store = open_store(backend)
    _every_tier(store)
    status = retention_status(store, POLICY, now=NOW)
    tiers = {t["tier"]: t for t in status["tiers"]}
    assert tiers["debug"]["events"] == 5 and tiers["debug"]["due"] == 4
    assert tiers["critical"]["due"] == 1 and tiers["critical"]["days"] == 730
    row = next(d for d in status["days"] if d["tier"] == "info" and d["day"] == TODAY - 1)
    assert row["events"] == 1 and row["payload_bytes"] > 3000 and not row["expired"]
    assert row["expires"].startswith("2025-12-08")  # 7 Nov + 30 days + the rest of the day
    apply_retention(store, POLICY, now=NOW)
    after = {t["tier"]: t for t in retention_status(store, POLICY, now=NOW)["tiers"]}
    assert after["debug"]["erased"] == 4 and after["debug"]["due"] == 0


def test_storage_reclaimed_incrementally_for_large_payloads(db_path: Path) -> None:
    store = open_store(db_path)
    assert store.storage_pages()["auto_vacuum"] == 2  # a new file is incremental
    store.append_batch([event("debug", TODAY - 20, params={"blob": "z" * 20_000})
                        for _ in range(40)])
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, size = store.storage_pages()["page_count"], os.path.getsize(db_path)
    run = apply_retention(store, POLICY, now=NOW)
    assert run.erased == 40 and run.space is not None
    assert run.space["pages_after"] < pages // 2  # ~190 of 234 pages were payload
    assert store.storage_pages()["page_count"] == run.space["pages_after"]
    assert os.path.getsize(db_path) < size // 2
    assert verify_log(store, "default").ok


def test_storage_reclaimed_for_small_payloads_too(db_path: Path) -> None:
    store = open_store(db_path)
    store.append_batch([event("debug", TODAY - 20, params={"q": "w" * 400}) for _ in range(3000)])
    store.append_batch([event("critical", TODAY - 20, params={"q": "w" * 400})
                        for _ in range(100)])  # kept: interleaved rows stay as they were
    pages = store.storage_pages()["page_count"]
    run = apply_retention(store, POLICY, now=NOW)
    assert run.erased == 3000 and run.space is not None
    assert run.space["pages_after"] < pages * 0.6, (pages, run.space)
    assert verify_log(store, "default").ok


def test_full_vacuum_compacts_small_payloads_and_converts_old_files(db_path: Path) -> None:
    import sqlite3

    # a file made before incremental auto-vacuum (as older versions did)
    with sqlite3.connect(db_path) as raw:
        raw.execute("PRAGMA journal_mode = WAL")
    store = open_store(db_path)
    assert store.storage_pages()["auto_vacuum"] == 0
    store.append_batch([event("debug", TODAY - 20, params={"q": "w" * 400}) for _ in range(3000)])
    pages = store.storage_pages()["page_count"]
    run = apply_retention(store, POLICY, now=NOW, full_vacuum=True)
    assert run.erased == 3000 and run.space is not None
    assert run.space["pages_after"] < pages * 0.6
    assert store.storage_pages()["auto_vacuum"] == 2
    assert verify_log(store, "default").ok


def test_rules_override_the_seed_classification(backend: str) -> None:
    config = RetentionConfig.from_mapping({
        "tiers": {"debug": 2},
        "rules": [{"tool": "payments.*", "tier": "critical"},
                  {"tag": "pii=yes", "tier": "debug"}],
        "tenants": {"acme": {"tiers": {"info": 400}}},
    })
    policy = config.policy("default")
    store = open_store(backend)
    pay = event("info", TODAY - 40, action="payments.refund")  # tool call kept 730 days
    pii = event("info", TODAY - 5, tags={"pii": "yes"})  # info, but tagged: 2 days
    plain = event("info", TODAY - 40)
    dbg = event("debug", TODAY - 4)
    store.append_batch([pay, pii, plain, dbg])
    run = apply_retention(store, policy, now=NOW)
    assert {k: v["erased"] for k, v in run.by_tier.items()} == {"debug": 2, "info": 1}
    assert payload_of(store, pay.event_id)[0] is not None
    assert all(payload_of(store, e.event_id)[0] is None for e in (pii, plain, dbg))
    assert config.policy("acme").days["info"] == 400 and config.policy("acme").days["debug"] == 2
    assert verify_log(store, "default").ok


def test_compliance_warning_below_six_months() -> None:
    assert load_config().warnings() == []
    short = RetentionConfig.from_mapping({"tiers": {"compliance": 90}})
    (warning,) = short.warnings()
    assert "'compliance'" in warning and "90 days" in warning and "Art. 19" in warning
    moved = RetentionConfig.from_mapping(
        {"rules": [{"event_type": "agent.decision", "tier": "info"}]})
    (warning,) = moved.warnings()
    assert "'info'" in warning and "agent.decision" in warning
    harmless = RetentionConfig.from_mapping(
        {"rules": [{"event_type": "agent.reasoning", "tier": "debug"}]})
    assert harmless.warnings() == []


@pytest.mark.parametrize(("text", "message"), [
    ('[tiers]\ndebug = "seven"', "whole number of days"),
    ("[tiers]\nweekly = 7", "unknown tier 'weekly'"),
    ('[[rules]]\ntier = "info"', "at least one of"),
    ('[[rules]]\nagent = "x"\ntier = "forever"', "tier must be one of"),
    ('[[rules]]\nagnet = "x"\ntier = "info"', "unknown keys ['agnet']"),
    ("[tiers\n", "cannot read retention config"),
])
def test_bad_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    from agentaudit.exceptions import ConfigError

    path = tmp_path / "retention.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_config_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[tiers]\ninfo = 60\n")
    monkeypatch.setenv("AGENTAUDIT_RETENTION_CONFIG", str(path))
    assert load_config().policy("x").days["info"] == 60
    assert json.loads(json.dumps(load_config().policy("x").days))["debug"] == 7
