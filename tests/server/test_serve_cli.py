"""``agentaudit serve`` and ``agentaudit keys``: flags, refusals, and keys stored hashed."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agentaudit.exceptions import ConfigError
from agentaudit.server.settings import ServerSettings, is_loopback

from .conftest import Server, server_env


def _cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentaudit.cli", *args], env=server_env(home),
                          capture_output=True, text=True, timeout=timeout)


def test_no_auth_is_refused_on_a_public_address(tmp_path: Path) -> None:
    r = _cli(tmp_path, "serve", "--host", "0.0.0.0", "--no-auth", "--db", str(tmp_path / "a.db"))
    assert r.returncode == 2
    assert r.stderr.startswith("agentaudit: error: refusing to disable authentication")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.db").exists()


def test_unusable_db_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    r = _cli(tmp_path, "serve", "--db", str(tmp_path / "dir.db"), "--port", "0")
    assert r.returncode == 1 and r.stderr.startswith("agentaudit: error: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_no_auth_on_loopback_acts_as_default_with_every_scope(tmp_path: Path) -> None:
    srv = Server(tmp_path / "a.db", tmp_path, "--no-auth").start()
    try:
        with srv.client() as c:
            ev = {"event_type": "agent.tool_call", "agent_name": "Local", "trace_id": "t-local"}
            assert c.post("/v1/events", json=[ev]).json()["accepted"] == 1
            data = c.get("/v1/events").json()["data"]
            assert data[0]["tenant"] == "default" and data[0]["agent_name"] == "Local"
            assert c.get("/v1/traces/t-local").status_code == 200
            assert c.get("/metrics").status_code == 200
            assert c.post("/v1/keys", json={"scope": "read"}).status_code == 201
            assert c.get("/healthz").json()["auth"] is False
    finally:
        srv.stop()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    r = _cli(tmp_path, "keys", "create", "--tenant", "acme", "--scope", "ingest", "--name", "ci",
             "--db", db)
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("aa_") and len(secret) == 51 and "\n" not in secret
    listed = _cli(tmp_path, "keys", "list", "--db", db, "--format", "json")
    keys = json.loads(listed.stdout)
    assert [(k["id"], k["tenant"], k["scope"], k["name"], k["revoked_at"]) for k in keys] == [
        (secret[:15], "acme", "ingest", "ci", None)]
    table = _cli(tmp_path, "keys", "list", "--db", db)
    assert secret[:15] in table.stdout and secret not in table.stdout + listed.stdout

    con = sqlite3.connect(db)
    row = con.execute("SELECT id, key_hash FROM api_keys").fetchone()
    dump = "\n".join(con.iterdump())
    con.close()
    assert row == (secret[:15], hashlib.sha256(secret.encode()).digest())
    assert secret not in dump and secret[15:] not in dump

    assert _cli(tmp_path, "keys", "revoke", secret[:15], "--db", db).returncode == 0
    again = _cli(tmp_path, "keys", "revoke", secret[:15], "--db", db)
    assert again.returncode == 0 and "already revoked" in again.stderr
    keys = json.loads(_cli(tmp_path, "keys", "list", "--db", db, "--format", "json").stdout)
    assert keys[0]["revoked_at"] is not None

    log = json.loads(_cli(tmp_path, "log", "--db", db, "--tenant", "acme", "--format",
                          "json").stdout)
    assert [e["event_type"] for e in log] == ["audit.key_created", "audit.key_revoked"]
    assert all(e["params"]["key_id"] == secret[:15] for e in log)


@pytest.mark.parametrize(("args", "code", "words"), [
    (["keys", "create", "--tenant", "acme", "--scope", "root"], 2, "--scope"),
    (["keys", "create", "--tenant", "bad tenant!", "--scope", "read"], 2, "tenant"),
    (["keys", "revoke", "aa_000000000000"], 1, "no API key"),
    (["keys", "list", "--format", "xml"], 2, "--format"),
])
def test_keys_errors_are_one_line(tmp_path: Path, args: list[str], code: int, words: str) -> None:
    db = tmp_path / "k.db"
    _cli(tmp_path, "keys", "create", "--tenant", "acme", "--scope", "read", "--db", str(db))
    r = _cli(tmp_path, *args, "--db", str(db))
    assert r.returncode == code, r.stderr
    assert r.stderr.startswith("agentaudit: error: ") and words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_settings_from_env_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTAUDIT_PORT", "9999")
    monkeypatch.setenv("AGENTAUDIT_MAX_BATCH_EVENTS", "50")
    monkeypatch.setenv("AGENTAUDIT_NO_AUTH", "true")
    s = ServerSettings.from_env(port=1234)
    assert (s.port, s.max_batch_events, s.auth_disabled) == (1234, 50, True)
    monkeypatch.setenv("AGENTAUDIT_MAX_BATCH_EVENTS", "lots")
    with pytest.raises(ConfigError, match="AGENTAUDIT_MAX_BATCH_EVENTS"):
        ServerSettings.from_env()
    with pytest.raises(ConfigError, match="non-loopback"):
        ServerSettings(host="10.0.0.1", auth_disabled=True)
    with pytest.raises(ConfigError, match="max_body_bytes"):
        ServerSettings(max_body_bytes=0)
    assert ServerSettings(host="::1", auth_disabled=True).auth_disabled
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and not is_loopback("0.0.0.0")
