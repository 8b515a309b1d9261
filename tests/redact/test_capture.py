"""End to end: sensitive values sent through the SDK and the collector never reach the disk.

The database file and its WAL are read as raw bytes after the writer closed; a control run with
redaction off proves the check would have found them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import Server, make_key

from agentaudit.redact import Redactor
from agentaudit.sdk import AuditLogger

from .samples import (
    ALL_ON,
    CARDS,
    CLEAN,
    PII,
    SECRETS,
    leaked,
    raw_bytes,
    sensitive_params,
    sensitive_text,
)

EVERYTHING = {**SECRETS, **CARDS, **PII}


def _log_everything(logger: AuditLogger) -> None:
    logger.log_tool_call("Agent", "lookup", params=sensitive_params())
    logger.log_tool_result("Agent", "lookup", result={"rows": [sensitive_text()]})
    logger.log_reasoning("Agent", sensitive_text())
    try:
        raise ValueError(f"charge failed for {CARDS['visa']} with {SECRETS['openai']}")
    except ValueError as e:
        logger.log_error("Agent", e)
    logger.log_decision("Agent", "escalate", reasoning=f"mail {PII['email']}")


def _stored(db: Path, column: str = "*") -> list[Any]:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT {column} FROM events").fetchall()
    finally:
        con.close()


def test_sdk_default_policy_keeps_secrets_and_cards_off_disk(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLogger(str(db)) as logger:
        _log_everything(logger)
        assert logger.flush()
    data = raw_bytes(db)
    assert leaked(data, {**SECRETS, **CARDS}) == []
    assert PII["email"].encode() in data  # not configured: kept
    assert CLEAN[0].encode() in data


def test_sdk_all_detectors_and_stable_pseudonyms(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLogger(str(db), redact=Redactor(ALL_ON)) as logger:
        _log_everything(logger)
        logger.log_tool_call("Agent", "notify", params={"to": PII["email"]})
    data = raw_bytes(db)
    assert leaked(data, EVERYTHING) == []
    pseudonym = Redactor(ALL_ON).redact(_one(PII["email"])).params["to"]  # type: ignore[index]
    assert data.count(pseudonym.encode()) >= 2  # the same person across events
    assert b"[CARD]" in data and b"card:" in data  # recorded in the tags


def _one(value: str) -> Any:
    from agentaudit.events import AuditEvent

    return AuditEvent(event_type="agent.tool_call", agent_name="a", params={"to": value})


def test_sdk_redaction_off_is_the_control(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLogger(str(db), redact=False) as logger:
        _log_everything(logger)
    assert set(leaked(raw_bytes(db), {**SECRETS, **CARDS})) >= {"aws", "openai", "visa"}


# -- the collector over HTTP ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    home = tmp_path_factory.mktemp("redacting-collector")
    db = home / "audit.db"
    cfg = home / "redact.toml"
    cfg.write_text(_toml(ALL_ON))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(home / "config"))
        key = make_key(db, "acme", "ingest", "redaction test")
    srv = Server(db, home, env={"AGENTAUDIT_REDACT_CONFIG": str(cfg)}).start()
    try:
        yield srv, key
    finally:
        srv.stop()


def _toml(rules: dict[str, Any]) -> str:
    modes = ", ".join(f'{k} = "{v}"' for k, v in rules["modes"].items())
    return f'[redact]\nkey = "{rules["key"]}"\nuser_id = true\nmodes = {{ {modes} }}\n'


def _span(span_id: str, name: str, attrs: dict[str, str], error: str | None = None) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id, "name": name,
        "kind": 1, "startTimeUnixNano": "1790000000000000000",
        "endTimeUnixNano": "1790000001500000000",
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
        "status": {"code": 2 if error else 1, "message": error or ""}}
    if error:
        span["events"] = [{"name": "exception", "timeUnixNano": "1790000001000000000",
                           "attributes": [
                               {"key": "exception.type", "value": {"stringValue": "ValueError"}},
                               {"key": "exception.message", "value": {"stringValue": error}}]}]
    return span


def _otlp_body() -> bytes:
    nested = json.dumps(sensitive_params())
    spans = [
        _span("abcdef0123456789", "Support", {"openinference.span.kind": "AGENT",
                                              "agent.name": "Support", "input.value": nested,
                                              "user.id": PII["email"]}),
        _span("abcdef012345678a", "lookup", {"openinference.span.kind": "TOOL",
                                             "tool.name": "lookup",
                                             "input.value": sensitive_text(),
                                             "output.value": sensitive_text()},
              error=f"declined {CARDS['visa']} key {SECRETS['aws']} for {PII['email']}"),
    ]
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bot"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}]}]}).encode()


def test_collector_redacts_native_events_and_otlp(collector: tuple[Server, str]) -> None:
    srv, key = collector
    from agentaudit.events import new_event_id

    events = [{"event_type": "agent.tool_call", "agent_name": "W", "event_id": new_event_id(),
               "params": sensitive_params(), "result": {"out": [sensitive_text()]}},
              {"event_type": "agent.error", "agent_name": "W", "event_id": new_event_id(),
               "error": sensitive_text(), "tags": {"note": SECRETS["aws"]}}]
    with srv.client(key) as c:
        r = c.post("/v1/events", json=events)
        assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
        r = c.post("/v1/traces", content=_otlp_body(),
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
    srv.stop()
    stored = _stored(srv.db, "count(*)")[0][0]
    assert stored >= 4
    data = raw_bytes(srv.db)
    assert leaked(data, EVERYTHING) == []
    assert b"[SECRET]" in data and b"pii:email:" in data
    assert CLEAN[0].encode() in data  # clean ids survive
    srv.start()


def test_overflow_spill_is_redacted_on_disk(tmp_path: Path) -> None:
    """A caller that spills on overflow writes the spool itself: redacted there too."""
    db = tmp_path / "audit.db"
    db.mkdir()  # the store cannot open: the writer keeps failing, the small queue overflows
    spool = tmp_path / "spool"
    logger = AuditLogger(str(db), overflow="spill", max_queue=5, batch_size=5,
                         flush_interval=5.0, spool_dir=spool)
    try:
        for _ in range(50):
            logger.log_tool_call("Agent", "lookup", params=sensitive_params())
        assert logger.stats().spilled > 0
    finally:
        logger.close()
    data = b"".join(p.read_bytes() for p in spool.rglob("*") if p.is_file())
    assert data, "nothing was spilled: the test did not exercise the overflow path"
    assert leaked(data, {**SECRETS, **CARDS}) == []
