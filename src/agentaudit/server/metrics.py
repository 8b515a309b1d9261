"""Prometheus metrics of the collector, rendered by hand in the text exposition format 0.0.4.

Counters are global (never labelled by tenant, so ``/metrics`` reveals no tenant's activity).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

__all__ = ["Histogram", "Metrics"]

# Seconds: from sub-millisecond commits of a few events to multi-second stalls.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)


class Histogram:
    """A cumulative histogram with fixed buckets (not thread-safe alone; ``Metrics`` locks)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str, help_text: str) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        running = 0
        for bound, n in zip(self.buckets, self.counts, strict=False):
            running += n
            lines.append(f'{name}_bucket{{le="{bound:g}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines


_COUNTERS: dict[str, str] = {
    "agentaudit_events_ingested_total": "Events newly stored by the collector.",
    "agentaudit_events_duplicate_total": "Events received again (same tenant and event_id), "
                                         "stored once.",
    "agentaudit_events_rejected_total": "Events or spans refused as invalid.",
    "agentaudit_requests_refused_total": "Ingest requests refused with 4xx/5xx, by reason.",
    "agentaudit_commits_total": "Group-commit transactions.",
    "agentaudit_otlp_spans_total": "OTLP spans received in accepted requests.",
}


class Metrics:
    """The collector's counters, gauges and histograms; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], float] = {}
        self.commit_seconds = Histogram()
        self.ack_seconds = Histogram()
        self.commit_events = Histogram((1, 10, 100, 1000, 2000, 5000, 10_000, 20_000, 50_000))
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def inc(self, name: str, value: float = 1, label: str = "") -> None:
        """Add to a counter; ``label`` is ``key="value"`` or empty."""
        if value:
            with self._lock:
                key = (name, label)
                self._counters[key] = self._counters.get(key, 0) + value

    def value(self, name: str, label: str = "") -> float:
        with self._lock:
            return self._counters.get((name, label), 0)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register a gauge read at scrape time."""
        self._gauges[name] = (help_text, read)

    def observe_commit(self, seconds: float, events: int) -> None:
        with self._lock:
            self.commit_seconds.observe(seconds)
            self.commit_events.observe(events)
            key = ("agentaudit_commits_total", "")
            self._counters[key] = self._counters.get(key, 0) + 1

    def observe_ack(self, seconds: float) -> None:
        with self._lock:
            self.ack_seconds.observe(seconds)

    def render(self) -> str:
        """The text exposition of every metric."""
        lines: list[str] = []
        with self._lock:
            for name, help_text in _COUNTERS.items():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
                labelled = sorted((lb, v) for (n, lb), v in self._counters.items() if n == name)
                if not labelled:
                    lines.append(f"{name} 0")
                for label, v in labelled:
                    lines.append(f"{name}{{{label}}} {v:g}" if label else f"{name} {v:g}")
            lines += self.commit_seconds.render(
                "agentaudit_commit_seconds", "Duration of one group-commit transaction.")
            lines += self.commit_events.render(
                "agentaudit_commit_events", "Events per group-commit transaction.")
            lines += self.ack_seconds.render(
                "agentaudit_ingest_ack_seconds",
                "From a request's events queued to their commit acknowledged.")
        for name, (help_text, read) in sorted(self._gauges.items()):
            try:
                value = float(read())
            except Exception:  # a gauge must not break the scrape
                continue
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
