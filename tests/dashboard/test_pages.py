"""Every dashboard page in real headless Chromium against a demo store: it loads without
console errors, shows what it must, and is saved as a screenshot under tests/artifacts/."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from server.conftest import Server

from .conftest import every_page, shot, visit

pytestmark = pytest.mark.slow


def test_every_page_loads_without_console_errors(page: Any, server: Server,
                                                 demo: dict[str, Any]) -> None:
    base = server.url
    for name, path in every_page(demo).items():
        visit(page, base + path, name)
        assert page.locator("[data-testid=tenant]").count() in (0, 1)
    page.goto(base + "/?window=7d")
    assert page.locator("[data-testid=tenant]").inner_text() == "default"
    assert int(page.locator("[data-testid=events]").inner_text().replace(",", "")) > 1000
    assert page.locator("svg title", has_text="Events and errors").count() == 1
    assert page.locator("svg title", has_text="Cost by agent").count() == 1
    page.set_viewport_size({"width": 1024, "height": 768})  # a projector
    visit(page, base + "/?window=7d", "overview-1024x768")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024


def test_trace_search_finds_the_refund_incident(page: Any, server: Server,
                                               demo: dict[str, Any]) -> None:
    page.goto(server.url + "/traces")
    page.fill("input[name=ref]", "refund-incident")
    page.press("input[name=ref]", "Enter")
    page.wait_for_url(re.compile(r".*ref=refund-incident.*"))
    rows = page.locator("table tbody tr")
    assert rows.count() == 1 and "refund-incident" in rows.first.inner_text()
    rows.first.locator("a").first.click()
    page.wait_for_url(re.compile(r".*/traces/[0-9a-f]{32}$"))
    assert page.locator("[data-testid=handoff-path]").inner_text() == "Router → Support → Billing"
    assert "process_refund" in page.locator("[data-testid=failing-tools]").inner_text()
    assert "✖" in page.locator("[data-testid=failing-tools]").inner_text()  # not colour alone
    error_row = page.locator("tr.st-error").first
    assert "error" in error_row.inner_text()
    error_row.locator("summary").click()
    assert "TimeoutError" in error_row.inner_text() or "Error" in error_row.inner_text()
    erased = page.locator(f"#ev-{demo['erased']}")
    assert "payload erased" in erased.inner_text()
    shot(page, "trace-incident-open")
    assert page.console.errors == []


def test_live_feed_shows_a_posted_event_within_two_seconds(page: Any, server: Server,
                                                          demo: dict[str, Any]) -> None:
    page.goto(server.url + "/live")
    page.locator("#live-state", has_text="● live").wait_for(timeout=5000)
    action = f"live-check-{time.time_ns()}"
    event = {"event_type": "agent.tool_call", "agent_name": "Router", "action": action,
             "params": {"q": 1}}
    posted = time.monotonic()
    r = httpx.post(server.url + "/v1/events", json=event, timeout=10,
                   headers={"Authorization": f"Bearer {demo['keys']['ingest']}"})
    assert r.status_code in (200, 201, 202), r.text
    page.locator("#feed tr", has_text=action).wait_for(timeout=2000)
    assert time.monotonic() - posted < 2.0
    # paused: a new event is held, not shown; resumed: it appears
    page.click("#pause")
    held = f"held-{time.time_ns()}"
    httpx.post(server.url + "/v1/events", json={**event, "action": held}, timeout=10,
               headers={"Authorization": f"Bearer {demo['keys']['ingest']}"})
    page.locator("#live-state", has_text="1 new").wait_for(timeout=2000)
    assert page.locator("#feed tr", has_text=held).count() == 0
    page.click("#pause")
    page.locator("#feed tr", has_text=held).wait_for(timeout=2000)
    shot(page, "live-after-post")
    assert page.console.errors == []


def test_live_feed_filters_errors_only(page: Any, server: Server, demo: dict[str, Any]) -> None:
    page.goto(server.url + "/live")
    page.check("#f-errors")
    page.click("#live-filters button[type=submit]")
    page.locator("#live-state", has_text="● live").wait_for(timeout=5000)
    auth = {"Authorization": f"Bearer {demo['keys']['ingest']}"}
    quiet, loud = f"quiet-{time.time_ns()}", f"loud-{time.time_ns()}"
    httpx.post(server.url + "/v1/events", headers=auth, timeout=10, json=[
        {"event_type": "agent.tool_call", "agent_name": "Router", "action": quiet},
        {"event_type": "agent.error", "agent_name": "Router", "action": loud,
         "error": "boom", "error_type": "RuntimeError"}])
    page.locator("#feed tr", has_text=loud).wait_for(timeout=5000)
    assert page.locator("#feed tr", has_text=quiet).count() == 0
    assert "✖ error" in page.locator("#feed tr", has_text=loud).inner_text()


def test_compliance_evidence_links_to_a_trace(page: Any, server: Server) -> None:
    page.goto(server.url + "/reports")
    page.click("[data-testid=compliance-link]")
    page.goto(server.url + "/reports/compliance?since=30d")
    row = page.locator("tr", has_text="No personal data")
    assert "✖ fail" in row.inner_text()
    links = row.locator("a[data-testid=evidence]")
    assert links.count() == 1
    links.first.click()
    page.wait_for_url(re.compile(r".*/traces/pii-leak-trace#ev-.*"))
    assert page.locator("h1").inner_text() == "Trace pii-leak-trace"
    assert page.console.errors == []


def test_alerts_link_to_their_trace_and_evidence(page: Any, server: Server,
                                                 demo: dict[str, Any]) -> None:
    page.goto(server.url + "/alerts")
    for _ in range(20):  # detection rules may have raised newer alerts: page on
        if page.locator("tbody tr", has_text="prompt_injection").count():
            break
        page.click("a[rel=next]")
    assert page.locator("tbody tr", has_text="prompt_injection").count() == 1
    assert "⚠ security" in page.locator("tbody tr", has_text="prompt_injection").inner_text()
    page.locator(f"a[href='/evidence/{demo['failing_event']}']").first.click()
    page.wait_for_url(re.compile(rf".*/traces/{demo['incident']}#ev-{demo['failing_event']}"))
    assert page.locator(f"#ev-{demo['failing_event']}").count() == 1


def test_agent_page_links_to_the_agent_report(page: Any, server: Server) -> None:
    page.goto(server.url + "/agents")
    page.click("a[href^='/agents/Billing']")
    assert page.locator("h1").inner_text() == "Agent Billing"
    assert page.locator("text=Support → Billing").count() >= 1  # handoffs in
    with page.expect_navigation():
        page.click("text=Agent report")
    assert "Billing" in page.content()


def test_verify_now_shows_progress_and_result(page: Any, server: Server) -> None:
    page.goto(server.url + "/integrity")
    assert page.locator("#vkey").input_value().startswith("agentaudit+")
    page.click("#verify")
    page.wait_for_url(re.compile(r".*/integrity\?job=.*"))
    page.locator("#verify-result", has_text="verified").wait_for(timeout=15000)
    assert "✔" in page.locator("#verify-result").inner_text()
    shot(page, "integrity-verified")
    assert page.console.errors == []


def test_keyboard_reaches_navigation_and_event_details(page: Any, server: Server) -> None:
    page.goto(server.url + "/traces/refund-incident")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "agentaudit"
    page.focus("tr.st-error summary")
    page.keyboard.press("Enter")
    assert page.locator("tr.st-error details").first.get_attribute("open") is not None
