"""``report compliance``: the checks of a policy over a period, each with evidence.

Each check returns ``passed``, the measured ``value``, the ``threshold``, a ``status`` (pass,
warn, fail), a ``recommendation`` when it fails and ``evidence``: the ids of up to N offending
events or traces. Everything but the PII scan is computed in SQL; the PII scan reads payload
text in batches selected in SQL, at most ``max_rows`` of them (sampled evenly over the period).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agentaudit.query import iso_time
from agentaudit.reports._sql import Scope, inum, rate
from agentaudit.reports.period import Period, buckets_json, day_bounds
from agentaudit.reports.policy import Policy, default_policy
from agentaudit.store.base import sample_stride

if TYPE_CHECKING:
    from agentaudit.store import Store

__all__ = ["CHECK_TITLES", "compliance_report"]

CHECK_TITLES = {
    "human_escalation_rate": "Human escalation rate",
    "tool_approval": "Tool approval",
    "data_access_logging": "Data access logging",
    "token_budget": "Token budget",
    "invocation_completion": "Invocations complete, no orphaned handoffs",
    "error_rate": "Error rate",
    "pii_scan": "No personal data or secrets in payloads",
}
_PII_BATCH = 1000


def _ids(text: str | None) -> list[str]:
    return text.split(",") if text else []


_UNITS = {"human_escalation_rate": "ratio", "token_budget": "ratio", "error_rate": "ratio"}


def _result(name: str, passed: bool, value: Any, threshold: Any, evidence: list[str],
            recommendation: str, warn: bool = False, **details: Any) -> dict[str, Any]:
    status = "fail" if not passed else "warn" if warn else "pass"
    return {"name": name, "title": CHECK_TITLES[name], "passed": passed, "status": status,
            "value": value, "threshold": threshold, "unit": _UNITS.get(name, "count"),
            "evidence": evidence,
            "recommendation": None if passed and not warn else recommendation,
            "details": details}


def _escalation(scope: Scope, cfg: dict[str, Any], ev: int, totals: dict[str, Any]
                ) -> dict[str, Any]:
    traces, escalations = inum(totals.get("traces")), inum(totals.get("escalations"))
    value = rate(escalations, traces)
    passed = traces == 0 or cfg["min"] <= value <= cfg["max"]
    evidence = [] if passed or value < cfg["min"] else [
        r["event_id"] for r in scope.rows("cmp_escalation_ids", limit=ev)]
    rec = (f"Escalation rate {value:.1%} is above {cfg['max']:.1%}: review why agents hand work "
           "to humans (failing tools, unclear policies) and fix the top causes."
           if value > cfg["max"] else
           f"Escalation rate {value:.1%} is below {cfg['min']:.1%}: check that agents escalate "
           "when they should (low confidence, policy exceptions).")
    warn = passed and traces > 0 and value > cfg["warn_above"]
    return _result("human_escalation_rate", passed, value,
                   {"min": cfg["min"], "max": cfg["max"]}, evidence, rec, warn,
                   traces=traces, escalations=escalations)


def _approval(scope: Scope, cfg: dict[str, Any], ev: int) -> dict[str, Any]:
    found = scope.rows("cmp_tool_approval", limit=1000, tools=json.dumps(cfg["tools"]),
                       kinds=json.dumps(cfg["approval_kinds"]), amount_param=cfg["amount_param"],
                       min_amount=cfg["min_amount"], ev=ev)
    approvers = {r["approver"]: inum(r["calls"]) for r in found if r["approver"] is not None}
    missing = next((r for r in found if r["approver"] is None), None)
    unapproved = inum(missing["calls"]) if missing else 0
    calls = unapproved + sum(approvers.values())
    passed = unapproved <= cfg["max_unapproved"]
    rec = (f"{unapproved} call(s) of {', '.join(cfg['tools'])} ran without a preceding human "
           "approval in their trace: require approval before these calls (gate the tool).")
    return _result("tool_approval", passed, unapproved, cfg["max_unapproved"],
                   _ids(missing["evidence"]) if missing else [], rec,
                   calls=calls, approved=calls - unapproved, approvers=approvers,
                   tools=cfg["tools"])


def _key_needle(key: str) -> str:
    """How ``key`` appears as an object key in a stored payload (compact JSON, UTF-8 as is):
    the cheap test a template makes before parsing the payload."""
    return json.dumps(key, ensure_ascii=False) + ":"


def _data_access(scope: Scope, cfg: dict[str, Any], ev: int) -> dict[str, Any]:
    found = scope.rows("cmp_data_access", limit=1000, tools=json.dumps(cfg["tools"]),
                       tag=cfg["tag"], tag_needle=_key_needle(cfg["tag"]),
                       required=json.dumps(cfg["required"]), ev=ev)
    calls = sum(inum(r["calls"]) for r in found)
    bad = [r for r in found if r["missing"] is not None]
    missing_fields: Counter[str] = Counter()
    evidence: list[str] = []
    for r in bad:
        for f in r["missing"].split(","):
            missing_fields[f] += inum(r["calls"])
        evidence.extend(_ids(r["evidence"]))
    failing = sum(inum(r["calls"]) for r in bad)
    passed = failing <= cfg["max_missing"]
    rec = (f"{failing} data-access call(s) lack {', '.join(sorted(missing_fields))}: record "
           "the purpose and the resource of every data access in the tool call's params or "
           "tags.")
    return _result("data_access_logging", passed, failing, cfg["max_missing"], evidence[:ev],
                   rec, calls=calls, missing_fields=dict(missing_fields))


def _token_budget(scope: Scope, cfg: dict[str, Any], ev: int) -> dict[str, Any]:
    bounds = day_bounds(scope.period)
    found = scope.rows("cmp_token_days", limit=100_000, bounds=buckets_json(bounds))
    days: list[dict[str, Any]] = []
    for r in found:
        tokens = inum(r["tokens"])
        if not tokens:
            continue
        budget = cfg["agents"].get(r["agent"], cfg["daily_tokens_per_agent"])
        used = tokens / budget
        label, lo, hi = bounds[inum(r["bucket"])]
        days.append({"day": label, "agent": r["agent"], "tokens": tokens, "budget": budget,
                     "used": round(used, 6), "percent_used": round(used * 100, 1),
                     "_lo": lo, "_hi": hi})
    days.sort(key=lambda d: (-d["used"], d["day"], d["agent"]))
    worst = days[0] if days else None
    value = worst["used"] if worst else 0.0
    passed = value <= 1.0
    evidence: list[str] = []
    if worst and (not passed or value >= cfg["warn_at"]):
        evidence = [r["trace_id"] for r in scope.all_agents().rows(
            "cmp_token_traces", limit=ev, target=worst["agent"], lo=worst["_lo"],
            hi=worst["_hi"])]
    over = [d for d in days if d["used"] >= cfg["warn_at"]]
    for d in days:
        d.pop("_lo"), d.pop("_hi")
    rec = (f"{worst['agent']} used {worst['percent_used']:.0f}% of its daily token budget on "
           f"{worst['day']}: cap its context size or raise its budget deliberately."
           if worst else "")
    return _result("token_budget", passed, value, 1.0, evidence, rec,
                   warn=bool(worst) and value >= cfg["warn_at"], warn_at=cfg["warn_at"],
                   worst=worst, over_warning=over[:20])


def _completion(scope: Scope, cfg: dict[str, Any], ev: int, now: float) -> dict[str, Any]:
    cutoff = min(scope.period.until, now - cfg["grace_seconds"])
    found = {r["kind"]: r for r in scope.rows("cmp_open_work", limit=10, cutoff=cutoff, ev=ev)}
    # (bounds: the same span for stores that count it from rollups)
    checked = scope.one("cmp_checked_work", cutoff=cutoff, bounds=buckets_json(
        [("", scope.period.since, max(scope.period.since, cutoff))]))
    unfinished = inum(found.get("unfinished_invocation", {}).get("count"))
    orphaned = inum(found.get("orphaned_handoff", {}).get("count"))
    evidence = (_ids(found.get("unfinished_invocation", {}).get("evidence"))
                + _ids(found.get("orphaned_handoff", {}).get("evidence")))[:ev]
    passed = unfinished + orphaned <= cfg["max_open"]
    rec = (f"{unfinished} invocation(s) never ended and {orphaned} handoff(s) were never "
           "received: make every agent log its end (use the SDK's context managers) and check "
           "the receiving agents of the handoffs.")
    return _result("invocation_completion", passed, unfinished + orphaned, cfg["max_open"],
                   evidence, rec, unfinished_invocations=unfinished, orphaned_handoffs=orphaned,
                   invocations_checked=inum(checked.get("invocations")),
                   handoffs_checked=inum(checked.get("handoffs")),
                   checked_before=iso_time(cutoff))


def _error_rate(scope: Scope, cfg: dict[str, Any], ev: int, totals: dict[str, Any]
                ) -> dict[str, Any]:
    events, errors = inum(totals.get("events")), inum(totals.get("errors"))
    value = rate(errors, events)
    passed = value <= cfg["max"]
    warn = passed and cfg["max"] > 0 and value >= cfg["warn_at"] * cfg["max"]
    evidence = [r["event_id"] for r in scope.rows("cmp_error_ids", limit=ev)] \
        if not passed or warn else []
    rec = (f"Error rate {value:.2%} {'exceeds' if not passed else 'is close to'} "
           f"{cfg['max']:.2%}: see `agentaudit report errors` for the failing tools and "
           "suggested actions.")
    return _result("error_rate", passed, value, cfg["max"], evidence, rec, warn,
                   events=events, errors=errors)


def _pii(scope: Scope, cfg: dict[str, Any], ev: int, totals: dict[str, Any]) -> dict[str, Any]:
    from agentaudit.redact import finding_filter, scan

    may_find = finding_filter(cfg["detectors"])  # skips most clean payloads cheaply
    total_rows = inum(totals.get("events"))
    cap = max(1, int(cfg["max_rows"]))
    stride = sample_stride(total_rows, cap)
    after_ts, after_seq, scanned = -1.0, -1, 0
    by_detector: Counter[str] = Counter()
    flagged: list[str] = []
    flagged_count = 0
    while scanned < cap:
        # the period from the cursor on: the index range starts there, not at the period's start
        # (which made each batch walk every row before it)
        rest = replace(scope, period=replace(scope.period,
                                             since=max(scope.period.since, after_ts)))
        batch = rest.rows("cmp_payloads", limit=min(_PII_BATCH, cap - scanned),
                          after_ts=after_ts, after_seq=after_seq, stride=stride)
        for r in batch:
            text = r["text"] or ""
            findings = scan(text, cfg["detectors"]) if may_find(text) else []
            if findings:
                flagged_count += 1
                by_detector.update({f.detector for f in findings})
                if len(flagged) < ev:
                    flagged.append(r["event_id"])
        scanned += len(batch)
        if len(batch) < _PII_BATCH:
            break
        after_ts, after_seq = batch[-1]["timestamp"], batch[-1]["seq"]
    passed = flagged_count <= cfg["max_findings"]
    rec = (f"{flagged_count} stored payload(s) contain "
           f"{', '.join(sorted(by_detector))}: redact them at capture (redaction rules) and "
           "erase the affected payloads.")
    return _result("pii_scan", passed, flagged_count, cfg["max_findings"], flagged, rec,
                   rows_in_period=total_rows, rows_scanned=scanned, max_rows=cap,
                   sampled=stride > 1, sample_every=stride,
                   findings_by_detector=dict(by_detector))


def compliance_report(store: Store, tenant: str, period: Period, agent: str | None = None,
                      policy: Policy | None = None, now: float | None = None) -> dict[str, Any]:
    """The seed's compliance report (``compliant, checks, recommendations``) over a policy."""
    policy = policy or default_policy()
    now = time.time() if now is None else now
    scope = Scope(store, tenant, period, agent)
    ev = policy.evidence
    enabled = policy.enabled()
    totals = scope.one("cmp_totals") if {"human_escalation_rate", "error_rate",
                                          "pii_scan"} & set(enabled) else {}
    run = {
        "human_escalation_rate": lambda c: _escalation(scope, c, ev, totals),
        "tool_approval": lambda c: _approval(scope, c, ev),
        "data_access_logging": lambda c: _data_access(scope, c, ev),
        "token_budget": lambda c: _token_budget(scope, c, ev),
        "invocation_completion": lambda c: _completion(scope, c, ev, now),
        "error_rate": lambda c: _error_rate(scope, c, ev, totals),
        "pii_scan": lambda c: _pii(scope, c, ev, totals),
    }
    checks = [run[name](policy.checks[name]) for name in enabled]
    failed = [c for c in checks if not c["passed"]]
    return {
        "report": "compliance", "tenant": tenant, "agent": agent, "period": period.to_dict(),
        "policy": {"name": policy.name, "source": policy.source, "evidence": ev},
        "compliant": not failed,
        "passed": sum(c["status"] == "pass" for c in checks),
        "warnings": sum(c["status"] == "warn" for c in checks),
        "failed": len(failed),
        "checks": checks,
        "recommendations": [c["recommendation"] for c in checks if c["recommendation"]],
        "security_findings": _findings(scope, ev),
    }


def _findings(scope: Scope, ev: int) -> dict[str, Any]:
    """Firings of the detection rules in the period (docs/detection.md); informational."""
    from agentaudit.detect.findings import security_findings

    return security_findings(scope, ev)
