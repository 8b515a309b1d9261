"""Integrity: `agentaudit verify` throughput and `prove` latency on a large log.

Uses the cached demo store of bench/trace_query.py (built on first use, integrity on), then
measures, median of --runs:
  * verify_log over the whole log (events/s; target >= 100,000 per issue #3), with the default
    worker processes (one per CPU) and, in the same run, in one process (workers=1);
  * prove_event for 50 random events (the proof itself, ms; target <= 50 ms);
  * the `agentaudit verify` command end to end (wall seconds, and events/s over that wall time
    including the interpreter's start-up: the issue's target is the command's rate).

    PYTHONPATH=src .venv/bin/python bench/integrity.py                 # 1,000,000 events
    PYTHONPATH=src .venv/bin/python bench/integrity.py --events 200000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

import _common as C  # noqa: F401  (sets the bench signing key dir)
from trace_query import ensure_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--db", help="measure this store instead of the cached demo store")
    args = ap.parse_args()
    from agentaudit.integrity.prove import prove_event
    from agentaudit.integrity.verify import verify_log
    from agentaudit.store.sqlite import SQLiteStore

    db, how = ensure_store(args)
    print(f"store: {db} ({how})", file=sys.stderr)
    verify_rates, single_rates, prove_ms, cli_s = [], [], [], []
    with SQLiteStore(db, create=False) as store:
        size = store.log_state("default")[0]
        seqs = ",".join(str(random.Random(i).randrange(size)) for i in range(50))
        ids = [r[0] for r in store.connection.execute(
            f"SELECT event_id FROM events WHERE seq IN ({seqs})")]
        for _ in range(args.runs):
            report = verify_log(store)
            assert report.ok, report.damage
            verify_rates.append(report.size / report.seconds)
            single = verify_log(store, workers=1)
            assert single.ok and single.size == report.size, single.damage
            single_rates.append(single.size / single.seconds)
            times = []
            for event_id in ids:
                t = time.perf_counter()
                prove_event(store, "default", event_id)
                times.append((time.perf_counter() - t) * 1000)
            prove_ms.append(statistics.median(times))
    exe = [sys.executable, "-m", "agentaudit.cli", "verify", "--db", str(db)]
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run(exe, check=True, capture_output=True)
        cli_s.append(time.perf_counter() - t)
    result = {
        "events": size,
        "verify_events_per_s": statistics.median(verify_rates),
        "verify_one_process_events_per_s": statistics.median(single_rates),
        "workers": os.cpu_count(),
        "prove_ms_median": statistics.median(prove_ms),
        "verify_cli_s": statistics.median(cli_s),
        "verify_cli_events_per_s": size / statistics.median(cli_s),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"| measure ({size:,} events, median of {args.runs}) | result | target |")
    print("|---|---|---|")
    print(f"| verify_log throughput | {result['verify_events_per_s']:,.0f} events/s "
          f"(runs: {', '.join(f'{r:,.0f}' for r in verify_rates)}), {os.cpu_count()} workers "
          "| >= 100,000 |")
    print(f"| verify_log in one process (workers=1) | "
          f"{result['verify_one_process_events_per_s']:,.0f} events/s | |")
    print(f"| prove_event, median of 50 events | {result['prove_ms_median']:.2f} ms | <= 50 ms |")
    print(f"| `agentaudit verify` command, wall (incl. start-up) | {result['verify_cli_s']:.1f} s "
          f"= {result['verify_cli_events_per_s']:,.0f} events/s (runs: "
          f"{', '.join(f'{size / c:,.0f}' for c in cli_s)}) | >= 100,000 |")


if __name__ == "__main__":
    main()
