"""Maintenance of a PostgreSQL store: migrate with partitions ahead, and the health check behind
``agentaudit db check`` (schema version, partition coverage, role grants, row security, and what
migrations ``0004_retention`` to ``0012_approval_facts`` added: their row security, column grants
and who may run the retention functions, and whether the derived tables hold every event)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentaudit.store import (
    _pg_approval_facts,
    _pg_compliance_facts,
    _pg_cost_facts,
    _pg_errors,
    _pg_rollup,
)
from agentaudit.store._pg_schema import (
    APPROVAL_FACTS_MIGRATION,
    COMPLIANCE_FACTS_MIGRATION,
    COST_FACTS_MIGRATION,
    ERROR_FACTS_MIGRATION,
    INGEST_ROLE,
    MIGRATIONS,
    READER_ROLE,
    RETENTION_ROLE,
    RETENTION_TABLES,
    ROLLUP_DAYS_MIGRATION,
    ROLLUPS_MIGRATION,
    TENANT_TABLES,
)
from agentaudit.store._pg_sql import applied_migrations, day_of, migrate

__all__ = ["Check", "check_database", "migrate_database"]

_ALL_ROLES = (INGEST_ROLE, RETENTION_ROLE, READER_ROLE)


@dataclass
class Check:
    """One finding of ``check_database``."""

    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def migrate_database(conn: Any, days_ahead: int = 7, now: float | None = None,
                     rebuild_rollups: bool = False) -> dict[str, Any]:
    """Apply missing migrations and create the day partitions of yesterday .. today+days_ahead;
    with ``rebuild_rollups``, recompute every tenant's report rollups from its events."""
    applied = migrate(conn)
    rebuilt = []
    if rebuild_rollups:
        for (tenant,) in conn.execute("SELECT tenant FROM log_state ORDER BY tenant").fetchall():
            _pg_rollup.rebuild(conn, tenant)
            rebuilt.append(tenant)
    today = day_of(time.time() if now is None else now)
    days = list(range(today - 1, today + days_ahead + 1))
    made = int(conn.execute("SELECT agentaudit_ensure_days(%s::integer[])",
                            (days,)).fetchone()[0])
    last = time.strftime("%Y-%m-%d", time.gmtime((today + days_ahead) * 86400))
    return {"applied": applied, "partitions_created": made, "partitions_ahead_until": last,
            "rollups_rebuilt": rebuilt}


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


def _privilege_problems(conn: Any, spec: list[tuple[str, str, str, bool]]) -> list[str]:
    """``spec``: (role, table, privilege, must have it); PUBLIC counts as a role."""
    wrong = []
    for role, table, priv, wanted in spec:
        # column grants count too (the retention role may update payload columns only)
        fn = ("has_any_column_privilege" if priv in ("SELECT", "INSERT", "UPDATE")
              else "has_table_privilege")
        has = bool(conn.execute(f"SELECT {fn}(%s, %s, %s)",
                                (role.lower(), table, priv)).fetchone()[0])
        if has != wanted:
            wrong.append(f"{role} {'lacks' if wanted else 'has'} {priv} on {table}")
    return wrong


def _row_security_problems(conn: Any, tables: tuple[str, ...] | list[str]) -> list[str]:
    return [f"row-level security off on {r[0]}" for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
        "AND relnamespace = current_schema()::regnamespace AND NOT relrowsecurity "
        "ORDER BY relname", (list(tables),))]


def _check_roles(conn: Any) -> Check:
    present = {r[0] for r in conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
        ([INGEST_ROLE, RETENTION_ROLE, READER_ROLE],))}
    missing_roles = sorted({INGEST_ROLE, RETENTION_ROLE, READER_ROLE} - present)
    if missing_roles:
        return Check("roles", False, f"roles missing: {missing_roles}", {})
    wrong = _privilege_problems(conn, _GRANTS)
    triggers = {r[0] for r in conn.execute(
        "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relname IN ('events', 'event_keys', 'checkpoints') AND NOT t.tgisinternal "
        "AND t.tgenabled <> 'D'")}
    for trig in ("events_append_only", "events_no_truncate", "event_keys_append_only",
                 "checkpoints_append_only"):
        if trig not in triggers:
            wrong.append(f"trigger {trig} missing or disabled")
    wrong += _row_security_problems(conn, TENANT_TABLES)
    for signature, role in _FUNCTIONS_0003.items():
        wrong += _function_problems(conn, signature, role)
    members = {r[0]: r[1] for r in conn.execute(
        "SELECT g.rolname, count(m.member) FROM pg_roles g LEFT JOIN pg_auth_members m "
        "ON m.roleid = g.oid WHERE g.rolname = ANY(%s) GROUP BY g.rolname",
        ([INGEST_ROLE, RETENTION_ROLE, READER_ROLE],))}
    detail = ("append-only grants and triggers in place, row-level security on "
              f"{len(TENANT_TABLES)} tables; members: "
              + ", ".join(f"{k} {v}" for k, v in sorted(members.items()))) if not wrong else (
        "; ".join(wrong))
    return Check("roles", not wrong, detail, {"problems": wrong, "members": members})


# -- what 0004_retention and 0005_alerts added ------------------------------------------------

_TRUNCATE_DAY = "agentaudit_truncate_payload_day(integer, bigint[], text, double precision)"
# definer functions (they run as the owner) → the one group role that may call them
_FUNCTIONS_0003 = {"agentaudit_ensure_days(integer[])": INGEST_ROLE,
                   "agentaudit_drop_payload_day(integer, text)": RETENTION_ROLE}
_FUNCTIONS_0004 = {_TRUNCATE_DAY: RETENTION_ROLE}

# (role, table, the columns it may UPDATE and nothing else): erasure nulls payload columns,
# releasing a hold sets who and when, an alert's state changes; the rest stays as written
_COLUMN_UPDATES_0004 = [
    (RETENTION_ROLE, "event_payloads", {"payload", "salt", "user_id", "erased", "erased_at"}),
    (RETENTION_ROLE, "legal_holds", {"released_at", "released_by"}),
    (RETENTION_ROLE, "erasures", set()),
]
_COLUMN_UPDATES_0005 = [
    (INGEST_ROLE, "alerts", {"occurrences", "last_seen", "status", "acked_by", "acked_at",
                             "ack_note"}),
    (INGEST_ROLE, "alert_deliveries", set()),
]


def _table_grants(tables: tuple[str, ...], writer: str, inserts: bool) -> list[
        tuple[str, str, str, bool]]:
    """Nobody deletes or truncates ``tables``; only ``writer`` inserts (when ``inserts``);
    readers only read; PUBLIC has nothing."""
    spec = []
    for t in tables:
        spec += [(writer, t, "INSERT", inserts), (writer, t, "DELETE", False),
                 (writer, t, "TRUNCATE", False), (READER_ROLE, t, "SELECT", True)]
        spec += [(READER_ROLE, t, p, False) for p in ("INSERT", "UPDATE", "DELETE")]
        spec += [("PUBLIC", t, p, False) for p in ("SELECT", "INSERT", "UPDATE", "DELETE",
                                                    "TRUNCATE")]
    return spec


_GRANTS_0004 = [*_table_grants(RETENTION_TABLES, RETENTION_ROLE, True),
                *[(INGEST_ROLE, t, p, False) for t in RETENTION_TABLES
                  for p in ("INSERT", "UPDATE")]]
_GRANTS_0005 = _table_grants(("alerts", "alert_deliveries"), INGEST_ROLE, True)


def _function_problems(conn: Any, signature: str, role: str) -> list[str]:
    """Only ``role`` (and the owner) may EXECUTE the function, directly or through a role."""
    name = signature.split("(", 1)[0]
    row = conn.execute(
        "SELECT pg_get_userbyid(p.proowner), array(SELECT CASE WHEN a.grantee = 0 "
        "THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END FROM aclexplode(coalesce("
        "p.proacl, acldefault('f', p.proowner))) a WHERE a.privilege_type = 'EXECUTE') "
        "FROM pg_proc p WHERE p.oid = to_regprocedure(%s)", (signature,)).fetchone()
    if row is None:
        return [f"function {name} missing"]
    owner, grantees = row[0], set(row[1])
    wrong = [f"{g} may EXECUTE {name} (only {role} may)"
             for g in sorted(grantees - {owner, role})]
    if role not in grantees:
        wrong.append(f"{role} lacks EXECUTE on {name}")
    for other in _ALL_ROLES:
        if other == role or other in grantees:
            continue
        may, member = conn.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE'), pg_has_role(%s, %s, 'MEMBER')",
            (other, signature, other, role)).fetchone()
        if may and not member:  # a member of ``role`` may (the retention role is an ingester)
            wrong.append(f"{other} may EXECUTE {name} through a role it is a member of")
    return wrong


def _column_problems(conn: Any, spec: list[tuple[str, str, set[str]]]) -> list[str]:
    """Each role may UPDATE exactly the listed columns of its table (a table-wide grant too
    shows up here, as every column)."""
    wrong = []
    for role, table, allowed in spec:
        rows = conn.execute(
            "SELECT a.attname, has_column_privilege(%s, a.attrelid, a.attnum, 'UPDATE') "
            "FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum", (role, table)).fetchall()
        if not rows:
            wrong.append(f"table {table} missing")
            continue
        may = {r[0] for r in rows if r[1]}
        wrong += [f"{role} may UPDATE {table}.{c}" for c in sorted(may - allowed)]
        wrong += [f"{role} lacks UPDATE on {table}.{c}" for c in sorted(allowed - may)]
    return wrong


def _tenant_table_problems(conn: Any, tables: tuple[str, ...],
                           grants: list[tuple[str, str, str, bool]]) -> list[str]:
    """Row security, tenant-scoped reader policies and ``grants`` of ``tables``."""
    wrong = _row_security_problems(conn, tables)
    wrong += _policy_problems(conn, {t: "tenant_readers" for t in tables})
    return wrong + _privilege_problems(conn, grants)


def _policy_problems(conn: Any, tables: dict[str, str]) -> list[str]:
    """A policy that applies to readers (or PUBLIC) on these tables must restrict rows to the
    reader's tenants (its condition names ``tables[t]``); permissive policies add up, so one
    ``USING (true)`` would show a reader every tenant."""
    wrong = []
    for name, table, roles, qual in conn.execute(
            "SELECT policyname, tablename, roles::text[], coalesce(qual, '') FROM pg_policies "
            "WHERE schemaname = current_schema() AND tablename = ANY(%s) "
            "AND permissive = 'PERMISSIVE' AND cmd IN ('SELECT', 'ALL') "
            "AND (%s = ANY(roles) OR 'public' = ANY(roles)) ORDER BY tablename, policyname",
            (list(tables), READER_ROLE)):
        if tables[table] not in qual:
            wrong.append(f"policy {name} lets {'/'.join(roles)} read every tenant's rows of "
                         f"{table} ({qual or 'no condition'})")
    return wrong


def _summary(wrong: list[str], ok: str) -> str:
    return ok if not wrong else "; ".join(wrong)


def _check_retention(conn: Any) -> Check:
    """``0004_retention``: legal holds and erasure records are tenant-scoped and written only
    by the retention role, which may change payload columns only and alone empties a day."""
    wrong = _tenant_table_problems(conn, RETENTION_TABLES, _GRANTS_0004)
    wrong += _column_problems(conn, _COLUMN_UPDATES_0004)
    for signature, role in _FUNCTIONS_0004.items():
        wrong += _function_problems(conn, signature, role)
    member = {(m, g): bool(conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')",
                                        (m, g)).fetchone()[0])
              for m, g in ((RETENTION_ROLE, INGEST_ROLE), (INGEST_ROLE, RETENTION_ROLE),
                           (READER_ROLE, RETENTION_ROLE))}
    if not member[(RETENTION_ROLE, INGEST_ROLE)]:
        wrong.append(f"{RETENTION_ROLE} is not a member of {INGEST_ROLE} (its runs cannot "
                     "append their audit events)")
    wrong += [f"{m} is a member of {g} (it could erase payloads)"
              for (m, g), is_member in member.items() if is_member and g == RETENTION_ROLE]
    return Check("retention", not wrong, _summary(
        wrong, f"row-level security on {', '.join(RETENTION_TABLES)}; only {RETENTION_ROLE} "
        "erases payloads, releases holds and runs agentaudit_truncate_payload_day"),
        {"problems": wrong})


def _check_alerts(conn: Any) -> Check:
    """``0005_alerts``: the ingest role records alerts and changes only their state; nobody
    but the owner deletes them; readers see their tenants' alerts and deliveries."""
    wrong = _row_security_problems(conn, ("alerts", "alert_deliveries"))
    wrong += _policy_problems(conn, {"alerts": "tenant_readers", "alert_deliveries": "alerts"})
    wrong += _privilege_problems(conn, _GRANTS_0005)
    wrong += _column_problems(conn, _COLUMN_UPDATES_0005)
    for seq in ("alerts_id_seq", "alert_deliveries_id_seq"):
        if not conn.execute("SELECT has_sequence_privilege(%s, %s, 'USAGE')",
                            (INGEST_ROLE, seq)).fetchone()[0]:
            wrong.append(f"{INGEST_ROLE} lacks USAGE on sequence {seq}")
    return Check("alerts", not wrong, _summary(
        wrong, f"row-level security on alerts, alert_deliveries; {INGEST_ROLE} updates only "
        "an alert's state columns; nobody deletes alerts"), {"problems": wrong})


# ``0006_report_rollups``: only the sequencer (ingest role) writes the rollups; it updates cells
# and deletes open work as closers arrive, and nothing else is ever changed or removed
def _sequencer_grants(ingest_may: dict[str, tuple[str, ...]]
                      ) -> list[tuple[str, str, str, bool]]:
    """The privileges of tables only the sequencer writes: readers read them, nobody else
    does; the ingest role inserts and may UPDATE or DELETE only where ``ingest_may`` says."""
    tables = list(ingest_may)
    return [
        *[(role, t, p, False) for t in tables for role in (READER_ROLE, "PUBLIC")
          for p in ("INSERT", "UPDATE", "DELETE", "TRUNCATE")],
        *[("PUBLIC", t, "SELECT", False) for t in tables],
        *[(READER_ROLE, t, "SELECT", True) for t in tables],
        *[(INGEST_ROLE, t, "INSERT", True) for t in tables],
        *[(INGEST_ROLE, t, "TRUNCATE", False) for t in tables],
        *[(INGEST_ROLE, t, p, p in may) for t, may in ingest_may.items()
          for p in ("UPDATE", "DELETE")],
    ]


_GRANTS_0006 = _sequencer_grants({"rollup": ("UPDATE",), "closers": (), "open_work": ("DELETE",)})


# what to do when a derived table lacks events that an older collector wrote
_REBUILD = ("(upgrade every collector before `db migrate`; then `agentaudit db migrate "
            "--rebuild-rollups`)")

# ``0007_error_facts``: the sequencer inserts facts and moves their next call; messages are
# only inserted by it (the retention functions and the erasure trigger remove them as owner)
_GRANTS_0007 = _sequencer_grants({"error_facts": ("UPDATE",), "error_messages": (),
                                  "error_cells": ("UPDATE",), "error_groups": ("UPDATE",)})
_COLUMN_UPDATES_0007 = [(INGEST_ROLE, "error_facts", {"next_call"})]


def _unpaired_days(conn: Any, tables: tuple[str, ...]) -> list[str]:
    """The payload days each of ``tables`` (payload facts, partitioned with the payloads) has no
    partition of."""
    payload_days = _partition_days(conn, "event_payloads")
    wrong = []
    for table in tables:
        unpaired = payload_days - _partition_days(conn, table)
        if unpaired:
            article = "an" if table[0] in "aeiou" else "a"
            wrong.append(f"payload days without {article} {table} partition: "
                         f"{sorted(unpaired)} (run `agentaudit db migrate`)")
    return wrong


def _error_fact_problems(conn: Any) -> list[str]:
    """Grants, row security and completeness of the error facts (``_pg_errors``)."""
    wrong = _tenant_table_problems(conn, _pg_errors.TABLES, _GRANTS_0007)
    wrong += _column_problems(conn, _COLUMN_UPDATES_0007)
    for tenant, counted, kept in conn.execute(
            "SELECT r.tenant, sum(r.events), (SELECT count(*) FROM error_facts f "
            "WHERE f.tenant = r.tenant) FROM rollup r WHERE r.event_type = 'agent.error' "
            "GROUP BY r.tenant ORDER BY r.tenant"):
        if counted != kept:
            wrong.append(f"the error facts of tenant {tenant} hold {kept} errors, its rollup "
                         f"{counted}: errors were written by a collector that does not keep "
                         f"them {_REBUILD}")
    return wrong + _unpaired_days(conn, _pg_errors.DAY_TABLES)


# ``0008_compliance_facts``: inserted by the sequencer, never changed by it (call tags go with
# their payloads through the owner's functions)
_GRANTS_0008 = _sequencer_grants({t: () for t in _pg_compliance_facts.TABLES})


def _compliance_fact_problems(conn: Any) -> list[str]:
    """Grants, row security and completeness of the compliance facts
    (``_pg_compliance_facts``)."""
    wrong = _tenant_table_problems(conn, _pg_compliance_facts.TABLES, _GRANTS_0008)
    for tenant, logged, kept in conn.execute(
            "SELECT s.tenant, (SELECT count(*) FROM events e WHERE e.tenant = s.tenant "
            "AND e.event_type = 'agent.human_intervention' AND e.trace_id IS NOT NULL), "
            "(SELECT count(*) FROM interventions i WHERE i.tenant = s.tenant) "
            "FROM log_state s ORDER BY s.tenant"):
        if logged != kept:
            wrong.append(f"the interventions of tenant {tenant} hold {kept}, its log {logged}: "
                         f"they were written by a collector that does not keep them {_REBUILD}")
    return wrong + _unpaired_days(conn, _pg_compliance_facts.DAY_TABLES)


# ``0010_rollup_days``: the day cells, kept as the hourly ones are
_GRANTS_0010 = _sequencer_grants({"rollup_day": ("UPDATE",)})
# ``0011_cost_facts``: slots are inserted once; groups and user cells grow (an erased user's
# cell shrinks through the owner's trigger)
_GRANTS_0011 = _sequencer_grants({"cost_models": (), "cost_groups": ("UPDATE",),
                                  "cost_users": ("UPDATE",), "cost_user_totals": ("UPDATE",)})


def _cost_fact_problems(conn: Any) -> list[str]:
    """Grants, row security and completeness of the cost facts (``_pg_cost_facts``): each
    dimension's groups count every metered event of the rollup once."""
    wrong = _tenant_table_problems(conn, _pg_cost_facts.TABLES, _GRANTS_0011)
    for tenant, dim, metered, kept in conn.execute(
            "SELECT s.tenant, d.dim, coalesce((SELECT sum(r.metered) FROM rollup r "
            "WHERE r.tenant = s.tenant), 0), coalesce((SELECT sum(g.calls) FROM cost_groups g "
            "WHERE g.tenant = s.tenant AND g.dim = d.dim), 0) FROM log_state s "
            "CROSS JOIN unnest(%s::text[]) AS d(dim) ORDER BY 1, 2", (list(_pg_cost_facts.DIMS),)):
        if metered != kept:
            wrong.append(f"the cost facts of tenant {tenant} count {kept} metered events by "
                         f"{dim}, its rollup {metered}: events were written by a collector that "
                         f"does not keep them {_REBUILD}")
    return wrong + _unpaired_days(conn, _pg_cost_facts.DAY_TABLES)


# ``0012_approval_facts``: inserted by the sequencer, erased with their payloads by the owner's
# functions; a value not kept is read from its payload (no completeness to check)
_GRANTS_0012 = _sequencer_grants({t: () for t in _pg_approval_facts.TABLES})


def _approval_fact_problems(conn: Any) -> list[str]:
    """Grants, row security and partitions of the approval facts (``_pg_approval_facts``)."""
    return (_tenant_table_problems(conn, _pg_approval_facts.TABLES, _GRANTS_0012)
            + _unpaired_days(conn, _pg_approval_facts.TABLES))


def _check_rollups(conn: Any, applied: set[str]) -> Check:
    """``0006_report_rollups`` and, when applied, ``0007_error_facts``,
    ``0008_compliance_facts``, ``0010_rollup_days``, ``0011_cost_facts`` and
    ``0012_approval_facts``: tenant-scoped, written only by the ingest role, complete."""
    days = ROLLUP_DAYS_MIGRATION in applied
    tables = (_pg_rollup.TABLES
              + (_pg_errors.TABLES if ERROR_FACTS_MIGRATION in applied else ())
              + (_pg_compliance_facts.TABLES if COMPLIANCE_FACTS_MIGRATION in applied else ())
              + (("rollup_day",) if days else ())
              + (_pg_cost_facts.TABLES if COST_FACTS_MIGRATION in applied else ())
              + (_pg_approval_facts.TABLES if APPROVAL_FACTS_MIGRATION in applied
                 else ()))
    wrong = _tenant_table_problems(conn, _pg_rollup.TABLES, _GRANTS_0006)
    if ERROR_FACTS_MIGRATION in applied:
        wrong += _error_fact_problems(conn)
    if COMPLIANCE_FACTS_MIGRATION in applied:
        wrong += _compliance_fact_problems(conn)
    if days:
        wrong += _tenant_table_problems(conn, ("rollup_day",), _GRANTS_0010)
    if COST_FACTS_MIGRATION in applied:
        wrong += _cost_fact_problems(conn)
    if APPROVAL_FACTS_MIGRATION in applied:
        wrong += _approval_fact_problems(conn)
    # every event is in the cells once: a collector that does not keep them (a version from
    # before 0006 or 0010, still running after the migration) leaves its events out
    for table in ("rollup", "rollup_day") if days else ("rollup",):
        for tenant, logged, rolled in conn.execute(
                f"SELECT s.tenant, s.size, coalesce((SELECT sum(r.events) FROM {table} r "
                "WHERE r.tenant = s.tenant), 0) FROM log_state s ORDER BY s.tenant"):
            if logged != rolled:
                wrong.append(f"the {table} of tenant {tenant} counts {rolled} events, its log "
                             f"{logged}: events were written by a collector that does not "
                             f"keep the rollups {_REBUILD}")
    return Check("rollups", not wrong, _summary(
        wrong, f"row-level security on {', '.join(tables)}; only {INGEST_ROLE} writes them"),
        {"problems": wrong})


def check_database(conn: Any, days_ahead: int = 2, now: float | None = None) -> list[Check]:
    """Schema version, partition coverage (``days_ahead`` days from today), role grants, and
    the grants and row security of the retention and alerts migrations when applied."""
    schema = _check_schema(conn)
    if applied_migrations(conn) is None:
        return [schema]
    out = [schema]
    at = time.time() if now is None else now
    if "0001_events" in schema.data["applied"]:
        out.append(_check_partitions(conn, days_ahead, at))
    if "0003_roles" in schema.data["applied"]:
        out.append(_check_roles(conn))
    if "0004_retention" in schema.data["applied"]:
        out.append(_check_retention(conn))
    if "0005_alerts" in schema.data["applied"]:
        out.append(_check_alerts(conn))
    if ROLLUPS_MIGRATION in schema.data["applied"]:
        out.append(_check_rollups(conn, set(schema.data["applied"])))
    return out
