"""The approval facts of a PostgreSQL store (migration 0012, ``_pg_approval_facts``): the numbers
of the tool calls' params and the approvers' names are kept at ingest exactly as the rebuild takes
them from the payloads, erased with the payloads by every path, and the approval check answers
from them what it answers from every payload — for amounts and approvers of any shape, any
amount_param and min_amount, and events whose facts are not kept at all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentaudit.events import AuditEvent
from agentaudit.retention import erase
from agentaudit.store import _pg_rollup, open_store
from agentaudit.store._pg_approval_facts import numbers_of
from agentaudit.store.postgres import PostgresStore
from reports.store_builder import T0
from reports.test_rollups import rolled_and_plain

DAY = 86400.0
# amounts of every shape a param can have: the kept ones (numbers within 1e-300..1e300, or 0)
# and those the check reads from the payload instead
AMOUNTS: list[Any] = [200, 149.99, 150, 10**20, -5, 0, -0.0, 1e-301, 1e301, 2.5e-300, True,
                      False, None, "200", " 200", "1e3", "abc", "", {"value": 900}, [900]]
# approvers' names of every shape: the kept ones (strings) and those read from the payload
BY: list[Any] = ["alice", "bob", "Émile", "", 7, None, True, {"name": "carol"}, ["dan"],
                 "carol"]


@pytest.mark.parametrize(("params", "kept"), [
    ({"amount": 200, "limit": 2.5, "order": "o-1"}, [("amount", 200.0), ("limit", 2.5)]),
    ({"flag": True, "off": False, "text": "150", "none": None, "list": [1]}, []),
    ({"zero": 0, "minus_zero": -0.0, "tiny": 1e-301, "huge": 1e301, "big": 10**400}, [
        ("zero", 0.0), ("minus_zero", -0.0)]),
    ({1: 5, "n": 10**20, "nul\x00": 1, "\ud800": 2}, [("n", 1e20)]),
    (None, []),
    ({}, []),
])
def test_numbers_of_keeps_the_json_numbers_a_float8_holds(params: Any, kept: Any) -> None:
    assert numbers_of(params) == kept


def _calls(start: float, n: int, trace: str = "t") -> list[AuditEvent]:
    """Refunds (amounts of every shape, some without the param) and searches (a number of
    another name), with approvals by someone before some of them in their traces."""
    out: list[AuditEvent] = []
    for i in range(n):
        tr = f"{trace}-{i % 7}"
        ts = start + 60.0 * i
        if i % 4 == 1:
            by = {"by": BY[(i // 4) % len(BY)]} if i % 17 else {"reason": "no name"}
            out.append(AuditEvent(event_type="agent.human_intervention", agent_name="A",
                                  action="approval" if i % 3 else "escalation", trace_id=tr,
                                  timestamp=ts - 1.0, params=by))
        params: dict[str, Any] = {"order_id": f"o-{i}"}
        if i % 9:
            params["amount"] = AMOUNTS[i % len(AMOUNTS)]
        tool = "process_refund" if i % 5 else "search_kb"
        if tool == "search_kb":
            params = {"top_k": i % 13, "amount": AMOUNTS[(i * 7) % len(AMOUNTS)]}
        out.append(AuditEvent(event_type="agent.tool_call", agent_name="A", action=tool,
                              trace_id=tr, timestamp=ts, params=params))
    return out


def _kept(store: PostgresStore) -> list[Any]:
    """The rows of both approval facts tables."""
    conn = store.connection
    return [*conn.execute("SELECT tenant, day, seq, param, value FROM call_numbers "
                          "ORDER BY tenant, seq, param").fetchall(),
            *conn.execute("SELECT tenant, day, seq, approver FROM approvers "
                          "ORDER BY tenant, seq").fetchall()]


def _approval(store: PostgresStore, since: float, until: float, param: str = "amount",
              minimum: float = 150, tools: tuple[str, ...] = ("process_refund",)
              ) -> tuple[Any, Any]:
    params = {"tools": json.dumps(list(tools)), "kinds": json.dumps(["approval"]),
              "amount_param": param, "min_amount": minimum, "ev": 5}
    return rolled_and_plain(store, lambda: store.aggregate(
        "cmp_tool_approval", "default", since, until, None, 1000, **params))


def _all_equal(store: PostgresStore, since: float, until: float) -> int:
    """The check from the numbers equals the plain one for each param, minimum and tool list;
    the number of calls it counted."""
    counted = 0
    for param in ("amount", "top_k", "", "missing"):
        for minimum in (150, 0, -1, 1e300):
            for tools in (("process_refund",), ("process_refund", "search_kb")):
                rolled, plain = _approval(store, since, until, param, minimum, tools)
                assert rolled == plain, (param, minimum, tools)
                counted += sum(r["calls"] for r in rolled)
    return counted


def test_kept_numbers_equal_the_rebuilt_ones_and_the_check_the_plain_one(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        events = _calls(T0, 400)
        for i in range(0, len(events), 41):
            store.append_batch(events[i:i + 41])
        kept = _kept(store)
        params = {(r[3], r[4]) for r in kept if len(r) == 5}
        assert ("amount", 1e20) in params and ("amount", 149.99) in params
        assert not {v for p, v in params if p == "amount"} & {1e301, 1e-301, 1.0}  # 1.0: True
        assert {r[3] for r in kept if len(r) == 4} == {"alice", "bob", "Émile", "", "carol"}
        _pg_rollup.rebuild(store.connection, "default")  # from the payloads, in SQL
        assert _kept(store) == kept
        assert _all_equal(store, T0 - 1, T0 + DAY) > 500
        assert _all_equal(store, T0 + 1234.5, T0 + 9000.25) > 50
        rolled, _ = _approval(store, T0 - 1, T0 + DAY)
        named = {r["approver"] for r in rolled}
        assert {None, "alice", "", "7", "true", '{"name": "carol"}'} <= named, named
        # events whose facts are not kept (written by a collector without the tables) are
        # read from their payloads: the same answer
        store.connection.execute("DELETE FROM call_numbers WHERE seq % 3 = 0; "
                                 "DELETE FROM approvers WHERE seq % 2 = 0")
        assert len(_kept(store)) < len(kept)
        assert _all_equal(store, T0 - 1, T0 + DAY) > 500
    finally:
        store.close()


def test_every_erasure_path_erases_the_numbers(pg_url: str) -> None:
    """Row by row, a whole day at once (TRUNCATE) and a day dropped: the numbers follow the
    payloads, and the check still equals the plain one."""
    first, lonely = T0 // DAY * DAY, (T0 // DAY + 5) * DAY
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    conn = store.connection

    def live() -> set[tuple[int, int]]:
        return set(conn.execute(
            "SELECT p.day, p.seq FROM event_payloads p WHERE p.payload IS NOT NULL").fetchall())

    try:
        store.append_batch(_calls(first, 200) + _calls(first + DAY, 200, trace="u")
                           + _calls(lonely, 12, trace="alone"))
        whole = (first - 1, lonely + DAY)
        before = _kept(store)
        erase(store, "default", reason="subject request", trace="t-0")  # row by row
        after = _kept(store)
        assert len(after) < len(before) and {(r[1], r[2]) for r in after} <= live()
        assert _all_equal(store, *whole)
        day = int(lonely // DAY)
        for table in ("call_numbers", "approvers"):
            assert conn.execute(f"SELECT count(*) FROM {table}_d{day}").fetchone()[0] > 0
        for i in range(7):  # every trace of the lonely day: the whole day at once
            erase(store, "default", reason="subject request", trace=f"alone-{i}")
        assert conn.execute("SELECT 1 FROM payload_days_dropped WHERE day = %s",
                            (day,)).fetchone() is not None
        for table in ("call_numbers", "approvers"):
            assert conn.execute(f"SELECT count(*) FROM {table}_d{day}").fetchone()[0] == 0
        d = int(first // DAY)
        assert store.drop_payload_day(d, "retention")
        for table in ("call_numbers", "approvers"):
            assert conn.execute("SELECT to_regclass(%s)",
                                (f"{table}_d{d}",)).fetchone()[0] is None
        after = _kept(store)
        assert after and {(r[1], r[2]) for r in after} <= live()
        assert _all_equal(store, *whole)
    finally:
        store.close()
