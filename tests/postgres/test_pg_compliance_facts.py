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
