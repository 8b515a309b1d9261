"""Rendering: JSON is the source of truth; md, html and csv are rendered from it. The HTML is
one self-contained page that headless Chromium opens."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agentaudit import reports as R
from agentaudit.reports.period import Period
from reports.store_builder import NOW, Scenario

CHROMIUM = "/usr/bin/chromium"


def every_report(s: Scenario, whole: Period) -> dict[str, dict[str, Any]]:
    store = s.store
    return {
        "summary": R.summary_report(store, "default", whole),
        "tool-usage": R.tool_usage_report(store, "default", whole),
        "errors": R.errors_report(store, "default", whole),
        "compliance": R.compliance_report(store, "default", whole, now=NOW),
        "daily": R.daily_report(store, "default", date(2026, 3, 10), now=NOW),
        "cost": R.cost_report(store, "default", whole),
        "forensics": R.forensics_report(store, "default", "task-1"),
        "agent": R.agent_report(store, "default", "Billing", whole),
    }


@pytest.fixture
def reports(scenario: Scenario, whole: Period) -> dict[str, dict[str, Any]]:
    return every_report(scenario, whole)


def test_json_round_trips(reports: dict[str, dict[str, Any]]) -> None:
    for name, data in reports.items():
        assert json.loads(R.render(data, "json")) == json.loads(json.dumps(data)), name
        assert data["report"] == name


def test_markdown(reports: dict[str, dict[str, Any]]) -> None:
    md = {name: R.render(data, "md") for name, data in reports.items()}
    assert md["daily"].startswith("# Agent Audit Summary — 2026-03-10\n")
    assert "| Billing | 1 | 1 | 10.0% | 35.0 s | $0.0100 |" in md["daily"]
    assert "- ❌ **Tool approval**: 1 (threshold 0)" in md["daily"]
    assert "| process_refund | 3 | 1 | 33.3% | 10.4 s | 700 ms | 30.0 s | 30.0 s | 30.0 s |" \
        in md["tool-usage"]
    assert "**Status:** ❌ not compliant" in md["compliance"]
    assert "| ❌ | Human escalation rate | 33.3% | min 0.0%, max 15.0% |" in md["compliance"]
    assert "> $0.03 was spent in this period" in md["cost"]
    for name, text in md.items():
        assert "None" not in text.replace("None: every", ""), name


def test_html_is_self_contained(reports: dict[str, dict[str, Any]]) -> None:
    for name, data in reports.items():
        html = R.render(data, "html")
        assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>"), name
        assert "<script" not in html and "<link" not in html, name
        assert not re.search(r"(src|href)=\"(https?:)?//", html), name
        assert "@media print" in html
    assert "<svg" in R.render(reports["summary"], "html")
    assert "<svg" in R.render(reports["tool-usage"], "html")


def test_html_escapes_payload_text(scenario: Scenario, whole: Period) -> None:
    data = R.summary_report(scenario.store, "default", whole)
    data["top_agents"][0]["agent"] = "<img src=x onerror=alert(1)>"
    html = R.render(data, "html")
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_csv(reports: dict[str, dict[str, Any]]) -> None:
    rows = list(csv.DictReader(io.StringIO(R.render(reports["tool-usage"], "csv"))))
    assert [r["tool"] for r in rows] == ["process_refund", "get_order"]
    assert rows[0]["p95_latency_ms"] == "30000.0"
    checks = list(csv.DictReader(io.StringIO(R.render(reports["compliance"], "csv"))))
    assert [c["status"] for c in checks][:2] == ["fail", "fail"]
    cost = list(csv.DictReader(io.StringIO(R.render(reports["cost"], "csv"))))
    assert {r["dimension"] for r in cost} == {"agent", "model", "task", "user", "day", "trace"}
    for data in reports.values():
        assert R.render(data, "csv").count("\n") >= 1


def _chromium_or_skip() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing on CI: install Debian's chromium package")
    pytest.skip(f"SKIPPED LOUDLY: {CHROMIUM} is not installed, so the HTML reports were not "
                "opened in a browser (apt-get install chromium)")


@pytest.mark.slow
def test_html_opens_in_headless_chromium(reports: dict[str, dict[str, Any]],
                                         tmp_path: Path) -> None:
    browser = _chromium_or_skip()
    for name in ("daily", "forensics", "tool-usage"):
        page = tmp_path / f"{name}.html"
        page.write_text(R.render(reports[name], "html"), encoding="utf-8")
        shot = tmp_path / f"{name}.png"
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, name
        console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
        assert console == [], console
