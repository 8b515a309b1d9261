"""Trace queries on a million-event store: the query alone, and the whole ``agentaudit trace``.

The store is built once and cached under bench/out/ (git-ignored): with ``agentaudit.demo``
(``run_demo(path, events=N)``: the realistic multi-agent workload through the public SDK,
integrity on) when it exists, else — or with ``--fast-build`` — with
``SQLiteStore(path, integrity=False, synchronous="off").append_batch`` of generated traces of
20 events. ``--db PATH`` measures an existing store instead.

Measured in each run, on a different random sample of trace ids:

* (a) ``store.trace_events(tenant, trace_id)`` for ``--queries`` ids (default 100): median, p95
  and max in ms (target: median <= 10 ms), beside the bare SQL (the same SELECT, fetchall, on
  the first ``--sql-queries`` ids) so that the cost of rebuilding events from rows is visible,
  and the same SELECT with ``+tenant`` (forcing the trace_id index) with its query plan;
* (b) wall time of the whole command ``agentaudit trace ID --db PATH`` in a subprocess,
  Python start-up included (``.venv/bin/agentaudit`` if installed, else
  ``python -m agentaudit.cli`` with PYTHONPATH=src), median of ``--cli-calls`` (default 5),
  target <= 300 ms; beside it, ``python -c pass`` and ``python -c "import agentaudit.cli"`` to
  show how much of it is start-up. Skipped with a note if the CLI does not exist yet.

Run (first run builds the store: a few minutes; later runs reuse it):

    cd /work/main && PYTHONPATH=src .venv/bin/python bench/trace_query.py
    PYTHONPATH=src .venv/bin/python bench/trace_query.py --db demo.db --runs 5
    PYTHONPATH=src .venv/bin/python bench/trace_query.py --events 100000 --json
"""

from __future__ import annotations

import importlib.util
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as C

from agentaudit.store.rows import SELECT_COLUMNS
from agentaudit.store.sqlite import SQLiteStore

TARGET_QUERY_MS = 10.0
TARGET_CLI_MS = 300.0
VENV_BIN = C.ROOT / ".venv" / "bin"


# -- the store -------------------------------------------------------------------------------


def _event_count(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        db.close()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def build_with_demo(path: Path, events: int, quiet: bool) -> str:
    from agentaudit.demo import run_demo

    step = max(1, events // 10)
    shown = [0]

    def progress(done: int, total: int) -> None:
        if done >= shown[0] + step or done >= total:
            shown[0] = done
            C.note(quiet, f"  demo: {done:,}/{total:,} events")

    result = run_demo(str(path), events=events, progress=progress)
    return f"agentaudit.demo.run_demo(events={events:,}): {result.events:,} events, " \
           f"{result.traces:,} traces in {result.seconds:.0f} s"


def build_fast(path: Path, events: int, quiet: bool) -> str:
    from _workload import build_events

    t0 = time.perf_counter()
    store = SQLiteStore(path, integrity=False, synchronous="off")
    ts = time.time() - 7 * 86400
    try:
        chunk = 100_000
        for start in range(0, events, chunk):
            batch = build_events(min(chunk, events - start), ts, first_trace=start // 20)
            for i in range(0, len(batch), 5000):
                store.append_batch(batch[i : i + 5000])
            C.note(quiet, f"  fast build: {start + len(batch):,}/{events:,} events")
    finally:
        store.close()
    return f"append_batch, integrity off, synchronous=off: {events:,} events in " \
           f"{time.perf_counter() - t0:.0f} s"


def ensure_store(args: Any) -> tuple[Path, str]:
    """The store to measure: --db, the cached 1M demo store under bench/out/, or a new one.

    Shared by bench/reports.py and bench/integrity.py (``args`` needs db, events and json;
    rebuild and fast_build are optional)."""
    if args.db:
        path = Path(args.db)
        if not path.exists():
            raise SystemExit(f"no store at {path}")
        return path, "given with --db"
    demo = (importlib.util.find_spec("agentaudit.demo") is not None
            and not getattr(args, "fast_build", False))
    C.OUT.mkdir(parents=True, exist_ok=True)
    path = C.OUT / f"trace_{'demo' if demo else 'fast'}_{args.events}.db"
    if path.exists() and not getattr(args, "rebuild", False):
        try:
            if _event_count(path) >= args.events:
                return path, f"cached ({path.name})"
        except sqlite3.Error:
            pass
    _remove(path)
    C.note(args.json, f"building {path} ...")
    try:
        how = build_with_demo(path, args.events, args.json) if demo else \
            build_fast(path, args.events, args.json)
    except BaseException:
        _remove(path)
        raise
    return path, how


def cli_command() -> tuple[list[str], dict[str, str]] | None:
    env = {**os.environ, "PYTHONPATH": str(C.ROOT / "src")}
    if (VENV_BIN / "agentaudit").exists():
        return [str(VENV_BIN / "agentaudit")], env
    if importlib.util.find_spec("agentaudit.cli") is not None:
        return [sys.executable, "-m", "agentaudit.cli"], env
    return None


# What SQLiteStore.trace_events runs, and the same with ``+tenant`` (a unary plus keeps SQLite
# from using an index on tenant, so it must take ix_events_trace).
SELECT_TRACE = (f"SELECT {', '.join(SELECT_COLUMNS)} FROM events "
                "WHERE trace_id = ? AND tenant = ? ORDER BY timestamp, seq")
SELECT_TRACE_BY_TRACE_INDEX = SELECT_TRACE.replace("AND tenant = ?", "AND +tenant = ?")


def _sql_ms(db: sqlite3.Connection, query: str, trace_id: str, tenant: str) -> float:
    t0 = time.perf_counter()
    db.execute(query, (trace_id, tenant)).fetchall()
    return (time.perf_counter() - t0) * 1000.0


def query_plan(path: Path, query: str, tenant: str, trace_id: str) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "; ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + query,
                                                  (trace_id, tenant)))
    finally:
        db.close()


# -- one run ---------------------------------------------------------------------------------


def _wall_ms(cmd: list[str], env: dict[str, str]
             ) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, check=False)
    return (time.perf_counter() - t0) * 1000.0, done


def one_run(run: int, args: Any, path: Path, trace_ids: list[str], cli: Any,
            notes: list[str]) -> C.Metrics:
    rng = random.Random(1000 + run)
    sample = rng.sample(trace_ids, min(args.queries, len(trace_ids)))
    m: C.Metrics = {}
    store = SQLiteStore(path, create=False)
    try:
        store.trace_events(args.tenant, sample[0])  # warm-up: statement cache, imports
        times, sizes = [], []
        for tid in sample:
            t0 = time.perf_counter()
            events = store.trace_events(args.tenant, tid)
            times.append((time.perf_counter() - t0) * 1000.0)
            sizes.append(len(events))
        db = store.connection
        raw = [_sql_ms(db, SELECT_TRACE, tid, args.tenant) for tid in sample[: args.sql_queries]]
        forced = [_sql_ms(db, SELECT_TRACE_BY_TRACE_INDEX, tid, args.tenant) for tid in sample]
    finally:
        store.close()
    m.update(query_median_ms=statistics.median(times), query_p95_ms=C.percentile(times, 0.95),
             query_max_ms=max(times), sql_median_ms=statistics.median(raw),
             sql_p95_ms=C.percentile(raw, 0.95), forced_median_ms=statistics.median(forced),
             forced_p95_ms=C.percentile(forced, 0.95), events_per_trace=statistics.mean(sizes))
    if cli is None:
        return m
    cmd, env = cli
    calls = []
    for tid in sample[: args.cli_calls]:
        ms, done = _wall_ms([*cmd, "trace", tid, "--db", str(path)], env)
        if done.returncode != 0:
            note = (f"`agentaudit trace` exited {done.returncode}: "
                    f"{done.stderr.decode(errors='replace').strip()[:300]}")
            if note not in notes:
                notes.append(note)
            return m
        calls.append(ms)
    m["cli_median_ms"] = statistics.median(calls)
    m["cli_max_ms"] = max(calls)
    m["python_pass_ms"] = statistics.median(
        _wall_ms([sys.executable, "-c", "pass"], env)[0] for _ in range(args.cli_calls))
    m["import_cli_ms"] = statistics.median(
        _wall_ms([sys.executable, "-c", "import agentaudit.cli"], env)[0]
        for _ in range(args.cli_calls))
    return m


# -- report ----------------------------------------------------------------------------------


def report(s: dict[str, dict[str, float]], args: Any, env: dict[str, Any], path: Path,
           how: str, count: int, notes: list[str], cli: Any, plans: dict[str, str]) -> str:
    q_ok = s["query_median_ms"]["median"] <= TARGET_QUERY_MS
    rows = [
        ["store.trace_events — median", C.cell(s, "query_median_ms"),
         f"<= {TARGET_QUERY_MS:g}", C.verdict(q_ok)],
        ["store.trace_events — p95", C.cell(s, "query_p95_ms"), "", ""],
        ["store.trace_events — max", C.cell(s, "query_max_ms"), "", ""],
        [f"bare SQL (same SELECT, fetchall, {args.sql_queries} traces) — median", C.cell(s, "sql_median_ms"), "", ""],
        ["bare SQL — p95", C.cell(s, "sql_p95_ms"), "", ""],
        ["diagnostic: same SELECT with `+tenant` — median", C.cell(s, "forced_median_ms"),
         "", ""],
        ["diagnostic: same SELECT with `+tenant` — p95", C.cell(s, "forced_p95_ms"), "", ""],
    ]
    if "cli_median_ms" in s:
        rows += [
            [f"`agentaudit trace ID --db PATH` — median of {args.cli_calls}",
             C.cell(s, "cli_median_ms", 0), f"<= {TARGET_CLI_MS:g}",
             C.verdict(s["cli_median_ms"]["median"] <= TARGET_CLI_MS)],
            ["  slowest of those calls", C.cell(s, "cli_max_ms", 0), "", ""],
            ["  start-up: python -c pass", C.cell(s, "python_pass_ms", 0), "", ""],
            ["  start-up: python -c 'import agentaudit.cli'", C.cell(s, "import_cli_ms", 0),
             "", ""],
        ]
    out = [
        f"## Trace queries — {count:,} events, {args.queries} random traces per run, "
        f"median (min–max) of {args.runs} runs",
        C.env_line(env),
        f"Store: {path} ({how}); {C.fmt(s['events_per_trace']['median'], 1)} events per "
        "queried trace on average",
        "",
        C.table(["measure", "ms", "target", ""], rows),
    ]
    if cli is None:
        out += ["", "(b) skipped: no `agentaudit` CLI yet (neither .venv/bin/agentaudit nor "
                "the agentaudit.cli module)."]
    elif "cli_median_ms" not in s:
        out += ["", "(b) skipped: the CLI is there but `agentaudit trace` failed."]
    else:
        out += ["", "CLI command: " + " ".join(cli[0]) + " trace ID --db PATH"]
    out += [f"Query plan of trace_events' SELECT: {plans['store']}",
            f"Query plan with `+tenant`: {plans['forced']}"]
    out += [f"Note: {n}" for n in notes]
    return "\n".join(out)


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--db", help="measure this existing store instead of building one")
    p.add_argument("--events", type=int, default=1_000_000, help="size of the store to build")
    p.add_argument("--tenant", default="default")
    p.add_argument("--queries", type=int, default=100, help="random traces queried per run")
    p.add_argument("--sql-queries", type=int, default=20,
                   help="traces of the sample also timed with the bare SQL")
    p.add_argument("--cli-calls", type=int, default=5, help="CLI invocations per run")
    p.add_argument("--fast-build", action="store_true",
                   help="build with append_batch (integrity off) even if agentaudit.demo exists")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached store")
    args = p.parse_args()
    env = C.environment()
    path, how = ensure_store(args)
    count = _event_count(path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        trace_ids = sorted(r[0] for r in db.execute(
            "SELECT DISTINCT trace_id FROM events WHERE tenant = ? AND trace_id IS NOT NULL",
            (args.tenant,)))
    finally:
        db.close()
    if not trace_ids:
        raise SystemExit(f"no traces in tenant {args.tenant!r} of {path}")
    cli = cli_command()
    notes: list[str] = []
    C.note(args.json, f"trace_query: {count:,} events, {len(trace_ids):,} traces, "
                      f"{args.runs} runs")
    runs = C.run_repeated(args.runs, lambda i: one_run(i, args, path, trace_ids, cli, notes),
                          args.json)
    stats = C.summarise(runs)
    plans = {"store": query_plan(path, SELECT_TRACE, args.tenant, trace_ids[0]),
             "forced": query_plan(path, SELECT_TRACE_BY_TRACE_INDEX, args.tenant, trace_ids[0])}
    if args.json:
        C.emit_json({"benchmark": "trace_query", "store": str(path), "built": how,
                     "query_plans": plans,
                     "events": count, "traces": len(trace_ids), "runs": runs,
                     "summary": stats, "environment": env, "notes": notes,
                     "cli": None if cli is None else cli[0],
                     "targets": {"query_median_ms": TARGET_QUERY_MS,
                                 "cli_median_ms": TARGET_CLI_MS}})
    else:
        print(report(stats, args, env, path, how, count, notes, cli, plans))


if __name__ == "__main__":
    main()
