"""The issues' reference operations, measured on this machine: how hard the absolute targets are here.

The capture-and-store issue set its ingest target beside figures measured where it was written:
a bare 20-column ``executemany`` of pre-built rows reaches ~111,000 rows/s with time-ordered keys
and ~20,000 with random uuid4 keys; an orjson file appended with an fsync per 1,000 lines
reaches ~190,000 lines/s. This script runs the same operations here (no agentaudit code
involved), so a figure of another script can be read against the machine it ran on: if the
reference runs at half its speed here, an absolute target is about twice as hard.

* ``executemany``: a table ``(event_id TEXT PRIMARY KEY, c0 .. c18)`` in a new WAL file with
  ``synchronous=FULL``, rows of plausible event values inserted 1,000 per transaction, keys
  UUIDv7 (time-ordered, agentaudit's ids) or uuid4;
* ``append``: one JSON line per row (orjson when installed, else json), ``fsync`` every 1,000.

    cd /work/main && PYTHONPATH=src .venv/bin/python bench/reference.py
    PYTHONPATH=src .venv/bin/python bench/reference.py --rows 200000 --json   # quicker
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as C

from agentaudit.events import new_event_id

ISSUE = {"em_v7": 111_000, "em_v4": 20_000, "append": 190_000}  # rows/s where targets were set
BATCH = 1000


def rows(n: int, key: Callable[[], str]) -> list[tuple[Any, ...]]:
    now = time.time()
    return [(key(), "agent.tool_call", "Support", f"{i:032x}", None, "session-1", "user-1",
             "get_order", "sdk", "gpt-4o", "1.0", None, now + i * 1e-3, 12.5, 0.9, 100, 50, 50,
             0.001, '{"order": "o-42", "amount": 12}') for i in range(n)]


def executemany(tmp: Path, data: list[tuple[Any, ...]]) -> float:
    db = sqlite3.connect(tmp / "ref.db", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("CREATE TABLE e (event_id TEXT PRIMARY KEY, "
                   + ", ".join(f"c{i}" for i in range(19)) + ")")
        insert = "INSERT INTO e VALUES (" + ", ".join("?" * 20) + ")"
        t0 = time.perf_counter()
        for i in range(0, len(data), BATCH):
            db.execute("BEGIN")
            db.executemany(insert, data[i : i + BATCH])
            db.execute("COMMIT")
        return len(data) / (time.perf_counter() - t0)
    finally:
        db.close()


def append(tmp: Path, data: list[tuple[Any, ...]]) -> float:
    try:
        import orjson

        dumps: Callable[[Any], bytes] = orjson.dumps
    except ImportError:
        def dumps(obj: Any) -> bytes:
            return json.dumps(obj).encode()
    with open(tmp / "ref.jsonl", "wb") as f:
        t0 = time.perf_counter()
        for i in range(0, len(data), BATCH):
            f.write(b"".join(dumps(r) + b"\n" for r in data[i : i + BATCH]))
            f.flush()
            os.fsync(f.fileno())
        return len(data) / (time.perf_counter() - t0)


def one_run(run: int, n: int, tmpdir: str | None) -> C.Metrics:
    m: C.Metrics = {}
    steps: list[tuple[str, Callable[[Path], float]]] = [
        ("em_v7", lambda tmp: executemany(tmp, rows(n, new_event_id))),
        ("em_v4", lambda tmp: executemany(tmp, rows(n, lambda: str(uuid.uuid4())))),
        ("append", lambda tmp: append(tmp, rows(n, new_event_id))),
    ]
    k = run % len(steps)
    for key, step in steps[k:] + steps[:k]:
        tmp = Path(tempfile.mkdtemp(prefix="aa-bench-ref-", dir=tmpdir))
        try:
            m[key] = step(tmp)
            m[key + "_share"] = m[key] / ISSUE[key]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return m


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--rows", type=int, default=1_000_000,
                   help="rows per operation and run (the ingest issue measured 1,000,000)")
    p.add_argument("--tmpdir", help="where the files go (default: the system's temp dir)")
    args = p.parse_args()
    env = C.environment()
    C.note(args.json, f"reference: {args.rows:,} rows x 3 operations x {args.runs} runs")
    s = C.summarise(C.run_repeated(args.runs, lambda i: one_run(i, args.rows, args.tmpdir),
                                   args.json))
    if args.json:
        C.emit_json({"bench": "reference", "rows": args.rows, "summary": s, "issue": ISSUE,
                     "environment": env})
        return
    print(f"## The issues' reference operations — {args.rows:,} rows, median (min–max) of "
          f"{args.runs} runs")
    print(C.env_line(env))
    print()
    print(C.table(["operation", "rows/s here", "where the targets were set", "here / there"], [
        ["bare executemany, 20 columns, UUIDv7 keys", C.cell(s, "em_v7", 0),
         f"~{ISSUE['em_v7']:,}", C.cell(s, "em_v7_share")],
        ["bare executemany, 20 columns, uuid4 keys", C.cell(s, "em_v4", 0),
         f"~{ISSUE['em_v4']:,}", C.cell(s, "em_v4_share")],
        ["JSON lines appended, fsync per 1,000", C.cell(s, "append", 0),
         f"~{ISSUE['append']:,}", C.cell(s, "append_share")],
    ]))


if __name__ == "__main__":
    main()
