from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep spool files, signing keys and config of every test inside its own tmp dir."""
    monkeypatch.setenv("AGENTAUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("AGENTAUDIT_DB", raising=False)
    monkeypatch.delenv("AGENTAUDIT_SIGNING_KEY", raising=False)
    # CLI tables off a terminal are 160 columns wide unless COLUMNS says otherwise: a width
    # exported by the shell (or set by a test runner, as pytest-xdist sets 80) must not wrap them
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


# The session's PostgreSQL server (tests/pg_server.py) and a fresh database per test.
from pg_server import PgServer, postgres_server  # noqa: E402, F401


@pytest.fixture
def pg_url(postgres_server: PgServer) -> Iterator[str]:  # noqa: F811
    """A new, empty database on the session's PostgreSQL server (dropped afterwards)."""
    name = postgres_server.new_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL of each backend in turn: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "audit.db")
    return str(request.getfixturevalue("pg_url"))
