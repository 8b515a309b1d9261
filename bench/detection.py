"""Detection: collector ingest throughput with the detection rules on vs off, in the same run;
and the false-positive rate of the prompt-injection pattern set on the demo workload.

Each run starts two fresh ``agentaudit serve`` processes one after the other (order rotating
from run to run), one with ``AGENTAUDIT_DETECT=false`` and one with the packaged rules on, and
POSTs the same kind of workload (gzip'd 1,000-event batches of the 20-event support traces of
``_workload``, 4 client threads, ``synchronous=full``) as fast as it is acknowledged:

* **ack events/s**: events acknowledged (durable) / wall time of the clients;
* **detected events/s** (detection on): events / time until the detection thread has evaluated
  every stored event too (``agentaudit_detect_pending_events`` back at 0), i.e. the rate the
  rules keep up with;
* **ratio** on/off of ack events/s, computed inside each run (target >= 0.80);
* **server CPU µs per event** of each variant (user + system time of the collector process from
  /proc, until the rules caught up) and the ratio off/on: the throughput ratio to expect when
  the collector is CPU-bound, and much less sensitive to a busy machine than wall time.

The false-positive rate: the injection patterns over every text of a demo workload (which holds
no injection), as the share of events with text that any pattern flags.

    PYTHONPATH=src .venv/bin/python bench/detection.py [--events 100000] [--demo-traces 3000]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C
import httpx
from collector import CLIENTS, Collector, native_bodies, send

TARGET_RATIO = 0.80


def _pending(srv: Collector) -> float:
    try:
        return srv.metric("agentaudit_detect_pending_events")
    except httpx.HTTPError:
        return float("nan")


def _firings(db: Path) -> float:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return float(con.execute("SELECT count(*) FROM events WHERE source = "
                                 "'agentaudit.detect'").fetchone()[0])
    finally:
        con.close()


def _one_variant(detect: bool, bodies: list[bytes], n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="aa-detect-") as tmp:
        srv = Collector(Path(tmp), env={"AGENTAUDIT_DETECT": "true" if detect else "false"})
        try:
            cpu0 = srv.cpu_seconds()
            wall, _, statuses = send(srv.url, srv.key, "/v1/events", "application/json", bodies)
            if statuses.get(200, 0) != len(bodies):
                raise SystemExit(f"requests failed: {statuses}")
            out = {"ack_eps": n / wall}
            if detect:
                t0 = time.perf_counter()
                while _pending(srv) > 0:
                    time.sleep(0.02)
                out["detected_eps"] = n / (wall + time.perf_counter() - t0)
                out["firings"] = _firings(srv.db)
            out["cpu_us"] = (srv.cpu_seconds() - cpu0) / n * 1e6
            stored = srv.stored()
            if stored < n:
                raise SystemExit(f"only {stored} of {n} events stored")
            return out
        finally:
            srv.stop()


def one_run(i: int, n: int) -> C.Metrics:
    bodies = native_bodies(n, first_trace=i * 1_000_000)
    order = [False, True] if i % 2 == 0 else [True, False]
    got: dict[bool, dict[str, float]] = {}
    for detect in order:
        got[detect] = _one_variant(detect, bodies, n)
    return {"off_eps": got[False]["ack_eps"], "on_eps": got[True]["ack_eps"],
            "detected_eps": got[True]["detected_eps"], "firings": got[True]["firings"],
            "ratio": got[True]["ack_eps"] / got[False]["ack_eps"],
            "cpu_off_us": got[False]["cpu_us"], "cpu_on_us": got[True]["cpu_us"],
            "cpu_ratio": got[False]["cpu_us"] / got[True]["cpu_us"],
            "detected_ratio": got[True]["detected_eps"] / got[False]["ack_eps"]}


def false_positive_rate(traces: int) -> dict[str, Any]:
    from agentaudit.demo import run_demo
    from agentaudit.detect import scan_text
    from agentaudit.detect._base import payload_texts
    from agentaudit.store import open_store
    from agentaudit.store.base import EventQuery

    with tempfile.TemporaryDirectory(prefix="aa-fp-") as tmp:
        db = f"{tmp}/demo.db"
        run_demo(db, traces=traces, days=14)
        events = with_text = texts = flagged = 0
        examples: list[str] = []
        with open_store(db) as store:
            for ev in store.iter_events(EventQuery()):
                events += 1
                found = payload_texts(ev)
                if not found:
                    continue
                with_text += 1
                texts += len(found)
                hits = [m for t in found for m in scan_text(t)]
                if hits:
                    flagged += 1
                    if len(examples) < 5:
                        examples.append(f"{hits[0].pattern}: {hits[0].excerpt}")
    return {"demo_traces": traces, "events": events, "events_with_text": with_text,
            "texts": texts, "flagged_events": flagged,
            "false_positive_rate": flagged / with_text if with_text else 0.0,
            "examples": examples}


def main() -> int:
    p = C.parser(__doc__)
    p.add_argument("--events", type=int, default=100_000, help="events per variant per run")
    p.add_argument("--demo-traces", type=int, default=3000,
                   help="size of the demo workload of the false-positive measurement")
    args = p.parse_args()
    env = C.environment()
    C.note(args.json, f"detection on vs off: {args.events:,} events, {CLIENTS} clients, "
                      f"{args.runs} runs")
    runs = C.run_repeated(args.runs, lambda i: one_run(i, args.events), args.json)
    stats = C.summarise(runs)
    C.note(args.json, f"false positives: demo workload of {args.demo_traces} traces")
    fp = false_positive_rate(args.demo_traces)
    ratio = stats["ratio"]["median"]
    if args.json:
        C.emit_json({"env": env, "events": args.events, "runs": runs, "stats": stats,
                     "false_positives": fp, "target_ratio": TARGET_RATIO})
        return 0
    print(f"\n## Collector ingest with detection on vs off ({args.events:,} events per variant, "
          f"median of {args.runs})\n")
    print(C.table(["variant", "events/s", "on/off", "target"], [
        ["detection off (ack)", C.cell(stats, "off_eps", 0), "", ""],
        ["detection on (ack)", C.cell(stats, "on_eps", 0), C.cell(stats, "ratio"),
         f">= {TARGET_RATIO:.2f} {C.verdict(ratio >= TARGET_RATIO)}"],
        ["detection on, rules caught up", C.cell(stats, "detected_eps", 0),
         C.cell(stats, "detected_ratio"), ""],
    ]))
    print("\nServer CPU per event (all threads, /proc), and the throughput ratio it implies "
          "when the collector is CPU-bound (off/on; robust to a noisy machine):\n")
    print(C.table(["detection off µs/event", "detection on µs/event", "CPU-bound on/off"], [[
        C.cell(stats, "cpu_off_us", 1), C.cell(stats, "cpu_on_us", 1),
        C.cell(stats, "cpu_ratio")]]))
    print(f"\nFirings written during the 'on' variant: {C.cell(stats, 'firings', 0)}")
    print(f"\n## Prompt-injection patterns on the demo workload ({fp['demo_traces']:,} traces)\n")
    print(C.table(["events", "events with text", "texts scanned", "flagged", "FP rate"], [[
        f"{fp['events']:,}", f"{fp['events_with_text']:,}", f"{fp['texts']:,}",
        f"{fp['flagged_events']:,}", f"{fp['false_positive_rate']:.4%}"]]))
    for example in fp["examples"]:
        print(f"  flagged: {example}")
    print(f"\n{C.env_line(env)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
