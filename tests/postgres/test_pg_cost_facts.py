"""The cost facts of a PostgreSQL store (migration 0011, ``_pg_cost_facts``): the cost rankings
(top tasks, users and traces) answer exactly as the plain template for any period, price table
and arrival order, follow the users' payloads through every erasure path, and are rebuilt to
what ingest kept."""

from __future__ import annotations

import json
import random
from typing import Any

from agentaudit import reports as R
from agentaudit.events import AuditEvent
from agentaudit.retention import erase
from agentaudit.store.postgres import PostgresStore
from reports.store_builder import T0
from reports.test_rollups import rolled_and_plain

from .test_pg_rollups import _stored

DAY = 86400.0
START = T0 // DAY * DAY - 3 * 3600.0  # 21:00 UTC, so traces cross midnights
MODELS = ["gpt-4o", "gpt-4o-mini", "house-model", None]  # house-model: priced by no table
PRICES = [
    {"gpt-4o": [2500000, 10000000], "gpt-4o-mini": [150000, 600000]},
    {"gpt-4o": [1, 3], "house-model": [7, 0]},  # another table prices another model
    {},  # every event at its recorded cost
]


def _events(rng: random.Random, n: int, tenant: str = "default") -> list[AuditEvent]:
    """Metered and other events of traces lasting up to ~9 hours over three days; some
    without trace, task, model or user; costs recorded or not."""
    out = []
    for i in range(n):
        trace = rng.randrange(60)
        ts = START + trace * 3000.0 + rng.uniform(0, 9 * 3600.0)
        kind = rng.random()
        fields: dict[str, Any] = {
            "trace_id": None if trace == 0 else f"tr-{trace:03d}",
            "task_id": None if trace % 7 == 0 else f"task-{trace % 23}",
            "user_id": None if i % 9 == 0 else f"user-{rng.randrange(6)}",
        }
        if kind < 0.7:
            out.append(AuditEvent(
                event_type="agent.llm_response", agent_name=rng.choice(["A", "B"]),
                tenant=tenant, timestamp=ts, model=rng.choice(MODELS),
                prompt_tokens=rng.choice([None, rng.randrange(5000)]),
                completion_tokens=rng.randrange(900),
                cost_usd=rng.choice([None, rng.uniform(0, 3), 12.0]), **fields))
        elif kind < 0.8:
            out.append(AuditEvent(event_type="agent.token_usage", agent_name="A", tenant=tenant,
                                  timestamp=ts, token_count=rng.randrange(3000), **fields))
        else:
            out.append(AuditEvent(event_type="agent.tool_call", agent_name="B", tenant=tenant,
                                  timestamp=ts, action="lookup", params={"q": i}, **fields))
    return out


def _store(url: str, events: list[AuditEvent], batch: int = 97) -> PostgresStore:
    return _stored(url, events, batch)


def _top(store: PostgresStore, since: float, until: float, prices: dict[str, Any],
         tenant: str = "default", limit: int = 8) -> tuple[Any, Any]:
    return rolled_and_plain(store, lambda: store.aggregate(
        "rpt_cost_top", tenant, since, until, None, limit, prices=json.dumps(prices)))


PERIODS = [
    (START - 1, START + 4 * DAY),  # everything
    (START + 3600.5, START + 2 * DAY + 1234.25),  # ragged: cuts traces and user days
    (START + 3 * 3600.0, START + DAY + 3 * 3600.0),  # whole days of cells, traces cut
    (START + 5 * 3600.0 + 7, START + 5 * 3600.0 + 1800),  # inside one hour
    (START + 10 * DAY, START + 11 * DAY),  # empty
]


def test_rankings_from_the_facts_equal_the_plain_ones(pg_url: str) -> None:
    rng = random.Random(5)
    events = _events(rng, 2500) + _events(rng, 300, tenant="other")
    rng.shuffle(events)
    store = _store(pg_url, events)
    try:
        for since, until in PERIODS:
            for prices in PRICES:
                rolled, plain = _top(store, since, until, prices)
                assert rolled == plain, (since, until, prices)
        rolled, _ = _top(store, *PERIODS[1], PRICES[0])
        dims = {r["dim"] for r in rolled}
        assert dims == {"task", "user", "trace"} and len(rolled) == 8 + 7 + 8  # 6 users, none
        assert any(r["key"] is None for r in rolled if r["dim"] == "user")  # no user
        rolled, plain = _top(store, *PERIODS[0], PRICES[0], tenant="other", limit=100)
        assert rolled == plain and len([r for r in rolled if r["dim"] == "trace"]) > 30
        # the whole report, and one agent's (read from the events)
        period = R.Period(*PERIODS[1])
        for agent in (None, "A"):
            rolled, plain = rolled_and_plain(
                store, lambda a=agent: R.cost_report(store, "default", period, agent=a))
            assert rolled == plain and rolled["top_traces"]
    finally:
        store.close()


def test_rankings_read_the_facts(pg_url: str) -> None:
    """Change a kept group or user cell and the ranking changes with it."""
    store = _store(pg_url, _events(random.Random(8), 600))
    try:
        conn = store.connection
        since, until = PERIODS[0]
        rolled, plain = _top(store, since, until, {})
        assert rolled == plain
        conn.execute("UPDATE cost_groups SET rec = array_fill(10::numeric ^ 18, "
                     "ARRAY[cardinality(rec)]) WHERE dim = 'trace' AND key = 'tr-011'")
        # a user whose events all lie in the period is read from its totals
        conn.execute("UPDATE cost_user_totals SET rec = 10::numeric ^ 17 "
                     "WHERE user_id = 'user-4'")
        rolled, plain = _top(store, since, until, {})
        top = {r["dim"]: r["key"] for r in reversed(rolled)}
        assert top["trace"] == "tr-011" and top["user"] == "user-4"
        assert rolled != plain
        # one crossing an edge from its day cells inside the period
        since, until = PERIODS[1]
        inside = int(since // DAY) + 1
        assert inside * DAY > since and (inside + 1) * DAY < until
        conn.execute("UPDATE cost_users SET rec = 10::numeric ^ 17 WHERE user_id = 'user-3' "
                     "AND day = %s", (inside,))
        rolled, _ = _top(store, since, until, {})
        assert [r["key"] for r in rolled if r["dim"] == "user"][0] == "user-3"
    finally:
        store.close()


def _kept(store: PostgresStore) -> dict[str, Any]:
    conn = store.connection
    models = dict(conn.execute("SELECT slot, model FROM cost_models WHERE tenant = 'default'"))
    groups = {}
    for dim, key, f, last, calls, task, pt, ct, rec in conn.execute(
            "SELECT dim, key, first_ts, last_ts, calls, task_id, pt, ct, rec FROM cost_groups "
            "WHERE tenant = 'default'"):
        by_model = {models[i + 1]: (pt[i], ct[i], rec[i]) for i in range(len(pt))
                    if (pt[i], ct[i], rec[i]) != (0, 0, 0)}
        groups[(dim, key)] = (f, last, calls, task, by_model)
    users = {tuple(r[:3]): r[3:] for r in conn.execute(
        "SELECT day, user_id, model, first_ts, last_ts, calls, pt, ct, rec FROM cost_users "
        "WHERE tenant = 'default'")}
    totals = {tuple(r[:2]): r[2:] for r in conn.execute(
        "SELECT user_id, model, first_ts, last_ts, calls, pt, ct, rec FROM cost_user_totals "
        "WHERE tenant = 'default'")}
    return {"groups": groups, "users": users, "totals": totals}


def test_rebuild_recomputes_what_ingest_kept(pg_url: str) -> None:
    from agentaudit.store._pg_rollup import rebuild

    events = _events(random.Random(9), 900)
    random.Random(1).shuffle(events)  # models get their slots in arrival order
    store = _store(pg_url, events, batch=41)
    try:
        before = _kept(store)
        assert len(before["groups"]) > 60 and len(before["users"]) > 20
        store.connection.execute("DELETE FROM cost_groups WHERE key = 'tr-003'")
        store.connection.execute("UPDATE cost_users SET calls = calls + 5")
        store.connection.execute("DELETE FROM cost_user_totals WHERE user_id = 'user-1'")
        rebuild(store.connection, "default")
        assert _kept(store) == before
    finally:
        store.close()


def test_every_erasure_path_takes_the_user_out(pg_url: str) -> None:
    """Row by row, a whole day at once (TRUNCATE) and a day dropped: a user's cells follow
    the payloads (the cost goes to no user), and the rankings still equal the plain ones."""
    events = _events(random.Random(12), 1500)
    lonely = START + 6 * DAY + 3600  # a day of its own, erased whole below
    events += [AuditEvent(event_type="agent.llm_response", agent_name="A", model="gpt-4o",
                          trace_id=f"alone-{i}", user_id="user-lonely", prompt_tokens=10 * i,
                          completion_tokens=3, timestamp=lonely + i) for i in range(5)]
    store = _store(pg_url, events)
    conn = store.connection
    whole = (START - 1, START + 8 * DAY)

    def users() -> dict[Any, int]:
        # each user's totals are the sums of its remaining day cells
        totals = conn.execute("SELECT user_id, model, calls, pt, ct, rec FROM cost_user_totals "
                              "ORDER BY 1, 2").fetchall()
        cells = conn.execute("SELECT user_id, model, sum(calls), sum(pt), sum(ct), sum(rec) "
                             "FROM cost_users GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
        assert totals == cells and totals
        rolled, plain = _top(store, *whole, PRICES[0], limit=20)
        assert rolled == plain
        return {r["key"]: r["calls"] for r in rolled if r["dim"] == "user"}

    try:
        before = users()
        assert before["user-2"] > 0 and before["user-lonely"] == 5
        erase(store, "default", reason="subject request", user="user-2")  # row by row
        after = users()
        assert "user-2" not in after
        assert after[None] == before[None] + before["user-2"]
        assert not conn.execute("SELECT 1 FROM cost_users WHERE user_id = 'user-2'").fetchall()
        day = int(lonely // DAY)
        for i in range(5):  # every trace of the lonely day: the whole day at once
            erase(store, "default", reason="subject request", trace=f"alone-{i}")
        assert conn.execute("SELECT 1 FROM payload_days_dropped WHERE day = %s",
                            (day,)).fetchone() is not None
        assert conn.execute(f"SELECT count(*) FROM cost_users_d{day}").fetchone()[0] == 0
        assert "user-lonely" not in users()
        d = int(START // DAY) + 1
        assert conn.execute(f"SELECT count(*) FROM cost_users_d{d}").fetchone()[0] > 0
        assert store.drop_payload_day(d, "retention")
        assert conn.execute("SELECT to_regclass(%s)", (f"cost_users_d{d}",)).fetchone()[0] is None
        dropped = users()
        # every metered call still counts, the dropped day's under no user
        assert sum(dropped.values()) == sum(after.values()) and dropped[None] > after[None] + 5
    finally:
        store.close()


def test_near_ties_at_the_limit_rank_by_the_exact_cost(pg_url: str, monkeypatch: Any) -> None:
    """Groups are ranked by a float cost and only the first :limit + margin get their exact
    one: when the margin does not prove the ranking (equal costs around the limit) the groups
    are ranked by their exact cost; otherwise the floats' ranking stands."""
    from agentaudit.store import _pg_cost_rank

    calls: list[bool] = []
    groups = _pg_cost_rank._groups

    def spy(dim: str, column: str, slots: Any, exact: bool = False) -> str:
        calls.append(exact)
        return groups(dim, column, slots, exact)

    monkeypatch.setattr(_pg_cost_rank, "_groups", spy)
    monkeypatch.setattr(_pg_cost_rank, "_MARGIN", 2)
    same = [AuditEvent(event_type="agent.llm_response", agent_name="A", model="gpt-4o",
                       trace_id=f"tr-{i:02d}", task_id=f"task-{i:02d}", prompt_tokens=100,
                       completion_tokens=7, timestamp=START + 60.0 * i) for i in range(30)]
    store = _store(pg_url, same)
    try:
        rolled, plain = _top(store, START - 1, START + DAY, PRICES[0], limit=5)
        assert rolled == plain
        assert [r["key"] for r in rolled if r["dim"] == "trace"] == [
            f"tr-{i:02d}" for i in range(5)]
        assert calls.count(True) == 2  # traces and tasks, ranked again exactly
        calls.clear()
        store.append_batch([AuditEvent(  # distinct costs: the floats' ranking stands
            event_type="agent.llm_response", agent_name="A", model="gpt-4o",
            trace_id=f"tr-{i:02d}", task_id=f"task-{i:02d}", prompt_tokens=1000 * i,
            completion_tokens=1, timestamp=START + 60.0 * i + 1) for i in range(30)])
        rolled, plain = _top(store, START - 1, START + DAY, PRICES[0], limit=5)
        assert rolled == plain and True not in calls
        assert [r["key"] for r in rolled if r["dim"] == "trace"][0] == "tr-29"
    finally:
        store.close()
