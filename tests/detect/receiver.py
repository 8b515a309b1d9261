"""A real webhook receiver: http.server on a loopback port, answering by a test's policy."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Received:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()

    def bodies(self, status: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for _, b, s in self.requests if status in (None, s)]


@contextmanager
def receiver(policy: Callable[[dict[str, Any], int], int]) -> Iterator[tuple[str, Received]]:
    """``policy(body, attempt_of_this_body) -> HTTP status``; yields (url, what arrived)."""
    got = Received()
    seen: dict[bytes, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with got.lock:
                seen[body] = seen.get(body, 0) + 1
                attempt = seen[body]
            status = policy(json.loads(body), attempt)
            with got.lock:
                got.requests.append((dict(self.headers), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()
