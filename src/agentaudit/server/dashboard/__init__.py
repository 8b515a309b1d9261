"""The live web dashboard served by ``agentaudit serve`` at ``/`` (docs/dashboard.md).

Server-rendered pages (Jinja2) over the same query layer as the CLI and the HTTP API, a little
of our own JavaScript (live feed, verify progress), every asset served by the package itself.
``install(app)`` adds the pages, the login and the static files to the collector's app.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from agentaudit.server.dashboard import integrity_pages, pages, report_pages
from agentaudit.server.dashboard.rollup import Rollups
from agentaudit.server.dashboard.session import (
    COOKIE,
    LoginRequired,
    auth_disabled,
    check_csrf,
    login_redirect,
    lookup_principal,
    page_headers,
    safe_next,
    same_origin,
    set_key_cookie,
)
from agentaudit.server.dashboard.templating import render

__all__ = ["STATIC_DIR", "install"]

log = logging.getLogger("agentaudit.server")
STATIC_DIR = Path(__file__).parent / "static"
_login = APIRouter(include_in_schema=False)


def _login_form(request: Request, next_url: str, reason: str, status: int = 200) -> Response:
    return render(request, "login.html.j2", status_code=status, title="Sign in",
                  next_url=safe_next(next_url), reason=reason)


@_login.get("/login")
def login_page(request: Request) -> Response:
    if auth_disabled(request):
        return RedirectResponse("/", status_code=303, headers=page_headers())
    q = request.query_params
    return _login_form(request, q.get("next", "/"), q.get("reason", "")[:300])


@_login.post("/login")
def login(request: Request, key: Annotated[str, Form(max_length=512)] = "",
          next_url: Annotated[str, Form(alias="next", max_length=2048)] = "/") -> Response:
    """Check the key; keep it in an HttpOnly, SameSite=Strict cookie when it may read."""
    if not same_origin(request):
        return _login_form(request, next_url, "sign-in refused: the form came from another "
                                              "site", 403)
    key = key.strip()
    if not key:
        return _login_form(request, next_url, "enter an API key with read scope", 401)
    found = lookup_principal(request, key)
    if isinstance(found, str):
        return _login_form(request, next_url, found, 401 if "scope" not in found else 403)
    response = RedirectResponse(safe_next(next_url), status_code=303, headers=page_headers())
    set_key_cookie(response, request, key)
    return response


@_login.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    if not check_csrf(request, csrf):
        return RedirectResponse("/", status_code=303, headers=page_headers())
    response = RedirectResponse("/login?reason=signed+out", status_code=303,
                                headers=page_headers())
    response.delete_cookie(COOKIE, path="/")
    return response


def _build_rollups(rollups: Rollups, url: str) -> None:
    from agentaudit.store import open_store

    try:
        store = open_store(url, create=False, readonly=True)
        try:
            rollups.build(store)
        finally:
            store.close()
    except Exception as e:  # pages answer from the rollups they can build on demand
        log.warning("agentaudit dashboard: cannot build the rollups: %s", e)
        rollups.error = str(e)
        rollups.ready.set()


def _with_rollups(app: FastAPI, rollups: Rollups) -> None:
    """Build the rollups in the background once the collector has started."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            threading.Thread(target=_build_rollups,
                             args=(rollups, a.state.collector.settings.db),
                             name="agentaudit-dashboard-rollups", daemon=True).start()
            yield state

    app.router.lifespan_context = lifespan


def install(app: FastAPI) -> None:
    """Add the dashboard to the collector's ``app``."""
    rollups = Rollups()
    app.state.dashboard_rollups = rollups
    _with_rollups(app, rollups)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith(("/live/stream", "/integrity/verify/")):
            return Response(exc.reason or "sign in first", status_code=401,
                            media_type="text/plain", headers=page_headers())
        return login_redirect(request, exc)

    app.include_router(_login)
    app.include_router(pages.router)
    app.include_router(report_pages.router)
    app.include_router(integrity_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
