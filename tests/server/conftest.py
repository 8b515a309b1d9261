"""A real collector process on a free loopback port, and helpers to look at its database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (the condition a test waits on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUDIT_")}
    env.update({"PYTHONPATH": str(SRC), "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_STATE_HOME": str(home / "state"),
                "AGENTAUDIT_SPOOL_DIR": str(home / "spool")})
    env.update(extra)
    return env


class Server:
    """``python -m agentaudit.cli serve`` as a subprocess."""

    def __init__(self, db: Path, home: Path, *args: str, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.db = db
        self.home = home
        self.args = args
        self.env = server_env(home, **(env or {}))
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agentaudit.cli", "serve", "--port", str(self.port),
                 "--db", str(self.db), *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._healthy, timeout)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited ({self.proc.returncode}): "
                                 f"{self.log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no drain."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)


def make_key(db: Path, tenant: str, scope: str, name: str | None = None) -> str:
    """A key created as ``agentaudit keys create`` does (audited), straight in the store."""
    from agentaudit.server.keys import create_key_audited
    from agentaudit.store.sqlite import SQLiteStore

    with SQLiteStore(db) as store:
        return create_key_audited(store, tenant, scope, name, actor="test")[1]


def snapshot(db: Path) -> tuple[Any, ...]:
    """Everything a request could change: events (ids, seq, tenant) and API keys."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = con.execute("SELECT count(*), coalesce(max(id), 0), "
                             "coalesce(sum(seq), 0) FROM events").fetchone()
        keys = con.execute("SELECT id, revoked_at FROM api_keys ORDER BY id").fetchall()
        return events, tuple(keys)
    finally:
        con.close()


def stored_ids(db: Path, tenant: str | None = None) -> list[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        if tenant is None:
            rows = con.execute("SELECT event_id FROM events").fetchall()
        else:
            rows = con.execute("SELECT event_id FROM events WHERE tenant = ?", (tenant,))
        return [r[0] for r in rows]
    finally:
        con.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("collector")


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    """Keys of tenants acme and globex, created before the server starts."""
    db = home / "audit.db"
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(home / "config"))
        for tenant in ("acme", "globex"):
            for scope in ("ingest", "read", "admin"):
                out[f"{tenant}-{scope}"] = make_key(db, tenant, scope, f"{tenant} {scope}")
    return out


@pytest.fixture(scope="module")
def server(home: Path, keys: dict[str, str]) -> Iterator[Server]:
    """One collector (authentication on) shared by a test module."""
    srv = Server(home / "audit.db", home).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def events_factory() -> Any:
    """``make(n, **fields)``: n valid event dicts with fresh ids."""
    from agentaudit.events import new_event_id

    def make(n: int, **fields: Any) -> list[dict[str, Any]]:
        base = {"event_type": "agent.tool_call", "agent_name": "Worker", "action": "lookup"}
        return [{**base, "event_id": new_event_id(), "timestamp": time.time(),
                 "params": {"i": i}, **fields} for i in range(n)]

    return make


@contextlib.contextmanager
def running(srv: Server) -> Iterator[Server]:
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
