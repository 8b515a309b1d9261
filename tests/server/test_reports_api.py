"""``GET /v1/reports/{type}`` over real HTTP: the CLI's reports, in the read key's tenant."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentaudit.events import new_event_id

from .conftest import Server

T0 = float(int(time.time()) - 3600)
PERIOD = {"from": str(T0 - 60), "to": str(T0 + 600)}


def _events(tenant_agent: str, trace_id: str) -> list[dict[str, Any]]:
    ids = [new_event_id() for _ in range(6)]
    base = {"trace_id": trace_id, "session_id": "s-1", "user_id": "u-1"}
    return [
        {**base, "event_id": ids[0], "event_type": "agent.invocation", "agent_name": "Router",
         "action": "route", "timestamp": T0},
        {**base, "event_id": ids[1], "event_type": "agent.handoff", "agent_name": "Router",
         "action": f"handoff to {tenant_agent}", "parent_event_id": ids[0], "timestamp": T0 + 1,
         "params": {"from_agent": "Router", "to_agent": tenant_agent}},
        {**base, "event_id": ids[2], "event_type": "agent.tool_call",
         "agent_name": tenant_agent, "action": "refund", "parent_event_id": ids[1],
         "timestamp": T0 + 2},
        {**base, "event_id": ids[3], "event_type": "agent.error", "agent_name": tenant_agent,
         "action": "refund", "error": "card declined", "error_type": "PaymentError",
         "parent_event_id": ids[2], "timestamp": T0 + 3, "duration_ms": 40.0},
        {**base, "event_id": ids[4], "event_type": "agent.llm_response",
         "agent_name": tenant_agent, "action": "llm_response", "model": "gpt-4o-mini",
         "prompt_tokens": 1000, "completion_tokens": 200, "token_count": 1200,
         "parent_event_id": ids[1], "timestamp": T0 + 4},
        {**base, "event_id": ids[5], "event_type": "agent.decision", "agent_name": tenant_agent,
         "action": "escalate", "confidence": 0.4, "parent_event_id": ids[1],
         "timestamp": T0 + 5},
    ]


@pytest.fixture(scope="module")
def server(home: Path, keys: dict[str, str]) -> Iterator[Server]:
    srv = Server(home / "audit.db", home).start()
    try:
        for tenant, agent, trace in (("acme", "Billing", "trace-r1"),
                                     ("globex", "Secret", "trace-g1")):
            with srv.client(keys[f"{tenant}-ingest"]) as c:
                assert c.post("/v1/events", json=_events(agent, trace)).json()["accepted"] == 6
        yield srv
    finally:
        srv.stop()


def _local(db: Path, kind: str, tenant: str, **p: Any) -> dict[str, Any]:
    """The same report computed in-process, as `agentaudit report` does."""
    from agentaudit import reports as r
    from agentaudit.store import open_store

    period = r.resolve_period(p.get("from"), p.get("to"))
    with open_store(str(db), create=False, readonly=True) as s:
        data = {
            "summary": lambda: r.summary_report(s, tenant, period, None),
            "tool-usage": lambda: r.tool_usage_report(s, tenant, period, None),
            "errors": lambda: r.errors_report(s, tenant, period, None),
            "compliance": lambda: r.compliance_report(s, tenant, period, None),
            "cost": lambda: r.cost_report(s, tenant, period, None, None, 10),
            "agent": lambda: r.agent_report(s, tenant, p["agent"], period),
            "forensics": lambda: r.forensics_report(s, tenant, p["trace_id"]),
        }[kind]()
    return json.loads(json.dumps(data, default=str))


def _strip_clock(d: Any) -> Any:
    """Reports stamp when they were generated; that may differ by a second."""
    if isinstance(d, dict):
        return {k: _strip_clock(v) for k, v in d.items() if k != "generated_at"}
    if isinstance(d, list):
        return [_strip_clock(v) for v in d]
    return d


@pytest.mark.parametrize("kind, extra", [
    ("summary", {}), ("tool-usage", {}), ("errors", {}), ("compliance", {}), ("cost", {}),
    ("agent", {"agent": "Billing"}), ("forensics", {"trace_id": "trace-r1"}),
])
def test_json_report_is_the_cli_report_of_the_keys_tenant(
        server: Server, keys: dict[str, str], kind: str, extra: dict[str, str]) -> None:
    params = extra if kind == "forensics" else {**PERIOD, **extra}
    with server.client(keys["acme-read"]) as c:
        r = c.get(f"/v1/reports/{kind}", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    got = r.json()
    assert got["report"] == kind
    assert _strip_clock(got) == _strip_clock(_local(server.db, kind, "acme", **params))
    assert "Secret" not in r.text and "trace-g1" not in r.text


def test_report_figures(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["acme-read"]) as c:
        summary = c.get("/v1/reports/summary", params=PERIOD).json()
        errors = c.get("/v1/reports/errors", params={"since": PERIOD["from"],
                                                     "until": PERIOD["to"]}).json()
        only_router = c.get("/v1/reports/summary", params={**PERIOD, "agent": "Router"}).json()
    assert "PaymentError" in json.dumps(errors)
    assert json.dumps(summary) != json.dumps(only_router)
    assert "Billing" in json.dumps(summary) and "Billing" not in json.dumps(only_router)


@pytest.mark.parametrize("fmt, media, start", [
    ("md", "text/markdown", "#"), ("html", "text/html", "<!DOCTYPE html"),
    ("csv", "text/csv", None), ("json", "application/json", "{"),
])
def test_formats(server: Server, keys: dict[str, str], fmt: str, media: str,
                 start: str | None) -> None:
    with server.client(keys["acme-read"]) as c:
        for kind, extra in (("summary", {}), ("daily", {"date": time.strftime(
                "%Y-%m-%d", time.gmtime(T0))}), ("forensics", {"trace_id": "trace-r1"})):
            p = {**PERIOD, **extra} if kind == "summary" else extra
            r = c.get(f"/v1/reports/{kind}", params={**p, "format": fmt})
            assert r.status_code == 200, (kind, r.text)
            assert r.headers["content-type"].startswith(media)
            if start is not None:
                assert r.text.lstrip().startswith(start), (kind, r.text[:80])
            else:
                assert "," in r.text.splitlines()[0]


def test_another_tenants_trace_and_agent_are_not_found(server: Server,
                                                       keys: dict[str, str]) -> None:
    with server.client(keys["globex-read"]) as c:
        trace = c.get("/v1/reports/forensics", params={"trace_id": "trace-r1"})
        agent = c.get("/v1/reports/agent", params={**PERIOD, "agent": "Billing"})
        summary = c.get("/v1/reports/summary", params=PERIOD)
    assert trace.status_code == 404 and "trace-r1" in trace.json()["error"]
    assert agent.status_code == 404
    assert "Billing" not in summary.text and "Secret" in summary.text


@pytest.mark.parametrize("path, params, reason", [
    ("/v1/reports/bogus", {}, "report_type"),
    ("/v1/reports/summary", {"from": "yesterday-ish"}, "from"),
    ("/v1/reports/summary", {"from": "1h", "to": "2h"}, "empty"),
    ("/v1/reports/summary", {"from": "1h", "since": "2h"}, "not both"),
    ("/v1/reports/summary", {"format": "pdf"}, "format"),
    ("/v1/reports/summary", {"tz": "Mars/Olympus"}, "time zone"),
    ("/v1/reports/summary", {"date": "2026-01-01"}, "daily"),
    ("/v1/reports/daily", {"date": "31/12/2026"}, "date"),
    ("/v1/reports/daily", {"from": "7d"}, "takes date, not from/to"),
    ("/v1/reports/forensics", {"trace_id": "trace-r1", "to": "1h"}, "takes trace_id"),
    ("/v1/reports/cost", {"top": "0"}, "top"),
    ("/v1/reports/agent", {}, "agent"),
    ("/v1/reports/forensics", {}, "trace_id"),
])
def test_bad_parameters_are_400_with_a_reason(server: Server, keys: dict[str, str], path: str,
                                              params: dict[str, str], reason: str) -> None:
    with server.client(keys["acme-read"]) as c:
        r = c.get(path, params=params)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]


def test_reports_need_a_read_key(server: Server, keys: dict[str, str]) -> None:
    with server.client() as c:
        assert c.get("/v1/reports/summary").status_code == 401
    with server.client(keys["acme-ingest"]) as c:
        assert c.get("/v1/reports/summary").status_code == 403
    with server.client(keys["acme-admin"]) as c:
        assert c.get("/v1/reports/summary").status_code == 200


def test_openapi_describes_the_reports(server: Server) -> None:
    with server.client() as c:
        op = c.get("/openapi.json").json()["paths"]["/v1/reports/{report_type}"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert {"report_type", "from", "since", "to", "until", "agent", "tz", "date", "top",
            "trace_id", "format"} <= set(params)
    assert params["report_type"]["schema"]["enum"] == [
        "summary", "tool-usage", "errors", "compliance", "daily", "cost", "agent", "forensics"]
    assert set(op["responses"]["200"]["content"]) == {
        "application/json", "text/markdown; charset=utf-8", "text/html; charset=utf-8",
        "text/csv; charset=utf-8"}
    assert {"400", "401", "403", "404"} <= set(op["responses"])
