"""Who is looking at the dashboard: the read key kept in a cookie, CSRF tokens, page headers.

The key is entered once on ``/login`` and kept in an ``HttpOnly; SameSite=Strict`` cookie; every
page looks it up again, so a revoked key stops working at once. Forms that change state carry a
CSRF token derived from the key (an attacker without the key cannot compute it) and must come
from this origin. With authentication disabled (loopback only) everyone is tenant ``default``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse

from agentaudit.server.auth import ALL_SCOPES, Principal

__all__ = [
    "COOKIE",
    "CSP",
    "LoginRequired",
    "auth_disabled",
    "check_csrf",
    "csrf_token",
    "login_redirect",
    "lookup_principal",
    "page_headers",
    "safe_next",
    "same_origin",
    "set_key_cookie",
    "viewer",
]

COOKIE = "agentaudit_key"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_NO_AUTH_TOKEN = secrets.token_hex(16)  # CSRF token while authentication is disabled


class LoginRequired(Exception):  # noqa: N818 (a redirect, not an error)
    """No usable key: send the browser to the login page (``reason`` is shown there)."""

    def __init__(self, reason: str = "", clear_cookie: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.clear_cookie = clear_cookie


def page_headers() -> dict[str, str]:
    """Headers of every dashboard page: no external sources, no framing, no caching."""
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store"}


def lookup_principal(request: Request, secret: str) -> Principal | str:
    """The principal of a key that may read, or the reason it may not be used."""
    collector = request.app.state.collector
    with collector.pool.store() as store:
        key = store.lookup_key(secret) if secret else None
    if key is None:
        return "invalid API key"
    if key.revoked:
        return "this API key has been revoked"
    if key.scope not in ("read", "admin"):
        return f"this API key has scope {key.scope!r}; the dashboard needs a read or admin key"
    scopes = frozenset({"admin", "read"}) if key.scope == "admin" else frozenset({"read"})
    return Principal(key.tenant, scopes, key.id)


def auth_disabled(request: Request) -> bool:
    return bool(request.app.state.collector.settings.auth_disabled)


def viewer(request: Request) -> Principal:
    """The dashboard's viewer (a FastAPI dependency); ``LoginRequired`` without a usable key."""
    if auth_disabled(request):
        return Principal("default", ALL_SCOPES)
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise LoginRequired()
    found = lookup_principal(request, secret)
    if isinstance(found, str):
        raise LoginRequired(found + "; sign in again", clear_cookie=True)
    return found


def csrf_token(request: Request) -> str:
    """The token forms of this viewer must send back."""
    if auth_disabled(request):
        return _NO_AUTH_TOKEN
    secret = request.cookies.get(COOKIE, "")
    return hmac.new(b"agentaudit-dashboard-csrf", secret.encode(), hashlib.sha256).hexdigest()[:32]


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return urlsplit(origin).netloc == request.headers.get("host", "")
    return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")


def check_csrf(request: Request, token: str | None) -> bool:
    return same_origin(request) and bool(token) and hmac.compare_digest(
        str(token), csrf_token(request))


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request, exc: LoginRequired) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={quote(safe_next(target), safe='')}"
    if exc.reason:
        url += "&reason=" + quote(exc.reason, safe="")
    response = RedirectResponse(url, status_code=303, headers=page_headers())
    if exc.clear_cookie:
        response.delete_cookie(COOKIE, path="/")
    return response


def set_key_cookie(response: Any, request: Request, secret: str) -> None:
    response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
