"""API keys of the collector in PostgreSQL (same rules and format as ``_sqlite_keys``)."""

from __future__ import annotations

import hmac
import time
from typing import Any

import psycopg

from agentaudit.exceptions import StoreError
from agentaudit.store._sqlite_keys import (
    _COLUMNS,
    _ID_RE,
    ApiKey,
    _row,
    hash_key,
    key_id_of,
    store_new_key,
)

__all__ = ["create_key", "delete_key", "list_keys", "lookup_key", "revoke_key"]


def create_key(conn: Any, tenant: str, scope: str,
               name: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret (the only time the secret exists)."""
    return store_new_key(
        lambda row: conn.execute("INSERT INTO api_keys (id, tenant, scope, name, key_hash, "
                                 "created_at) VALUES (%s, %s, %s, %s, %s, %s)", row),
        psycopg.errors.UniqueViolation, psycopg.Error, tenant, scope, name)


def list_keys(conn: Any, tenant: str | None = None) -> list[ApiKey]:
    try:
        if tenant is None:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")
        else:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE tenant = %s "
                                "ORDER BY created_at, id", (tenant,))
        return [_row(r) for r in rows.fetchall()]
    except psycopg.Error as e:
        raise StoreError(f"cannot read API keys: {e}") from e


def revoke_key(conn: Any, key_id: str, tenant: str | None = None) -> ApiKey | None:
    if not _ID_RE.match(key_id):
        return None
    try:
        row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,)).fetchone()
        if row is None or (tenant is not None and row[1] != tenant):
            return None
        key = _row(row)
        if key.revoked:
            return key
        at = time.time()
        conn.execute("UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                     (at, key_id))
        return ApiKey(key.id, key.tenant, key.scope, key.name, key.created_at, at)
    except psycopg.Error as e:
        raise StoreError(f"cannot revoke the API key: {e}") from e


def delete_key(conn: Any, key_id: str) -> None:
    try:
        conn.execute("DELETE FROM api_keys WHERE id = %s", (key_id,))
    except psycopg.Error as e:
        raise StoreError(f"cannot delete the API key: {e}") from e


def lookup_key(conn: Any, secret: str) -> ApiKey | None:
    key_id = key_id_of(secret) if isinstance(secret, str) else None
    if key_id is None:
        return None
    try:
        row = conn.execute(f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE id = %s",
                           (key_id,)).fetchone()
    except psycopg.Error as e:
        raise StoreError(f"cannot read API keys: {e}") from e
    if row is None or not hmac.compare_digest(bytes(row[6]), hash_key(secret)):
        return None
    return _row(row[:6])
