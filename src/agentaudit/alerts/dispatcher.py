"""Delivering alerts to sinks on a thread of their own: retries with exponential backoff, a
dead-letter record when a sink keeps failing, and a rate limit per sink.

De-duplication happens before (``record_alert``: one open alert per incident); the dispatcher
only sees new alerts. Over a sink's rate limit an alert is recorded as ``rate_limited`` and not
sent; the next alert that goes out says how many were held back (``suppressed_before``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentaudit.alerts.sinks import DeliveryFailed, Sink
from agentaudit.detect.rules import severity_rank

__all__ = ["AlertDispatcher", "Delivery"]

log = logging.getLogger("agentaudit.alerts")

# (alert id, sink name, status, attempts, last error, payload)
Recorder = Callable[[int, str, str, int, "str | None", str], None]


@dataclass
class Delivery:
    alert_id: int
    sink: Sink
    body: bytes
    attempts: int = 0
    last_error: str | None = None
    created: float = field(default_factory=time.monotonic)


class _Bucket:
    """A token bucket: ``rate`` per minute, bursts up to the same number."""

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.capacity = max(1.0, per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.at = clock()
        self.held_back = 0

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class AlertDispatcher:
    """Sends each new alert to every sink whose ``min_severity`` it reaches."""

    def __init__(self, sinks: list[Sink], record: Recorder | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_close: Callable[[], None] | None = None) -> None:
        self.sinks = sinks
        self._record = record
        self._on_close = on_close
        self._clock = clock
        self._buckets = {s.name: _Bucket(s.rate_per_minute, clock) for s in sinks}
        self._heap: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self.stats = {"delivered": 0, "retried": 0, "dead": 0, "rate_limited": 0}
        self._thread = threading.Thread(target=self._run, name="agentaudit-alerts", daemon=True)
        self._thread.start()

    def deliver(self, alert_id: int, alert: dict[str, Any]) -> None:
        """Queue ``alert`` (the JSON form of an alert) for every matching sink."""
        for sink in self.sinks:
            if severity_rank(alert["severity"]) < severity_rank(sink.min_severity):
                continue
            bucket = self._buckets[sink.name]
            if not bucket.take():
                bucket.held_back += 1
                self.stats["rate_limited"] += 1
                self._note(alert_id, sink.name, "rate_limited", 0, "rate limit reached",
                           sink.payload(alert))
                continue
            held, bucket.held_back = bucket.held_back, 0
            body = sink.payload({**alert, "suppressed_before": held} if held else alert)
            self._schedule(Delivery(alert_id, sink, body), 0.0)

    def _schedule(self, d: Delivery, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (self._clock() + delay, next(self._order), d))
            self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self, timeout: float = 10.0) -> None:
        """Try what is due within ``timeout``; what is left is recorded as dead letters."""
        deadline = self._clock() + timeout
        while self.pending and self._clock() < deadline:
            with self._cond:
                due = self._heap and self._heap[0][0] <= self._clock()
                self._cond.notify()
            if not due:
                break
            time.sleep(0.05)
        with self._cond:
            self._stopping = True
            left = [d for _, _, d in self._heap]
            self._heap.clear()
            self._cond.notify()
        self._thread.join(timeout)
        for d in left:
            self._dead(d, d.last_error or "collector shut down before delivery")
        if self._on_close is not None:
            with contextlib.suppress(Exception):
                self._on_close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - self._clock()
                        if wait <= 0:
                            break
                        self._cond.wait(min(wait, 1.0))
                    else:
                        self._cond.wait(1.0)
                if self._stopping:
                    return
                _, _, d = heapq.heappop(self._heap)
            self._attempt(d)

    def _attempt(self, d: Delivery) -> None:
        d.attempts += 1
        try:
            d.sink.send(d.body)
        except DeliveryFailed as e:
            d.last_error = str(e)
            if e.retry and d.attempts < d.sink.max_attempts:
                delay = min(d.sink.backoff_seconds * 2 ** (d.attempts - 1),
                            d.sink.max_backoff_seconds)
                self.stats["retried"] += 1
                self._schedule(d, delay)
            else:
                self._dead(d, str(e))
            return
        except Exception as e:  # a bug in a sink must not kill the thread
            d.last_error = repr(e)
            self._dead(d, repr(e))
            return
        self.stats["delivered"] += 1
        self._note(d.alert_id, d.sink.name, "delivered", d.attempts, d.last_error, d.body)

    def _dead(self, d: Delivery, error: str) -> None:
        self.stats["dead"] += 1
        log.warning("agentaudit: alert %s to %s dead-lettered after %d attempt(s): %s",
                    d.alert_id, d.sink.name, d.attempts, error)
        self._note(d.alert_id, d.sink.name, "dead", d.attempts, error, d.body)

    def _note(self, alert_id: int, sink: str, status: str, attempts: int, error: str | None,
              body: bytes) -> None:
        if self._record is None:
            return
        with contextlib.suppress(Exception):
            self._record(alert_id, sink, status, attempts, error, body.decode("utf-8"))
