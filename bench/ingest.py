"""Ingest: events per second made durable in SQLite, end to end, with reference ceilings.

Every variant writes the same workload (traces of 20 realistic events: invocation, reasoning,
7 tool calls with results, an LLM response, a decision, the closing decision) into a fresh
SQLite file, in one run, in a rotating order:

* ``sdk``: ``AuditLogger`` (the public path). Timed from the first log call until ``flush()``
  returns, i.e. enqueue -> validated -> sequenced -> committed. The queue is large enough never
  to block. Four variants: integrity on (default) / off x ``synchronous`` full (default) / normal.
* ``append_batch``: ``SQLiteStore.append_batch`` directly on pre-built events, batches of
  ``--batch-size`` (no SDK queue, no validation), integrity on / off.
* ``executemany``: the ceiling without Python-side work: pre-built 27-column rows
  (``agentaudit.store.rows.row_values``) inserted with ``connection.executemany(INSERT_EVENT,
  rows)`` into the same schema (``SQLiteStore(path, integrity=False)``), one ``BEGIN IMMEDIATE``
  ... ``COMMIT`` per batch, rows with and without the integrity columns (salt, digest, leaf).

Ceilings use ``synchronous=full`` like the default SDK variant. Each run also profiles the store's
per-event work stage by stage (``--profile-events`` events in batches, each stage timed over the
whole batch with ``perf_counter``), and compares the sum of the stages with ``append_batch``
measured on the same batches, so the unexplained remainder ("glue") is visible.

Targets: >= 100,000 events/s without integrity (issue #2), >= 75,000 events/s with integrity
(issue #3), integrity on/off >= 0.75.

Run (default 200,000 events per variant, 3 runs, a few minutes):

    cd /work/main && PYTHONPATH=src .venv/bin/python bench/ingest.py
    PYTHONPATH=src .venv/bin/python bench/ingest.py --events 1000000            # full size
    PYTHONPATH=src .venv/bin/python bench/ingest.py --only sdk --events 1000000  # SDK rows only
    PYTHONPATH=src .venv/bin/python bench/ingest.py --only sdk_int_full,sdk_noint_full
    PYTHONPATH=src .venv/bin/python bench/ingest.py --json
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as C
import msgspec
from _workload import EVENTS_PER_TRACE, build_events, log_trace

from agentaudit import AuditLogger
from agentaudit.events import AuditEvent, default_tier, validate_event
from agentaudit.integrity import canonical as canonical_mod
from agentaudit.integrity.canonical import canonical_json
from agentaudit.integrity.merkle import CompactRange, leaf_hash
from agentaudit.store import _sqlite_sql as sql
from agentaudit.store import log as log_mod
from agentaudit.store.log import LogSequencer, envelope, leaf_of
from agentaudit.store.rows import COLUMNS, encode_payload, row_values
from agentaudit.store.sqlite import SQLiteStore

TARGET_NO_INTEGRITY = 100_000
TARGET_INTEGRITY = 75_000
TARGET_RATIO = 0.75

GROUPS = {
    "sdk": ["sdk_int_full", "sdk_noint_full", "sdk_int_normal", "sdk_noint_normal"],
    "append": ["append_int", "append_noint", "append_int_plain"],
    "executemany": ["em_int_rows", "em_null_rows"],
    "profile": ["profile"],
}
SDK_VARIANTS = [  # (key, integrity, synchronous)
    ("sdk_int_full", True, "full"),
    ("sdk_noint_full", False, "full"),
    ("sdk_int_normal", True, "normal"),
    ("sdk_noint_normal", False, "normal"),
]
LABELS = {
    "sdk_int_full": "SDK end to end — integrity on, synchronous=full (default)",
    "sdk_noint_full": "SDK end to end — integrity off, synchronous=full",
    "sdk_int_normal": "SDK end to end — integrity on, synchronous=normal",
    "sdk_noint_normal": "SDK end to end — integrity off, synchronous=normal",
    "append_int": "append_batch — integrity on (no SDK queue, no validation)",
    "append_noint": "append_batch — integrity off",
    "append_int_plain": "append_batch — integrity on, event_type a plain str (after the fix)",
    "em_int_rows": "ceiling: bare executemany, pre-built rows with integrity columns",
    "em_null_rows": "ceiling: bare executemany, pre-built rows without integrity columns",
}


def plain_event_type(events: list[AuditEvent]) -> list[AuditEvent]:
    """Copies whose ``event_type`` is a plain ``str`` instead of an ``EventType`` member."""
    return [msgspec.structs.replace(ev, event_type=str(ev.event_type)) for ev in events]


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- variants --------------------------------------------------------------------------------


def run_sdk(tmp: Path, traces: int, integrity: bool, synchronous: str,
            batch_size: int) -> C.Metrics:
    """Log ``traces`` traces through the SDK; time first log -> flush returned."""
    audit = AuditLogger(str(tmp / "sdk.db"), integrity=integrity, synchronous=synchronous,
                        max_queue=traces * EVENTS_PER_TRACE + 100_000, batch_size=batch_size,
                        spool_dir=tmp / "spool")
    try:
        log_trace(audit, -1)  # warm-up: opens the store outside the timed region
        audit.flush(timeout=None)
        gc.collect()
        t0 = time.perf_counter()
        for k in range(traces):
            log_trace(audit, k)
        t1 = time.perf_counter()
        ok = audit.flush(timeout=None)
        t2 = time.perf_counter()
        st = audit.stats()
    finally:
        audit.close(timeout=None)
    n = traces * EVENTS_PER_TRACE
    if not ok or st.written != n + EVENTS_PER_TRACE or st.spilled or st.dropped or st.failed:
        raise SystemExit(f"SDK variant lost events: {st.as_dict()}")
    return {"eps": n / (t2 - t0), "caller_s": t1 - t0, "total_s": t2 - t0}


def run_append(tmp: Path, batches: list[list[AuditEvent]], integrity: bool) -> C.Metrics:
    store = SQLiteStore(tmp / "append.db", integrity=integrity)
    try:
        store.append_batch(build_events(1, time.time(), first_trace=99_999_999))  # warm-up
        n = sum(len(b) for b in batches)
        gc.collect()
        t0 = time.perf_counter()
        stored = 0
        for b in batches:
            stored += store.append_batch(b).accepted
        t1 = time.perf_counter()
    finally:
        store.close()
    if stored != n:
        raise SystemExit(f"append_batch stored {stored} of {n} events")
    return {"eps": n / (t1 - t0), "total_s": t1 - t0}


def run_executemany(tmp: Path, row_batches: list[list[tuple[Any, ...]]]) -> C.Metrics:
    store = SQLiteStore(tmp / "em.db", integrity=False)
    db = store.connection
    insert = sql.INSERT_EVENT
    n = sum(len(b) for b in row_batches)
    try:
        gc.collect()
        t0 = time.perf_counter()
        for rows in row_batches:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(insert, rows)
            db.execute("COMMIT")
        t1 = time.perf_counter()
    finally:
        store.close()
    return {"eps": n / (t1 - t0), "total_s": t1 - t0}


def integrity_rows(events: list[AuditEvent]) -> list[tuple[Any, ...]]:
    """Rows as an integrity-on store writes them (random salt, real digest and leaf)."""
    rows = []
    salts = os.urandom(16 * len(events))
    for seq, ev in enumerate(events):
        payload = encode_payload(ev)
        tier = ev.tier or default_tier(ev.event_type)
        salt = salts[16 * seq : 16 * seq + 16]
        digest = hashlib.sha256(salt + payload).digest()
        leaf = leaf_of(ev, seq, tier, digest)[1]
        rows.append(row_values(ev, seq, tier, payload, salt, digest, leaf))
    return rows


def null_rows(events: list[AuditEvent]) -> list[tuple[Any, ...]]:
    return [row_values(ev, seq, ev.tier or default_tier(ev.event_type), encode_payload(ev),
                       None, None, None) for seq, ev in enumerate(events)]


# -- per-stage profile -----------------------------------------------------------------------

STAGES = [  # (key, label)
    ("validate", "validate_event (writer thread, before the store)"),
    ("dedupe", "dedupe within the batch"),
    ("encode_payload", "encode_payload (msgspec JSON of the payload fields)"),
    ("tier", "tier lookup"),
    ("digest", "salt + SHA-256(salt || payload)"),
    ("entry", "envelope + JCS leaf entry (log.envelope_entry, incl. digest.hex())"),
    ("envelope", "envelope dict (incl. digest.hex())"),
    ("canonical", "canonical_json(envelope), events as the SDK builds them"),
    ("leaf", "leaf_hash (SHA-256 of 0x00 || entry)"),
    ("merkle", "merkle append (CompactRange.append + tile visitor)"),
    ("row_values", "row_values (27-tuple)"),
    ("executemany", "executemany (BEGIN IMMEDIATE, load state, INSERT rows)"),
    ("commit", "save_log_state + save_tiles + COMMIT (fsync, synchronous=full)"),
]
DIAGNOSTICS = [  # measured beside the stages, not part of their sum
    ("envelope_dict", "envelope(...) dict (incl. digest.hex())"),
    ("canonical_general", "general canonical_json(envelope), event_type an EventType member"),
    ("canonical_plain", "general canonical_json(envelope), event_type a plain str"),
    ("canonical_prep", "  of which _prep_dict (Python walk of the envelope)"),
    ("canonical_encode", "  of which the C encoder (sorted keys)"),
    ("executemany_plain", "executemany, same rows with event_type a plain str"),
    ("executemany_noindex", "executemany, plain rows, schema without secondary indexes"),
]


def _bare_store(path: Path, drop_indexes: bool = False) -> SQLiteStore:
    store = SQLiteStore(path, integrity=False)
    if drop_indexes:
        db = store.connection
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                  "AND tbl_name = 'events' AND sql IS NOT NULL").fetchall():
            db.execute(f"DROP INDEX {name}")
    return store


def _sequence(seqr: LogSequencer, batch: list[AuditEvent], state: tuple[int, bytes | None]
              ) -> None:
    def load(_db: Any, _tenant: str) -> tuple[int, bytes | None]:
        return state

    try:
        seqr.sequence(None, batch, load, lambda _db, _tenant: (0, time.time()))
    except TypeError:  # an older signature without last_checkpoint
        seqr.sequence(None, batch, load)


def profile(tmp: Path, events: list[AuditEvent], batch_size: int) -> C.Metrics:
    """µs/event of every stage of ``append_batch`` (integrity on), over the same batches.

    Batch by batch, the stages run one after the other on one store, then the same batch goes
    through the real ``append_batch`` (integrity on and off, each on its own store), the real
    ``LogSequencer.sequence`` and the diagnostics: all of them see the same machine load. The
    garbage collector is off meanwhile, so that no stage is charged for a collection.
    """
    try:
        from agentaudit.store.sqlite import _dedupe_in_batch
    except ImportError:  # moved or renamed: skip that row
        _dedupe_in_batch = None
    prep = getattr(canonical_mod, "_prep_dict", None)
    enc = getattr(canonical_mod, "_encode", None)
    save_tiles = getattr(sql, "save_tiles", None)
    envelope_entry = getattr(log_mod, "envelope_entry", None)
    et = COLUMNS.index("event_type")
    n = len(events)
    acc: dict[str, float] = {}
    pc = time.perf_counter
    sha256 = hashlib.sha256

    def add(key: str, t0: float) -> float:
        t1 = pc()
        acc[key] = acc.get(key, 0.0) + (t1 - t0)
        return pc()

    seqr = LogSequencer(integrity=True)
    tile_visitor = getattr(seqr, "_tile_visitor", None)
    cr = CompactRange(visitor=tile_visitor("default") if tile_visitor else None)
    stores = {
        "stages": SQLiteStore(tmp / "stages.db", integrity=True),
        "whole_int": SQLiteStore(tmp / "whole_int.db", integrity=True),
        "whole_noint": SQLiteStore(tmp / "whole_noint.db", integrity=False),
        "plain": _bare_store(tmp / "plain.db"),
        "noindex": _bare_store(tmp / "noindex.db", drop_indexes=True),
    }
    seq_int, seq_noint = LogSequencer(integrity=True), LogSequencer(integrity=False)
    state_int: tuple[int, bytes | None] = (0, None)
    state_noint: tuple[int, bytes | None] = (0, None)
    db = stores["stages"].connection
    seq0 = 0
    gc.collect()
    gc.disable()  # a collection would land on whichever stage happens to allocate then
    try:
        for b in _batches(events, batch_size):
            m = len(b)
            if hasattr(seqr, "tiles"):
                seqr.tiles.clear()
            # -- the stages of append_batch, one loop each over the batch
            t = pc()
            for ev in b:
                validate_event(ev)
            t = add("validate", t)
            if _dedupe_in_batch is not None:
                _dedupe_in_batch(b)
                t = add("dedupe", t)
            payloads = [encode_payload(ev) for ev in b]
            t = add("encode_payload", t)
            tiers = [ev.tier or default_tier(ev.event_type) for ev in b]
            t = add("tier", t)
            salts = os.urandom(16 * m)
            digests = [sha256(salts[16 * i : 16 * i + 16] + payloads[i]).digest()
                       for i in range(m)]
            t = add("digest", t)
            if envelope_entry is not None:  # what LogSequencer.sequence calls
                entries = [envelope_entry(b[i], seq0 + i, tiers[i], digests[i].hex())
                           for i in range(m)]
                t = add("entry", t)
            else:  # older code: the envelope dict, then the general canonical_json
                envs = [envelope(b[i], seq0 + i, tiers[i], digests[i].hex()) for i in range(m)]
                t = add("envelope", t)
                entries = [canonical_json(e) for e in envs]
                t = add("canonical", t)
            leaves = [leaf_hash(e) for e in entries]
            t = add("leaf", t)
            for h in leaves:
                cr.append(h)
            t = add("merkle", t)
            rows = [row_values(b[i], seq0 + i, tiers[i], payloads[i], salts[16 * i : 16 * i + 16],
                               digests[i], leaves[i]) for i in range(m)]
            t = add("row_values", t)
            db.execute("BEGIN IMMEDIATE")
            sql.load_log_state(db, "default")
            db.executemany(sql.INSERT_EVENT, rows)
            t = add("executemany", t)
            sql.save_log_state(db, {"default": (seq0 + m, cr.to_bytes())})
            if save_tiles is not None:
                save_tiles(db, getattr(seqr, "tiles", []))
            db.execute("COMMIT")
            add("commit", t)
            seq0 += m
            # -- the real thing on the same batch
            t = pc()
            stores["whole_int"].append_batch(b)
            t = add("append_batch_int", t)
            stores["whole_noint"].append_batch(b)
            t = add("append_batch_noint", t)
            _sequence(seq_int, b, state_int)
            t = add("sequence_int", t)
            state_int = seq_int.pending_states()["default"]
            _sequence(seq_noint, b, state_noint)
            add("sequence_noint", t)
            state_noint = seq_noint.pending_states()["default"]
            # -- diagnostics: the envelope dict and the general canonical_json, with event_type
            # as the SDK sets it (an EventType member) and as a plain str, and its two halves
            t = pc()
            envs = [envelope(b[i], seq0 + i, tiers[i], digests[i].hex()) for i in range(m)]
            t = add("envelope_dict", t)
            for e in envs:
                canonical_json(e)
            t = add("canonical_general", t)
            plain = [{**e, "event_type": str(e["event_type"])} for e in envs]
            t = pc()
            for e in plain:
                canonical_json(e)
            t = add("canonical_plain", t)
            if prep is not None and enc is not None:
                prepared = [prep(e) for e in plain]
                t = add("canonical_prep", t)
                for p in prepared:
                    enc(p)
                add("canonical_encode", t)
            # -- diagnostics: the same rows with a plain-str event_type, with and without the
            # secondary indexes (executemany only, each on its own store)
            plain_rows = [(*r[:et], str(r[et]), *r[et + 1:]) for r in rows]
            for key in ("plain", "noindex"):
                sdb = stores[key].connection
                sdb.execute("BEGIN IMMEDIATE")
                t = pc()
                sdb.executemany(sql.INSERT_EVENT, plain_rows)
                add(f"executemany_{key}", t)
                sdb.execute("COMMIT")
    finally:
        gc.enable()
        for store in stores.values():
            store.close()
    out = {f"stage_{k}": v / n * 1e6 for k, v in acc.items()}
    for key in ("append_batch_int", "append_batch_noint", "sequence_int", "sequence_noint"):
        out[key] = out.pop(f"stage_{key}")
    return out


# -- one run ---------------------------------------------------------------------------------


def one_run(run: int, args: Any, prebuilt: dict[str, Any]) -> C.Metrics:
    m: C.Metrics = {}
    traces = args.events // EVENTS_PER_TRACE
    steps: list[tuple[str, Callable[[Path], C.Metrics]]] = []
    for key, integrity, sync in SDK_VARIANTS:
        steps.append((key, lambda tmp, i=integrity, s=sync: run_sdk(
            tmp, traces, i, s, args.batch_size)))
    steps += [
        ("append_int", lambda tmp: run_append(tmp, prebuilt["batches"], True)),
        ("append_noint", lambda tmp: run_append(tmp, prebuilt["batches"], False)),
        ("append_int_plain", lambda tmp: run_append(tmp, prebuilt["plain_batches"], True)),
        ("em_int_rows", lambda tmp: run_executemany(tmp, prebuilt["int_rows"])),
        ("em_null_rows", lambda tmp: run_executemany(tmp, prebuilt["null_rows"])),
        ("profile", lambda tmp: profile(tmp, prebuilt["profile_events"], args.batch_size)),
    ]
    steps = [(key, step) for key, step in steps if key in args.only]
    k = run % len(steps)
    for key, step in steps[k:] + steps[:k]:  # rotate the order from run to run
        tmp = Path(tempfile.mkdtemp(prefix="aa-bench-ingest-", dir=args.tmpdir))
        try:
            C.note(args.json, f"    {key} ...")
            result = step(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if key == "profile":
            m.update(result)
        else:
            m.update({f"{key}_{name}": v for name, v in result.items()})
    for a, b in (("sdk_int_full", "sdk_noint_full"), ("sdk_int_normal", "sdk_noint_normal"),
                 ("append_int", "append_noint"), ("em_int_rows", "em_null_rows")):
        if f"{a}_eps" in m and f"{b}_eps" in m:
            m[f"ratio_{a}"] = m[f"{a}_eps"] / m[f"{b}_eps"]
    if "sdk_int_full_eps" in m and "append_int_eps" in m:
        m["sdk_share_of_append_int"] = m["sdk_int_full_eps"] / m["append_int_eps"]
    return m


# -- report ----------------------------------------------------------------------------------


def report(s: dict[str, dict[str, float]], args: Any, env: dict[str, Any], n: int) -> str:
    out = [f"## Ingest into SQLite — {n:,} events per variant, batches of {args.batch_size:,}, "
           f"median (min–max) of {args.runs} runs", C.env_line(env), ""]
    rows = []
    for key, label in LABELS.items():
        if f"{key}_eps" not in s:
            continue
        target, verdict = "", ""
        if key in ("sdk_int_full", "sdk_int_normal"):
            target = f">= {TARGET_INTEGRITY:,}"
            verdict = C.verdict(s[f"{key}_eps"]["median"] >= TARGET_INTEGRITY)
        elif key in ("sdk_noint_full", "sdk_noint_normal"):
            target = f">= {TARGET_NO_INTEGRITY:,}"
            verdict = C.verdict(s[f"{key}_eps"]["median"] >= TARGET_NO_INTEGRITY)
        caller = C.cell(s, f"{key}_caller_s") if f"{key}_caller_s" in s else ""
        rows.append([label, C.cell(s, f"{key}_eps", 0), C.cell(s, f"{key}_total_s"), caller,
                     target, verdict])
    if rows:
        out += [C.table(["variant", "events/s", "total s", "caller done after s", "target",
                         ""], rows), ""]
    ratios = []
    for key, label in (("sdk_int_full", "SDK, synchronous=full"),
                       ("sdk_int_normal", "SDK, synchronous=normal"),
                       ("append_int", "append_batch"),
                       ("em_int_rows", "bare executemany (row width only)")):
        if f"ratio_{key}" in s:
            ok = s[f"ratio_{key}"]["median"] >= TARGET_RATIO
            ratios.append([label, C.cell(s, f"ratio_{key}"), f">= {TARGET_RATIO}",
                           C.verdict(ok) if key.startswith("sdk") else ""])
    if ratios:
        out += [C.table(["integrity on / off (same run)", "ratio", "target", ""], ratios), ""]
    if "sdk_share_of_append_int" in s:
        out += [f"SDK end to end / append_batch (integrity on, same run): "
                f"{C.cell(s, 'sdk_share_of_append_int')}", ""]
    if "append_batch_int" in s:
        out += [profile_table(s, args), ""]
    return "\n".join(out).rstrip()


def profile_table(s: dict[str, dict[str, float]], args: Any) -> str:
    whole = s["append_batch_int"]["median"]

    def pct(value: float) -> str:
        return f"{100 * value / whole:.1f}%"

    def med(key: str) -> float:
        return s[key]["median"] if key in s else 0.0

    rows = []
    for key, label in STAGES:
        if f"stage_{key}" in s:
            rows.append([label, C.cell(s, f"stage_{key}", 3), pct(med(f"stage_{key}"))])
    store_stages = [k for k, _ in STAGES if k != "validate" and f"stage_{k}" in s]
    seq_stages = [k for k in ("encode_payload", "tier", "digest", "entry", "envelope",
                              "canonical", "leaf", "merkle", "row_values") if f"stage_{k}" in s]
    store_sum = sum(med(f"stage_{k}") for k in store_stages)
    seq_sum = sum(med(f"stage_{k}") for k in seq_stages)
    rows += [
        ["= sum of the store's stages (all but validate_event)", C.fmt(store_sum, 3),
         pct(store_sum)],
        ["append_batch, integrity on, same batches (measured)", C.cell(s, "append_batch_int", 3),
         "100.0%"],
        ["append_batch, integrity off, same batches (measured)",
         C.cell(s, "append_batch_noint", 3), pct(med("append_batch_noint"))],
        ["LogSequencer.sequence, integrity on (measured, no SQL)", C.cell(s, "sequence_int", 3),
         pct(med("sequence_int"))],
        ["  its stages above (encode_payload .. row_values)", C.fmt(seq_sum, 3), pct(seq_sum)],
        ["LogSequencer.sequence, integrity off (measured, no SQL)",
         C.cell(s, "sequence_noint", 3), pct(med("sequence_noint"))],
    ]
    diag = [[label, C.cell(s, f"stage_{key}", 3), pct(med(f"stage_{key}"))]
            for key, label in DIAGNOSTICS if f"stage_{key}" in s]
    return "\n".join([
        f"### Where the time goes: µs per event, {args.profile_events:,} events in batches of "
        f"{args.batch_size:,} (integrity on, synchronous=full, fresh store)", "",
        C.table(["stage", "µs/event", "% of append_batch"], rows), "",
        "Diagnostics (same batches, not part of the sum):", "",
        C.table(["what", "µs/event", "% of append_batch"], diag),
    ])


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--events", type=int, default=200_000, help="events per variant per run")
    p.add_argument("--batch-size", type=int, default=2000,
                   help="events per transaction (the SDK's default batch_size)")
    p.add_argument("--profile-events", type=int, default=40_000,
                   help="events of the per-stage profile")
    p.add_argument("--only", default="sdk,append,executemany,profile",
                   help="comma-separated groups (sdk, append, executemany, profile) or variant "
                        f"keys ({', '.join(k for g in GROUPS.values() for k in g)})")
    p.add_argument("--tmpdir", default=None, help="where the temporary stores go")
    args = p.parse_args()
    args.only = {key for x in args.only.split(",") if x.strip()
                 for key in GROUPS.get(x.strip(), [x.strip()])}
    unknown = args.only - {k for g in GROUPS.values() for k in g}
    if unknown:
        p.error(f"unknown --only entries: {', '.join(sorted(unknown))}")
    args.events = max(EVENTS_PER_TRACE, args.events // EVENTS_PER_TRACE * EVENTS_PER_TRACE)
    env = C.environment()
    C.note(args.json, f"ingest: {args.events:,} events per variant, {args.runs} runs; "
                      "building the workload ...")
    prebuilt: dict[str, Any] = {}
    ts = time.time() - 86400
    if args.only & set(GROUPS["append"] + GROUPS["executemany"]):
        events = build_events(args.events, ts)
        prebuilt["batches"] = _batches(events, args.batch_size)
        plain = plain_event_type(events)
        prebuilt["plain_batches"] = _batches(plain, args.batch_size)
        if "em_int_rows" in args.only:
            prebuilt["int_rows"] = _batches(integrity_rows(plain), args.batch_size)
        if "em_null_rows" in args.only:
            prebuilt["null_rows"] = _batches(null_rows(plain), args.batch_size)
        del events, plain
    if "profile" in args.only:
        prebuilt["profile_events"] = build_events(args.profile_events, ts,
                                                  first_trace=10_000_000)
    runs = C.run_repeated(args.runs, lambda i: one_run(i, args, prebuilt), args.json)
    stats = C.summarise(runs)
    if args.json:
        C.emit_json({"benchmark": "ingest", "events": args.events,
                     "batch_size": args.batch_size, "runs": runs, "summary": stats,
                     "environment": env,
                     "targets": {"no_integrity_eps": TARGET_NO_INTEGRITY,
                                 "integrity_eps": TARGET_INTEGRITY,
                                 "integrity_ratio": TARGET_RATIO}})
    else:
        print(report(stats, args, env, args.events))


if __name__ == "__main__":
    main()
