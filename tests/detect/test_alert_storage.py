"""Alerts as store methods (``AlertStorage``) on both backends: one alert per incident, repeats
counted, a replayed firing not alerted twice, acknowledgement within the tenant, deliveries; and
the detection history reads answer the same on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from agentaudit.detect import Firing
from agentaudit.store import open_store
from agentaudit.store._alerts import AlertStorage, alerts_of

from .helpers import T0, ev


def _firing(n: int = 0, tenant: str = "default", key: str = "inj:Research",
            ts: float = T0, **fields: Any) -> Firing:
    return Firing(rule="prompt_injection", severity="high", kind="security",
                  title=f"injection {n}", explanation="tool output asked to ignore the rules",
                  evidence=[f"ev-{n}", f"ev-{n}b"], tenant=tenant, agent="Research",
                  timestamp=ts, dedup_key=key, trace_id="t-1", **fields)


def _alerts(url: str) -> AlertStorage:
    store = alerts_of(open_store(url))
    assert store is not None
    return store


def test_one_alert_per_incident_repeats_counted_replay_not_new(backend: str) -> None:
    store = _alerts(backend)
    try:
        first = _firing(0)
        alert, new = store.record_alert(first)
        assert new and alert.occurrences == 1 and alert.evidence == ["ev-0", "ev-0b"]
        again, new2 = store.record_alert(_firing(1, ts=T0 + 5))
        assert not new2 and again.id == alert.id and again.occurrences == 2
        assert again.last_seen == T0 + 5 and again.first_seen == T0
        replay, new3 = store.record_alert(first)  # the same firing event, again: not new
        assert not new3 and replay.id == alert.id
        store.count_repeats("default", "inj:Research", 3, T0 + 2)  # older: last_seen stays
        other, new4 = store.record_alert(_firing(2, tenant="globex"))
        assert new4 and other.id != alert.id
        [listed] = store.list_alerts("default", "open")
        assert listed.occurrences == 6 and listed.last_seen == T0 + 5
        assert store.list_alerts("default", since=T0 + 6) == []
        assert store.get_alert(alert.id, "globex") is None
        assert store.ack_alert(alert.id, "globex", "mallory") == (None, False)
        acked, done = store.ack_alert(alert.id, "default", "dana", "seen", now=T0 + 9)
        assert done and acked is not None and acked.status == "acked"
        assert (acked.acked_by, acked.acked_at, acked.ack_note) == ("dana", T0 + 9, "seen")
        assert store.ack_alert(alert.id, "default", "erin")[1] is False
        assert store.list_alerts("default", "open") == []
        assert [a.id for a in store.list_alerts("default", "acked")] == [alert.id]
        reopened, new5 = store.record_alert(_firing(3, ts=T0 + 20))  # acked: a new incident
        assert new5 and reopened.id not in (alert.id, other.id)
        store.record_delivery(alert.id, "soc", "dead", 3, "HTTP 500", '{"rule": "x"}')
        store.record_delivery(other.id, "soc", "delivered", 1, None, "{}")
        [dead] = store.list_deliveries(status="dead")
        assert (dead["alert_id"], dead["sink"], dead["attempts"], dead["last_error"]) == (
            alert.id, "soc", 3, "HTTP 500")
        assert [d["status"] for d in store.list_deliveries(alert_id=other.id)] == ["delivered"]
    finally:
        store.close()  # type: ignore[attr-defined]


def _history_events() -> list[Any]:
    out = []
    for i in range(40):
        ts = T0 + i * 700.0
        out.append(ev("tool_call", agent="W", ts=ts, action=("search", "lookup")[i % 2]))
        out.append(ev("llm_response", agent="W", ts=ts + 1, prompt_tokens=100 + i,
                      completion_tokens=5, cost_usd=0.01))
        if i % 7 == 0:
            out.append(ev("error", agent="W", ts=ts + 2, action="search", error="boom"))
    out += [ev("human_intervention", agent="Ops", ts=T0 + 100, action="override",
               params={"action": "STOP", "target_agent": "W"}),
            ev("human_intervention", agent="Ops", ts=T0 + 5000, action="override",
               params={"command": "resume", "target_agent": "W"}),
            ev("human_intervention", agent="W", ts=T0 + 9000, action="override",
               params={"action": "halt"}),
            ev("security", agent="W", ts=T0 + 50, source="agentaudit.detect", action="x")]
    return out


def _answers(url: str, events: list[Any]) -> dict[str, Any]:
    store = _alerts(url)
    try:
        store.append_batch(events)  # type: ignore[attr-defined]
        end = T0 + 40 * 700.0
        return {
            "history": store.agent_history("default", "W", T0 - 3600, end, 600),
            "spend": store.day_spend("default", "W", T0, end),
            "stop_1": store.last_stop("default", "W", T0 + 200, ["stop", "halt"], ["resume"]),
            "stop_2": store.last_stop("default", "W", T0 + 6000, ["stop", "halt"], ["resume"]),
            "stop_3": store.last_stop("default", "W", T0 + 9500, ["stop", "halt"], ["resume"]),
            "other": store.last_stop("default", "Ops", T0 + 9500, ["stop", "halt"], ["resume"]),
        }
    finally:
        store.close()  # type: ignore[attr-defined]


def test_history_reads_are_equal_on_both_backends(tmp_path: Path, pg_url: str) -> None:
    events = _history_events()
    sqlite, pg = _answers(str(tmp_path / "h.db"), events), _answers(pg_url, events)
    assert sqlite == pg
    h = sqlite["history"]
    assert sum(h["tool_calls"].values()) == 40 and h["calls"] == 40
    assert sum(h["errors"].values()) == 6 and sorted(h["tools"]) == ["lookup", "search"]
    assert sum(h["hours"]) == 46 and h["first_seen"] == T0  # the detection's own event left out
    assert sqlite["spend"][1] == sum(105 + i for i in range(40))
    assert sqlite["stop_1"] is not None and sqlite["stop_1"][0] == T0 + 100
    assert sqlite["stop_2"] is None  # resumed
    assert sqlite["stop_3"] is not None and sqlite["stop_3"][0] == T0 + 9000
    assert sqlite["other"] is None


def test_collectors_racing_on_one_incident_make_one_alert(pg_url: str) -> None:
    """Two writers (two collectors) record firings of one incident at once: one alert, every
    occurrence counted (the per-incident advisory lock)."""
    open_store(pg_url).close()
    results: list[bool] = []
    errors: list[BaseException] = []

    def record(worker: int) -> None:
        store = _alerts(pg_url)
        try:
            for i in range(15):
                results.append(store.record_alert(_firing(worker * 100 + i))[1])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            store.close()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=record, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and results.count(True) == 1 and len(results) == 45
    store = _alerts(pg_url)
    try:
        [alert] = store.list_alerts("default")
        assert alert.occurrences == 45
    finally:
        store.close()  # type: ignore[attr-defined]


def test_a_store_without_alerts_leaves_the_rules_cold() -> None:
    from agentaudit.detect.history import StoreHistory

    class Bare:
        backend = "elsewhere"

    assert alerts_of(Bare()) is None
    history = StoreHistory(Bare())  # type: ignore[arg-type]
    assert history.agent_history("default", "A", 0, 1, 60) == {}
    assert history.last_stop("default", "A", 1, ["stop"], []) is None
