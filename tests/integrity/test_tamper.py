"""The tamper suite: every kind of damage to a demo database is found by verify, and named."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentaudit.demo import run_demo
from agentaudit.integrity import verify as verify_mod
from agentaudit.integrity.bundle import verify_bundle, write_bundle
from agentaudit.integrity.checkpoint import Signer, format_checkpoint, parse_checkpoint, sign_note
from agentaudit.integrity.prove import check_proof, prove_event
from agentaudit.integrity.verify import verify_log
from agentaudit.store.sqlite import SQLiteStore

SIGNER = Signer.generate("agentaudit-test")
VKEY = SIGNER.verifier_key()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo store with many checkpoints, built once and copied per test."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGENTAUDIT_SIGNING_KEY", SIGNER.key_text())
        mp.setenv("AGENTAUDIT_CHECKPOINT_EVENTS", "250")
        mp.setenv("AGENTAUDIT_SPOOL_DIR", str(path.parent / "spool"))
        # a fixed clock: the demo's rows (and so which event sits at a given seq) depend on it,
        # and the tamper values below must differ from what the rows hold
        run_demo(str(path), traces=80, seed=7, now=1_773_136_800.0)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(params=["sequential", "parallel"])
def db(demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
       request: pytest.FixtureRequest) -> Iterator[Path]:
    """A copy of the demo store; every test runs with verify checking the rows in this process
    and again with two worker processes checking chunks of 97 rows (not aligned with anything:
    damage falls inside chunks, at their edges, and across them)."""
    monkeypatch.setenv("AGENTAUDIT_SIGNING_KEY", SIGNER.key_text())
    if request.param == "parallel":
        monkeypatch.setattr(verify_mod, "PARALLEL_MIN_EVENTS", 0)
        monkeypatch.setattr(verify_mod, "CHUNK_EVENTS", 97)
        monkeypatch.setenv("AGENTAUDIT_VERIFY_WORKERS", "2")
    else:
        monkeypatch.setenv("AGENTAUDIT_VERIFY_WORKERS", "1")
    copy = tmp_path / "copy.db"
    shutil.copy(demo_db, copy)
    yield copy


def verify(path: Path, **kw: object):  # type: ignore[no-untyped-def]
    with SQLiteStore(path, create=False) as store:
        return verify_log(store, vkey=VKEY, **kw)  # type: ignore[arg-type]


def sql(path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute(statement, params)


def event_at(path: Path, seq: int) -> str:
    with sqlite3.connect(path) as raw:
        return str(raw.execute("SELECT event_id FROM events WHERE seq = ?", (seq,)).fetchone()[0])


def test_clean_log_verifies(db: Path) -> None:
    report = verify(db)
    assert report.ok, report.damage
    assert report.size > 1000 and report.checkpoints >= 4 and report.unsigned_tail == 0


def test_modified_payload_is_named(db: Path) -> None:
    victim = event_at(db, 123)
    sql(db, "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), '}', ' }') AS BLOB) "
            "WHERE seq = 123")
    damage = verify(db).damage
    assert damage is not None and damage.kind == "modified"
    assert (damage.seq, damage.event_id) == (123, victim) and "payload" in damage.message


@pytest.mark.parametrize(("column", "value"), [
    ("agent_name", "Mallory"), ("timestamp", 1.0), ("confidence", 0.01), ("tier", "critical"),
    ("cost_usd", 999.0), ("error_type", "Nothing"), ("trace_id", "forged"),
    # a value of another type: text in a number column, a number in a text one, bytes
    ("timestamp", "noon"), ("duration_ms", "12"), ("agent_name", 7), ("event_type", b"\x01"),
    ("cost_usd", b"\x00"),
])
def test_modified_envelope_column_is_named(db: Path, column: str, value: object) -> None:
    victim = event_at(db, 500)
    with sqlite3.connect(db) as raw:  # the change is a change
        assert raw.execute(f"SELECT {column} FROM events WHERE seq = 500").fetchone()[0] != value
    sql(db, f"UPDATE events SET {column} = ? WHERE seq = 500", value)
    damage = verify(db).damage
    assert damage is not None and damage.kind == "modified"
    assert (damage.seq, damage.event_id) == (500, victim)


def test_bytes_that_print_as_the_original_text_are_found(db: Path) -> None:
    """A 32-hex-digit trace id is also valid base64: stored as the bytes it decodes to, it
    would print as the same string (the encoder writes bytes as base64) and leave the leaf as
    it was. The column's value changed all the same, and verify says so."""
    import base64

    victim = event_at(db, 500)
    with sqlite3.connect(db) as raw:
        trace_id = raw.execute("SELECT trace_id FROM events WHERE seq = 500").fetchone()[0]
    forged = base64.b64decode(trace_id, validate=True)
    assert base64.b64encode(forged).decode() == trace_id
    sql(db, "UPDATE events SET trace_id = ? WHERE seq = 500", forged)
    damage = verify(db).damage
    assert damage is not None and damage.kind == "modified"
    assert (damage.seq, damage.event_id) == (500, victim)


@pytest.mark.parametrize("column", ["action", "agent_name", "event_id"])
def test_text_that_is_not_utf8_is_named(db: Path, column: str) -> None:
    """Bytes that are not UTF-8 stored as text (sqlite3 cannot read them as a ``str``): verify
    names the row as modified instead of failing to read the file."""
    victim = event_at(db, 400)
    sql(db, f"UPDATE events SET {column} = CAST(X'61C3FF' AS TEXT) WHERE seq = 400")
    damage = verify(db).damage
    assert damage is not None and damage.kind == "modified"
    assert damage.seq == 400
    if column != "event_id":
        assert damage.event_id == victim


def test_user_id_column_must_match_payload(db: Path) -> None:
    sql(db, "UPDATE events SET user_id = 'someone-else' WHERE seq = 42")
    damage = verify(db).damage
    assert damage is not None and damage.kind == "modified" and damage.seq == 42


def test_deleted_row_is_named(db: Path) -> None:
    after = event_at(db, 301)
    sql(db, "DELETE FROM events WHERE seq = 300")
    damage = verify(db).damage
    assert damage is not None and damage.kind == "missing"
    assert damage.seq == 300 and damage.event_id == after


def test_forged_row_in_the_middle_is_found(db: Path) -> None:
    # Make room by shifting the tail (what an attacker must do to insert before the end).
    sql(db, "UPDATE events SET seq = seq + 100000 WHERE seq >= 700")
    sql(db, "UPDATE events SET seq = seq - 100000 + 1 WHERE seq >= 100000")
    sql(db, "INSERT INTO events (tenant, seq, event_id, event_type, agent_name, timestamp, tier, "
            "payload, salt, payload_sha256, leaf_hash) SELECT tenant, 700, "
            "'00000000-0000-7000-8000-000000000000', event_type, 'Forger', timestamp, tier, "
            "payload, salt, payload_sha256, leaf_hash FROM events WHERE seq = 699")
    damage = verify(db).damage
    assert damage is not None and damage.kind in ("modified", "inserted")
    assert damage.seq == 700 and damage.event_id == "00000000-0000-7000-8000-000000000000"


def test_forged_row_at_the_end_is_found(db: Path) -> None:
    sql(db, "INSERT INTO events (tenant, seq, event_id, event_type, agent_name, timestamp, tier, "
            "payload, salt, payload_sha256, leaf_hash) SELECT tenant, seq + 1, "
            "'00000000-0000-7000-8000-000000000001', event_type, 'Forger', timestamp, tier, "
            "payload, salt, payload_sha256, leaf_hash FROM events ORDER BY seq DESC LIMIT 1")
    damage = verify(db).damage
    assert damage is not None and damage.event_id == "00000000-0000-7000-8000-000000000001"


def test_swapped_rows_are_reported_as_reordered(db: Path) -> None:
    a, b = event_at(db, 410), event_at(db, 415)
    sql(db, "UPDATE events SET seq = -1 WHERE seq = 410")
    sql(db, "UPDATE events SET seq = 410 WHERE seq = 415")
    sql(db, "UPDATE events SET seq = 415 WHERE seq = -1")
    damage = verify(db).damage
    assert damage is not None and damage.kind == "reordered"
    assert (damage.seq, damage.event_id) == (410, b) and "415" in damage.message
    assert a != b


def test_truncated_tail_and_its_checkpoints_are_found(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        size = raw.execute("SELECT max(seq) + 1 FROM events").fetchone()[0]
    cut = size - 400
    sql(db, "DELETE FROM events WHERE seq >= ?", cut)
    sql(db, "DELETE FROM checkpoints WHERE size > ?", cut)
    damage = verify(db).damage
    assert damage is not None and damage.kind == "truncated" and damage.seq == cut


def test_resigned_checkpoints_are_found(db: Path) -> None:
    mallory = Signer.generate("agentaudit-test")  # same name, other key
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT size, note FROM checkpoints").fetchall()
        for size, note in rows:
            cp = parse_checkpoint(note)
            raw.execute("UPDATE checkpoints SET note = ? WHERE size = ?",
                        (sign_note(format_checkpoint(cp.origin, cp.size, cp.root), mallory), size))
    damage = verify(db).damage
    assert damage is not None and damage.kind == "bad signature"


def test_rollback_to_an_older_copy_is_caught_by_the_witness(db: Path, tmp_path: Path) -> None:
    old_copy = tmp_path / "old.db"
    shutil.copy(db, old_copy)
    from agentaudit import AuditLogger

    with AuditLogger(str(db)) as audit:  # the log grows, a witness keeps its newest head
        for i in range(50):
            audit.log_decision("Router", f"late decision {i}", confidence=0.5)
    with SQLiteStore(db, create=False) as store:
        witness = store.latest_checkpoint("default")[2]  # type: ignore[index]
        assert verify_log(store, vkey=VKEY, witness=witness).ok
    shutil.copy(old_copy, db)  # roll the database file back
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    assert verify(db).ok  # on its own the old copy is a consistent, smaller log ...
    damage = verify(db, witness=witness).damage  # ... but the witness saw more
    assert damage is not None and damage.kind == "inconsistent with witness"


def test_rewritten_history_is_caught_by_the_witness(db: Path) -> None:
    """Someone holding the signing key rewrites an event and re-signs everything."""
    with SQLiteStore(db, create=False) as store:
        witness = store.latest_checkpoint("default")[2]  # type: ignore[index]
    with sqlite3.connect(db) as raw:
        raw.execute("DELETE FROM checkpoints")
        raw.execute("UPDATE events SET agent_name = 'Mallory' WHERE seq = 10")
    # recompute the forged row's digest-consistent leaf and the whole tree, then re-sign
    from agentaudit.integrity.canonical import canonical_json
    from agentaudit.integrity.merkle import CompactRange, leaf_hash
    from agentaudit.integrity.verify import row_envelope
    from agentaudit.store import _sqlite_sql as q

    with SQLiteStore(db, create=False) as store, sqlite3.connect(db) as raw:
        rows = list(store.log_rows("default"))
        crange = CompactRange()
        for row in rows:
            leaf = leaf_hash(canonical_json(row_envelope(row)))
            raw.execute("UPDATE events SET leaf_hash = ? WHERE seq = ?", (leaf, row[1]))
            crange.append(leaf)
        raw.execute("UPDATE log_state SET frontier = ?", (crange.to_bytes(),))
        origin = parse_checkpoint(witness).origin
        note = sign_note(format_checkpoint(origin, crange.size, crange.root()), SIGNER)
        q.insert_checkpoint(raw, "default", crange.size, crange.root(), note, 0.0)
    assert verify(db).ok  # self-consistent and signed with the right key ...
    damage = verify(db, witness=witness).damage  # ... but not the history the witness saw
    assert damage is not None and damage.kind == "inconsistent with witness"


# -- proofs and bundles --------------------------------------------------------------------


def test_prove_and_check_an_event(db: Path) -> None:
    with SQLiteStore(db, create=False) as store:
        doc = prove_event(store, "default", event_at(db, 77))
    ok, reason = check_proof(doc, VKEY)
    assert ok, reason
    forged = dict(doc, leaf_entry=doc["leaf_entry"].replace('"seq":77', '"seq":78'))
    assert not check_proof(forged, VKEY)[0]
    assert not check_proof(doc, Signer.generate("x").verifier_key())[0]


def _bundle(db: Path, tmp_path: Path, where: str = "trace_id IS NOT NULL") -> Path:
    out = tmp_path / "evidence.zip"
    with SQLiteStore(db, create=False) as store:
        trace = store.connection.execute(
            f"SELECT trace_id FROM events WHERE {where} LIMIT 1").fetchone()[0]
        rows = [r for r in store.log_rows("default") if r[6] == trace]
        assert write_bundle(store, "default", rows, out, {"trace": trace}) == len(rows) > 3
    return out


def test_bundle_verifies_offline_and_detects_tampering(db: Path, tmp_path: Path) -> None:
    import json
    import zipfile

    out = _bundle(db, tmp_path)
    db.unlink()  # no database needed
    report = verify_bundle(out, vkey=VKEY)
    assert report.ok and report.events > 3 and report.trusted_key
    assert not verify_bundle(out, vkey=Signer.generate("x").verifier_key()).ok

    def rewrite(mutate) -> Path:  # type: ignore[no-untyped-def]
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(out) as src, zipfile.ZipFile(bad, "w") as dst:
            for name in src.namelist():
                data = src.read(name)
                if name == "events.jsonl":
                    items = [json.loads(x) for x in data.splitlines()]
                    mutate(items)
                    data = b"\n".join(json.dumps(i).encode() for i in items)
                dst.writestr(name, data)
        return bad

    def payload(items):  # type: ignore[no-untyped-def]
        import base64
        raw = base64.b64decode(items[1]["payload"]).replace(b"}", b" }", 1)
        items[1]["payload"] = base64.b64encode(raw).decode()

    def envelope(items):  # type: ignore[no-untyped-def]
        items[2]["envelope"]["agent_name"] = "Mallory"

    def proof(items):  # type: ignore[no-untyped-def]
        items[0]["inclusion_proof"][0] = "00" * 32

    def drop(items):  # type: ignore[no-untyped-def]
        del items[1]

    for mutate, words in ((payload, "payload"), (envelope, "envelope"), (proof, "proof"),
                          (drop, "manifest")):
        report = verify_bundle(rewrite(mutate), vkey=VKEY)
        assert not report.ok and words in (report.problem or ""), (mutate, report)


@pytest.mark.parametrize("damage", [
    "UPDATE events SET agent_name = 'Mallory' WHERE seq = {seq}",
    "UPDATE events SET payload = CAST(payload || X'20' AS BLOB) WHERE seq = {seq}",
    "UPDATE events SET action = CAST(X'61C3FF' AS TEXT) WHERE seq = {seq}",
    "UPDATE events SET leaf_hash = zeroblob(32) WHERE seq = {seq}",
    "UPDATE merkle_tiles SET hash = zeroblob(32)",
])
def test_bundle_of_a_store_that_does_not_verify_is_refused(db: Path, tmp_path: Path,
                                                         damage: str) -> None:
    """The exporter checks each event as the recipient will; a damaged one is named and no
    file (not even a temporary one) is left behind."""
    from agentaudit.exceptions import TamperDetected

    with SQLiteStore(db, create=False) as store:
        rows = [r for r in store.log_rows("default") if r[6] is not None][:40]
    seq, victim = rows[25][1], rows[25][3]
    assert rows[25][24] is not None  # the payload-altering case needs a payload
    sql(db, damage.format(seq=seq))
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "evidence.zip"
    with SQLiteStore(db, create=False) as store:
        damaged = [r for r in store.log_rows("default") if r[1] in {r2[1] for r2 in rows}]
        with pytest.raises(TamperDetected) as caught:
            write_bundle(store, "default", damaged, out, {})
    if "SET leaf_hash" in damage or "merkle_tiles" in damage:
        # the proofs come from the stored leaves: the first proof that crosses the damage
        # fails, and the message says the stored tree (not that event) was altered
        assert "inclusion proof" in str(caught.value) and "stored Merkle" in str(caught.value)
    else:
        assert (caught.value.seq, caught.value.event_id) == (seq, victim)
        assert victim in str(caught.value)
    assert list(out.parent.iterdir()) == []


def test_bundle_under_a_checkpoint_signed_by_another_key_is_refused(db: Path,
                                                                  tmp_path: Path) -> None:
    from agentaudit.exceptions import TamperDetected

    with sqlite3.connect(db) as raw:
        size, note = raw.execute("SELECT size, note FROM checkpoints ORDER BY size DESC "
                                 "LIMIT 1").fetchone()
        cp = parse_checkpoint(note)
        forged = sign_note(format_checkpoint(cp.origin, cp.size, cp.root),
                           Signer.generate("agentaudit-test"))
        raw.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (forged, size))
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "evidence.zip"
    with SQLiteStore(db, create=False) as store:
        rows = list(store.log_rows("default"))[:5]
        with pytest.raises(TamperDetected, match="not signed by this machine's key"):
            write_bundle(store, "default", rows, out, {})
    assert list(out.parent.iterdir()) == []


def test_worker_processes_check_the_rows_and_agree_with_one_process(
        demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked check in worker processes really runs, and reports exactly what the
    sequential check does (size, checkpoints, erased payloads in seq order)."""
    import concurrent.futures

    monkeypatch.setenv("AGENTAUDIT_SIGNING_KEY", SIGNER.key_text())
    copy = tmp_path / "erased.db"
    shutil.copy(demo_db, copy)
    sql(copy, "UPDATE events SET payload = NULL, salt = NULL, user_id = NULL, "
              "erased = 'retention' WHERE seq % 37 = 5")
    submitted: list[tuple[object, ...]] = []
    real_submit = concurrent.futures.ProcessPoolExecutor.submit

    def counting_submit(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        submitted.append(args)
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures.ProcessPoolExecutor, "submit", counting_submit)
    one = verify(copy, workers=1)
    assert not submitted
    monkeypatch.setattr(verify_mod, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(verify_mod, "CHUNK_EVENTS", 97)
    many = verify(copy, workers=2)
    assert len(submitted) == -(-one.size // 97)  # every chunk went to a worker
    assert one.ok and many.ok, (one.damage, many.damage)
    assert (many.size, many.checkpoints, many.erased) == (one.size, one.checkpoints, one.erased)
    assert len(one.erased) == len(range(5, one.size, 37))
