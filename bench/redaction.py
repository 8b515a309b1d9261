"""Redaction cost per event and SDK ingest throughput with redaction on vs off.

The payload is a typical ~1 KB tool call (an order with a dozen line items, ids, timestamps, a
UUID, an epoch) built fresh for every event, with a unique id per event, so nothing is cached
across events. "no match" is the common case; "with findings" adds a card number and an API
key. The cost redaction adds to the writer is measured as (redact + the store's payload
encoding) − (the store's encoding alone): redaction scans the very payload bytes the store
writes, and the store reuses them (``agentaudit.store.rows.prepare_payload``). Ingest is ``AuditLogger`` → SQLite (integrity on), first log to ``flush()`` returned, with
the default policy vs ``redact=False``, in the same run.

    PYTHONPATH=src .venv/bin/python bench/redaction.py [--events 20000] [--runs 3]
"""

from __future__ import annotations

import gc
import json
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _common as C

from agentaudit.events import AuditEvent
from agentaudit.redact import Redactor
from agentaudit.sdk import AuditLogger
from agentaudit.store.rows import encode_payload

_RNG = random.Random(7)  # request ids like real ones (random), the same every run


def payload(i: int, findings: bool = False) -> dict[str, Any]:
    """A ~1 KB tool-call payload, unique per ``i``."""
    items = [{"sku": f"SKU-{(i * 7 + k) % 99999:05d}", "qty": k + 1, "price": round(9.99 + k, 2),
              "desc": "a widget of the usual kind, blue"} for k in range(12)]
    p: dict[str, Any] = {"order_id": f"ORD-{10_000_000 + i}", "customer": "acme corp",
                         "items": items, "ts": "2026-11-25T23:40:53Z",
                         "request_id": str(uuid.UUID(int=_RNG.getrandbits(128))), "epoch": 1732578053 + i}
    if findings:
        p["note"] = "paid with 4111 1111 1111 1111 via sk-proj-Zk29fQ0sLm4Xw8Rb1Vc7Ny5Tq3"
    return p


def _events(n: int, findings: bool) -> list[AuditEvent]:
    return [AuditEvent(event_type="agent.tool_call", agent_name="Orders", action="create_order",
                       params=payload(i, findings), result={"status": "ok", "rows": 12})
            for i in range(n)]


def redact_cost(n: int, findings: bool) -> tuple[float, float]:
    """Median µs per event over batches of 1,000 events: (``Redactor().redact`` alone, what
    redaction adds to the writer). The writer stores each event after redacting it; its payload
    JSON is encoded once either way (redaction scans the bytes the store then reuses), so the
    cost added is (redact + the store's payload encoding) − (the store's encoding alone), both
    timed here on fresh copies of the same events."""
    r = Redactor()
    events = _events(n, findings)
    twins = _events(n, findings)
    alone, added = [], []
    gc.disable()
    try:
        for start in range(0, n, 1000):
            chunk, twin = events[start:start + 1000], twins[start:start + 1000]
            t0 = time.perf_counter()
            for ev in chunk:
                encode_payload(r.redact(ev))
            t1 = time.perf_counter()
            for ev in twin:
                encode_payload(ev)
            t2 = time.perf_counter()
            fresh = _events(len(chunk), findings)
            t2b = time.perf_counter()
            for ev in fresh:
                r.redact(ev)
            t3 = time.perf_counter()
            added.append(((t1 - t0) - (t2 - t1)) / len(chunk) * 1e6)
            alone.append((t3 - t2b) / len(chunk) * 1e6)
    finally:
        gc.enable()
    return statistics.median(alone), statistics.median(added)


def ingest_rate(tmp: Path, n: int, redact: bool) -> float:
    """Events/s from the first log call to ``flush()`` returned."""
    db = tmp / f"ingest-{redact}-{time.monotonic_ns()}.db"
    params = [payload(i) for i in range(n)]
    logger = AuditLogger(str(db), redact=None if redact else False, spool_dir=tmp / "spool")
    try:
        t0 = time.perf_counter()
        for p in params:
            logger.log_tool_call("Orders", "create_order", params=p)
        assert logger.flush(600)
        return n / (time.perf_counter() - t0)
    finally:
        logger.close()


def one_run(i: int, events: int) -> C.Metrics:
    tmp = Path(tempfile.mkdtemp(prefix="agentaudit-bench-redact-"))
    try:
        m: C.Metrics = {}
        m["us_nomatch"], m["us_added_nomatch"] = redact_cost(events, False)
        m["us_findings"], m["us_added_findings"] = redact_cost(events, True)
        order = [False, True] if i % 2 == 0 else [True, False]
        for on in order:
            m[f"ingest_{'on' if on else 'off'}"] = ingest_rate(tmp, events, on)
        m["ratio"] = m["ingest_on"] / m["ingest_off"]
        return m
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--events", type=int, default=20_000)
    args = p.parse_args()
    size = len(json.dumps(payload(0)))
    runs = C.run_repeated(max(args.runs, 1), lambda i: one_run(i, args.events), args.json)
    s = C.summarise(runs)
    if args.json:
        C.emit_json({"environment": C.environment(), "payload_bytes": size, "results": s})
        return
    print(C.env_line(C.environment()))
    print(f"payload: {size} bytes of JSON, {args.events} events, {len(runs)} runs "
          "(median (min–max))\n")
    rows = [["added to the writer per event, no match (µs)", C.cell(s, "us_added_nomatch"),
             "≤ 10", C.verdict(s["us_added_nomatch"]["median"] <= 10)],
            ["Redactor.redact alone, no match (µs, incl. the payload encoding)",
             C.cell(s, "us_nomatch"), "—", ""],
            ["added to the writer per event, card + key (µs)", C.cell(s, "us_added_findings"),
             "—", ""],
            ["Redactor.redact alone, card + key (µs)", C.cell(s, "us_findings"), "—", ""],
            ["SDK ingest, redaction off (ev/s)", C.cell(s, "ingest_off", 0), "—", ""],
            ["SDK ingest, redaction on (ev/s)", C.cell(s, "ingest_on", 0), "—", ""],
            ["on / off", C.cell(s, "ratio"), "≥ 0.70", C.verdict(s["ratio"]["median"] >= 0.70)]]
    print(C.table(["measure", "value", "target", ""], rows))


if __name__ == "__main__":
    main()
