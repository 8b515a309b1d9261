"""A real collector (``agentaudit serve``) on a free loopback port over a demo store, and a real
headless Chromium (Debian's, never a downloaded one) driven by Playwright for Python."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.conftest import Server, make_key, server_env

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run"]


def chromium_or_skip() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing on CI: install Debian's chromium package")
    pytest.skip(f"SKIPPED LOUDLY: {CHROMIUM} is not installed, so the dashboard was not tested "
                "in a browser (apt-get install chromium)")


def _alert_events(trace_id: str, evidence: str, now: float) -> list[Any]:
    from agentaudit.events import AuditEvent

    return [AuditEvent(event_type="agent.security", agent_name="Billing", action="prompt_injection",
                       trace_id=trace_id, timestamp=now + 1, reasoning="tool output asked to "
                       "ignore previous instructions",
                       params={"severity": "high", "evidence": [evidence]}),
            AuditEvent(event_type="agent.compliance", agent_name="Support", action="pii_in_output",
                       trace_id=trace_id, timestamp=now + 2,
                       params={"severity": "medium", "evidence": [evidence]})]


def _pii_leak() -> Any:
    from agentaudit.events import AuditEvent

    return AuditEvent(event_type="agent.tool_result", agent_name="Support", action="lookup_user",
                      trace_id="pii-leak-trace", result="jane.doe@example.com, card "
                      "4111 1111 1111 1111", timestamp=time.time() - 120)


def _erase(db: Path, event_id: str) -> None:
    """Erase one payload as retention does: payload, salt and user gone, the reason kept."""
    import sqlite3

    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE events SET payload = NULL, salt = NULL, user_id = NULL, "
                    "erased = 'gdpr erasure request' WHERE event_id = ?", (event_id,))
    con.close()


def _other_tenant_trace(db: Path) -> str:
    from agentaudit.events import AuditEvent
    from agentaudit.store.sqlite import SQLiteStore

    ev = AuditEvent(event_type="agent.invocation", agent_name="Spy", tenant="globex",
                    trace_id="globex-secret-trace", task_id="globex-task", action="run")
    with SQLiteStore(db) as store:
        store.append_batch([ev])
    return "globex-secret-trace"


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A demo store (with the refund incident), alerts, a second tenant and keys; built in the
    environment of the server so that its signing key is the server's."""
    home = tmp_path_factory.mktemp("dashboard")
    db = home / "audit.db"
    env = server_env(home)
    subprocess.run([sys.executable, "-m", "agentaudit.cli", "demo", "--db", str(db),
                    "--traces", "60"], env=env, check=True, capture_output=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(home / "config"))
        from agentaudit.store.sqlite import SQLiteStore

        with SQLiteStore(db) as store:
            incident = store.trace_events("default", "refund-incident")
            failing = next(ev for ev in incident if ev.event_type == "agent.error")
            store.append_batch([*_alert_events(incident[0].trace_id or "", failing.event_id,
                                              failing.timestamp),
                                _pii_leak()])
        _erase(db, incident[0].event_id)
        keys = {"read": make_key(db, "default", "read", "dashboard"),
                "ingest": make_key(db, "default", "ingest", "agent"),
                "globex": make_key(db, "globex", "read", "other tenant")}
        other = _other_tenant_trace(db)
    return {"home": home, "db": db, "keys": keys, "incident": incident[0].trace_id,
            "erased": incident[0].event_id, "user": failing.user_id,
            "session": failing.session_id,
            "failing_event": failing.event_id, "other_trace": other}


@pytest.fixture(scope="session")
def server(demo: dict[str, Any]) -> Iterator[Server]:
    srv = Server(demo["db"], demo["home"]).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API runs an event loop in this thread
    while it is started, so it must stop before other modules run their own loops."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def login(page: Any, base: str, key: str) -> None:
    page.goto(base + "/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def signed_in(browser: Any, base: str, key: str) -> Iterator[Any]:
    """A page of a fresh browser context, signed in with ``key``, its console recorded."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    p = context.new_page()
    p.console = Console(p)
    login(p, base, key)
    try:
        yield p
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, server: Server, demo: dict[str, Any]) -> Iterator[Any]:
    """A signed-in page of a fresh browser context (tenant ``default``)."""
    yield from signed_in(browser, server.url, demo["keys"]["read"])


def every_page(demo: dict[str, Any]) -> dict[str, str]:
    """Name -> path of every dashboard page, on the demo data."""
    return {
        "overview": "/?window=7d", "overview-15m": "/?window=15m", "live": "/live",
        "traces": "/traces", "trace": "/traces/refund-incident", "agents": "/agents",
        "agent": "/agents/Billing", "reports": "/reports",
        "compliance": "/reports/compliance?since=30d", "alerts": "/alerts",
        "integrity": "/integrity",
        "prove": f"/integrity/prove?event_id={demo['failing_event']}",
        "report-summary": "/reports/view?kind=summary&since=7d&fmt=html",
    }


def visit(page: Any, url: str, name: str) -> Any:
    """Load ``url`` (200 expected), save its screenshot, and insist on a clean console."""
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    shot(page, name)
    assert page.console.errors == [], (url, page.console.errors)
    return response


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
