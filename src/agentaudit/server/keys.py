"""Key management that audits itself: every creation and revocation is an ``audit.*`` event.

Shared by ``agentaudit keys`` (which writes to the store directly) and the collector's admin
endpoints (which go through the group-commit writer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentaudit.events import AuditEvent, EventType

if TYPE_CHECKING:
    from agentaudit.store._sqlite_keys import ApiKey
    from agentaudit.store.sqlite import SQLiteStore

__all__ = ["create_key_audited", "key_event", "revoke_key", "revoke_key_audited"]


def key_event(kind: str, key: ApiKey, actor: str) -> AuditEvent:
    """The ``audit.key_created`` / ``audit.key_revoked`` event of ``key`` (never its secret)."""
    event_type = EventType.AUDIT_KEY_CREATED if kind == "created" else EventType.AUDIT_KEY_REVOKED
    params: dict[str, object] = {"key_id": key.id, "scope": key.scope, "by": actor}
    if key.name:
        params["name"] = key.name
    return AuditEvent(event_type=str(event_type), agent_name="agentaudit", tenant=key.tenant,
                      action=f"key_{kind}", params=params, source=actor,
                      timestamp=key.revoked_at if kind == "revoked" and key.revoked_at
                      else key.created_at)


def create_key_audited(store: SQLiteStore, tenant: str, scope: str, name: str | None,
                       actor: str) -> tuple[ApiKey, str]:
    """Create a key and log ``audit.key_created``; undo the key when the event cannot be stored."""
    key, secret = store.create_key(tenant, scope, name)
    try:
        store.append_batch([key_event("created", key, actor)])
    except BaseException:
        store.delete_key(key.id)
        raise
    return key, secret


def revoke_key_audited(store: SQLiteStore, key_id: str, tenant: str | None,
                       actor: str) -> tuple[ApiKey | None, bool]:
    """Revoke a key and log ``audit.key_revoked``; returns (key, newly revoked)."""
    key, newly = revoke_key(store, key_id, tenant)
    if key is not None and newly:
        store.append_batch([key_event("revoked", key, actor)])
    return key, newly


def revoke_key(store: SQLiteStore, key_id: str, tenant: str | None) -> tuple[ApiKey | None, bool]:
    """Revoke without logging; returns (key or None when unknown, whether it was live before)."""
    existing = [k for k in store.list_keys(tenant) if k.id == key_id]
    if not existing:
        return None, False
    if existing[0].revoked:
        return existing[0], False
    return store.revoke_key(key_id, tenant), True
