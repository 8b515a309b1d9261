"""The compliance facts of a PostgreSQL store (migration 0008, ``_pg_compliance_facts``): the
tool calls' true tags follow their payloads through every erasure path, and the data-access check
answers the same from them as from every payload, tag names and values of any shape included."""

from __future__ import annotations

import json
from typing import Any

from agentaudit.events import AuditEvent
from agentaudit.retention import erase
from agentaudit.store import open_store
from agentaudit.store.postgres import PostgresStore
from reports.store_builder import T0
from reports.test_rollups import rolled_and_plain

from .test_pg_rollups import _stored

DAY = 86400.0
TAGS = ["data_access", "données", "pii"]
VALUES: list[Any] = [True, False, "yes", "YES", "no", 1, 0, "1", None, {"nested": True}]


def _calls(start: float, n: int, trace: str = "t") -> list[AuditEvent]:
    """Tool calls with assorted tags (some not an object at all) and params."""
    out = []
    for i in range(n):
        tags: Any = {TAGS[i % 3]: VALUES[i % len(VALUES)], "resource": "orders"}
        if i % 11 == 0:
            tags = {}
        params = {"purpose": "refund"} if i % 2 else {"amount": 3}
        out.append(AuditEvent(event_type="agent.tool_call", agent_name="A",
                              action=["lookup", "export"][i % 2], trace_id=f"{trace}-{i % 5}",
                              timestamp=start + 60.0 * i, params=params, tags=tags))
    return out


def _data_access(store: PostgresStore, tag: str, tools: list[str], since: float,
                 until: float) -> tuple[Any, Any]:
    params = {"tools": json.dumps(tools), "tag": tag,
              "tag_needle": json.dumps(tag, ensure_ascii=False) + ":",  # as compliance.py
              "required": json.dumps(["purpose", "resource"]), "ev": 5}
    return rolled_and_plain(store, lambda: store.aggregate(
        "cmp_data_access", "default", since, until, None, 1000, **params))


def _kept_and_live(store: PostgresStore) -> tuple[list[Any], list[Any]]:
    """(the rows of call_tags, the true tags of the stored payloads of tool calls)."""
    conn = store.connection
    kept = conn.execute("SELECT tenant, day, seq, tag FROM call_tags "
                        "ORDER BY tenant, seq, tag").fetchall()
    live = conn.execute(
        "SELECT e.tenant, e.day, e.seq, t.key FROM events e JOIN event_payloads p "
        "ON p.tenant = e.tenant AND p.day = e.day AND p.seq = e.seq "
        "CROSS JOIN LATERAL jsonb_each_text(convert_from(p.payload, 'UTF8')::jsonb -> 'tags') "
        "AS t(key, value) WHERE e.event_type = 'agent.tool_call' AND p.payload IS NOT NULL "
        "AND jsonb_typeof(convert_from(p.payload, 'UTF8')::jsonb -> 'tags') = 'object' "
        "AND lower(t.value) IN ('true', '1', 'yes') ORDER BY e.tenant, e.seq, t.key").fetchall()
    return kept, live


def test_data_access_from_the_tags_equals_the_plain_check(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        events = _calls(T0, 300)
        for i in range(0, len(events), 37):
            store.append_batch(events[i:i + 37])
        kept, live = _kept_and_live(store)
        assert kept == live and len(kept) > 50
        for tag in TAGS:
            for tools in ([], ["export"]):
                for since, until in ((T0 - 1, T0 + DAY), (T0 + 1234.5, T0 + 9000.25)):
                    rolled, plain = _data_access(store, tag, tools, since, until)
                    assert rolled == plain, (tag, tools)
        rolled, _ = _data_access(store, "data_access", [], T0 - 1, T0 + DAY)
        assert sum(r["calls"] for r in rolled) > 20 and any(r["missing"] for r in rolled)
        # a tag name JSON would escape (payloads keep UTF-8 as is) is found
        assert sum(r["calls"] for r in _data_access(store, "données", [], T0 - 1, T0 + DAY)[0])
    finally:
        store.close()


def test_every_erasure_path_erases_the_tags(pg_url: str) -> None:
    """Row by row, a whole day at once (TRUNCATE) and a day dropped: the tags follow the
    payloads, and the check still equals the plain one."""
    first, lonely = T0 // DAY * DAY, (T0 // DAY + 5) * DAY
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    conn = store.connection
    try:
        store.append_batch(_calls(first, 200) + _calls(first + DAY, 200, trace="u")
                           + _calls(lonely, 12, trace="alone"))
        before, live = _kept_and_live(store)
        assert before == live
        whole = (first - 1, lonely + DAY)
        erase(store, "default", reason="subject request", trace="t-0")  # row by row
        kept, live = _kept_and_live(store)
        assert kept == live and len(kept) < len(before)
        rolled, plain = _data_access(store, "data_access", [], *whole)
        assert rolled == plain
        day = int(lonely // DAY)
        assert conn.execute(f"SELECT count(*) FROM call_tags_d{day}").fetchone()[0] > 0
        for i in range(5):  # every trace of the lonely day: the whole day at once
            erase(store, "default", reason="subject request", trace=f"alone-{i}")
        assert conn.execute("SELECT 1 FROM payload_days_dropped WHERE day = %s",
                            (day,)).fetchone() is not None
        assert conn.execute(f"SELECT count(*) FROM call_tags_d{day}").fetchone()[0] == 0
        d = int(first // DAY)
        assert store.drop_payload_day(d, "retention")
        assert conn.execute("SELECT to_regclass(%s)", (f"call_tags_d{d}",)).fetchone()[0] is None
        kept, live = _kept_and_live(store)
        assert kept == live and kept
        rolled, plain = _data_access(store, "data_access", ["export"], *whole)
        assert rolled == plain and rolled
    finally:
        store.close()


def _sample(store: PostgresStore, stride: int, since: float, until: float) -> list[Any]:
    """The PII scan's batches of the period at ``stride``, walked as compliance.py walks them."""
    out: list[Any] = []
    after_ts, after_seq = -1.0, -1
    while True:
        batch = store.aggregate("cmp_payloads", "default", max(since, after_ts), until, None, 7,
                                after_ts=after_ts, after_seq=after_seq, stride=stride)
        out += [(r["event_id"], r["text"]) for r in batch]
        if len(batch) < 7:
            return out
        after_ts, after_seq = batch[-1]["timestamp"], batch[-1]["seq"]


def test_pii_sample_walks_the_sample_index_and_takes_every_stride_th_row(pg_url: str) -> None:
    """A stride that is a multiple of SAMPLE_STEP reads ix_events_sample (migration 0009); any
    stride samples the rows whose id it divides, with a payload, in time order."""
    from agentaudit.store import _pg_sql
    from agentaudit.store.base import SAMPLE_STEP

    events = _calls(T0, 700)
    store = _stored(pg_url, events, batch=61)
    try:
        conn = store.connection
        erase(store, "default", reason="test", trace="t-0")
        erased = {e.event_id for e in events if e.trace_id == "t-0"}
        since, until = T0 + 100.0, T0 + 60.0 * 650
        for stride in (1, 3, SAMPLE_STEP, 2 * SAMPLE_STEP):
            want = conn.execute(
                "SELECT e.event_id FROM events e JOIN event_payloads p ON p.tenant = e.tenant "
                "AND p.day = e.day AND p.seq = e.seq WHERE e.id %% %s = 0 "
                "AND p.payload IS NOT NULL AND e.timestamp >= %s AND e.timestamp < %s "
                "ORDER BY e.timestamp, e.seq", (stride, since, until)).fetchall()
            got = _sample(store, stride, since, until)
            assert [g[0] for g in got] == [w[0] for w in want], stride
            assert not erased & {g[0] for g in got}
            assert all('"user_id"' not in g[1] and '"params"' in g[1] for g in got)
        assert len(_sample(store, 2 * SAMPLE_STEP, since, until)) >= 3
        sql, params = _pg_sql.aggregation(
            "cmp_payloads", "default", since, until, None, 7,
            {"after_ts": -1.0, "after_seq": -1, "stride": 2 * SAMPLE_STEP})
        with conn.transaction():
            for k, v in _pg_sql.PLANNER_SETTINGS["cmp_payloads"].items():
                conn.execute("SELECT set_config(%s, %s, true)", (k, v))
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
        parts = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'ix_events_sample'::regclass")}
        assert parts and any(f" {name} " in plan for name in parts), plan
    finally:
        store.close()
