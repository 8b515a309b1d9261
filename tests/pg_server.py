"""A real PostgreSQL server for the test session, started from the system's binaries
(``initdb``/``pg_ctl`` under /usr/lib/postgresql/*/bin) in a temporary directory on a free port,
and stopped when the session ends. Each test gets a fresh database of it.

Without the binaries the PostgreSQL tests skip with a loud reason, except on CI (``CI=true``)
where they fail: ``.ci/run`` installs the ``postgresql`` package.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PgServer", "pg_bin_dir", "postgres_server"]


def pg_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    bin_dir: Path
    data: Path
    port: int
    user: str | None  # the OS user the server runs as (None: ourselves)
    _names: itertools.count = itertools.count()  # type: ignore[type-arg]  # noqa: RUF009

    def url(self, db: str = "postgres", user: str = "postgres", password: str | None = None
            ) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def admin(self, sql: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def new_database(self, template: str = "template0") -> str:
        """A new database: empty, or a copy of ``template`` (which must have no connections)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return name

    @contextlib.contextmanager
    def copy_of(self, template: str) -> Iterator[str]:
        """The URL of a database of its own copied from ``template`` (a filled database built
        once per module: a copy costs tens of milliseconds); dropped after the block."""
        name = self.new_database(template=template)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _start(tmp: Path) -> PgServer:
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        reason = ("PostgreSQL binaries are missing (/usr/lib/postgresql/*/bin/initdb): "
                  "install Debian's postgresql package to run the PostgreSQL tests")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip("SKIPPING POSTGRESQL TESTS: " + reason)
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = "postgres"
        try:
            uid = pwd.getpwnam(user).pw_uid
        except KeyError:
            pytest.fail("running as root needs the 'postgres' OS user to start PostgreSQL")
        shutil.chown(tmp, user=uid)
        tmp.chmod(0o700)
    server = PgServer(bin_dir, tmp / "data", _free_port(), user)
    done = server.run("initdb", "-D", str(server.data), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8", "--locale=C")
    if done.returncode != 0:
        pytest.fail(f"initdb failed: {done.stderr[-2000:]}")
    opts = (f"-p {server.port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=60 -c shared_buffers=64MB")
    done = server.run("pg_ctl", "-D", str(server.data), "-o", opts, "-l", str(tmp / "server.log"),
                      "-w", "-t", "60", "start")
    if done.returncode != 0:
        log = (tmp / "server.log").read_text(errors="replace")[-2000:] if (
            tmp / "server.log").exists() else ""
        pytest.fail(f"pg_ctl start failed: {done.stderr[-1000:]} {log}")
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (superuser ``postgres``, trust auth on loopback)."""
    # not under pytest's tmp dir: that is private to root, and the server runs as 'postgres'
    tmp = Path(tempfile.mkdtemp(prefix="agentaudit-pg-"))
    try:
        server = _start(tmp)
        try:
            yield server
        finally:
            server.run("pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
