"""Reading many rows: the WideReader (a SQL function receives each row) against ``fetchall``.

Python's ``sqlite3`` releases and retakes the GIL around every column it fetches; a SQL function
receives a row's values without that (``agentaudit/store/_sqlite_wide.py``). Measured in each
run, on the same store, alternating the two ways (the order rotates per run):

* **log rows** — ``SQLiteStore.log_rows(columns=VERIFY_COLUMNS)`` (27 columns, what ``verify``
  reads) against the same statement with ``fetchall``;
* **events** — ``SQLiteStore.iter_events`` (``export``: 30 columns, rows turned into events)
  against paging with ``SQLiteStore.query``, which reads through ``fetchall``.

Both sides read the same ``--rows`` rows from the start of the log; the script checks they
return the same rows. µs per row, medians of ``--runs``, and the ratio inside each run.

    cd /work/main && PYTHONPATH=src .venv/bin/python bench/read_rows.py          # 1M demo store
    PYTHONPATH=src .venv/bin/python bench/read_rows.py --rows 100000 --runs 5 --json
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import _common as C
from trace_query import ensure_store

from agentaudit.store.base import EventQuery
from agentaudit.store.rows import VERIFY_COLUMNS
from agentaudit.store.sqlite import SQLiteStore


def plain_log_rows(store: SQLiteStore, tenant: str, batch: int = 10_000) -> Iterator[Any]:
    """``log_rows`` as it read before the WideReader: one ``fetchall`` per batch."""
    last = -1
    cols = ", ".join(VERIFY_COLUMNS)
    while True:
        rows = store._rows(f"SELECT {cols} FROM events WHERE tenant = ? AND seq > ? ORDER BY seq "
                           "LIMIT ?", (tenant, last, batch))
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1][0]


def paged_events(store: SQLiteStore, q: EventQuery, batch: int = 5000) -> Iterator[Any]:
    """``iter_events`` as it read before: pages of ``query`` (``fetchall``)."""
    page_q = EventQuery(**{**q.__dict__, "limit": batch})
    while True:
        page = store.query(page_q)
        yield from page.data
        if page.next_cursor is None:
            return
        page_q.cursor = page.next_cursor


def timed(rows: Callable[[], Iterator[Any]], n: int) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    got = list(itertools.islice(rows(), n))
    return (time.perf_counter() - t0) / max(1, len(got)) * 1e6, got


def one_run(run: int, path: Any, tenant: str, n: int) -> C.Metrics:
    store = SQLiteStore(path, readonly=True, create=False)
    try:
        sides: list[tuple[str, Callable[[], Iterator[Any]]]] = [
            ("log_wide", lambda: store.log_rows(tenant, columns=VERIFY_COLUMNS)),
            ("log_plain", lambda: plain_log_rows(store, tenant)),
            ("events_wide", lambda: store.iter_events(EventQuery(tenant=tenant))),
            ("events_plain", lambda: paged_events(store, EventQuery(tenant=tenant))),
        ]
        if run % 2:
            sides = [sides[1], sides[0], sides[3], sides[2]]
        m: C.Metrics = {}
        got: dict[str, list[Any]] = {}
        for key, rows in sides:
            m[key], got[key] = timed(rows, n)
        if got["log_wide"] != got["log_plain"] or got["events_wide"] != got["events_plain"]:
            raise SystemExit("the two ways read different rows")
        m["log_ratio"] = m["log_plain"] / m["log_wide"]
        m["events_ratio"] = m["events_plain"] / m["events_wide"]
        return m
    finally:
        store.close()


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--events", type=int, default=1_000_000, help="size of the demo store")
    p.add_argument("--db", help="measure this store instead of the cached demo store")
    p.add_argument("--tenant", default="default")
    p.add_argument("--rows", type=int, default=300_000, help="rows read by each side per run")
    args = p.parse_args()
    path, how = ensure_store(args)
    env = C.environment()
    C.note(args.json, f"read_rows: {args.rows:,} rows x 4 ways x {args.runs} runs, {path} ({how})")
    for f in path.parent.glob(path.name + "*"):  # warm the page cache: both sides read it warm
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    runs = C.run_repeated(args.runs, lambda i: one_run(i, path, args.tenant, args.rows),
                          args.json)
    s = C.summarise(runs)
    if args.json:
        C.emit_json({"bench": "read_rows", "rows": args.rows, "store": str(path),
                     "runs": runs, "summary": s, "environment": env})
        return
    print(f"## Reading rows — {args.rows:,} rows per way, median (min–max) of {args.runs} runs")
    print(C.env_line(env))
    print()
    print(C.table(["what", "WideReader µs/row", "fetchall µs/row", "fetchall / WideReader"], [
        ["log rows, 27 columns (verify)", C.cell(s, "log_wide"), C.cell(s, "log_plain"),
         C.cell(s, "log_ratio")],
        ["events, 30 columns + decoding (export)", C.cell(s, "events_wide"),
         C.cell(s, "events_plain"), C.cell(s, "events_ratio")],
    ]))


if __name__ == "__main__":
    main()
