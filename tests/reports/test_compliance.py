"""report compliance: every check passing and failing, with the right evidence ids."""

from __future__ import annotations

from typing import Any

from agentaudit.reports import compliance_report, default_policy
from agentaudit.reports.period import Period
from agentaudit.reports.policy import parse_policy
from reports.store_builder import NOW, T0, Scenario, Writer

T1_ONLY = Period(T0, T0 + 1000)  # the approved, finished, clean trace


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def _run(scenario: Scenario, period: Period, **checks: dict[str, Any]) -> dict[str, Any]:
    return compliance_report(scenario.store, "default", period,
                             policy=parse_policy({"checks": checks}), now=NOW)


def test_default_policy_on_the_scenario(scenario: Scenario, whole: Period) -> None:
    r = compliance_report(scenario.store, "default", whole, policy=default_policy(), now=NOW)
    assert r["compliant"] is False
    assert [c["name"] for c in r["checks"]] == [
        "human_escalation_rate", "tool_approval", "data_access_logging", "token_budget",
        "invocation_completion", "error_rate", "pii_scan"]
    assert {c["name"]: c["status"] for c in r["checks"]} == {
        "human_escalation_rate": "fail", "tool_approval": "fail", "data_access_logging": "pass",
        "token_budget": "pass", "invocation_completion": "fail", "error_rate": "pass",
        "pii_scan": "fail"}
    assert (r["passed"], r["warnings"], r["failed"]) == (3, 0, 4)
    assert len(r["recommendations"]) == 4
    for c in r["checks"]:
        assert (c["recommendation"] is None) == c["passed"]


def test_escalation_rate(scenario: Scenario, whole: Period) -> None:
    fail = _check(_run(scenario, whole), "human_escalation_rate")
    assert (fail["passed"], fail["value"], fail["threshold"]) == (
        False, round(1 / 3, 6), {"min": 0.0, "max": 0.15})
    assert fail["evidence"] == [scenario["x1"]]
    assert fail["details"] == {"traces": 3, "escalations": 1}
    ok = _check(_run(scenario, whole, human_escalation_rate={"max": 0.5, "warn_above": 0.4}),
                "human_escalation_rate")
    assert (ok["passed"], ok["status"], ok["evidence"]) == (True, "pass", [])
    low = _check(_run(scenario, T1_ONLY, human_escalation_rate={"min": 0.1}),
                 "human_escalation_rate")
    assert (low["passed"], low["value"], low["evidence"]) == (False, 0.0, [])
    assert "below 10.0%" in low["recommendation"]


def test_tool_approval(scenario: Scenario, whole: Period) -> None:
    fail = _check(_run(scenario, whole), "tool_approval")
    assert (fail["passed"], fail["value"], fail["evidence"]) == (False, 1, [scenario["c5"]])
    assert fail["details"]["approvers"] == {"alice": 2}
    assert (fail["details"]["calls"], fail["details"]["approved"]) == (3, 2)
    ok = _check(_run(scenario, T1_ONLY), "tool_approval")
    assert (ok["passed"], ok["value"], ok["details"]["approvers"]) == (True, 0, {"alice": 2})
    # above 600 only: no call needs approval; get_order with no amount param always does
    none = _check(_run(scenario, whole, tool_approval={"min_amount": 600}), "tool_approval")
    assert (none["passed"], none["details"]["calls"]) == (True, 0)
    order = _check(_run(scenario, whole, tool_approval={"tools": ["get_order"]}),
                   "tool_approval")
    assert order["evidence"] == [scenario["c1"], scenario["c4"]]  # a1 came after c1


def test_data_access_logging(scenario: Scenario, whole: Period, writer: Writer) -> None:
    ok = _check(_run(scenario, whole), "data_access_logging")
    assert (ok["passed"], ok["details"]["calls"]) == (True, 0)
    fail = _check(_run(scenario, whole, data_access_logging={"tools": ["get_order"]}),
                  "data_access_logging")
    assert (fail["passed"], fail["value"], fail["evidence"]) == (
        False, 2, [scenario["c1"], scenario["c4"]])
    assert fail["details"]["missing_fields"] == {"purpose": 2, "resource": 2}


def test_data_access_by_tag(writer: Writer) -> None:
    trace = dict(trace_id="5" * 32)
    good = writer.add("tool_call", "A", T0, action="read_db", **trace,
                      tags={"data_access": "true", "purpose": "support", "resource": "orders"})
    partial = writer.add("tool_call", "A", T0 + 1, action="read_db", **trace,
                         params={"purpose": "audit"}, tags={"data_access": "true"})
    writer.add("tool_call", "A", T0 + 2, action="read_db", **trace)  # not tagged: not checked
    store = writer.close()
    r = compliance_report(store, "default", Period(T0, T0 + 10), now=NOW)
    c = _check(r, "data_access_logging")
    assert (c["passed"], c["value"], c["evidence"]) == (False, 1, [partial])
    assert c["details"] == {"calls": 2, "missing_fields": {"resource": 1}}
    assert good not in c["evidence"]
    store.close()


def test_data_access_by_a_tag_json_would_escape(writer: Writer) -> None:
    """A tag named with non-ASCII letters is found (payloads keep UTF-8 as is: the cheap
    pre-test must not look for an escaped name)."""
    trace = dict(trace_id="7" * 32)
    tagged = writer.add("tool_call", "A", T0, action="lire", **trace,
                        params={"purpose": "audit"}, tags={"données_personnelles": "oui",
                                                           "accès": "true"})
    writer.add("tool_call", "A", T0 + 1, action="lire", **trace, tags={"accès": "non"})
    store = writer.close()
    policy = parse_policy({"checks": {"data_access_logging": {"tag": "accès"}}})
    c = _check(compliance_report(store, "default", Period(T0, T0 + 10), now=NOW, policy=policy),
               "data_access_logging")
    assert (c["value"], c["evidence"]) == (1, [tagged])
    assert c["details"] == {"calls": 1, "missing_fields": {"resource": 1}}
    store.close()


def test_token_budget(scenario: Scenario, whole: Period) -> None:
    ok = _check(_run(scenario, whole), "token_budget")
    assert (ok["passed"], ok["status"], ok["value"]) == (True, "pass", 0.0005)
    assert ok["details"]["worst"]["agent"] == "Research"
    fail = _check(_run(scenario, whole, token_budget={"daily_tokens_per_agent": 2000}),
                  "token_budget")
    assert (fail["passed"], fail["value"], fail["evidence"]) == (False, 1.25, ["c" * 32])
    assert fail["details"]["worst"] == {"day": "2026-03-10", "agent": "Research",
                                        "tokens": 2500, "budget": 2000, "used": 1.25,
                                        "percent_used": 125.0}
    warn = _check(_run(scenario, whole, token_budget={"daily_tokens_per_agent": 3000}),
                  "token_budget")
    assert (warn["passed"], warn["status"]) == (True, "warn")
    per_agent = _check(_run(scenario, whole, token_budget={
        "daily_tokens_per_agent": 2000, "agents": {"Research": 10_000}}), "token_budget")
    assert (per_agent["passed"], per_agent["details"]["worst"]["agent"]) == (True, "Billing")
    assert per_agent["value"] == 0.55


def test_invocation_completion(scenario: Scenario, whole: Period) -> None:
    fail = _check(_run(scenario, whole), "invocation_completion")
    assert (fail["passed"], fail["value"], fail["evidence"]) == (
        False, 2, [scenario["i4"], scenario["h2"]])
    assert fail["details"]["unfinished_invocations"] == 1
    assert fail["details"]["orphaned_handoffs"] == 1
    assert fail["details"]["invocations_checked"] == 4
    ok = _check(_run(scenario, T1_ONLY), "invocation_completion")
    assert (ok["passed"], ok["value"], ok["evidence"]) == (True, 0, [])
    # work younger than the grace period is not judged yet
    young = compliance_report(scenario.store, "default", whole, now=T0 + 7300)
    assert _check(young, "invocation_completion")["evidence"] == [scenario["h2"]]


def test_error_rate(scenario: Scenario, whole: Period) -> None:
    ok = _check(_run(scenario, whole), "error_rate")
    assert (ok["passed"], ok["status"], ok["value"], ok["evidence"]) == (
        True, "pass", round(1 / 26, 6), [])
    fail = _check(_run(scenario, whole, error_rate={"max": 0.01}), "error_rate")
    assert (fail["passed"], fail["evidence"]) == (False, [scenario["e1"]])
    warn = _check(_run(scenario, whole, error_rate={"max": 0.045}), "error_rate")
    assert (warn["passed"], warn["status"]) == (True, "warn")
    assert "is close to 4.50%" in warn["recommendation"]


def test_pii_scan(scenario: Scenario, whole: Period) -> None:
    fail = _check(_run(scenario, whole), "pii_scan")
    assert (fail["passed"], fail["value"], fail["evidence"]) == (False, 1, [scenario["i4"]])
    assert fail["details"]["findings_by_detector"] == {"email": 1, "card_number": 1}
    assert (fail["details"]["rows_scanned"], fail["details"]["sampled"]) == (26, False)
    ok = _check(_run(scenario, T1_ONLY), "pii_scan")
    assert (ok["passed"], ok["value"]) == (True, 0)
    only_ip = _check(_run(scenario, whole, pii_scan={"detectors": ["ipv4"]}), "pii_scan")
    assert only_ip["passed"] is True


def test_pii_scan_cap_samples_evenly(writer: Writer) -> None:
    for i in range(40):
        writer.add("reasoning", "A", T0 + i, trace_id="6" * 32,
                   reasoning=f"contact user{i}@example.org")
    store = writer.close()
    r = compliance_report(store, "default", Period(T0, T0 + 100), now=NOW,
                          policy=parse_policy({"checks": {"pii_scan": {"max_rows": 10}}}))
    c = _check(r, "pii_scan")
    assert c["details"]["sampled"] is True and c["details"]["sample_every"] == 4
    assert c["details"]["rows_scanned"] == 10 and c["details"]["max_rows"] == 10
    assert c["value"] == 10 and len(c["evidence"]) == 10
    store.close()


def test_evidence_count_and_disabled_checks(scenario: Scenario, whole: Period) -> None:
    policy = parse_policy({"policy": {"evidence": 1}, "checks": {
        "invocation_completion": {}, "pii_scan": {"enabled": False},
        "human_escalation_rate": {"enabled": False}}})
    r = compliance_report(scenario.store, "default", whole, policy=policy, now=NOW)
    assert "pii_scan" not in [c["name"] for c in r["checks"]]
    assert _check(r, "invocation_completion")["evidence"] == [scenario["i4"]]


def test_empty_period_is_compliant(scenario: Scenario) -> None:
    r = compliance_report(scenario.store, "default", Period(T0 - 7200, T0 - 3600), now=NOW)
    assert r["compliant"] is True
    assert all(c["evidence"] == [] for c in r["checks"])


def test_sample_stride_rounds_large_strides_to_the_sample_step() -> None:
    from agentaudit.store.base import SAMPLE_STEP, sample_stride

    assert [sample_stride(n, 10) for n in (0, 10, 11, 40, 640, 641)] == [1, 1, 2, 4, 64, 128]
    assert sample_stride(10_000_000, 10_000) == 1024 and 1024 % SAMPLE_STEP == 0
    # never more rows than the cap, never a sample smaller than needed by a whole step
    for rows in range(0, 5000, 37):
        s = sample_stride(rows, 30)
        assert -(-rows // s) <= 30 and (s <= SAMPLE_STEP or s - SAMPLE_STEP < -(-rows // 30))
