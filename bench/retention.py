"""Retention: how long a run takes on a store whose older days are due, and what it frees.

Each run writes --events events (integrity on, ~1 KB payloads, a mix of every tier) in arrival
order over the last 60 days to a fresh SQLite file, then measures:
  * plan: reading the expired payloads (the collector does this on a WAL reader, so ingest
    goes on meanwhile), events scanned per second;
  * erase: the write transaction that erases them and records the run (holds the write lock);
  * vacuum: the incremental vacuum after it, and the pages freed;
  * verify: verify_log over the whole log afterwards (must pass).

    PYTHONPATH=src .venv/bin/python bench/retention.py                   # 200,000 events
    PYTHONPATH=src .venv/bin/python bench/retention.py --events 1000000
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import _common as C

DAY = 86400
TYPES = ["agent.reasoning", "agent.llm_response", "agent.tool_call", "agent.tool_result",
         "agent.invocation", "agent.decision", "agent.handoff", "agent.error"]


def _fill(path: Path, events: int, now: float) -> None:
    from agentaudit.events import AuditEvent
    from agentaudit.store.sqlite import SQLiteStore

    rng = random.Random(7)
    store = SQLiteStore(path, synchronous="normal")
    batch = []
    for i in range(events):
        ts = now - (60 - 60 * i / events) * DAY + rng.uniform(0, 60)  # arrival order
        batch.append(AuditEvent(event_type=rng.choice(TYPES), agent_name=f"agent-{i % 7}",
                                action="search", trace_id=f"t{i // 20}", timestamp=ts,
                                params={"q": "x" * 900, "i": i}, user_id=f"u{i % 500}"))
        if len(batch) == 5000:
            store.append_batch(batch)
            batch = []
    if batch:
        store.append_batch(batch)
    store.checkpoint()
    store.close()


def one_run(events: int) -> C.Metrics:
    from agentaudit.integrity.verify import verify_log
    from agentaudit.retention import load_config
    from agentaudit.retention.job import commit_retention, plan_retention
    from agentaudit.store.sqlite import SQLiteStore

    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.db"
        _fill(path, events, now)
        store = SQLiteStore(path, synchronous="normal")
        policy = load_config().policy("default")
        pages = store.storage_pages()["page_count"]
        t0 = time.perf_counter()
        run, groups = plan_retention(store, policy, now=now)
        t1 = time.perf_counter()
        commit_retention(store, run, groups, vacuum=False)
        t2 = time.perf_counter()
        space = store.reclaim_space()
        t3 = time.perf_counter()
        report = verify_log(store, "default")
        t4 = time.perf_counter()
        store.close()
    assert report.ok, report.damage
    return {"events": events, "erased": run.erased, "plan_s": t1 - t0,
            "scan_ev_per_s": events / (t1 - t0), "erase_s": t2 - t1,
            "erase_ev_per_s": run.erased / (t2 - t1) if run.erased else 0.0,
            "vacuum_s": t3 - t2, "pages_before": pages,
            "pages_after": space["pages_after"], "verify_s": t4 - t3}


def main() -> None:
    ap = C.parser(__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    runs = C.run_repeated(args.runs, lambda _i: one_run(args.events), args.json)
    stats = C.summarise(runs)
    env = C.environment()
    if args.json:
        print(json.dumps({"env": env, "stats": stats}, indent=2))
        return
    print(C.env_line(env))
    rows = [
        ["events in the store", C.cell(stats, "events", 0)],
        ["payloads erased (due)", C.cell(stats, "erased", 0)],
        ["plan: read the due payloads (s)", C.cell(stats, "plan_s")],
        ["plan: events scanned per second", C.cell(stats, "scan_ev_per_s", 0)],
        ["erase + record the run: write transaction (s)", C.cell(stats, "erase_s")],
        ["erase: payloads per second", C.cell(stats, "erase_ev_per_s", 0)],
        ["incremental vacuum (s)", C.cell(stats, "vacuum_s")],
        ["pages before", C.cell(stats, "pages_before", 0)],
        ["pages after", C.cell(stats, "pages_after", 0)],
        ["verify afterwards (s)", C.cell(stats, "verify_s")],
    ]
    print(C.table(["retention run", f"median of {args.runs}"], rows))
    print("\nplan runs on a reader in the collector; only erase holds the write lock.",
          file=sys.stderr)


if __name__ == "__main__":
    main()
