"""The SDK over HTTP: a ``Sink`` that posts batches to a collector (``agentaudit serve``).

``AuditLogger(store="http://127.0.0.1:4318", api_key=…)`` uses it. Each batch is one gzip'd
``POST /v1/events``, retried with exponential backoff and full jitter on connection errors,
429/5xx (honouring ``Retry-After``); when the collector stays unreachable ``append_batch`` raises
and the SDK's writer spools the batch to disk and replays it later. Replay is idempotent because
ingest is (same ``event_id``, stored once). Standard library only (``http.client``).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import logging
import random
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec

from agentaudit.events import AuditEvent
from agentaudit.exceptions import ConfigError, StoreError
from agentaudit.store.base import AppendResult

__all__ = ["CollectorUnavailable", "HttpSink", "check_collector_url"]

log = logging.getLogger("agentaudit")
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class CollectorUnavailable(StoreError):
    """The collector did not take the batch (unreachable, busy, or refused the key)."""


def _fallback(obj: object) -> object:
    return repr(obj)


_encode = msgspec.json.Encoder(enc_hook=_fallback).encode
_decode = msgspec.json.decode


def check_collector_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, events path) of a collector URL; ``ConfigError`` when unusable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"collector URL {url!r} must look like http://host:4318")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise ConfigError(f"collector URL {url!r} has a bad port") from e
    path = parts.path.rstrip("/")
    if not path.endswith("/v1/events"):
        path += "/v1/events"
    return parts.scheme, parts.hostname, port, path


class HttpSink:
    """Posts event batches to a collector; raises ``CollectorUnavailable`` when it cannot."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 max_attempts: int = 4, backoff: float = 0.25, max_backoff: float = 4.0,
                 max_retry_after: float = 10.0, compress_level: int = 1,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self._scheme, self._host, self._port, self._path = check_collector_url(url)
        self._api_key = api_key
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.compress_level = compress_level
        self._sleep = sleep
        self._conn: http.client.HTTPConnection | None = None
        self.rejected = 0  # events the collector refused as invalid (logged, not retried)

    # -- Sink ----------------------------------------------------------------------------------

    def append_batch(self, events: Sequence[AuditEvent]) -> AppendResult:
        """Send ``events``; the collector's counts, or ``CollectorUnavailable``."""
        if not events:
            return AppendResult(0, 0)
        status, body = self._post_with_retries(self._body(events))
        if status == 413 and len(events) > 1:  # the collector's batch limit is lower: halve
            half = len(events) // 2
            first, second = self.append_batch(events[:half]), self.append_batch(events[half:])
            return AppendResult(first.accepted + second.accepted,
                                first.duplicates + second.duplicates)
        if status != 200:
            raise CollectorUnavailable(f"collector answered {status}: {_reason(body)}")
        return self._result(body)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # -- internals -----------------------------------------------------------------------------

    def _body(self, events: Sequence[AuditEvent]) -> bytes:
        return gzip.compress(_encode(list(events)), self.compress_level)

    def _result(self, body: bytes) -> AppendResult:
        try:
            data = _decode(body)
            accepted, duplicates = int(data["accepted"]), int(data["duplicates"])
            rejected = data.get("rejected") or []
        except Exception as e:
            raise CollectorUnavailable("the collector's answer is unreadable") from e
        if rejected:
            self.rejected += len(rejected)
            log.warning("agentaudit: the collector rejected %d event(s), first: %s",
                        len(rejected), rejected[0].get("error"))
        return AppendResult(accepted, duplicates)

    def _post_with_retries(self, body: bytes) -> tuple[int, bytes]:
        delay = self.backoff
        last: str = "no attempt"
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                status, headers, answer = self._post(body)
            except (OSError, http.client.HTTPException) as e:
                self.close()
                last = f"{type(e).__name__}: {e}"
            else:
                if status not in _RETRY_STATUS:
                    return status, answer
                last = f"HTTP {status}"
                wait = _retry_after(headers.get("retry-after"))
                if wait is not None and wait > self.max_retry_after:
                    break  # longer than we wait here: let the writer spool and back off
            if attempt == self.max_attempts:
                break
            self._sleep(wait if wait is not None else random.uniform(0, delay))
            delay = min(delay * 2, self.max_backoff)
        raise CollectorUnavailable(f"collector at {self.url} unavailable after "
                                   f"{self.max_attempts} attempt(s): {last}")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout,
                    context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port,
                                                        timeout=self.timeout)
        return self._conn

    def _post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "User-Agent": "agentaudit-sdk"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        conn = self._connection()
        conn.request("POST", self._path, body=body, headers=headers)
        resp = conn.getresponse()
        answer = resp.read()
        if resp.getheader("connection", "").lower() == "close":
            self.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, answer


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds form; dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _reason(body: bytes) -> Any:
    try:
        return _decode(body).get("error", "")
    except Exception:
        return body[:200].decode("utf-8", "replace")
