"""Fixtures: a scratch home per test and a real collector (``agentaudit serve``) on a free
loopback port."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.examples.runner import Collector, clean_env, free_port


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``agentaudit serve`` on a free loopback port (one for the session): URL and database."""
    from agentaudit.store.sqlite import SQLiteStore

    home = tmp_path_factory.mktemp("serve")
    db = home / "collector.db"
    SQLiteStore(db).close()
    port = free_port()
    log = home / "serve.log"
    env = clean_env(home)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "agentaudit.cli", "serve", "--port",
                                 str(port), "--db", str(db)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.05)
        yield url, db
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def collector(serve: tuple[str, Path], request: pytest.FixtureRequest) -> Collector:
    """The collector, with an ingest key of a tenant of this test's own."""
    from agentaudit.server.keys import create_key_audited
    from agentaudit.store.sqlite import SQLiteStore

    url, db = serve
    tenant = request.node.name.replace("test_", "").replace("_", "-")[:60]
    with SQLiteStore(db) as store:
        key = create_key_audited(store, tenant, "ingest", "examples", actor="test")[1]
    return Collector(url, db, key, tenant)
