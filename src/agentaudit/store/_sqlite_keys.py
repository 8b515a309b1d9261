"""API keys of the collector, in the ``api_keys`` table (migration ``0003_api_keys``).

A key reads ``aa_<12 hex id><36 hex secret>``. Only its SHA-256 is stored, next to the id
(``aa_`` + the first 12 hex digits) kept in clear so that a presented key is found by one indexed
look-up and then compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentaudit.exceptions import ConfigError, StoreError

__all__ = ["KEY_PREFIX", "SCOPES", "ApiKey", "create_key", "delete_key", "hash_key", "key_id_of",
           "list_keys", "lookup_key", "revoke_key"]

KEY_PREFIX = "aa_"
SCOPES = ("ingest", "read", "admin")
_ID_HEX = 12
_KEY_RE = re.compile(r"^aa_[0-9a-f]{48}$")
_ID_RE = re.compile(r"^aa_[0-9a-f]{12}$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_COLUMNS = "id, tenant, scope, name, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    """What is known of a key besides its secret."""

    id: str
    tenant: str
    scope: str
    name: str | None
    created_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def hash_key(secret: str) -> bytes:
    """SHA-256 of the full key text."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def key_id_of(secret: str) -> str | None:
    """The id of a well-formed key (``aa_`` + 12 hex), or None when it is not one."""
    return secret[: len(KEY_PREFIX) + _ID_HEX] if _KEY_RE.match(secret) else None


def _row(r: tuple[object, ...]) -> ApiKey:
    return ApiKey(str(r[0]), str(r[1]), str(r[2]), None if r[3] is None else str(r[3]),
                  float(r[4]), None if r[5] is None else float(r[5]))  # type: ignore[arg-type]


def _check(tenant: str, scope: str, name: str | None) -> None:
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if not isinstance(tenant, str) or not _TENANT_RE.match(tenant):
        raise ConfigError(f"tenant {tenant!r} must be 1-64 of A-Z a-z 0-9 _ . - "
                          "(starting alphanumeric)")
    if name is not None and len(name) > 200:
        raise ConfigError("a key name is at most 200 characters")


def store_new_key(insert: Callable[[tuple[Any, ...]], object],
                  collision: type[Exception], failure: type[Exception], tenant: str,
                  scope: str, name: str | None) -> tuple[ApiKey, str]:
    """Draw a key and store it with ``insert`` (the values of an ``api_keys`` row: id, tenant,
    scope, name, key_hash, created_at), drawing again on an id ``collision``; any other
    ``failure`` of the backend becomes a StoreError. Returns the key and its secret (the only
    time the secret exists). Shared by every backend."""
    _check(tenant, scope, name)
    for _ in range(5):
        secret = KEY_PREFIX + secrets.token_hex(24)
        key = ApiKey(secret[: len(KEY_PREFIX) + _ID_HEX], tenant, scope, name, time.time())
        try:
            insert((key.id, tenant, scope, name, hash_key(secret), key.created_at))
            return key, secret
        except collision:
            continue  # an id collision (48 random bits): draw again
        except failure as e:
            raise StoreError(f"cannot store the API key: {e}") from e
    raise StoreError("cannot draw an unused API key id")


def create_key(db: sqlite3.Connection, tenant: str, scope: str,
               name: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret (the only time the secret exists)."""
    return store_new_key(
        lambda row: db.execute("INSERT INTO api_keys (id, tenant, scope, name, key_hash, "
                               "created_at) VALUES (?, ?, ?, ?, ?, ?)", row),
        sqlite3.IntegrityError, sqlite3.Error, tenant, scope, name)


def list_keys(db: sqlite3.Connection, tenant: str | None = None) -> list[ApiKey]:
    """Every key (of one tenant), oldest first, revoked ones included."""
    try:
        if tenant is None:
            rows = db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")
        else:
            rows = db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE tenant = ? "
                              "ORDER BY created_at, id", (tenant,))
        return [_row(r) for r in rows.fetchall()]
    except sqlite3.Error as e:
        raise StoreError(f"cannot read API keys: {e}") from e


def _get(db: sqlite3.Connection, key_id: str, tenant: str | None) -> ApiKey | None:
    if not _ID_RE.match(key_id):
        return None
    row = db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    if row is None or (tenant is not None and row[1] != tenant):
        return None
    return _row(row)


def revoke_key(db: sqlite3.Connection, key_id: str, tenant: str | None = None,
               now: float | None = None) -> ApiKey | None:
    """Revoke a key (of ``tenant`` when given); None when there is no such key.

    Revoking a revoked key changes nothing and returns it as it is.
    """
    try:
        key = _get(db, key_id, tenant)
        if key is None or key.revoked:
            return key
        at = time.time() if now is None else now
        db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                   (at, key_id))
        return ApiKey(key.id, key.tenant, key.scope, key.name, key.created_at, at)
    except sqlite3.Error as e:
        raise StoreError(f"cannot revoke the API key: {e}") from e


def delete_key(db: sqlite3.Connection, key_id: str) -> None:
    """Remove a key whose creation could not be audited (undo of ``create_key``)."""
    try:
        db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,))
    except sqlite3.Error as e:
        raise StoreError(f"cannot delete the API key: {e}") from e


def lookup_key(db: sqlite3.Connection, secret: str) -> ApiKey | None:
    """The key whose secret this is (revoked or not), or None; compared in constant time."""
    key_id = key_id_of(secret) if isinstance(secret, str) else None
    if key_id is None:
        return None
    try:
        row = db.execute(f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE id = ?",
                         (key_id,)).fetchone()
    except sqlite3.Error as e:
        raise StoreError(f"cannot read API keys: {e}") from e
    if row is None or not hmac.compare_digest(bytes(row[6]), hash_key(secret)):
        return None
    return _row(row[:6])
