"""PostgreSQL store: ingest with 1 and 2 collectors, report latency, retention of a day.

Without ``--url`` the script starts its own PostgreSQL server from /usr/lib/postgresql/*/bin
(data in /tmp/agentaudit-bench-pg, kept between runs so the big store is built once; running as
root, the server runs as the ``postgres`` user). Settings: fsync on, synchronous_commit on,
shared_buffers 256MB — a durable configuration on loopback.

Measured:

* **ingest** — events/s made durable by 1 and by 2 collector processes appending to one tenant
  at once (one log: the tenant's lock serialises them), and by 2 collectors on 2 tenants. Each collector is what ``agentaudit serve``'s group-commit writer does per commit:
  ``PostgresStore.append_batch`` of ``--batch`` events (sequencing under the tenant's advisory
  lock, payload digests, leaves, COPY of the rows, the new log head), so the HTTP parsing in
  front of it is not counted. Each run writes ``--ingest-events`` events per variant into a
  fresh database; the ratio 2/1 is computed inside the run.
  A last variant runs 1 collector without keeping the report rollups (``use_rollups`` off):
  the ratio is what the rollups cost at ingest.
* **reports** — summary, tool-usage, errors, compliance, daily, cost over the whole store (the
  demo workload, ``run_demo(url, events=N)``, built once as database ``bench_demo_N``);
  target ≤ 2 s each at 10 million events.
* **retention** — ``drop_payload_day`` of one day partition of that store (a different day per
  run, the days of most events first), target ≤ 1 s whatever its size; the rows of the day are
  printed beside it. Retention erases payloads for good: ``--no-retention`` keeps them.

    PYTHONPATH=src .venv/bin/python bench/postgres.py --events 1000000
    PYTHONPATH=src .venv/bin/python bench/postgres.py --url postgresql://u@host/db --json
"""

from __future__ import annotations

import glob
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common as C

from agentaudit import reports as R
from agentaudit.reports.period import day_bounds

DATA = Path("/tmp/agentaudit-bench-pg")
PORT_FILE = DATA / "port"
REPORTS = ("summary", "tool-usage", "errors", "compliance", "daily", "cost")
REPORT_TARGET_S = 2.0
RETENTION_TARGET_S = 1.0


# -- the server ----------------------------------------------------------------------------------

def _pg(*args: str) -> subprocess.CompletedProcess[str]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin: "
                         "apt-get install postgresql, or pass --url")
    cmd = [str(Path(found[-1]).parent / args[0]), *args[1:]]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)


def start_server() -> str:
    """The admin URL of the bench server (started, initialised on first use)."""
    if not (DATA / "data" / "PG_VERSION").exists():
        shutil.rmtree(DATA, ignore_errors=True)
        DATA.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(DATA, user="postgres")
        done = _pg("initdb", "-D", str(DATA / "data"), "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--locale=C")
        if done.returncode:
            raise SystemExit(f"initdb failed: {done.stderr}")
    port = int(PORT_FILE.read_text()) if PORT_FILE.exists() else _free_port()
    if _pg("pg_ctl", "-D", str(DATA / "data"), "status").returncode != 0:
        opts = (f"-p {port} -k {DATA} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB "
                "-c max_wal_size=4GB -c checkpoint_timeout=30min")
        done = _pg("pg_ctl", "-D", str(DATA / "data"), "-o", opts, "-l", str(DATA / "log"),
                   "-w", "-t", "120", "start")
        if done.returncode:
            raise SystemExit(f"pg_ctl start failed: {done.stderr} (see {DATA / 'log'})")
        if os.geteuid() == 0:
            subprocess.run(["chmod", "a+rwx", str(DATA)], check=False)
        PORT_FILE.write_text(str(port))
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _db_url(admin: str, name: str) -> str:
    return admin.rsplit("/", 1)[0] + "/" + name


def _exists(admin: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def _recreate(admin: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return _db_url(admin, name)


# -- ingest ---------------------------------------------------------------------------------------

def _collector(url: str, n: int, batch: int, k: int, start: Any, out: Any,
               tenant: str, rollups: bool = True) -> None:
    from agentaudit.events import AuditEvent
    from agentaudit.store import open_store

    store = open_store(url)
    store.use_rollups = rollups  # type: ignore[attr-defined]  # off: the price of keeping them
    t0 = 1_790_000_000.0 + k
    batches = [[AuditEvent(event_type="agent.tool_call", agent_name=f"Agent{j % 7}", tenant=tenant,
                           timestamp=t0 + (i + j) * 0.01, action=f"tool{j % 13}",
                           trace_id=f"tr-{k}-{(i + j) // 8}", params={"q": "x" * 40, "j": j},
                           duration_ms=12.5, model="gpt-4o", prompt_tokens=100)
                for j in range(batch)] for i in range(0, n, batch)]
    log = store._log  # type: ignore[attr-defined]
    sequence, in_python = log.sequence, [0.0]

    def timed(*a: Any, **kw: Any) -> Any:  # the sequencer's Python work, inside the lock
        t = time.perf_counter()
        try:
            return sequence(*a, **kw)
        finally:
            in_python[0] += time.perf_counter() - t

    log.sequence = timed
    start.wait()
    began = time.perf_counter()
    for b in batches:
        store.append_batch(b)
    out.put((time.perf_counter() - began, in_python[0]))
    store.close()


def ingest(admin: str, collectors: int, n: int, batch: int,
           tenants: int = 1, rollups: bool = True) -> tuple[float, float]:
    """Events/s of ``collectors`` processes appending ``n`` events in all to one tenant, and
    the share of the collectors' time spent sequencing in Python. ``rollups=False``: the
    collectors do not keep the report rollups (what they cost at ingest)."""
    from agentaudit.store import open_store

    url = _recreate(admin, f"bench_ingest_{collectors}_{tenants}_{int(rollups)}")
    with open_store(url) as s:
        s.ensure_days(range(20_700, 20_720))  # type: ignore[attr-defined]
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_collector, args=(url, n // collectors, batch, k, start, out,
                                                  f"t{k % tenants}", rollups))
             for k in range(collectors)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every collector build its batches first
    start.set()
    results = [out.get(timeout=3600) for _ in procs]
    took = max(r[0] for r in results)
    share = sum(r[1] for r in results) / sum(r[0] for r in results)
    for p in procs:
        p.join()
    with open_store(url) as s:
        stored = sum(s.log_state(f"t{t}")[0] for t in range(tenants))  # type: ignore[attr-defined]
        assert stored == n // collectors * collectors
    return n // collectors * collectors / took, share


# -- reports and retention -------------------------------------------------------------------------

def ensure_demo(admin: str, events: int, quiet: bool, source: Path | None = None) -> str:
    from agentaudit.demo import run_demo

    name = f"bench_demo_{events}" + ("_copies" if source is not None else "")
    url = _db_url(admin, name)
    if _exists(admin, name):
        return url
    url = _recreate(admin, name + "_building")
    C.note(quiet, f"building {events:,} demo events in {name} (once) ...")
    t0 = time.perf_counter()
    if source is None:
        run_demo(url, events=events, days=30)
    else:
        copy_demo(source, url, events, quiet)
    C.note(quiet, f"built in {time.perf_counter() - t0:.0f} s")
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name}_building RENAME TO {name}")  # type: ignore[arg-type]
        with psycopg.connect(url.replace("_building", ""), autocommit=True) as db:
            db.execute("VACUUM ANALYZE")
    return _db_url(admin, name)


def copy_demo(source: Path, url: str, events: int, quiet: bool, batch: int = 5000) -> None:
    """``events`` events in the PostgreSQL store at ``url``, made of copies of the demo events
    of the SQLite store ``source``: copy k is shifted k times the source's span of days later,
    with its own event ids (the first hex digit of each UUIDv7 becomes k) and its own trace,
    session and task ids. Every copy goes through ``append_batch`` (sequencing, leaves,
    checkpoints), so the store verifies like any other: it is the demo workload, longer, built
    at COPY speed instead of the demo generator's."""
    import math

    from msgspec.structs import replace

    from agentaudit.store import EventQuery, open_store

    src, dst = open_store(str(source), readonly=True, create=False), open_store(url)
    try:
        first, last, n = src.connection.execute(  # type: ignore[attr-defined]
            "SELECT min(timestamp), max(timestamp), count(*) FROM events "
            "WHERE tenant = 'default'").fetchone()
        span = math.ceil((last - first + 1) / 86400) * 86400
        copies = min(math.ceil(events / n), 16)

        def ident(value: str | None, k: int) -> str | None:
            return value if value is None or k == 0 else f"{value}-c{k}"

        def uid(value: str | None, k: int) -> str | None:
            if value is None or k == 0:
                return value
            assert value[0] == "0", value  # UUIDv7 of this century: copy k owns digit k
            return f"{k:x}{value[1:]}"

        done = 0
        for k in range(copies):
            pending = []
            for ev in src.iter_events(EventQuery(tenant="default"), batch_size=batch):
                if done + len(pending) >= events:
                    break
                pending.append(replace(
                    ev, seq=None, event_id=uid(ev.event_id, k),
                    parent_event_id=uid(ev.parent_event_id, k), trace_id=ident(ev.trace_id, k),
                    session_id=ident(ev.session_id, k), task_id=ident(ev.task_id, k),
                    timestamp=ev.timestamp + k * span))
                if len(pending) >= batch:
                    dst.append_batch(pending)
                    done, pending = done + len(pending), []
                    if done % 500_000 == 0:
                        C.note(quiet, f"  {done:,}/{events:,} events")
            if pending:
                dst.append_batch(pending)
                done += len(pending)
        dst.checkpoint()  # type: ignore[attr-defined]
    finally:
        src.close()
        dst.close()


def report_run(url: str, retention: bool, run: int) -> C.Metrics:
    from agentaudit.store import open_store

    m: C.Metrics = {}
    store = open_store(url)
    try:
        conn = store.connection  # type: ignore[attr-defined]
        first, last, n = conn.execute("SELECT min(timestamp), max(timestamp), count(*) "
                                      "FROM events WHERE tenant = 'default'").fetchone()
        m["events"] = n
        period = R.Period(float(first), float(last) + 1.0)
        day = max(day_bounds(period), key=lambda d: d[2] - d[1])
        now = period.until + 3600
        calls = {
            "summary": lambda: R.summary_report(store, "default", period),
            "tool-usage": lambda: R.tool_usage_report(store, "default", period),
            "errors": lambda: R.errors_report(store, "default", period),
            "compliance": lambda: R.compliance_report(store, "default", period, now=now),
            "daily": lambda: R.daily_report(
                store, "default", datetime.fromisoformat(day[0]).replace(tzinfo=UTC).date(),
                now=now),
            "cost": lambda: R.cost_report(store, "default", period),
        }
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            m[name] = time.perf_counter() - t0
        if retention:
            days = conn.execute(
                "SELECT day, count(*) FROM events e WHERE tenant = 'default' AND NOT EXISTS "
                "(SELECT 1 FROM payload_days_dropped d WHERE d.day = e.day) "
                "GROUP BY day ORDER BY count(*) DESC LIMIT 1").fetchall()
            if days:
                d, rows = days[0]
                t0 = time.perf_counter()
                store.drop_payload_day(d, f"bench run {run}")  # type: ignore[attr-defined]
                m["retention"] = time.perf_counter() - t0
                m["retention_rows"] = rows
    finally:
        store.close()
    return m


def main() -> int:
    p = C.parser(__doc__)
    p.add_argument("--url", help="admin URL of a PostgreSQL server to use instead of our own")
    p.add_argument("--events", type=int, default=1_000_000, help="size of the demo store")
    p.add_argument("--ingest-events", type=int, default=200_000, help="events per ingest run")
    p.add_argument("--batch", type=int, default=2000, help="events per append_batch")
    p.add_argument("--no-retention", action="store_true", help="keep the payloads")
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--from-sqlite", action="store_true",
                   help="build the store from copies of the cached 1M SQLite demo store "
                        "(bench/out, built by trace_query.py) through append_batch, shifted in "
                        "time, instead of running the demo generator (~10x faster; up to 16 "
                        "copies)")
    args = p.parse_args()
    admin = args.url or start_server()
    runs: list[C.Metrics] = []
    source = None
    if args.from_sqlite:
        from types import SimpleNamespace

        from trace_query import ensure_store

        source = ensure_store(SimpleNamespace(db=None, events=1_000_000, json=args.json))[0]
    url = ensure_demo(admin, args.events, args.json, source)
    for i in range(args.runs):
        m: C.Metrics = {}
        if not args.skip_ingest:
            order = (1, 2) if i % 2 == 0 else (2, 1)
            for k in order:
                m[f"ingest_{k}"], m[f"python_share_{k}"] = ingest(admin, k, args.ingest_events,
                                                                  args.batch)
            m["ingest_ratio"] = m["ingest_2"] / m["ingest_1"]
            m["ingest_2t"], _ = ingest(admin, 2, args.ingest_events, args.batch, tenants=2)
            m["ingest_2t_ratio"] = m["ingest_2t"] / m["ingest_1"]
            m["ingest_1_plain"], _ = ingest(admin, 1, args.ingest_events, args.batch,
                                            rollups=False)
            m["rollup_ratio"] = m["ingest_1"] / m["ingest_1_plain"]
        m.update(report_run(url, not args.no_retention, i))
        runs.append(m)
        C.note(args.json, f"run {i + 1}/{args.runs} done")
    stats = C.summarise(runs)
    env = C.environment()
    if args.json:
        C.emit_json({"environment": env, "results": stats, "events": args.events})
        return 0
    rows = []
    if "ingest_1" in stats:
        rows += [["ingest, 1 collector (events/s)", C.cell(stats, "ingest_1", 0), "—"],
                 ["ingest, 2 collectors (events/s)", C.cell(stats, "ingest_2", 0),
                  f"x{C.cell(stats, 'ingest_ratio')} of 1"],
                 ["ingest, 2 collectors, 2 tenants (events/s)", C.cell(stats, "ingest_2t", 0),
                  f"x{C.cell(stats, 'ingest_2t_ratio')} of 1"],
                 ["ingest, 1 collector without the report rollups (events/s)",
                  C.cell(stats, "ingest_1_plain", 0),
                  f"with them: x{C.cell(stats, 'rollup_ratio')}"],
                 ["  share of collector time in Python sequencing, 1 / 2",
                  f"{C.cell(stats, 'python_share_1')} / {C.cell(stats, 'python_share_2')}", "—"]]
    for name in REPORTS:
        rows.append([f"report {name} (s)", C.cell(stats, name, 3),
                     C.verdict(stats[name]["median"] <= REPORT_TARGET_S)])
    if "retention" in stats:
        rows.append([f"retention: drop a day (~{stats['retention_rows']['median']:,.0f} rows) (s)",
                     C.cell(stats, "retention", 3),
                     C.verdict(stats["retention"]["median"] <= RETENTION_TARGET_S)])
    print(f"PostgreSQL store, {stats['events']['median']:,.0f} demo events; "
          f"{args.runs} runs; {C.env_line(env)}")
    print(C.table(["measure", "median (min–max)", "target"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
