"""``--compact-before``: envelopes of days older than every tier are dropped, their leaf hashes
and a signed checkpoint kept, and the log (and every later event) still verifies."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from tests.retention.helpers import DAY, NOW, TODAY, event, open_store

from agentaudit.cli import main
from agentaudit.exceptions import ConfigError
from agentaudit.integrity.prove import prove_event
from agentaudit.integrity.verify import verify_log
from agentaudit.retention import apply_retention, compact_before, create_hold, load_config

POLICY = load_config().policy("default")


def _store_over_years(db_path: Path) -> tuple[object, list[object]]:
    store = open_store(db_path)
    events = [event(t, TODAY - age) for age in range(800, 0, -40)
              for t in ("debug", "critical")]  # arrival order: oldest first
    store.append_batch(events)
    store.checkpoint()
    return store, events


def test_compaction_keeps_the_log_verifiable(db_path: Path) -> None:
    store, events = _store_over_years(db_path)
    apply_retention(store, POLICY, now=NOW)
    result = compact_before(store, POLICY, (TODAY - 740) * DAY, now=NOW)
    # ages 800, 760 are older than 740 days: 2 days x 2 events
    assert (result.from_seq, result.to_seq) == (0, 4)
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT min(seq) FROM events").fetchone()[0] == 4
        assert raw.execute("SELECT count(*) FROM compacted_leaves").fetchone()[0] == 4
    assert store.latest_checkpoint("default")[0] > 4
    assert any(size == 4 for size, *_ in store.checkpoints("default"))
    report = verify_log(store, "default", workers=1)
    assert report.ok, report.damage
    assert report.compacted == 4 and report.size == len(events) + 2  # + run and compaction
    # worker processes (chunks of 7 rows after the compacted prefix) report the same
    with pytest.MonkeyPatch.context() as mp:
        from agentaudit.integrity import verify as verify_mod

        mp.setattr(verify_mod, "PARALLEL_MIN_EVENTS", 0)
        mp.setattr(verify_mod, "CHUNK_EVENTS", 7)
        parallel = verify_log(store, "default", workers=2)
    assert parallel.ok, parallel.damage
    assert (parallel.compacted, parallel.size, parallel.erased) == (4, report.size, report.erased)
    # later events still prove and verify, also after more are appended
    proof = prove_event(store, "default", events[10].event_id)
    assert proof["seq"] == 10
    store.append_batch([event("info", TODAY)])
    store.checkpoint()
    assert verify_log(store, "default").ok
    # compacting again up to the same date drops nothing more
    again = compact_before(store, POLICY, (TODAY - 740) * DAY, now=NOW)
    assert again.dropped == 0 and again.audit_event_id is None


def test_compaction_stops_at_a_held_event_and_refuses_recent_dates(db_path: Path) -> None:
    store, events = _store_over_years(db_path)
    create_hold(store, "default", "old case", trace=events[2].trace_id, now=NOW)
    result = compact_before(store, POLICY, (TODAY - 740) * DAY, now=NOW)
    assert result.to_seq == 2  # events[2] (seq 2) is held: the prefix stops before it
    with pytest.raises(ConfigError, match="not older than every tier"):
        compact_before(store, POLICY, (TODAY - 700) * DAY, now=NOW)
    assert verify_log(store, "default").ok


def test_tampering_with_a_compacted_leaf_is_detected(db_path: Path) -> None:
    store, _events = _store_over_years(db_path)
    compact_before(store, POLICY, (TODAY - 740) * DAY, now=NOW)
    store.connection.execute("UPDATE compacted_leaves SET leaf_hash = zeroblob(32) "
                             "WHERE seq = 1")
    report = verify_log(store, "default")
    assert not report.ok and report.damage is not None and report.damage.kind == "modified"
    store.connection.execute("DELETE FROM compacted_leaves WHERE seq = 1")
    report = verify_log(store, "default")
    assert report.damage is not None and report.damage.kind == "missing"


def test_cli_compact_before(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    today = int(time.time() // DAY)
    store = open_store(db_path)
    store.append_batch([event("critical", today - age) for age in (900, 800, 10)])
    store.checkpoint()
    store.close()
    old = time.strftime("%Y-%m-%d", time.gmtime((today - 750) * DAY))
    assert main(["retention", "apply", "--db", str(db_path), "--compact-before", old,
                 "--dry-run"]) == 0
    assert "would compact 2 events" in capsys.readouterr().out
    assert main(["retention", "apply", "--db", str(db_path), "--compact-before", old]) == 0
    assert "compacted 2 events (seq 0..1)" in capsys.readouterr().out
    assert main(["verify", "--db", str(db_path)]) == 0
    assert "the first 2 events were compacted" in capsys.readouterr().out
    recent = time.strftime("%Y-%m-%d", time.gmtime((today - 100) * DAY))
    assert main(["retention", "apply", "--db", str(db_path), "--compact-before", recent]) == 2
    assert "not older than every tier" in capsys.readouterr().err
    assert main(["retention", "apply", "--db", str(db_path), "--compact-before", "soon"]) == 2
    assert "--compact-before" in capsys.readouterr().err
