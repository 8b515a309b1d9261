"""Maintenance of a PostgreSQL store: migrate with partitions ahead, and the health check behind
``agentaudit db check`` (schema version, partition coverage, role grants, row security)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentaudit.store._pg_schema import (
    INGEST_ROLE,
    MIGRATIONS,
    READER_ROLE,
    RETENTION_ROLE,
    TENANT_TABLES,
)
from agentaudit.store._pg_sql import applied_migrations, day_of, migrate

__all__ = ["Check", "check_database", "migrate_database"]


@dataclass
class Check:
    """One finding of ``check_database``."""

    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def migrate_database(conn: Any, days_ahead: int = 7, now: float | None = None) -> dict[str, Any]:
    """Apply missing migrations and create the day partitions of yesterday .. today+days_ahead."""
    applied = migrate(conn)
    today = day_of(time.time() if now is None else now)
    days = list(range(today - 1, today + days_ahead + 1))
    made = int(conn.execute("SELECT agentaudit_ensure_days(%s::integer[])",
                            (days,)).fetchone()[0])
    last = time.strftime("%Y-%m-%d", time.gmtime((today + days_ahead) * 86400))
    return {"applied": applied, "partitions_created": made, "partitions_ahead_until": last}


def _partition_days(conn: Any, parent: str) -> set[int]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s "
        "AND p.relnamespace = current_schema()::regnamespace", (parent,)).fetchall()
    prefix = parent + "_d"
    return {int(r[0][len(prefix):]) for r in rows if r[0].startswith(prefix)
            and r[0][len(prefix):].lstrip("-").isdigit()}


def _check_schema(conn: Any) -> Check:
    applied = applied_migrations(conn) or set()
    known = [n for n, _ in MIGRATIONS]
    missing = [n for n in known if n not in applied]
    unknown = sorted(applied - set(known))
    ok = not missing and not unknown
    detail = (f"{len(applied)} migrations applied, latest {max(applied) if applied else 'none'}"
              if ok else f"missing {missing}" + (f", unknown {unknown}" if unknown else ""))
    return Check("schema", ok, detail, {"applied": sorted(applied), "missing": missing,
                                        "unknown": unknown})


def _check_partitions(conn: Any, days_ahead: int, now: float) -> Check:
    events = _partition_days(conn, "events")
    payloads = _partition_days(conn, "event_payloads")
    dropped = {r[0] for r in conn.execute("SELECT day FROM payload_days_dropped")}
    today = day_of(now)
    ahead = [d for d in range(today, today + days_ahead + 1) if d not in events]
    unpaired = sorted(d for d in events - payloads if d not in dropped)
    ok = not ahead and not unpaired
    detail = (f"{len(events)} day partitions, {len(dropped)} payload days dropped by retention"
              if ok else f"days without a partition ahead: {ahead}; event days without a "
              f"payload partition: {unpaired} (run `agentaudit db migrate`)")
    return Check("partitions", ok, detail, {
        "event_days": len(events), "first_day": min(events) if events else None,
        "last_day": max(events) if events else None, "missing_ahead": ahead,
        "missing_payload_partitions": unpaired, "payload_days_dropped": sorted(dropped)})


# (role, table, privilege, must have it)
_GRANTS = [
    (INGEST_ROLE, "events", "INSERT", True), (INGEST_ROLE, "events", "UPDATE", False),
    (INGEST_ROLE, "events", "DELETE", False), (INGEST_ROLE, "events", "TRUNCATE", False),
    (INGEST_ROLE, "event_keys", "UPDATE", False), (INGEST_ROLE, "event_keys", "DELETE", False),
    (INGEST_ROLE, "event_payloads", "UPDATE", False),
    (INGEST_ROLE, "event_payloads", "DELETE", False),
    (INGEST_ROLE, "checkpoints", "DELETE", False), (INGEST_ROLE, "log_state", "UPDATE", True),
    (RETENTION_ROLE, "event_payloads", "UPDATE", True),
    (RETENTION_ROLE, "events", "UPDATE", False), (RETENTION_ROLE, "events", "DELETE", False),
    (READER_ROLE, "events", "SELECT", True), (READER_ROLE, "events", "INSERT", False),
    (READER_ROLE, "event_payloads", "UPDATE", False),
]


def _check_roles(conn: Any) -> Check:
    present = {r[0] for r in conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
        ([INGEST_ROLE, RETENTION_ROLE, READER_ROLE],))}
    missing_roles = sorted({INGEST_ROLE, RETENTION_ROLE, READER_ROLE} - present)
    if missing_roles:
        return Check("roles", False, f"roles missing: {missing_roles}", {})
    wrong = []
    for role, table, priv, wanted in _GRANTS:
        # column grants count too (the retention role may update payload columns only)
        fn = ("has_any_column_privilege" if priv in ("SELECT", "INSERT", "UPDATE")
              else "has_table_privilege")
        has = bool(conn.execute(f"SELECT {fn}(%s, %s, %s)", (role, table, priv)).fetchone()[0])
        if has != wanted:
            wrong.append(f"{role} {'lacks' if wanted else 'has'} {priv} on {table}")
    triggers = {r[0] for r in conn.execute(
        "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relname IN ('events', 'event_keys', 'checkpoints') AND NOT t.tgisinternal "
        "AND t.tgenabled <> 'D'")}
    for trig in ("events_append_only", "events_no_truncate", "event_keys_append_only",
                 "checkpoints_append_only"):
        if trig not in triggers:
            wrong.append(f"trigger {trig} missing or disabled")
    no_rls = [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
        "AND relnamespace = current_schema()::regnamespace AND NOT relrowsecurity",
        (list(TENANT_TABLES),))]
    wrong += [f"row-level security off on {t}" for t in no_rls]
    members = {r[0]: r[1] for r in conn.execute(
        "SELECT g.rolname, count(m.member) FROM pg_roles g LEFT JOIN pg_auth_members m "
        "ON m.roleid = g.oid WHERE g.rolname = ANY(%s) GROUP BY g.rolname",
        ([INGEST_ROLE, RETENTION_ROLE, READER_ROLE],))}
    detail = ("append-only grants and triggers in place, row-level security on "
              f"{len(TENANT_TABLES)} tables; members: "
              + ", ".join(f"{k} {v}" for k, v in sorted(members.items()))) if not wrong else (
        "; ".join(wrong))
    return Check("roles", not wrong, detail, {"problems": wrong, "members": members})


def check_database(conn: Any, days_ahead: int = 2, now: float | None = None) -> list[Check]:
    """Schema version, partition coverage (``days_ahead`` days from today) and role grants."""
    schema = _check_schema(conn)
    if applied_migrations(conn) is None:
        return [schema]
    out = [schema]
    at = time.time() if now is None else now
    if "0001_events" in schema.data["applied"]:
        out.append(_check_partitions(conn, days_ahead, at))
    if "0003_roles" in schema.data["applied"]:
        out.append(_check_roles(conn))
    return out
