"""SIGKILL the collector during a sustained ingest from several clients: every acknowledged
event is stored after restart (once), the log verifies, and an SDK logger pointed at the
collector delivers what it could not send from its spool once the collector is back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from agentaudit import AuditLogger
from agentaudit.events import new_event_id

from .conftest import Server, make_key, stored_ids, wait_for

CLIENTS = 4
BATCH = 200


class _Client(threading.Thread):
    """Sends batches of fresh events until the collector goes away; keeps the acknowledged ids."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.acked: list[str] = []
        self.sent = 0
        self.failure: str | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30,
                          headers={"Authorization": f"Bearer {self.key}"}) as c:
            while True:
                batch = [{"event_type": "agent.tool_call", "agent_name": self.name,
                          "event_id": new_event_id(), "action": "step", "params": {"n": self.sent}}
                         for _ in range(BATCH)]
                self.sent += BATCH
                try:
                    r = c.post("/v1/events", json=batch)
                except httpx.HTTPError as e:
                    self.failure = type(e).__name__
                    return
                if r.status_code != 200 or r.json()["accepted"] != BATCH:
                    self.failure = f"{r.status_code} {r.text[:200]}"
                    return
                self.acked += [e["event_id"] for e in batch]


@pytest.mark.slow
def test_sigkill_during_sustained_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the server's signing key
    db = tmp_path / "audit.db"
    key = make_key(db, "acme", "ingest")
    srv = Server(db, tmp_path).start()
    audit = AuditLogger(srv.url, api_key=key, flush_interval=0.05, batch_size=100)
    audit._writer.retry_interval = audit._writer._backoff = 0.2
    audit._writer.max_retry_interval = 0.5
    sdk_ids: list[str] = []
    stop_sdk = threading.Event()

    def agent() -> None:
        i = 0
        while not stop_sdk.is_set():
            sdk_ids.append(audit.log_tool_call("SdkAgent", "step", {"i": i}))
            i += 1
            time.sleep(0.001)

    clients = [_Client(srv.url, key) for _ in range(CLIENTS)]
    sdk_thread = threading.Thread(target=agent, daemon=True)
    try:
        for c in clients:
            c.start()
        sdk_thread.start()
        wait_for(lambda: sum(len(c.acked) for c in clients) >= 20 * BATCH, timeout=60)
        srv.kill()  # mid-stream: requests in flight, commits in progress
        for c in clients:
            c.join(60)
        # the agent keeps logging while the collector is down, until its batches go to the spool
        wait_for(lambda: audit.stats().spilled > 0, timeout=60)
        stop_sdk.set()
        sdk_thread.join(10)
        assert all(c.failure for c in clients), "every client should have seen the crash"

        srv.start()  # same port, same database
        acked = [i for c in clients for i in c.acked]
        stored = stored_ids(db, "acme")
        assert len(stored) == len(set(stored)), "an event was stored twice"
        assert set(acked) <= set(stored), "an acknowledged event was lost"

        _sdk_delivered_everything(audit, sdk_ids, db)
        srv.stop()
        _log_verifies(db, "acme")
    finally:
        stop_sdk.set()
        audit.close(5)
        srv.stop()


def _sdk_delivered_everything(audit: AuditLogger, ids: list[str], db: Path) -> None:
    wait_for(lambda: audit.stats().spool_pending == 0 and audit.flush(5), timeout=90)
    s = audit.stats()
    assert s.failed == 0 and s.dropped == 0
    assert s.spilled > 0, "the SDK should have spooled while the collector was down"
    stored = stored_ids(db, "acme")
    assert set(ids) <= set(stored), "the SDK lost events"
    assert len(stored) == len(set(stored))
    audit.close()


def _log_verifies(db: Path, tenant: str) -> None:
    from agentaudit.integrity.verify import verify_log
    from agentaudit.store.sqlite import SQLiteStore

    with SQLiteStore(db) as store:
        report = verify_log(store, tenant)
    assert report.ok, report.damage
    assert report.size == len(stored_ids(db, tenant))
