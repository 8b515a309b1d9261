"""Access to the dashboard: login with a read key, wrong keys refused, tenants enforced, CSRF,
the Content-Security-Policy; and the pages' behaviour over plain HTTP (reports, pagination)."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import httpx
import pytest

from agentaudit.server.dashboard.pages import TRACE_PAGE_EVENTS
from agentaudit.server.dashboard.session import COOKIE
from server.conftest import Server, free_port, make_key, wait_for

from .conftest import Console, shot

PAGES = ["/", "/live", "/traces", "/traces/refund-incident", "/agents", "/agents/Billing",
         "/reports", "/reports/compliance", "/alerts", "/integrity"]


def viewer(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, cookies={COOKIE: key}, timeout=30.0,
                        follow_redirects=False)


def test_every_page_needs_a_key(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as anon:
        for path in PAGES:
            r = anon.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next="), path
        assert anon.get("/live/stream").status_code == 401
        assert anon.get("/login").status_code == 200


@pytest.mark.slow
def test_login_refuses_wrong_keys_and_keeps_the_right_one_httponly(
        browser: Any, server: Server, demo: dict[str, Any]) -> None:
    context = browser.new_context()
    page = context.new_page()
    console = Console(page)
    try:
        page.goto(server.url + "/traces?agent=Billing")
        assert "/login?next=" in page.url
        page.fill("#key", "aa_not_a_real_key_at_all")
        with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
            page.click("button[type=submit]")
        assert answer.value.status == 401
        assert "invalid API key" in page.locator("[role=alert]").inner_text()
        shot(page, "login-refused")
        page.fill("#key", demo["keys"]["ingest"])
        page.click("button[type=submit]")
        assert "needs a read or admin key" in page.locator("[role=alert]").inner_text()
        assert context.cookies() == []
        page.fill("#key", demo["keys"]["read"])
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/traces?agent=Billing")
        (cookie,) = context.cookies()
        assert cookie["name"] == COOKIE and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        page.click("text=Sign out")
        page.wait_for_url("**/login?reason=signed+out")
        shot(page, "login")
        assert context.cookies() == []
        # the refused sign-ins are answered 401 and 403, which the browser reports; nothing else
        assert [e for e in console.errors if "status of 401" not in e
                and "status of 403" not in e] == []
    finally:
        context.close()


def test_another_tenants_trace_is_not_found(server: Server, demo: dict[str, Any]) -> None:
    with viewer(server, demo["keys"]["read"]) as mine, viewer(server, demo["keys"]["globex"]) as \
            theirs:
        assert theirs.get(f"/traces/{demo['other_trace']}").status_code == 200
        assert mine.get(f"/traces/{demo['other_trace']}").status_code == 404
        assert mine.get("/traces/globex-task").status_code == 404
        assert theirs.get("/traces/refund-incident").status_code == 404
        assert theirs.get(f"/traces/{demo['incident']}").status_code == 404
        assert theirs.get(f"/evidence/{demo['failing_event']}").status_code == 404
        assert "No traces match." in theirs.get("/traces?ref=refund-incident").text
        page = theirs.get("/")
        assert 'data-testid="tenant">globex<' in page.text
        r = theirs.get(f"/integrity/prove?event_id={demo['failing_event']}")
        assert r.status_code == 404


@pytest.mark.slow
def test_another_tenants_trace_is_404_in_the_browser(page: Any, server: Server,
                                                     demo: dict[str, Any]) -> None:
    response = page.goto(server.url + f"/traces/{demo['other_trace']}")
    assert response is not None and response.status == 404
    assert "No trace" in page.locator("[role=alert]").inner_text()
    shot(page, "other-tenant-404")


def test_pages_forbid_external_sources_and_framing(server: Server, demo: dict[str, Any]) -> None:
    with viewer(server, demo["keys"]["read"]) as client:
        for path in PAGES:
            r = client.get(path)
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert 'src="http' not in r.text and 'href="http' not in r.text, path
        for asset in ("/static/dashboard.css", "/static/live.js", "/static/integrity.js"):
            assert client.get(asset).status_code == 200


def test_state_changes_need_the_csrf_token_and_this_origin(server: Server,
                                                           demo: dict[str, Any]) -> None:
    with viewer(server, demo["keys"]["read"]) as client:
        assert client.post("/integrity/verify", data={"csrf": "forged"}).status_code == 403
        page = client.get("/integrity").text
        token = page.split('name="csrf" value="')[1].split('"')[0]
        evil = {"Origin": "http://evil.example"}
        assert client.post("/integrity/verify", data={"csrf": token},
                           headers=evil).status_code == 403
        r = client.post("/integrity/verify", data={"csrf": token})
        assert r.status_code == 303 and r.headers["location"].startswith("/integrity?job=")
    with httpx.Client(base_url=server.url, timeout=30.0) as anon:
        r = anon.post("/login", data={"key": demo["keys"]["read"]},
                      headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and COOKIE not in r.cookies


def test_a_revoked_key_is_signed_out_at_once(server: Server, demo: dict[str, Any]) -> None:
    from agentaudit.server.keys import revoke_key
    from agentaudit.store.sqlite import SQLiteStore

    key = make_key(demo["db"], "default", "read", "short-lived")
    with viewer(server, key) as client:
        assert client.get("/alerts").status_code == 200
        with SQLiteStore(demo["db"]) as store:
            key_id = next(k.id for k in store.list_keys("default") if k.name == "short-lived")
            revoke_key(store, key_id, "default")
        r = client.get("/alerts")
        assert r.status_code == 303 and "revoked" in r.headers["location"]


def test_a_big_trace_is_paginated(server: Server, demo: dict[str, Any]) -> None:
    n = TRACE_PAGE_EVENTS * 2 + 50
    now = time.time()
    events = [{"event_type": "agent.tool_call", "agent_name": "Bulk", "action": f"step-{i}",
               "trace_id": "big-trace", "timestamp": now + i / 1000} for i in range(n)]
    r = httpx.post(server.url + "/v1/events", json=events, timeout=30,
                   headers={"Authorization": f"Bearer {demo['keys']['ingest']}"})
    assert r.status_code in (200, 201, 202), r.text
    with viewer(server, demo["keys"]["read"]) as client:
        # detection rules may add their own events to the trace: count what is stored
        total = len(httpx.get(server.url + "/v1/events?trace_id=big-trace&limit=1000",
                              headers={"Authorization": f"Bearer {demo['keys']['read']}"},
                              timeout=30).json()["data"])
        pages = -(-total // TRACE_PAGE_EVENTS)
        assert total >= n and pages >= 3
        first = client.get("/traces/big-trace").text
        assert f"Page 1 of {pages} ({TRACE_PAGE_EVENTS} events a page)" in first
        assert first.count('<tr id="ev-') == TRACE_PAGE_EVENTS
        assert "step-0<" in first and f"step-{TRACE_PAGE_EVENTS}<" not in first
        last = client.get(f"/traces/big-trace?page={pages}").text
        assert last.count('<tr id="ev-') == total - (pages - 1) * TRACE_PAGE_EVENTS
        every = "".join(client.get(f"/traces/big-trace?page={p}").text
                        for p in range(1, pages + 1))
        assert all(f" step-{i}<" in every for i in range(n))
        assert client.get("/traces/big-trace?page=99").text.count('<tr id="ev-') == \
            total - (pages - 1) * TRACE_PAGE_EVENTS  # clamped to the last


def test_reports_view_and_download_every_format(server: Server, demo: dict[str, Any]) -> None:
    with viewer(server, demo["keys"]["read"]) as client:
        for kind, extra in (("summary", ""), ("tool-usage", ""), ("errors", ""),
                            ("compliance", ""), ("cost", ""), ("daily", ""),
                            ("agent", "&agent=Billing"), ("forensics", "&trace=refund-incident")):
            r = client.get(f"/reports/view?kind={kind}&since=7d&fmt=html{extra}")
            assert r.status_code == 200, (kind, r.text[:300])
            assert r.headers["content-type"].startswith("text/html")
            for fmt in ("md", "json", "csv"):
                d = client.get(f"/reports/view?kind={kind}&since=7d&fmt={fmt}&download=1{extra}")
                assert d.status_code == 200, (kind, fmt)
                assert d.headers["content-disposition"] == \
                    f'attachment; filename="{kind}-report.{fmt}"'
        assert client.get("/reports/view?kind=summary&fmt=md").headers[
            "content-type"].startswith("text/plain")
        bad = client.get("/reports/view?kind=forensics&fmt=html")
        assert bad.status_code == 400 and "needs a trace id" in bad.text
        assert client.get("/reports/view?kind=nope").status_code == 400
        assert client.get("/reports/view?kind=summary&since=tomorrowish").status_code == 400
        missing = client.get("/reports/view?kind=forensics&trace=no-such-trace")
        assert missing.status_code == 404


def test_bad_search_input_is_answered_with_a_reason(server: Server, demo: dict[str, Any]) -> None:
    with viewer(server, demo["keys"]["read"]) as client:
        r = client.get("/traces?since=yesterday-ish")
        assert r.status_code == 400 and "cannot read the time" in r.text
        assert client.get("/traces?cursor=garbage").status_code == 400
        assert client.get("/agents/NoSuchAgent").status_code == 404
        assert client.get("/agents?since=soon").status_code == 400
        assert client.get("/?window=13y").status_code == 200  # falls back to 24h


def test_no_auth_on_loopback_shows_tenant_default(demo: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --no-auth`` (the same app under uvicorn, in this process): no login, tenant
    ``default``, said so on every page."""
    import uvicorn

    # the store's signing key: a collector signs a checkpoint when it stops
    monkeypatch.setenv("XDG_CONFIG_HOME", str(demo["home"] / "config"))

    from agentaudit.server.app import create_app
    from agentaudit.server.settings import ServerSettings

    port = free_port()
    app = create_app(ServerSettings(db=str(demo["db"]), port=port, auth_disabled=True))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: srv.started)
        r = httpx.get(f"http://127.0.0.1:{port}/traces/refund-incident", timeout=30)
        assert r.status_code == 200 and 'data-testid="tenant">default<' in r.text
        assert "authentication disabled" in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/login").status_code == 303
    finally:
        srv.should_exit = True
        thread.join(20)


def test_trace_search_filters(server: Server, demo: dict[str, Any]) -> None:
    incident = demo["incident"]
    with viewer(server, demo["keys"]["read"]) as client:
        for query in (f"user_id={demo['user']}", f"session_id={demo['session']}",
                      "agent=Billing&status=error", "ref=refund-incident&status=error",
                      f"ref={incident}"):
            page = client.get(f"/traces?{query}")
            assert page.status_code == 200 and f"/traces/{incident}" in page.text, query
        assert f"/traces/{incident}" not in client.get("/traces?ref=refund-incident&status=ok").text
        assert f"/traces/{incident}" not in client.get("/traces?until=2000-01-01").text
        first = client.get("/traces").text
        older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        second = client.get(older.replace("&amp;", "&")).text
        shown = set(re.findall(r'href="/traces/([0-9a-f]{32})"', first))
        assert shown and set(re.findall(r'href="/traces/([0-9a-f]{32})"', second)) - shown


def _follow(client: httpx.Client, path: str, pages: int = 50) -> list[str]:
    """The HTML of ``path`` and of every page after it (``rel="next"`` links)."""
    out = []
    while path and len(out) < pages:
        html = client.get(path).text
        out.append(html)
        nxt = html.split('" rel="next"')[0].rsplit('href="', 1)[1] if 'rel="next"' in html \
            else ""
        path = nxt.replace("&amp;", "&")
    return out


def test_alerts_page_through_older_alerts(server: Server, demo: dict[str, Any]) -> None:
    now = time.time()
    alerts = [{"event_type": "agent.security", "agent_name": "Scanner", "action": f"probe-{i}",
               "timestamp": now - 5 * 86400 + i * 60, "params": {"severity": "low"}}
              for i in range(55)]
    r = httpx.post(server.url + "/v1/events", json=alerts, timeout=30,
                   headers={"Authorization": f"Bearer {demo['keys']['ingest']}"})
    assert r.status_code in (200, 201, 202), r.text
    with viewer(server, demo["keys"]["read"]) as client:
        pages = _follow(client, "/alerts")
        assert len(pages) >= 2 and all(p.count("<tr>") <= 51 for p in pages)  # 50 + header
        probes = [n for p in pages for n in re.findall(r"probe-(\d+)", p)]
        assert probes == [str(i) for i in range(54, -1, -1)]  # newest first, none twice
        text = "".join(pages)
        assert text.index("prompt_injection") < text.index("probe-54")
        assert client.get("/alerts?cursor=nonsense").status_code == 400
