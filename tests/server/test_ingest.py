"""Native ingest against a real collector: every body form, gzip, idempotence, tenancy."""

from __future__ import annotations

import gzip
import json
from typing import Any

from .conftest import Server, stored_ids


def _post(srv: Server, key: str, body: bytes, ctype: str | None = "application/json",
          **headers: str) -> Any:
    h = {"Authorization": f"Bearer {key}", **headers}
    if ctype:
        h["Content-Type"] = ctype
    with srv.client() as c:
        return c.post("/v1/events", content=body, headers=h)


def test_json_array_is_stored_and_counted(server: Server, keys: dict[str, str],
                                          events_factory: Any) -> None:
    events = events_factory(5)
    r = _post(server, keys["acme-ingest"], json.dumps(events).encode())
    assert r.status_code == 200
    assert r.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert {e["event_id"] for e in events} <= set(stored_ids(server.db, "acme"))


def test_envelope_ndjson_and_sniffed_ndjson(server: Server, keys: dict[str, str],
                                            events_factory: Any) -> None:
    key = keys["acme-ingest"]
    a, b, c = events_factory(3), events_factory(3), events_factory(3)
    assert _post(server, key, json.dumps({"events": a}).encode()).json()["accepted"] == 3
    ndjson = "\n".join(json.dumps(e) for e in b).encode() + b"\n"
    assert _post(server, key, ndjson, "application/x-ndjson").json()["accepted"] == 3
    sniffed = "\n".join(json.dumps(e) for e in c).encode()
    assert _post(server, key, sniffed, "application/json").json()["accepted"] == 3
    single = events_factory(1)[0]
    assert _post(server, key, json.dumps(single).encode(), None).json()["accepted"] == 1
    stored = set(stored_ids(server.db, "acme"))
    assert {e["event_id"] for e in a + b + c + [single]} <= stored


def test_gzip_body(server: Server, keys: dict[str, str], events_factory: Any) -> None:
    events = events_factory(200)
    body = gzip.compress(json.dumps(events).encode())
    r = _post(server, keys["acme-ingest"], body, **{"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 200


def test_retried_batch_stores_nothing_twice(server: Server, keys: dict[str, str],
                                            events_factory: Any) -> None:
    events = events_factory(50)
    body = json.dumps(events).encode()
    first = _post(server, keys["acme-ingest"], body).json()
    again = _post(server, keys["acme-ingest"], body).json()
    assert first == {"accepted": 50, "duplicates": 0, "rejected": []}
    assert again == {"accepted": 0, "duplicates": 50, "rejected": []}
    mixed = events[:10] + events_factory(5)
    assert _post(server, keys["acme-ingest"], json.dumps(mixed).encode()).json() == {
        "accepted": 5, "duplicates": 10, "rejected": []}
    ids = stored_ids(server.db, "acme")
    assert len(ids) == len(set(ids))


def test_duplicates_within_one_body(server: Server, keys: dict[str, str],
                                    events_factory: Any) -> None:
    ev = events_factory(1)[0]
    r = _post(server, keys["acme-ingest"], json.dumps([ev, ev, ev]).encode()).json()
    assert r == {"accepted": 1, "duplicates": 2, "rejected": []}


def test_invalid_events_are_listed_and_the_rest_stored(server: Server, keys: dict[str, str],
                                                       events_factory: Any) -> None:
    good = events_factory(2)
    bad = [{"event_type": "agent.decision", "agent_name": "A", "confidence": 7},
           {"event_type": "agent.nope", "agent_name": "A"},
           {"event_type": "agent.decision", "agent_name": "A", "confidence": "high"},
           {"agent_name": "A"},
           "not an object"]
    r = _post(server, keys["acme-ingest"], json.dumps([good[0], *bad, good[1]]).encode())
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    errors = {x["index"]: x["error"] for x in body["rejected"]}
    assert set(errors) == {1, 2, 3, 4, 5}
    assert "confidence" in errors[1] and "event_type" in errors[2]
    assert "confidence" in errors[3] and "event_type" in errors[4]
    assert "object" in errors[5]


def test_key_tenant_is_applied_and_other_tenants_refused(server: Server, keys: dict[str, str],
                                                          events_factory: Any) -> None:
    omitted, same, other, explicit_default = (events_factory(1)[0] for _ in range(4))
    same["tenant"] = "globex"
    other["tenant"] = "acme"
    explicit_default["tenant"] = "default"
    r = _post(server, keys["globex-ingest"],
              json.dumps([omitted, same, other, explicit_default]).encode()).json()
    assert r["accepted"] == 2
    assert [x["index"] for x in r["rejected"]] == [2, 3]
    assert all("tenant" in x["error"] for x in r["rejected"])
    globex = set(stored_ids(server.db, "globex"))
    assert {omitted["event_id"], same["event_id"]} <= globex
    assert other["event_id"] not in set(stored_ids(server.db))


def test_same_event_id_in_two_tenants_is_two_events(server: Server, keys: dict[str, str],
                                                    events_factory: Any) -> None:
    ev = events_factory(1)[0]
    for tenant in ("acme", "globex"):
        r = _post(server, keys[f"{tenant}-ingest"], json.dumps([ev]).encode()).json()
        assert r["accepted"] == 1
    assert ev["event_id"] in stored_ids(server.db, "acme")
    assert ev["event_id"] in stored_ids(server.db, "globex")


def test_store_only_fields_are_ignored(server: Server, keys: dict[str, str],
                                       events_factory: Any) -> None:
    ev = events_factory(1)[0]
    ev.update(seq=999_999, leaf_hash="00" * 32)
    assert _post(server, keys["acme-ingest"], json.dumps([ev]).encode()).json()["accepted"] == 1
    with server.client(keys["acme-read"]) as c:
        got = c.get("/v1/events", params={"limit": 1000}).json()["data"]
    stored = next(e for e in got if e["event_id"] == ev["event_id"])
    assert stored["seq"] != 999_999 and stored["leaf_hash"] != "00" * 32


def test_events_without_id_or_timestamp_get_them(server: Server, keys: dict[str, str]) -> None:
    r = _post(server, keys["acme-ingest"],
              json.dumps([{"event_type": "agent.reasoning", "agent_name": "NoId",
                           "reasoning": "thinking"}]).encode())
    assert r.json()["accepted"] == 1
    with server.client(keys["acme-read"]) as c:
        data = c.get("/v1/events", params={"agent": "NoId"}).json()["data"]
    assert len(data) == 1 and len(data[0]["event_id"]) == 36 and data[0]["timestamp"] > 0


def test_concurrent_requests_share_commits(server: Server, keys: dict[str, str],
                                           events_factory: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    batches = [events_factory(100) for _ in range(40)]

    def send(batch: list[dict[str, Any]]) -> dict[str, Any]:
        return _post(server, keys["acme-ingest"], json.dumps(batch).encode()).json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, batches))
    assert all(r == {"accepted": 100, "duplicates": 0, "rejected": []} for r in results)
    stored = set(stored_ids(server.db, "acme"))
    assert all(e["event_id"] in stored for b in batches for e in b)

