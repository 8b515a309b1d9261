"""Several writers on one database: per-tenant sequencing stays gap-free and verifiable.

Two ``agentaudit serve`` processes share one PostgreSQL database; clients send to both at once;
one collector is killed with SIGKILL mid-run. Afterwards every acknowledged event is stored
exactly once, the log has no gaps and ``verify`` passes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import psycopg
import pytest

from agentaudit.events import new_event_id
from agentaudit.integrity.checkpoint import load_or_create_signing_key
from agentaudit.integrity.verify import verify_log
from agentaudit.store import EventQuery, open_store
from server.conftest import Server, wait_for

from .conftest import events

BATCH = 100


class _Client(threading.Thread):
    """Sends batches of fresh events until told to stop or the collector goes away."""

    def __init__(self, url: str, name: str, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=name)
        self.url, self.stop = url, stop
        self.acked: list[str] = []
        self.failure: str | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self.stop.is_set():
                batch = [{"event_type": "agent.tool_call", "agent_name": self.name,
                          "event_id": new_event_id(), "action": "step",
                          "params": {"n": len(self.acked)}} for _ in range(BATCH)]
                try:
                    r = c.post("/v1/events", json=batch)
                except httpx.HTTPError as e:
                    self.failure = type(e).__name__
                    return
                if r.status_code != 200 or r.json()["accepted"] != BATCH:
                    self.failure = f"{r.status_code} {r.text[:200]}"
                    return
                self.acked += [e["event_id"] for e in batch]


def test_two_collectors_one_killed(pg_url: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    vkey = load_or_create_signing_key("agentaudit").verifier_key()  # shared by both collectors
    open_store(pg_url).close()  # migrate once
    env = {"AGENTAUDIT_CHECKPOINT_EVENTS": "500"}
    a = Server(pg_url, tmp_path, "--no-auth", env=env).start()  # type: ignore[arg-type]
    b = Server(pg_url, tmp_path, "--no-auth", env=env).start()  # type: ignore[arg-type]
    stop = threading.Event()
    to_a = [_Client(a.url, f"A{i}", stop) for i in range(2)]
    to_b = [_Client(b.url, f"B{i}", stop) for i in range(2)]
    try:
        for c in (*to_a, *to_b):
            c.start()
        wait_for(lambda: sum(len(c.acked) for c in (*to_a, *to_b)) >= 20 * BATCH, timeout=90)
        a.kill()  # mid-run: requests in flight, a transaction perhaps half written
        for c in to_a:
            c.join(30)
        survivors = sum(len(c.acked) for c in to_b)
        wait_for(lambda: sum(len(c.acked) for c in to_b) >= survivors + 3 * BATCH, timeout=60)
        stop.set()
        for c in to_b:
            c.join(30)
        assert all(c.failure is None for c in to_b), [c.failure for c in to_b]
    finally:
        stop.set()
        a.kill()
        b.stop()
    acked = [i for c in (*to_a, *to_b) for i in c.acked]
    assert len(acked) == len(set(acked)) >= 23 * BATCH
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM event_keys "
                              "WHERE tenant = 'default' AND event_id = ANY(%s)",
                              (acked,)).fetchone()
        assert stored == (len(acked), len(acked))  # every acknowledged event, once
        n, lo, hi = conn.execute("SELECT count(*), min(seq), max(seq) FROM events "
                                 "WHERE tenant = 'default'").fetchone()
        assert (lo, hi) == (0, n - 1)  # no gaps, no duplicates
    with open_store(pg_url) as s:
        report = verify_log(s, "default", vkey=vkey)
        assert report.ok, report.damage
        assert report.size == n and report.checkpoints >= 1


def test_concurrent_sequencers_in_one_process(pg_url: str) -> None:
    """Four stores (four sessions) append to two tenants at once: each log stays gap-free."""
    open_store(pg_url).close()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with open_store(pg_url) as s:
                for j in range(15):
                    batch = events(20, tenant="t1", start=1_780_000_000.0 + k * 1e5 + j * 1e3)
                    batch += events(5, tenant="t2", start=1_780_000_000.0 + k * 1e5 + j * 1e3)
                    s.append_batch(batch)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    vkey = load_or_create_signing_key("agentaudit").verifier_key()
    with open_store(pg_url) as s:
        for tenant, n in (("t1", 4 * 15 * 20), ("t2", 4 * 15 * 5)):
            assert s.count(EventQuery(tenant=tenant)) == n
            assert s.log_state(tenant)[0] == n  # type: ignore[attr-defined]
            assert verify_log(s, tenant, vkey=vkey).ok


_HALF_BATCH = """
import sys, time
from agentaudit.store import open_store
from agentaudit.store.postgres import _load_log_state
from tests_events import batch
store = open_store(sys.argv[1])
store.ensure_days({20600})
conn = store.connection
with conn.transaction():
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('agentaudit.log:default', 0))")
    rows = store._log.sequence(conn, batch(), _load_log_state, None)
    with conn.cursor().copy("COPY event_keys (tenant, event_id, seq, day) FROM STDIN") as copy:
        for r in rows:
            copy.write_row((r[0], r[2], r[1], int(r[15] // 86400)))
    print("holding", flush=True)
    time.sleep(120)
"""


def test_sequencer_killed_holding_the_lock(pg_url: str, tmp_path: Path) -> None:
    """A collector SIGKILLed inside its append transaction (lock held, rows half written):
    the waiting collector takes over from the last committed head; nothing of the dead batch
    remains and the log has no gap."""
    import subprocess
    import sys

    from server.conftest import SRC

    (tmp_path / "tests_events.py").write_text(
        "from agentaudit.events import AuditEvent\n"
        "def batch():\n"
        "    return [AuditEvent(event_type='agent.tool_call', agent_name='Dead', "
        "timestamp=20600 * 86400.0 + i) for i in range(50)]\n")
    with open_store(pg_url) as s:
        s.append_batch(events(10))
    child = subprocess.Popen([sys.executable, "-c", _HALF_BATCH, pg_url],
                             stdout=subprocess.PIPE, text=True,
                             env={"PYTHONPATH": f"{SRC}:{tmp_path}", "PATH": "/usr/bin:/bin",
                                  "XDG_CONFIG_HOME": str(tmp_path / "config")})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding"
        result: list[int] = []

        def append() -> None:
            with open_store(pg_url) as s:
                result.append(s.append_batch(events(7, start=1_780_500_000.0)).accepted)

        waiter = threading.Thread(target=append)
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive()  # blocked on the tenant's lock
        child.kill()
        waiter.join(30)
        assert result == [7]
    finally:
        child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    with open_store(pg_url) as s:
        assert s.count(EventQuery(agent="Dead")) == 0
        assert [e.seq for e in s.query(EventQuery(limit=100)).data] == list(range(17))
        vkey = load_or_create_signing_key("agentaudit").verifier_key()
        assert verify_log(s, "default", vkey=vkey).ok


def test_serve_on_postgresql_answers_the_dashboard_and_alerts(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL, ingest, the query API, the dashboard and the alerts list all answer
    (tests/dashboard/test_pages_postgres.py drives the pages in a browser)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    open_store(pg_url).close()
    srv = Server(pg_url, tmp_path, "--no-auth").start()  # type: ignore[arg-type]
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            ev = {"event_type": "agent.tool_call", "agent_name": "A", "action": "x"}
            assert c.post("/v1/events", json=[ev]).json()["accepted"] == 1
            assert c.get("/v1/events").json()["data"][0]["agent_name"] == "A"
            for path in ("/", "/traces", "/v1/alerts"):
                r = c.get(path, follow_redirects=False)
                assert r.status_code == 200, (path, r.status_code, r.text[:200])
            assert c.get("/v1/alerts").json() == {"data": []}
            assert "A" in c.get("/agents").text
    finally:
        srv.stop()
