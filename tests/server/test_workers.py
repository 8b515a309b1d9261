"""``agentaudit serve --workers N``: worker processes on one port, one log per tenant.

Real processes on a loopback port: clients on many connections reach both workers; every
acknowledged event is stored once with contiguous seqs and the log verifies; a worker killed
with SIGKILL is replaced and nothing it acknowledged is lost; SIGTERM stops everything cleanly
with a checkpoint covering every event; workers that keep failing as they start stop the
collector, and a bad configuration fails once, before listening."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from agentaudit.events import new_event_id
from agentaudit.integrity.checkpoint import load_or_create_signing_key
from agentaudit.integrity.verify import verify_log
from agentaudit.server.settings import ServerSettings
from agentaudit.server.workers import _MAX_FAILED_STARTS, _Supervisor
from agentaudit.store.sqlite import SQLiteStore

from .conftest import Server, make_key, stored_ids, wait_for


def _workers_of(pid: int) -> list[int]:
    """Child processes of ``pid`` that run a collector worker (not multiprocessing's tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == str(pid) and b"spawn_main" in cmd:
            out.append(int(stat.parent.name))
    return sorted(out)


class _Sender(threading.Thread):
    """Posts batches, a new connection each time (so the kernel spreads them over the workers),
    until told to stop or the server goes away; keeps what was acknowledged and who answered."""

    def __init__(self, url: str, key: str, batches: int | None) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.batches = url, key, batches
        self.acked: list[str] = []
        self.workers: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and (self.batches is None or n < self.batches):
            n += 1
            batch = [{"event_type": "agent.tool_call", "agent_name": self.name, "action": "step",
                      "event_id": new_event_id(), "params": {"n": n}} for _ in range(50)]
            try:
                with httpx.Client(base_url=self.url, timeout=30,
                                  headers={"Authorization": f"Bearer {self.key}"}) as c:
                    r = c.post("/v1/events", json=batch)
                    self.workers.add(c.get("/healthz").json()["worker"])
            except httpx.HTTPError:
                continue  # a worker went away mid-request: not acknowledged, sent again later
            if r.status_code == 200:
                assert r.json()["accepted"] == len(batch)
                self.acked += [e["event_id"] for e in batch]


def _check_log(db: Path, tenant: str, acked: list[str], home: Path) -> None:
    stored = stored_ids(db, tenant)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert set(acked) <= set(stored), "an acknowledged event is missing"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    seqs = [r[0] for r in con.execute("SELECT seq FROM events WHERE tenant = ? ORDER BY seq",
                                      (tenant,))]
    con.close()
    assert seqs == list(range(len(stored)))
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")  # the servers' signing key
    try:
        vkey = load_or_create_signing_key("agentaudit").verifier_key()
    finally:
        del os.environ["XDG_CONFIG_HOME"]
    with SQLiteStore(db, readonly=True, create=False) as store:
        report = verify_log(store, tenant, vkey=vkey, workers=1)
    assert report.ok, report.damage
    assert report.size == len(stored)


@pytest.mark.slow
def test_two_workers_share_the_port_and_keep_one_log(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    key = make_key(db, "acme", "ingest")
    srv = Server(db, tmp_path, "--workers", "2").start()
    try:
        assert len(wait_for(lambda: len(_workers_of(srv.proc.pid)) == 2 and  # type: ignore[union-attr]
                            _workers_of(srv.proc.pid))) == 2  # type: ignore[union-attr]
        senders = [_Sender(srv.url, key, batches=15) for _ in range(4)]
        for s in senders:
            s.start()
        for s in senders:
            s.join(120)
        acked = [i for s in senders for i in s.acked]
        assert len(acked) == 4 * 15 * 50
        assert set().union(*(s.workers for s in senders)) == {0, 1}
    finally:
        srv.stop()
    assert srv.proc is not None and srv.proc.returncode == 0
    _check_log(db, "acme", acked, tmp_path)
    with SQLiteStore(db, readonly=True, create=False) as store:
        # the workers signed what they committed when they stopped: no unsigned tail
        # (the key's audit.key_created event is in the log too)
        assert store.latest_checkpoint("acme")[0] == len(stored_ids(db, "acme"))  # type: ignore[index]
        assert len(stored_ids(db, "acme")) == len(acked) + 1


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    key = make_key(db, "acme", "ingest")
    srv = Server(db, tmp_path, "--workers", "2").start()
    assert srv.proc is not None
    try:
        before = wait_for(lambda: len(_workers_of(srv.proc.pid)) == 2 and  # type: ignore[union-attr]
                          _workers_of(srv.proc.pid))  # type: ignore[union-attr]
        senders = [_Sender(srv.url, key, batches=None) for _ in range(3)]
        for s in senders:
            s.start()
        wait_for(lambda: sum(len(s.acked) for s in senders) >= 1500, timeout=60)
        os.kill(before[0], signal.SIGKILL)
        after = wait_for(lambda: len(_workers_of(srv.proc.pid)) == 2  # type: ignore[union-attr]
                         and _workers_of(srv.proc.pid) != before  # type: ignore[union-attr]
                         and _workers_of(srv.proc.pid), timeout=30)  # type: ignore[union-attr]
        assert before[1] in after and before[0] not in after
        acked_at_kill = sum(len(s.acked) for s in senders)
        wait_for(lambda: sum(len(s.acked) for s in senders) >= acked_at_kill + 1000, timeout=60)
        for s in senders:
            s.stop.set()
        for s in senders:
            s.join(60)
        assert srv.proc.poll() is None  # the collector itself never stopped
    finally:
        srv.stop()
    assert srv.proc.returncode == 0
    assert "exited with signal SIGKILL" in srv.log.read_text()
    _check_log(db, "acme", [i for s in senders for i in s.acked], tmp_path)


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    srv = Server(tmp_path / "a.db", tmp_path, "--workers", "2", "--no-auth").start()
    assert srv.proc is not None
    workers = wait_for(lambda: len(_workers_of(srv.proc.pid)) == 2  # type: ignore[union-attr]
                       and _workers_of(srv.proc.pid))  # type: ignore[union-attr]
    with srv.client() as c:
        assert c.post("/v1/events", json=[{"event_type": "agent.decision",
                                           "agent_name": "A"}]).json()["accepted"] == 1
    srv.stop()
    assert srv.proc.returncode == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(
        ).rsplit(")", 1)[1].split()[0]
    assert "2 worker processes" in srv.log.read_text()


def test_a_bad_rules_file_fails_once_before_listening(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules.nope]\nenabled = true\n")
    srv = Server(tmp_path / "a.db", tmp_path, "--workers", "2", "--no-auth", "--rules",
                 str(rules))
    r = subprocess.run([sys.executable, "-m", "agentaudit.cli", "serve", "--port",
                        str(srv.port), "--db", str(srv.db), *srv.args], env=srv.env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[-1].startswith("agentaudit: error: unknown rule(s) ['nope']")
    assert "Traceback" not in r.stderr and "worker" not in r.stderr.splitlines()[-1]


class _FailingSupervisor(_Supervisor):
    """Workers that exit with status 3 as soon as they start (a store that went away...)."""

    def start(self, index: int) -> None:
        proc = self.ctx.Process(target=os._exit, args=(3,))
        proc.start()
        self.procs[index] = proc
        self.started_at[index] = time.monotonic()


def test_workers_that_keep_failing_as_they_start_stop_the_supervisor(
        capsys: pytest.CaptureFixture[str]) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sup = _FailingSupervisor(ServerSettings(workers=2), sock)
        assert sup.run() == 1
    # its Ctrl-C and SIGTERM handlers are gone with it (the test run stays interruptible)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    err = capsys.readouterr().err
    assert err.count("exited with status 3") == _MAX_FAILED_STARTS
    assert "workers keep failing as they start; stopping the collector" in err
    # Nothing is left running: each worker failed as it started (status 3) or is a replacement
    # still starting when the supervisor gave up, stopped with SIGTERM (seen on a loaded machine).
    assert all(p.exitcode in (3, -signal.SIGTERM) for p in sup.procs.values())
    assert "did not stop" not in err


def test_workers_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentaudit.exceptions import ConfigError

    assert ServerSettings(workers=4).workers == 4
    for bad in (0, -1, 65):
        with pytest.raises(ConfigError, match="workers must be between 1 and 64"):
            ServerSettings(workers=bad)
    monkeypatch.setenv("AGENTAUDIT_WORKERS", "3")
    assert ServerSettings.from_env().workers == 3
    assert ServerSettings.from_env(workers=2).workers == 2
