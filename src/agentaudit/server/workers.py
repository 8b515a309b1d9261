"""``agentaudit serve --workers N``: N collector processes on one listening socket.

One collector process spends its time in Python (HTTP, parsing, validation, detection, the
sequencing of the log) under one GIL, so it keeps one core busy. With ``workers`` > 1 this
process binds the socket, starts N worker processes that each run the whole collector on it
(the kernel spreads connections over them) and supervises them:

- every worker has its own group-commit writer on the same store; the store serialises their
  transactions (SQLite's write lock, PostgreSQL's per-tenant advisory lock) and each
  transaction reads the log's state from the store, so the log stays one sequence per tenant;
- periodic retention runs in worker 0 only;
- a worker that dies unexpectedly is started again (what it had acknowledged is committed;
  what it had not, its clients retry); if workers keep failing right after they start, the
  supervisor stops them all and exits 1;
- SIGINT or SIGTERM stops every worker the graceful way (queued events are committed first) and
  the supervisor exits 0. Workers run in their own process group, so Ctrl-C reaches them once,
  through the supervisor; a worker whose supervisor disappears (``kill -9``) stops itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from agentaudit.server.settings import ServerSettings

__all__ = ["serve_workers"]

log = logging.getLogger("agentaudit.server")

# A worker that exits within this many seconds of its start counts as a failed start; this many
# failed starts in a row stop the collector (a store that cannot be opened, a bad rules file...).
_EARLY_EXIT_SECONDS = 5.0
_MAX_FAILED_STARTS = 3
_PARENT_POLL_SECONDS = 1.0


def _bind(settings: ServerSettings) -> socket.socket:
    """The listening socket all workers accept on (IPv6 when the host is an IPv6 address)."""
    host = settings.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, settings.port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker_main(settings: ServerSettings, sock: socket.socket, index: int,
                 parent: int) -> None:
    """One worker: the collector app under uvicorn on the shared socket."""
    os.setpgrp()  # the terminal's Ctrl-C goes to the supervisor, which stops us once
    import uvicorn

    from agentaudit.server.app import create_app

    logging.basicConfig(level=logging.WARNING,
                        format=f"%(asctime)s worker {index} %(name)s %(message)s")
    if index:
        settings = settings.replace(retention_interval=0.0)  # retention runs in worker 0
    try:
        app = create_app(settings)
    except Exception as e:  # the supervisor checked the settings; this is a changed file
        print(f"agentaudit: worker {index}: error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    app.state.worker = index  # /healthz says which worker answered
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=10, server_header=False)
    server = uvicorn.Server(config)

    def watch_parent() -> None:
        while not server.should_exit:
            if os.getppid() != parent:
                log.warning("agentaudit: worker %d lost its supervisor; stopping", index)
                server.should_exit = True
                return
            time.sleep(_PARENT_POLL_SECONDS)

    threading.Thread(target=watch_parent, name="agentaudit-parent-watch", daemon=True).start()
    # uvicorn re-raises the signal that stopped it once it is done; by then there is nothing
    # left to do, so the re-raised signal must not turn a clean stop into a killed process
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    sys.exit(0 if server.started else 3)


class _Supervisor:
    def __init__(self, settings: ServerSettings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self.ctx = multiprocessing.get_context("spawn")  # never fork a process with threads
        self.procs: dict[int, Any] = {}
        self.started_at: dict[int, float] = {}
        self.stopping = threading.Event()
        self.failed_starts = 0

    def start(self, index: int) -> None:
        proc = self.ctx.Process(target=_worker_main, name=f"agentaudit-worker-{index}",
                                args=(self.settings, self.sock, index, os.getpid()))
        proc.start()
        self.procs[index] = proc
        self.started_at[index] = time.monotonic()

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._supervise()
        finally:  # the caller's handlers again, once every worker has stopped
            for sig, handler in previous.items():
                if handler is not None:  # None: installed outside Python, nothing to put back
                    signal.signal(sig, handler)

    def _supervise(self) -> int:
        for i in range(self.settings.workers):
            self.start(i)
        code = 0
        while not self.stopping.wait(0.2):
            for index, proc in list(self.procs.items()):
                if proc.exitcode is None:
                    continue
                early = time.monotonic() - self.started_at[index] < _EARLY_EXIT_SECONDS
                self.failed_starts = self.failed_starts + 1 if early else 0
                print(f"agentaudit: worker {index} (pid {proc.pid}) exited with "
                      f"{_describe(proc.exitcode)}", file=sys.stderr, flush=True)
                if self.failed_starts >= _MAX_FAILED_STARTS:
                    print("agentaudit: workers keep failing as they start; stopping the "
                          "collector (see the messages above)", file=sys.stderr, flush=True)
                    code = 1
                    self.stopping.set()
                    break
                self.start(index)
        self._stop_all()
        return code

    def _stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.exitcode is None:
                proc.terminate()  # SIGTERM: uvicorn's graceful shutdown, the writer drains
        deadline = time.monotonic() + 60
        for proc in self.procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                print(f"agentaudit: worker pid {proc.pid} did not stop within 60 s; killing it",
                      file=sys.stderr, flush=True)
                proc.kill()
                proc.join()


def _describe(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"status {exitcode}"


def serve_workers(settings: ServerSettings) -> int:
    """Run ``settings.workers`` collector processes until SIGINT/SIGTERM; the exit code."""
    try:
        sock = _bind(settings)
    except OSError as e:
        print(f"agentaudit: cannot listen on {settings.host}:{settings.port}: {e.strerror or e}",
              file=sys.stderr, flush=True)
        return 1
    if settings.port == 0:
        print(f"agentaudit: listening on port {sock.getsockname()[1]}", file=sys.stderr,
              flush=True)
    try:
        return _Supervisor(settings, sock).run()
    finally:
        sock.close()
