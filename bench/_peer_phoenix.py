"""The peer figure of bench/collector.py: the same OTLP spans sent to Arize Phoenix.

Phoenix is installed into its own venv (bench/out/phoenix-venv) with pip, within a time limit;
when that fails (no network, no wheel for this Python) the peer is skipped with a note. Stored
spans are counted in Phoenix's own SQLite database, so the figure is end to end (Phoenix
acknowledges a request before its spans are written).
"""

from __future__ import annotations

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

VENV = C.OUT / "phoenix-venv"
INSTALL_SECONDS = 300


def _install(quiet: bool) -> str | None:
    """Install arize-phoenix into VENV if needed; None when ready, else why not."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import phoenix.server.main"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return None
    C.note(quiet, f"installing arize-phoenix into {VENV} (at most {INSTALL_SECONDS} s)…")
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                           capture_output=True, timeout=120)
        r = subprocess.run([str(python), "-m", "pip", "install", "-q", "arize-phoenix"],
                           capture_output=True, text=True, timeout=INSTALL_SECONDS)
    except subprocess.TimeoutExpired:
        return f"pip install arize-phoenix did not finish within {INSTALL_SECONDS} s"
    except (OSError, subprocess.CalledProcessError) as e:
        return f"cannot create {VENV}: {e}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"pip install arize-phoenix failed: {last}"
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return "arize-phoenix installed but phoenix.server.main does not import"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stored(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(con.execute("SELECT count(*) FROM spans").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _send(url: str, requests: list[bytes]) -> dict[int, int]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(mine: list[bytes]) -> None:
        with httpx.Client(timeout=120) as c:
            for body in mine:
                try:
                    code = c.post(url, content=body,
                                  headers={"Content-Type": "application/x-protobuf"}).status_code
                except httpx.HTTPError:
                    code = 0
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=client, args=(requests[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def _serve(work: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(work), "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(_free_port()), "PHOENIX_TELEMETRY_ENABLED": "false"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([str(VENV / "bin" / "python"), "-m", "phoenix.server.main", "serve"],
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=open(work / "phoenix.log", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError((work / "phoenix.log").read_text(errors="replace")[-1500:])


def run_phoenix(requests: list[bytes], n_spans: int, quiet: bool = False) -> dict[str, Any]:
    """Send ``requests`` (``n_spans`` spans) to a fresh Phoenix; spans/s stored end to end."""
    why = _install(quiet)
    if why:
        return {"skipped": why}
    version = subprocess.run([str(VENV / "bin" / "python"), "-c",
                              "import phoenix; print(phoenix.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="phoenix-", dir=C.OUT))
    port = _free_port()
    try:
        try:
            proc = _serve(work, port)
        except RuntimeError as e:
            return {"skipped": f"Phoenix {version} did not start: {str(e)[-300:]}"}
        try:
            C.note(quiet, f"sending {n_spans} spans to Phoenix {version}…")
            t0 = time.perf_counter()
            statuses = _send(f"http://127.0.0.1:{port}/v1/traces", requests)
            db, last, last_at = work / "phoenix.db", -1, time.perf_counter()
            while time.perf_counter() - last_at < 15 and last < n_spans:
                stored = _stored(db)
                if stored != last:
                    last, last_at = stored, time.perf_counter()
                time.sleep(0.5)
            seconds = last_at - t0
        finally:
            proc.terminate()
            proc.wait(30)
        return {"version": version, "sent": n_spans, "stored": last,
                "refused": sum(v for k, v in statuses.items() if k != 200),
                "statuses": statuses, "seconds": seconds,
                "spans_s": last / seconds if seconds > 0 else 0.0}
    finally:
        shutil.rmtree(work, ignore_errors=True)
