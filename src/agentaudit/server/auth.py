"""Who is calling: API keys, their tenant and scope.

``ingest`` keys only write, ``read`` keys only read, ``admin`` keys manage keys and read. Every
query runs in the key's tenant. With authentication disabled (loopback only) every request acts
as tenant ``default`` with all scopes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agentaudit.server.errors import ApiError

__all__ = ["ALL_SCOPES", "Principal", "authenticate", "bearer", "require"]

ALL_SCOPES = frozenset({"ingest", "read", "admin"})
# What each key scope may do.
_GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"admin", "read"}),
}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

# Declares the scheme in /openapi.json; the header is read by ``authenticate``.
bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                    description="An agentaudit API key: `Authorization: Bearer aa_…` "
                                "(or the header `X-API-Key: aa_…`).")


@dataclass(frozen=True)
class Principal:
    """The caller: its tenant, what it may do, and the key id (None without authentication)."""

    tenant: str
    scopes: frozenset[str]
    key_id: str | None = None

    @property
    def actor(self) -> str:
        """Who did it, for ``audit.*`` events."""
        return f"api-key:{self.key_id}" if self.key_id else "local (authentication disabled)"


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""
    return request.headers.get("x-api-key")


def authenticate(request: Request, scope: str) -> Principal:
    """The caller of ``request`` if it may use ``scope``; else ``ApiError`` 401 or 403."""
    collector = request.app.state.collector
    if collector.settings.auth_disabled:
        return Principal("default", ALL_SCOPES)
    secret = _presented_key(request)
    if secret is None:
        raise ApiError(401, "missing API key: send `Authorization: Bearer aa_…`", _CHALLENGE)
    with collector.pool.store() as store:
        key = store.lookup_key(secret) if secret else None
    if key is None:
        raise ApiError(401, "invalid API key", _CHALLENGE)
    if key.revoked:
        raise ApiError(401, "API key revoked", _CHALLENGE)
    grants = _GRANTS.get(key.scope, frozenset())
    if scope not in grants:
        raise ApiError(403, f"this API key has scope {key.scope!r}; this endpoint needs "
                            f"{'read or admin' if scope == 'read' else scope!r}")
    return Principal(key.tenant, grants, key.id)


def require(scope: str) -> Callable[..., Principal]:
    """A FastAPI dependency resolving to the caller when it may use ``scope``."""

    def dependency(request: Request,
                   _declared: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        return authenticate(request, scope)

    dependency.__name__ = f"require_{scope}"
    return dependency
