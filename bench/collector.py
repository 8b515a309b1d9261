"""Collector: events/s acknowledged durably over loopback, OTLP spans/s, p99 at half the peak.

Each run starts a fresh ``agentaudit serve`` (auth on, ``synchronous=full``: a request is
answered once its events are committed and fsync'd) on a new database, then measures:

* **native peak**: 4 client threads, each POSTing pre-built, gzip'd 1,000-event batches
  (the 20-event support traces of ``_workload``) as fast as they are acknowledged; events/s =
  events acknowledged / wall time; every event is then counted in the database.
* **latency at half the peak**: the same clients, paced to half of this run's peak rate;
  p50/p99 of the request latency.
* **OTLP**: 4 clients POSTing ExportTraceServiceRequest protobufs of 500 spans (agent, LLM and
  tool spans with OpenInference attributes) to /v1/traces; spans/s acknowledged.
* **where the time goes**: server CPU seconds per event (from /proc), the share of wall time
  the writer spent inside commits (``/metrics``), and in-process costs of parsing a body
  (``parse_events``) and of ``append_batch`` on the same events.

Peer: Arize Phoenix, installed by this script into bench/out/phoenix-venv when pip can fetch it
within a few minutes (``--phoenix-spans``); otherwise a note says it was skipped.

    cd /work/main && PYTHONPATH=src .venv/bin/python bench/collector.py
    PYTHONPATH=src .venv/bin/python bench/collector.py --events 400000 --json
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _common as C
import httpx
import msgspec
from _peer_phoenix import run_phoenix
from _workload import build_events

from agentaudit.server.keys import create_key_audited
from agentaudit.server.settings import ServerSettings
from agentaudit.store.sqlite import SQLiteStore

TARGET_EPS = 40_000
CLIENTS = 4
BATCH = 1000
SPANS_PER_REQUEST = 500


# -- the server --------------------------------------------------------------------------------

class Collector:
    """``agentaudit serve`` in a subprocess, with an ingest key."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None, workers: int = 1) -> None:
        self.db = tmp / "collector.db"
        with SQLiteStore(self.db) as store:
            self.key = create_key_audited(store, "bench", "ingest", "bench", "bench")[1]
            self.read_key = create_key_audited(store, "bench", "read", "metrics", "bench")[1]
        with socket_port() as port:
            self.url = f"http://127.0.0.1:{port}"
        environ = {**os.environ, "PYTHONPATH": str(C.ROOT / "src"), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentaudit.cli", "serve", "--port", self.url.rsplit(":", 1)[1],
             "--db", str(self.db), "--workers", str(workers)], env=environ, stdout=subprocess.DEVNULL,
            stderr=open(tmp / "server.log", "wb"))  # noqa: SIM115 (closed with the process)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"collector did not start: {(tmp / 'server.log').read_text()}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU seconds of the server process and of its worker processes (--workers)."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a process that just ended
            if stat.parent.name == str(self.proc.pid) or fields[1] == str(self.proc.pid):
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def metric(self, name: str) -> float:
        text = httpx.get(self.url + "/metrics", timeout=10,
                         headers={"Authorization": f"Bearer {self.read_key}"}).text
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith(name + " ") or line.startswith(name + "{"))

    def stored(self) -> int:
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            # the collector's detection rules may add findings (source agentaudit.detect)
            return int(con.execute("SELECT count(*) FROM events WHERE tenant = 'bench' AND "
                                   "coalesce(source, '') != 'agentaudit.detect'").fetchone()[0])
        finally:
            con.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class socket_port:  # noqa: N801 (used as a context manager)
    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return int(self.s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.s.close()


# -- clients -----------------------------------------------------------------------------------

def native_bodies(n: int, first_trace: int) -> list[bytes]:
    """gzip'd JSON arrays of ``BATCH`` fresh events (built before any timing)."""
    events = build_events(n, time.time() - 3600, first_trace)
    encode = msgspec.json.Encoder().encode
    return [gzip.compress(encode(events[i : i + BATCH]), 1) for i in range(0, n, BATCH)]


def send(url: str, key: str, path: str, ctype: str, bodies: list[bytes],
         interval: float = 0.0) -> tuple[float, list[float], dict[int, int]]:
    """POST every body from ``CLIENTS`` threads; (wall seconds, latencies, status counts).

    With ``interval`` each client sends one body every ``interval`` seconds (paced)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    share = [bodies[i::CLIENTS] for i in range(CLIENTS)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": ctype}
    if ctype == "application/json":
        headers["Content-Encoding"] = "gzip"

    def client(mine: list[bytes]) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            next_at = time.perf_counter()
            for body in mine:
                if interval:
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval
                t = time.perf_counter()
                r = c.post(path, content=body)
                dt = time.perf_counter() - t
                with lock:
                    latencies.append(dt)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=client, args=(s,)) for s in share]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t0, latencies, statuses


def otlp_requests(n_spans: int, seed: int) -> list[bytes]:
    """ExportTraceServiceRequest protobufs: traces of agent → LLM + 3 tools (+ an error)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    def attr(span: Any, key: str, value: Any) -> None:
        a = span.attributes.add(key=key)
        if isinstance(value, int):
            a.value.int_value = value
        else:
            a.value.string_value = value

    out, t0, k = [], time.time_ns() - 3600 * 10**9, 0
    while k < n_spans:
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        attr(rs.resource, "service.name", "support-bot")
        scope = rs.scope_spans.add()
        while len(scope.spans) < SPANS_PER_REQUEST and k < n_spans:
            trace = (seed << 64 | k).to_bytes(16, "big")
            root = scope.spans.add(trace_id=trace, span_id=(k + 1).to_bytes(8, "big"),
                                   name="Support", start_time_unix_nano=t0 + k,
                                   end_time_unix_nano=t0 + k + 10**9)
            attr(root, "openinference.span.kind", "AGENT")
            attr(root, "agent.name", "Support")
            attr(root, "input.value", "Customer asks for a refund of order o-42")
            for j, kind in enumerate(("LLM", "TOOL", "TOOL", "TOOL")):
                s = scope.spans.add(trace_id=trace, span_id=(k + 2 + j).to_bytes(8, "big"),
                                    parent_span_id=root.span_id, name=f"step{j}",
                                    start_time_unix_nano=t0 + k + j * 10**6,
                                    end_time_unix_nano=t0 + k + j * 10**6 + 5 * 10**5)
                attr(s, "openinference.span.kind", kind)
                if kind == "LLM":
                    attr(s, "llm.model_name", "gpt-4o")
                    attr(s, "llm.token_count.prompt", 812)
                    attr(s, "llm.token_count.completion", 143)
                    attr(s, "output.value", "I am issuing a refund of 42.50 EUR.")
                else:
                    attr(s, "tool.name", ("get_order", "check_policy", "issue_refund")[j - 1])
                    attr(s, "tool.parameters", '{"order_id": "o-42"}')
                    attr(s, "output.value", '{"status": "ok"}')
            k += 5
        out.append(req.SerializeToString())
    return out


# -- one run -----------------------------------------------------------------------------------

def in_process_costs(bodies: list[bytes], tmp: Path) -> C.Metrics:
    """µs per event of parsing a body and of ``append_batch``, outside the server."""
    from agentaudit.server.bodies import parse_events

    settings = ServerSettings(db=str(tmp / "x.db"))
    sample = bodies[:20]
    t = time.perf_counter()
    parsed = [parse_events(gzip.decompress(b), "application/json", "bench", settings).events
              for b in sample]
    parse_us = (time.perf_counter() - t) / (len(sample) * BATCH) * 1e6
    out = {"parse_us": parse_us}
    for key, sync in (("append_us", "full"), ("append_nofsync_us", "off")):
        with SQLiteStore(tmp / f"{sync}.db", synchronous=sync) as store:
            t = time.perf_counter()
            for events in parsed:
                store.append_batch([msgspec.structs.replace(ev) for ev in events])
            out[key] = (time.perf_counter() - t) / (len(sample) * BATCH) * 1e6
    return out


def one_run(i: int, args: Any) -> C.Metrics:
    """Every measure for each ``--workers`` count (keys of counts > 1 prefixed ``wN_``)."""
    out: C.Metrics = {}
    for w in args.workers:
        m = one_config(i, args, w)
        out.update(m if w == 1 else {f"w{w}_{k}": v for k, v in m.items()})
    return out


def one_config(i: int, args: Any, workers: int) -> C.Metrics:
    tmp = Path(tempfile.mkdtemp(prefix="collector-", dir=C.OUT))
    try:
        bodies = native_bodies(args.events, first_trace=i * 10**6)
        paced = native_bodies(args.paced_batches * BATCH, first_trace=i * 10**6 + 500_000)
        spans = otlp_requests(args.spans, seed=i + 1)
        srv = Collector(tmp, workers=workers)
        try:
            send(srv.url, srv.key, "/v1/events", "application/json", bodies[:CLIENTS])  # warm-up
            base = srv.stored()
            cpu0, commit0 = srv.cpu_seconds(), srv.metric("agentaudit_commit_seconds_sum")
            commits0 = srv.metric("agentaudit_commits_total")
            wall, lat, st = send(srv.url, srv.key, "/v1/events", "application/json",
                                 bodies[CLIENTS:])
            n = (len(bodies) - CLIENTS) * BATCH
            cpu = srv.cpu_seconds() - cpu0
            # /metrics counts the worker that answers; with several workers it is a sample
            commit = srv.metric("agentaudit_commit_seconds_sum") - commit0
            commits = srv.metric("agentaudit_commits_total") - commits0
            lost = n - (srv.stored() - base)
            if st != {200: len(bodies) - CLIENTS} or lost:
                raise SystemExit(f"native ingest refused or lost events: {st}, lost {lost}")
            eps = n / wall
            interval = CLIENTS * BATCH / (eps / 2)  # per client, at half the peak rate
            _, paced_lat, pst = send(srv.url, srv.key, "/v1/events", "application/json", paced,
                                     interval)
            before = srv.stored()
            owall, _, ost = send(srv.url, srv.key, "/v1/traces", "application/x-protobuf", spans)
            otlp_events = srv.stored() - before
        finally:
            srv.stop()
        m: C.Metrics = {
            "eps": eps, "p50_ms": C.percentile(lat, 0.5) * 1e3,
            "p99_ms": C.percentile(lat, 0.99) * 1e3,
            "half_p50_ms": C.percentile(paced_lat, 0.5) * 1e3,
            "half_p99_ms": C.percentile(paced_lat, 0.99) * 1e3,
            "half_refused": float(sum(v for k, v in pst.items() if k != 200)),
            "spans_s": args.spans / owall, "otlp_events_s": otlp_events / owall,
            "otlp_refused": float(sum(v for k, v in ost.items() if k != 200)),
            "cpu_us_per_event": cpu / n * 1e6, "server_cpu_share": cpu / wall,
        }
        if workers == 1:  # /metrics is per worker; the in-process costs do not depend on it
            m.update({"commit_share": commit / wall, "events_per_commit": n / max(commits, 1)})
            m.update(in_process_costs(bodies, tmp))
        return m
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(stats: dict[str, dict[str, float]], env: dict[str, Any], runs: int,
           peer: dict[str, Any], workers: list[int]) -> None:
    def key(w: int, k: str) -> str:
        return k if w == 1 else f"w{w}_{k}"

    def cells(k: str, digits: int) -> list[str]:
        return [C.cell(stats, key(w, k), digits) for w in workers]

    best = max(stats[key(w, "eps")]["median"] for w in workers)
    refused = max(stats[key(w, "half_refused")]["max"] + stats[key(w, "otlp_refused")]["max"]
                  for w in workers)
    print(f"# Collector ingest over loopback (median of {runs} runs; min–max)\n")
    print(C.env_line(env) + "\n")
    heads = [f"{w} worker{'s' if w > 1 else ''}" for w in workers]
    rows = [
        ["native events/s acknowledged (4 clients × 1,000-event gzip batches, durable)",
         *cells("eps", 0), f"≥ {TARGET_EPS:,}", C.verdict(best >= TARGET_EPS)],
        ["request latency at peak, p50 / p99 (ms)",
         *[f"{C.cell(stats, key(w, 'p50_ms'), 1)} / {C.cell(stats, key(w, 'p99_ms'), 1)}"
           for w in workers], "", ""],
        ["request latency at half the peak rate, p50 / p99 (ms)",
         *[f"{C.cell(stats, key(w, 'half_p50_ms'), 1)} / "
           f"{C.cell(stats, key(w, 'half_p99_ms'), 1)}" for w in workers], "", ""],
        ["OTLP spans/s acknowledged (protobuf, 500 spans/request)", *cells("spans_s", 0),
         "", ""],
        ["OTLP → audit events/s stored", *cells("otlp_events_s", 0), "", ""],
        ["refused requests (half-peak + OTLP)",
         *[f"{C.fmt(stats[key(w, 'half_refused')]['median'], 0)} + "
           f"{C.fmt(stats[key(w, 'otlp_refused')]['median'], 0)}" for w in workers],
         "0", C.verdict(refused == 0)],
        ["server CPU per event (µs), all processes and threads",
         *cells("cpu_us_per_event", 1), "", ""],
        ["server CPU / wall time (1.0 = one core busy)", *cells("server_cpu_share", 2), "", ""],
    ]
    print(C.table(["measure", *heads, "target", ""], rows))
    if "commit_share" in stats:
        print("\n## Where the time goes (native peak, 1 worker)\n")
        s = stats
        rows = [
            ["writer thread inside commits / wall time", C.cell(s, "commit_share", 2)],
            ["events per group commit", C.cell(s, "events_per_commit", 0)],
            ["in-process: gunzip + parse + validate (µs/event)", C.cell(s, "parse_us", 1)],
            ["in-process: append_batch, integrity + fsync (µs/event)",
             C.cell(s, "append_us", 1)],
            ["in-process: append_batch without fsync (µs/event)",
             C.cell(s, "append_nofsync_us", 1)],
        ]
        print(C.table(["measure", "value"], rows))
    print("\n## Peer: Arize Phoenix\n")
    if peer.get("skipped"):
        print(f"skipped: {peer['skipped']}")
    else:
        spans = max(stats[key(w, "spans_s")]["median"] for w in workers)
        ratio = spans / peer["spans_s"] if peer["spans_s"] else float("nan")
        print(C.table(["", "spans/s stored", "sent", "stored", "refused (HTTP ≠ 200)", "ratio"],
                      [["agentaudit (best of the worker counts)", C.fmt(spans, 0), "", "", "0",
                        ""],
                       [f"Phoenix {peer['version']}", C.fmt(peer["spans_s"], 0),
                        str(peer["sent"]), str(peer["stored"]), str(peer["refused"]),
                        f"{C.fmt(ratio, 1)}×"]]))


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--events", type=int, default=200_000, help="events per peak measurement")
    p.add_argument("--paced-batches", type=int, default=60, help="batches sent at half the peak")
    p.add_argument("--spans", type=int, default=100_000, help="OTLP spans per run")
    p.add_argument("--phoenix-spans", type=int, default=5_000,
                   help="spans sent to Phoenix (0: skip the peer)")
    p.add_argument("--workers", type=lambda v: sorted({int(x) for x in v.split(",")}),
                   default=[1, 2], help="`serve --workers` counts to measure, comma-separated")
    args = p.parse_args()
    env = C.environment()
    runs = C.run_repeated(args.runs, lambda i: one_run(i, args), args.json)
    stats = C.summarise(runs)
    peer = (run_phoenix(otlp_requests(args.phoenix_spans, seed=1), args.phoenix_spans,
                        quiet=args.json) if args.phoenix_spans else {"skipped": "--phoenix-spans 0"})
    if args.json:
        C.emit_json({"env": env, "stats": stats, "runs": runs, "peer": peer})
    else:
        report(stats, env, args.runs, peer, args.workers)


if __name__ == "__main__":
    main()
