"""Dashboard pages on a million-event store: server time per page, and a 10,000-event trace.

The store is the cached 1M-event demo store of bench/trace_query.py (``ensure_store``), copied
once to bench/out/dashboard_N.db (git-ignored) and given one extra trace of 10,000 events
(``bench-trace-10k``), so that the shared store is never changed. ``--db PATH`` uses a copy of
another store.

The dashboard runs under ``agentaudit serve --no-auth`` (tenant ``default``) in its own process on
a free loopback port; its first request waits for the startup rollups (reported as "cold" of the
first page). Each page is requested ``--runs``
times (default 9) after one warm-up request; the table shows the server's time for the page
(wall time of the HTTP request on loopback, so a little more than the server's own) as p50 and
p99 — target p50 <= 300 ms and p99 <= 1 s — and the first (cold) request. The overview at 30d
aggregates every event of the store.

The 10,000-event trace is shown 100 events a page; with Debian's chromium present the script also
loads its first page in headless Chromium and reports the time until the page's ``load`` event
(the page must not freeze: target <= 1 s).

    PYTHONPATH=src .venv/bin/python bench/dashboard.py
    PYTHONPATH=src .venv/bin/python bench/dashboard.py --runs 15 --json
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as C
from trace_query import ensure_store

from agentaudit.server.dashboard.pages import TRACE_PAGE_EVENTS

P50_TARGET_MS = 300.0
P99_TARGET_MS = 1000.0
BIG_TRACE = "bench-trace-10k"
BIG_EVENTS = 10_000
CHROMIUM = "/usr/bin/chromium"
# Pages that generate a report with agentaudit.reports (its own benchmark: bench/reports.py,
# target 1 s per report); listed for information, outside the pages' verdict.
REPORT_PAGES = ("compliance (24h) [report]", "report summary (24h, html) [report]")


def _has_big_trace(path: Path) -> bool:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM events WHERE trace_id = ?",
                           (BIG_TRACE,)).fetchone()[0] >= BIG_EVENTS
    finally:
        con.close()


def _big_trace(start: float) -> list[Any]:
    """One trace of 10,000 events: an invocation, then tool calls and results in a tree."""
    from agentaudit.events import AuditEvent

    root = AuditEvent(event_type="agent.invocation", agent_name="Router", action="bulk import",
                      trace_id=BIG_TRACE, task_id=BIG_TRACE, timestamp=start)
    events = [root]
    parent = root.event_id
    for i in range(1, BIG_EVENTS):
        kind = "agent.tool_call" if i % 2 else "agent.tool_result"
        ev = AuditEvent(event_type=kind, agent_name=("Support", "Billing")[i // 1000 % 2],
                        action=f"import_row_{i % 50}", trace_id=BIG_TRACE, task_id=BIG_TRACE,
                        parent_event_id=parent, timestamp=start + i * 0.01,
                        duration_ms=None if i % 2 else 8.0, params={"row": i},
                        result=None if i % 2 else {"ok": True})
        events.append(ev)
        if i % 100 == 1:
            parent = ev.event_id
    return events


def prepare(args: Any) -> Path:
    """bench/out/dashboard_N.db: a copy of the demo store with the 10,000-event trace."""
    source, how = ensure_store(args)
    target = C.OUT / f"dashboard_{args.events}.db" if not args.db else \
        C.OUT / f"dashboard_{Path(args.db).stem}.db"
    if target.exists() and _has_big_trace(target):
        C.note(args.json, f"store: {target} (cached; source {how})")
        return target
    C.note(args.json, f"copying {source} to {target} ...")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(source) + suffix)
        if src.exists():
            shutil.copyfile(src, str(target) + suffix)
    from agentaudit.store.sqlite import SQLiteStore

    with SQLiteStore(target) as store:
        last = store.aggregate("totals", "default", None, None, None, 1)[0]["last_ts"]
        store.append_batch(_big_trace(float(last or time.time()) - 3600))
    return target


class Served:
    """``agentaudit serve --no-auth`` on a free loopback port, in its own process."""

    def __init__(self, db: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.db = db
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        import httpx

        env = {**os.environ, "PYTHONPATH": str(C.ROOT / "src")}
        self.proc = subprocess.Popen([sys.executable, "-m", "agentaudit.cli", "serve", "--no-auth",
                                      "--port", str(self.port), "--db", str(self.db)], env=env)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("agentaudit serve did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(60)


def pages(incident: str) -> dict[str, str]:
    return {
        "overview (15m)": "/?window=15m", "overview (24h)": "/?window=24h",
        "overview (7d)": "/?window=7d", "overview (30d, whole store)": "/?window=30d",
        "live feed": "/live", "traces (newest)": "/traces",
        "traces (errors, agent Billing)": "/traces?status=error&agent=Billing",
        "traces (search refund-incident)": "/traces?ref=refund-incident",
        "trace refund-incident": f"/traces/{incident}",
        "trace 10k events, page 1": f"/traces/{BIG_TRACE}",
        "trace 10k events, last page": f"/traces/{BIG_TRACE}?page=100",
        "agents (7d)": "/agents", "agent Billing (7d)": "/agents/Billing",
        "alerts": "/alerts", "reports": "/reports", "integrity": "/integrity",
        REPORT_PAGES[0]: "/reports/compliance?since=24h",
        REPORT_PAGES[1]: "/reports/view?kind=summary&since=24h&fmt=html",
    }


def measure(url: str, path: str, runs: int) -> dict[str, Any]:
    import httpx

    times = []
    with httpx.Client(base_url=url, timeout=120) as client:
        t0 = time.perf_counter()
        first = client.get(path)
        cold = (time.perf_counter() - t0) * 1000
        if first.status_code != 200:
            raise SystemExit(f"{path}: HTTP {first.status_code}: {first.text[:300]}")
        for _ in range(runs):
            t0 = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    return {"cold_ms": cold, "p50_ms": C.percentile(times, 0.5),
            "p99_ms": C.percentile(times, 0.99), "bytes": len(first.content)}


def browser_load(url: str) -> float | None:
    """Milliseconds until the 10k trace's first page fires ``load`` in headless Chromium."""
    if not os.path.exists(CHROMIUM):
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            t0 = time.perf_counter()
            page.goto(url + f"/traces/{BIG_TRACE}", wait_until="load")
            elapsed = (time.perf_counter() - t0) * 1000
            rows = page.locator("table.timeline tbody tr").count()
            if rows != TRACE_PAGE_EVENTS:
                raise SystemExit(f"the 10k trace's first page shows {rows} rows, not "
                                 f"{TRACE_PAGE_EVENTS}")
            return elapsed
        finally:
            browser.close()


def main() -> None:
    p = C.parser(__doc__)
    p.set_defaults(runs=9)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--db", help="copy and measure this store instead of the demo store")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached demo store")
    args = p.parse_args()
    if args.runs < 3:
        raise SystemExit("--runs must be at least 3")
    db = prepare(args)
    from agentaudit.store.sqlite import SQLiteStore

    with SQLiteStore(db) as store:
        incident = store.trace_events("default", "refund-incident")[0].trace_id
        events = store.info().events
    results: dict[str, dict[str, Any]] = {}
    with Served(db) as served:
        for name, path in pages(incident or "refund-incident").items():
            C.note(args.json, f"  {name} ...")
            results[name] = measure(served.url, path, args.runs)
        load_ms = browser_load(served.url)
    ok = all(r["p50_ms"] <= P50_TARGET_MS and r["p99_ms"] <= P99_TARGET_MS
             for name, r in results.items() if name not in REPORT_PAGES)
    env = C.environment()
    if args.json:
        C.emit_json({"store": str(db), "events": events, "runs": args.runs, "pages": results,
                     "trace_10k_browser_load_ms": load_ms, "targets_met": ok, "env": env})
        return
    rows = [[name, C.fmt(r["p50_ms"], 1), C.fmt(r["p99_ms"], 1), C.fmt(r["cold_ms"], 1),
             f"{r['bytes'] / 1024:,.0f}",
             "info" if name in REPORT_PAGES else
             C.verdict(r["p50_ms"] <= P50_TARGET_MS and r["p99_ms"] <= P99_TARGET_MS)]
            for name, r in results.items()]
    print(f"Dashboard pages on {events:,} events ({db.name}), {args.runs} runs each after one "
          "cold request")
    print(C.env_line(env))
    print()
    print(C.table(["page", "p50 ms", "p99 ms", "cold ms", "KiB", "target"], rows))
    print()
    print(f"Targets: p50 <= {P50_TARGET_MS:.0f} ms, p99 <= {P99_TARGET_MS:.0f} ms. "
          f"{'All pages met them.' if ok else 'Some pages missed them (MISS).'} [report] rows "
          "time agentaudit.reports generating the report (bench/reports.py).")
    first = next(iter(results))
    print(f"The cold request of {first!r} waited for the startup rollups (one SQL pass over the "
          "store, in the background from startup).")
    if load_ms is None:
        print(f"10,000-event trace in a browser: not measured ({CHROMIUM} is not installed).")
    else:
        print(f"10,000-event trace, first page ({TRACE_PAGE_EVENTS} rows) in headless Chromium: load event after "
              f"{load_ms:,.0f} ms ({C.verdict(load_ms <= 1000)}, target <= 1,000 ms).")


if __name__ == "__main__":
    main()
