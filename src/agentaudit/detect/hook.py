"""Live detection: the engine on a thread of its own, fed with each batch a writer stored.

A writer (the collector's group commit, or the SDK's writer with ``attach``) calls the hook
after its commit; the hook only appends the batch to a queue, so neither the agent nor the
writer waits for the rules. The detection thread evaluates, hands the firing events to
``emit`` (back into the same writer, so they land in the same verifiable log and live feed),
records one alert per incident in the store and passes new alerts to the dispatcher.

The queue is bounded (``max_pending_events``): beyond it batches are not inspected, and they are
counted (``stats["skipped_events"]``) and logged, never silently.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agentaudit.detect.engine import DetectionEngine
from agentaudit.detect.firing import DETECT_SOURCE, Firing
from agentaudit.detect.history import StoreHistory
from agentaudit.detect.rules import RuleSet, default_rules
from agentaudit.events import AuditEvent

if TYPE_CHECKING:
    from agentaudit.alerts.dispatcher import AlertDispatcher
    from agentaudit.sdk.logger import AuditLogger
    from agentaudit.store._alerts import AlertStorage
    from agentaudit.store.base import Store

__all__ = ["DetectionHook", "attach"]

log = logging.getLogger("agentaudit.detect")


class DetectionHook:
    """Call it with stored events (any thread); it detects on its own thread."""

    def __init__(self, emit: Callable[[list[AuditEvent]], None], rules: RuleSet | None = None,
                 open_store: Callable[[], Store] | None = None,
                 dispatcher: AlertDispatcher | None = None,
                 max_pending_events: int = 500_000) -> None:
        self.rules = rules or default_rules()
        self._emit = emit
        self._open_store = open_store
        self.dispatcher = dispatcher
        self.max_pending_events = max_pending_events
        self._queue: collections.deque[list[AuditEvent]] = collections.deque()
        self._cond = threading.Condition()
        self._pending = 0
        self._busy = False
        self._stopping = False
        self._store: Store | None = None
        self._warned_backend = False
        self.engine: DetectionEngine | None = None
        self.stats: dict[str, Any] = {"skipped_events": 0, "emitted": 0, "alerts": 0,
                                      "errors": 0, "last_error": None}
        self._thread = threading.Thread(target=self._run, name="agentaudit-detect", daemon=True)
        self._thread.start()

    def __call__(self, events: Sequence[AuditEvent]) -> None:
        batch = [ev for ev in events if ev.source != DETECT_SOURCE]
        if not batch:
            return
        with self._cond:
            if self._stopping:
                return
            if self._pending + len(batch) > self.max_pending_events:
                self.stats["skipped_events"] += len(batch)
                log.warning("agentaudit: detection is %d events behind; %d events not "
                            "inspected", self._pending, len(batch))
                return
            self._pending += len(batch)
            self._queue.append(batch)
            self._cond.notify()

    @property
    def pending_events(self) -> int:
        """Stored events handed over and not evaluated yet."""
        return self._pending

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every batch handed over so far is evaluated (and its firings emitted)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Evaluate what is queued (within ``timeout``), then stop."""
        ok = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._store is not None:
            self._store.close()
            self._store = None
        return ok

    # -- detection thread ----------------------------------------------------------------------

    def _take(self) -> list[AuditEvent] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            batch = self._queue.popleft()
            while self._queue and len(batch) < 20_000:
                batch.extend(self._queue.popleft())
            self._busy = True
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._detect(batch)
            except Exception as e:  # the thread lives on; the problem is visible
                self._failed(f"detection failed: {e!r}")
            finally:
                with self._cond:
                    self._pending -= len(batch)
                    self._busy = False
                    self._cond.notify_all()

    def _detect(self, batch: list[AuditEvent]) -> None:
        if self.engine is None:
            if self._open_store is not None:
                self._store = self._open_store()
            history = StoreHistory(self._store) if self._store is not None else None
            self.engine = DetectionEngine(self.rules, history)
        firings = self.engine.evaluate(batch)
        if firings:
            self._emit([f.to_event() for f in firings])
            self.stats["emitted"] += len(firings)
            for firing in firings:
                self._alert(firing)
        fresh = {id(f) for f in firings}
        self._count_repeats([r for r in self.engine.repeats if id(r[0]) not in fresh])

    def _alerts(self) -> AlertStorage | None:
        """Where alerts are recorded: the store, when its backend keeps alerts."""
        from agentaudit.store._alerts import NOT_SUPPORTED, alerts_of

        alerts = alerts_of(self._store)
        if alerts is None and self._store is not None and not self._warned_backend:
            self._warned_backend = True
            log.warning("agentaudit: %s", NOT_SUPPORTED)
        return alerts

    def _count_repeats(self, repeats: list[tuple[Firing, float]]) -> None:
        """Suppressed repeats of incidents alerted in earlier batches: counted on their alert."""
        alerts = self._alerts() if repeats else None
        if alerts is None:
            return

        counts: dict[int, tuple[Firing, int, float]] = {}
        for first, ts in repeats:
            _, n, last = counts.get(id(first), (first, 0, 0.0))
            counts[id(first)] = (first, n + 1, max(last, ts))
        for first, n, last in counts.values():
            try:
                alerts.count_repeats(first.tenant, first.dedup_key, n, last)
            except Exception as e:
                self._failed(f"cannot count repeats of {first.event_id}: {e}")

    def _alert(self, firing: Firing) -> None:
        alerts = self._alerts()
        if alerts is None:
            return
        try:
            alert, new = alerts.record_alert(firing)
        except Exception as e:
            self._failed(f"cannot record alert for {firing.event_id}: {e}")
            return
        if new:
            self.stats["alerts"] += 1
            if self.dispatcher is not None:
                self.dispatcher.deliver(alert.id, {**firing.to_dict(), "alert_id": alert.id})

    def _failed(self, message: str) -> None:
        self.stats["errors"] += 1
        if message != self.stats["last_error"]:
            log.error("agentaudit: %s", message)
        self.stats["last_error"] = message


def attach(logger: AuditLogger, rules: RuleSet | None = None,
           dispatcher: AlertDispatcher | None = None) -> DetectionHook:
    """Detect on what an ``AuditLogger`` stores (its writer calls the hook after each batch);
    firings are written through the same logger. Close the hook before the logger."""
    from agentaudit.store import open_store

    writer = logger._writer
    url = logger.store_url

    def emit(events: list[AuditEvent]) -> None:
        for ev in events:
            writer.submit(ev)

    def open_history() -> Store:
        return open_store(url, create=False)

    opener = open_history if url and not url.startswith(("http://", "https://", "<")) else None
    hook = DetectionHook(emit, rules, opener, dispatcher)
    writer.on_stored = hook
    return hook


def for_collector(writer: Any, db: str, rules_file: str = "") -> DetectionHook:
    """The hook of ``agentaudit serve``: firings go back through the group-commit ``writer``
    (the hook waits for their commit before alerting); alerts go to the sinks of the rules
    file's ``[alerts]`` table and are recorded in ``db``."""
    import time

    from agentaudit.alerts.dispatcher import AlertDispatcher
    from agentaudit.alerts.sinks import sinks_from_config
    from agentaudit.detect.rules import load_rules
    from agentaudit.store import open_store

    rules = load_rules(rules_file or None)
    sinks = sinks_from_config(rules.alerts.get("sinks", []))
    recorder_store: list[Store] = []

    def record(alert_id: int, sink: str, status: str, attempts: int, error: str | None,
               payload: str) -> None:
        from agentaudit.store._alerts import alerts_of

        if not recorder_store:  # the dispatcher thread's own connection
            recorder_store.append(open_store(db, create=False))
        alerts = alerts_of(recorder_store[0])
        if alerts is not None:
            alerts.record_delivery(alert_id, sink, status, attempts, error, payload)

    def close_recorder() -> None:
        while recorder_store:
            recorder_store.pop().close()

    dispatcher = AlertDispatcher(sinks, record, on_close=close_recorder) if sinks else None

    def emit(events: list[AuditEvent]) -> None:
        done = threading.Event()
        failure: list[BaseException | None] = [None]

        def committed(result: Any, error: BaseException | None) -> None:
            failure[0] = error
            done.set()

        deadline = time.monotonic() + 60.0
        while True:
            try:
                writer.submit(events, committed)
                break
            except Exception as e:  # saturated: the writer is busy; firings are worth a wait
                if time.monotonic() > deadline or type(e).__name__ == "WriterClosed":
                    raise
                time.sleep(0.05)
        if not done.wait(60.0) or failure[0] is not None:
            raise RuntimeError(f"firing events not committed: {failure[0]!r}")

    hook = DetectionHook(emit, rules, lambda: open_store(db, create=False), dispatcher)
    return hook
