"""The ``Store`` contract, run on every backend (the ``backend`` fixture: SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentaudit.events import AuditEvent
from agentaudit.exceptions import StoreError
from agentaudit.integrity.bundle import verify_bundle, write_bundle
from agentaudit.integrity.checkpoint import load_or_create_signing_key
from agentaudit.integrity.merkle import leaf_hash
from agentaudit.integrity.prove import check_proof, prove_event
from agentaudit.integrity.verify import verify_log
from agentaudit.store import EventQuery, Store, open_store
from agentaudit.store.log import CheckpointPolicy
from agentaudit.store.rows import LOG_COLUMNS, VERIFY_COLUMNS

T0 = 1_780_000_000.0  # a fixed day boundary-crossing period: T0 .. T0 + 3 days


def _events(n: int, tenant: str = "default", start: float = T0, step: float = 3600.0,
            ) -> list[AuditEvent]:
    """n events over several days: two agents, traces of 4, errors, tokens, users, tags."""
    out = []
    for i in range(n):
        kind = ["agent.invocation", "agent.tool_call", "agent.tool_result", "agent.error"][i % 4]
        out.append(AuditEvent(
            event_type=kind, agent_name="Alpha" if i % 3 else "Beta", tenant=tenant,
            timestamp=start + i * step, trace_id=f"trace-{i // 4}", task_id=f"task-{i // 4}",
            session_id=f"s-{i % 2}", user_id=f"user-{i % 5}", action=f"tool{i % 2}",
            params={"i": i, "text": "é ✓"}, result={"ok": i % 4 != 3}, duration_ms=10.0 + i,
            error="boom" if kind == "agent.error" else None,
            error_type="Timeout" if kind == "agent.error" else None,
            prompt_tokens=i, completion_tokens=2 * i, cost_usd=0.001 * i, model="gpt-4o",
            confidence=0.5 + (i % 5) / 10, tags={"k": str(i)}))
    return out


@pytest.fixture
def store(backend: str) -> Iterator[Store]:
    s = open_store(backend, checkpoint_policy=CheckpointPolicy(every_events=50,
                                                              every_seconds=3600))
    yield s
    s.close()


def test_append_round_trip_and_seq(store: Store) -> None:
    evs = _events(12)
    result = store.append_batch(evs)
    assert (result.accepted, result.duplicates) == (12, 0)
    page = store.query(EventQuery(limit=100))
    assert [e.event_id for e in page.data] == [e.event_id for e in evs]
    assert [e.seq for e in page.data] == list(range(12))
    got = page.data[3]
    assert got.params == {"i": 3, "text": "é ✓"} and got.error == "boom"
    assert got.user_id == "user-3" and got.tags == {"k": "3"} and got.cost_usd == 0.003
    assert got.leaf_hash and len(bytes.fromhex(got.leaf_hash)) == 32
    assert store.get_event("default", evs[5].event_id).params == {"i": 5, "text": "é ✓"}
    assert store.get_event("default", "nope") is None
    assert store.info().events == 12 and store.info().tenants == ["default"]


def test_idempotent_and_deduped(store: Store) -> None:
    evs = _events(8)
    store.append_batch(evs[:5])
    again = store.append_batch([*evs, evs[6]])  # 5 stored already, one repeated in the batch
    assert (again.accepted, again.duplicates) == (3, 6)
    assert store.count(EventQuery()) == 8
    assert sorted(e.seq for e in store.iter_events(EventQuery())) == list(range(8))
    assert store.append_batch([]).accepted == 0


def test_query_filters(store: Store) -> None:
    store.append_batch(_events(40))
    store.append_batch(_events(6, tenant="other"))
    q = EventQuery
    assert store.count(q()) == 40 and store.count(q(tenant="other")) == 6
    assert store.count(q(agent="Beta")) == 14
    assert store.count(q(event_types=["agent.error", "agent.invocation"])) == 20
    assert store.count(q(errors_only=True)) == 10
    assert store.count(q(trace_id="trace-2")) == 4
    assert store.count(q(session_id="s-1")) == 20
    assert store.count(q(task_id="task-9")) == 4
    assert store.count(q(user_id="user-2")) == 8
    assert store.count(q(since=T0 + 10 * 3600, until=T0 + 20 * 3600)) == 10
    assert store.count(q(after_seq=35)) == 4
    assert [e.seq for e in store.query(q(user_id="user-2", limit=3)).data] == [2, 7, 12]
    newest = store.query(q(limit=2, newest_first=True)).data
    assert [e.seq for e in newest] == [39, 38]


@pytest.mark.parametrize("newest_first", [False, True])
def test_cursor_pagination(store: Store, newest_first: bool) -> None:
    evs = _events(23)
    evs[5].timestamp = evs[4].timestamp  # a tie in time is ordered by seq
    store.append_batch(evs)
    seen: list[int] = []
    q = EventQuery(limit=5, newest_first=newest_first)
    while True:
        page = store.query(q)
        seen += [e.seq for e in page.data]  # type: ignore[misc]
        if page.next_cursor is None:
            break
        q.cursor = page.next_cursor
    assert seen == (sorted(range(23), reverse=newest_first))
    with pytest.raises(StoreError):
        store.query(EventQuery(cursor="garbage"))


def test_trace_events(store: Store) -> None:
    store.append_batch(_events(12))
    by_trace = store.trace_events("default", "trace-1")
    assert [e.seq for e in by_trace] == [4, 5, 6, 7]
    assert [e.seq for e in store.trace_events("default", "task-2")] == [8, 9, 10, 11]
    assert store.trace_events("other", "trace-1") == []


def test_aggregations(store: Store) -> None:
    store.append_batch(_events(40))
    rows = store.aggregate("event_types", "default", None, None)
    assert {r["event_type"]: r["events"] for r in rows} == {
        "agent.invocation": 10, "agent.tool_call": 10, "agent.tool_result": 10,
        "agent.error": 10}
    totals = store.aggregate("totals", "default", None, None, limit=1)[0]
    assert totals["events"] == 40 and totals["errors"] == 10 and totals["agents"] == 2
    assert totals["prompt_tokens"] == sum(range(40)) and totals["traces"] == 10
    assert isinstance(totals["prompt_tokens"], int)
    agents = store.aggregate("agents", "default", T0, T0 + 86400)
    assert [a["agent_name"] for a in agents] == ["Alpha", "Beta"]
    assert sum(a["events"] for a in agents) == 24
    msgs = store.aggregate("error_messages", "default", None, None)
    assert msgs == [{"error_type": "Timeout", "message": "boom", "count": 10}]
    assert store.aggregate("max_seq", "default", None, None, limit=1)[0]["max_seq"] == 39
    with pytest.raises(StoreError, match="unknown aggregation"):
        store.aggregate("no_such_thing", "default", None, None)


def test_every_report_runs(store: Store) -> None:
    from agentaudit import reports
    from agentaudit.reports.period import Period

    store.append_batch(_events(60))
    period = Period(T0 - 3600, T0 + 4 * 86400)
    assert reports.summary_report(store, "default", period)["total_events"] == 60
    assert reports.tool_usage_report(store, "default", period)
    assert reports.errors_report(store, "default", period)["total_errors"] == 15
    assert reports.compliance_report(store, "default", period, now=T0 + 5 * 86400)["checks"]
    assert reports.cost_report(store, "default", period)
    assert reports.agent_report(store, "default", "Alpha", period)
    assert reports.forensics_report(store, "default", "trace-3")


def test_log_rows_checkpoints_and_verify(store: Store, tmp_path: Path) -> None:
    store.append_batch(_events(120))
    store.append_batch(_events(30, tenant="other"))
    assert store.checkpoint() == []  # type: ignore[attr-defined]  # every head is signed
    cps = store.checkpoints("default")  # type: ignore[attr-defined]
    assert [c[0] for c in cps] == [50, 100, 120]
    size, frontier = store.log_state("default")  # type: ignore[attr-defined]
    assert size == 120 and frontier
    rows = list(store.log_rows("default", batch_size=7))  # type: ignore[attr-defined]
    assert [r[1] for r in rows] == list(range(120))
    leaves = store.leaf_hashes("default", 0, 120)  # type: ignore[attr-defined]
    assert leaves == [r[LOG_COLUMNS.index("leaf_hash")] for r in rows] and all(len(h) == 32 for h in leaves)
    assert store.log_row("default", rows[7][3])[1] == 7  # type: ignore[attr-defined]
    assert store.tile_roots("default")  == {}  # type: ignore[attr-defined]  # < 256 leaves
    vkey = load_or_create_signing_key("agentaudit").verifier_key()
    for tenant, n in (("default", 120), ("other", 30)):
        report = verify_log(store, tenant, vkey=vkey)
        assert report.ok, report.damage
        assert report.size == n and report.unsigned_tail == 0
    proof = prove_event(store, "default", rows[42][3])
    assert check_proof(json.loads(json.dumps(proof)), vkey)[0]
    assert leaf_hash(proof["leaf_entry"].encode()) == leaves[42]
    bundle = tmp_path / "b.zip"
    write_bundle(store, "default", rows[10:20], bundle, {"what": "test"})
    assert verify_bundle(bundle, vkey).ok


def test_log_rows_of_some_columns(store: Store) -> None:
    """``verify`` reads VERIFY_COLUMNS: the same rows, in the same pages, without id, day, tenant."""
    store.append_batch(_events(40))
    store.append_batch(_events(5, tenant="other"))
    keep = [LOG_COLUMNS.index(c) for c in VERIFY_COLUMNS]
    full = list(store.log_rows("default", batch_size=7, start=3, stop=38))  # type: ignore[attr-defined]
    some = list(store.log_rows("default", batch_size=7, start=3, stop=38,  # type: ignore[attr-defined]
                               columns=VERIFY_COLUMNS))
    assert len(some) == 35 and [tuple(r[i] for i in keep) for r in full] == [tuple(r) for r in some]
    with pytest.raises(ValueError, match="LOG_COLUMNS"):
        list(store.log_rows("default", columns=("seq", "payload; DROP TABLE events")))  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="seq"):
        list(store.log_rows("default", columns=("event_id",)))  # type: ignore[attr-defined]


def test_log_span_of_a_period(store: Store) -> None:
    """The seqs ``log_rows`` must read to find every event of a period, even when seq is not
    in time order (a backfill keeps its timestamps)."""
    store.append_batch(_events(40))  # seq 0..39, one hour apart from T0
    store.append_batch(_events(3, start=T0 + 10.5 * 3600))  # seq 40..42, back in time
    store.append_batch(_events(5, tenant="other", start=T0 - 3600))
    span = store.log_span  # type: ignore[attr-defined]
    assert span("default", None, None) == (0, 43)
    assert span("default", T0 + 5 * 3600, T0 + 8 * 3600) == (5, 8)
    assert span("default", T0 + 10 * 3600, T0 + 12 * 3600) == (10, 42)  # the third: 12.5 h
    assert span("default", None, T0 + 2 * 3600) == (0, 2)
    assert span("default", T0 + 39 * 3600, None) == (39, 40)
    assert span("default", T0 + 100 * 3600, None) is None
    assert span("nobody", None, None) is None
    assert span("other", None, T0) == (0, 1)


def test_tiles_past_256(store: Store) -> None:
    store.append_batch(_events(300, step=60.0))
    assert set(store.tile_roots("default")) == {0}  # type: ignore[attr-defined]
    vkey = load_or_create_signing_key("agentaudit").verifier_key()
    store.checkpoint()  # type: ignore[attr-defined]
    assert verify_log(store, "default", vkey=vkey).ok
    last = list(store.log_rows("default"))[-1]  # type: ignore[attr-defined]
    assert check_proof(prove_event(store, "default", last[3]), vkey)[0]


def test_api_keys(store: Store) -> None:
    key, secret = store.create_key("acme", "ingest", "ci")  # type: ignore[attr-defined]
    assert store.lookup_key(secret) == key  # type: ignore[attr-defined]
    assert store.lookup_key(secret[:-1] + "0") in (None, key)  # type: ignore[attr-defined]
    assert [k.id for k in store.list_keys("acme")] == [key.id]  # type: ignore[attr-defined]
    revoked = store.revoke_key(key.id, "acme")  # type: ignore[attr-defined]
    assert revoked is not None and revoked.revoked
    assert store.revoke_key(key.id, "other") is None  # type: ignore[attr-defined]
    store.delete_key(key.id)  # type: ignore[attr-defined]
    assert store.list_keys() == []  # type: ignore[attr-defined]


def test_readonly_refuses_missing_store(backend: str, tmp_path: Path) -> None:
    if backend.startswith("postgresql"):
        with pytest.raises(StoreError, match="db migrate"):
            open_store(backend, readonly=True)
    else:
        with pytest.raises(StoreError):
            open_store(str(tmp_path / "absent.db"), create=False)


def test_prepared_outside_the_lock_stores_the_same_log(store: Store) -> None:
    """``prepare_outside_lock`` (a collector with several workers) sequences before taking the
    write lock; the log is the same as the default path's: seqs, duplicates skipped (within a
    batch and already stored), two tenants interleaved, and it verifies."""
    evs = _events(60) + _events(20, tenant="other")
    store.append_batch(evs[:10])  # the default path first
    store.prepare_outside_lock = True  # type: ignore[attr-defined]
    mixed = [e for pair in zip(evs[5:25], evs[60:], strict=True) for e in pair]
    again = store.append_batch([*mixed, evs[7], evs[70]])  # 5 stored already, 2 repeated
    assert (again.accepted, again.duplicates) == (35, 7)
    assert store.append_batch(evs[25:60]).accepted == 35
    store.prepare_outside_lock = False  # type: ignore[attr-defined]
    assert store.append_batch(evs).accepted == 0
    by_tenant = {t: [(e.seq, e.event_id) for e in store.iter_events(EventQuery(tenant=t))]
                 for t in ("default", "other")}
    assert [s for s, _ in by_tenant["default"]] == list(range(60))
    assert {i for _, i in by_tenant["default"]} == {e.event_id for e in evs[:60]}
    assert [s for s, _ in by_tenant["other"]] == list(range(20))
    vkey = load_or_create_signing_key("agentaudit").verifier_key()
    store.checkpoint()  # type: ignore[attr-defined]
    for tenant, n in (("default", 60), ("other", 20)):
        report = verify_log(store, tenant, vkey=vkey)
        assert report.ok and report.size == n, report.damage
