"""``agentaudit demo``: a realistic multi-agent workload, written through the public SDK.

Router triages user messages and hands off to Support, Billing, Research and Code, which call
tools with realistic latencies and faults (timeouts, rate limits, validation errors, retried
with backoff), make decisions with confidence, call models (tokens and cost from a price
table), ask humans for approvals and escalate. Users hold sessions of several traces; traffic
follows the working day. Every run contains the refund incident (task ``refund-incident``)
about two hours before the end of the period.

Time is simulated: the logger gets the demo's clock and id factory, so one seed and one ``now``
always give the same events, ids included.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from agentaudit._demo_incident import INCIDENT_TASK_ID, refund_incident
from agentaudit._demo_scenarios import ordinary_trace
from agentaudit._demo_sim import ArrivalCurve, SimClock, Simulation
from agentaudit.events import AuditEvent, validate_event
from agentaudit.exceptions import AuditError, ConfigError
from agentaudit.sdk.logger import AuditLogger
from agentaudit.store import open_store

__all__ = ["DemoResult", "run_demo"]

# An ordinary trace never writes more events than this (the incident is reserved before it).
_MAX_TRACE_EVENTS = 150
_MEAN_TRACE_EVENTS = 18.5  # measured; sizes the user population for ``events=N``
_CHANNELS = ("web", "web", "mobile", "email", "slack")


@dataclass(frozen=True)
class DemoResult:
    """What ``run_demo`` wrote."""

    traces: int
    events: int
    incident_trace_id: str
    incident_task_id: str
    seconds: float
    db: str


@dataclass
class _Session:
    session_id: str
    user_id: str
    channel: str
    turns_left: int
    last_end: float = 0.0


class _Sessions:
    """Users hold conversations: a session is a few traces, each starting a little after the
    previous one ended. Some users come back much more often than others."""

    def __init__(self, rng: random.Random, sim: SimClock, users: int) -> None:
        self.rng = rng
        self.sim = sim
        self.users = users
        self.current: _Session | None = None

    def start(self) -> _Session:
        rng = self.rng
        user = int(self.users * rng.random() ** 2)
        self.current = _Session(self.sim.sortable_id("sess-"), f"user-{user:05d}",
                                rng.choice(_CHANNELS), 1 + int(rng.expovariate(1 / 2.0)))
        return self.current

    def next_turn(self, latest: float) -> tuple[_Session, float] | None:
        """The current session's next trace and its start, or None when the session is over."""
        s = self.current
        if s is None or s.turns_left <= 0:
            return None
        at = s.last_end + 15 + self.rng.expovariate(1 / 90.0)  # the user reads, then types
        if at > latest:
            return None
        s.turns_left -= 1
        return s, at


def run_demo(store_url: str, *, traces: int = 1000, events: int | None = None,
             days: float = 7.0, seed: int = 42, tenant: str = "default",
             progress: Callable[[int, int], None] | None = None, now: float | None = None,
             integrity: bool = True) -> DemoResult:
    """Write the demo workload to ``store_url`` and return what was written.

    ``traces`` traces are spread over the ``days`` days before ``now`` (default: the current
    time rounded down to the hour). With ``events=N`` the run instead continues until at least
    N events are written (fewer than one extra trace), and ``progress`` counts events rather
    than traces. ``progress(done, total)`` is called about every 1%.
    """
    if traces < 1:
        raise ConfigError(f"traces must be at least 1, not {traces}")
    if events is not None and events < 1:
        raise ConfigError(f"events must be at least 1, not {events}")
    if not days > 0:
        raise ConfigError(f"days must be positive, not {days}")
    validate_event(AuditEvent(event_type="agent.invocation", agent_name="Router", tenant=tenant))
    open_store(store_url).close()  # a bad URL or unwritable path fails now, not after the run
    started = time.perf_counter()
    end = float(now) if now is not None else (time.time() // 3600) * 3600.0
    period = days * 86400.0
    start = end - period
    last_start = end - min(3600.0, period / 10)  # room for the last traces to finish
    incident_at = end - min(7200.0, period / 5)
    rng = random.Random(seed)
    sim = SimClock(seed, start)
    s = Simulation(sim, rng, start, end, incident_at)
    curve = ArrivalCurve(start, last_start)
    expected = traces if events is None else max(1, int(events / _MEAN_TRACE_EVENTS))
    sessions = _Sessions(rng, sim, max(8, expected // 6))

    audit = AuditLogger(store_url, tenant=tenant, overflow="block", block_timeout=3600.0,
                        batch_size=5000, max_queue=50_000, integrity=integrity,
                        clock=sim.now, id_factory=sim.new_id)
    done = 0
    incident_trace_id = ""
    total = traces if events is None else events
    step = max(1, total // 100)
    next_report = step
    try:
        while True:
            written = sim.made
            if events is None:
                if done >= traces:
                    break
                at = curve.at((done + rng.random()) / traces)
                incident_now = not incident_trace_id and (at >= incident_at or done == traces - 1)
            else:
                if written >= events:
                    break
                at = curve.at((written + rng.random() * _MEAN_TRACE_EVENTS) / events)
                incident_now = not incident_trace_id and (
                    at >= incident_at or written + _MAX_TRACE_EVENTS >= events)
            turn = None if incident_now else sessions.next_turn(last_start)
            if incident_now:
                sim.t = incident_at
                session = _Session(sim.sortable_id("sess-"), "user-00042", "web", 0)
                incident_trace_id = sim.new_trace_id()
                refund_incident(s, audit, at=incident_at, trace_id=incident_trace_id,
                                session_id=session.session_id, user_id=session.user_id)
            else:
                if turn is None:
                    sim.t = at
                    session = sessions.start()
                    session.turns_left -= 1
                else:
                    session, sim.t = turn
                ordinary_trace(s, audit, trace_id=sim.new_trace_id(),
                               task_id=sim.sortable_id("task-"),
                               session_id=session.session_id, user_id=session.user_id,
                               channel=session.channel)
                session.last_end = sim.t
            done += 1
            current = done if events is None else sim.made
            if progress is not None and current >= next_report and current < total:
                progress(current, total)
                next_report = (current // step + 1) * step
        audit.flush(timeout=None)
    finally:
        audit.close(timeout=600.0)
    _check(audit, sim.made)
    if progress is not None:
        progress(total, total)
    return DemoResult(traces=done, events=sim.made, incident_trace_id=incident_trace_id,
                      incident_task_id=INCIDENT_TASK_ID,
                      seconds=round(time.perf_counter() - started, 3), db=store_url)


def _check(audit: AuditLogger, made: int) -> None:
    """Every event built must be in the store: none dropped, failed or left in the spool."""
    st = audit.stats()
    if st.failed or st.dropped or st.pending or st.spool_pending \
            or st.written + st.duplicates != made:
        raise AuditError(
            f"demo store incomplete: {made} events built, {st.written} written, "
            f"{st.duplicates} duplicates, {st.failed} failed, {st.dropped} dropped, "
            f"{st.spool_pending} spooled (last error: {st.last_error})")
