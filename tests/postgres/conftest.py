"""Helpers of the PostgreSQL tests: login roles of the agentaudit groups, events, a database
from before the derived migrations."""

from __future__ import annotations

import itertools
import os
from typing import Any

import psycopg

from agentaudit.events import AuditEvent

_names = itertools.count()
T0 = 1_780_000_000.0


def login_role(admin_url: str, group: str) -> str:
    """A new LOGIN role (trust auth) that is a member of ``group``; returns its name."""
    name = f"u{os.getpid()}_{next(_names)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN IN ROLE {group}")  # type: ignore[arg-type]
    return name


def as_role(url: str, role: str) -> str:
    """``url`` with another user."""
    rest = url.split("@", 1)[1]
    return f"postgresql://{role}@{rest}"


def events(n: int, tenant: str = "default", start: float = T0,
           step: float = 600.0) -> list[AuditEvent]:
    return [AuditEvent(event_type="agent.tool_call", agent_name="A", tenant=tenant,
                       timestamp=start + i * step, action="t", params={"i": i},
                       user_id=f"user-{i % 3}") for i in range(n)]


def before_0007(conn: Any) -> None:
    """Make the database one from before migrations 0007 to 0012 (the partition functions
    keep their new text: the migration replaces them)."""
    conn.execute("DROP TABLE call_numbers, approvers; "
                 "DELETE FROM schema_migrations WHERE name = '0012_approval_facts'; "
                 "DROP TABLE cost_models, cost_groups, cost_users, cost_user_totals; "
                 "DROP TRIGGER event_payloads_erase_user_cost ON event_payloads; "
                 "DROP FUNCTION agentaudit_erase_user_cost(), agentaudit_add_arrays, "
                 "agentaudit_user_cost_day_gone; "
                 "DELETE FROM schema_migrations WHERE name = '0011_cost_facts'; "
                 "DROP TABLE rollup_day; "
                 "DELETE FROM schema_migrations WHERE name = '0010_rollup_days'; "
                 "DROP INDEX ix_events_sample; "
                 "DELETE FROM schema_migrations WHERE name = '0009_sample_index'; "
                 "DROP TABLE interventions, call_tags; DROP INDEX ix_events_calls; "
                 "DELETE FROM schema_migrations WHERE name = '0008_compliance_facts'; "
                 "DROP TRIGGER event_payloads_erase_facts ON event_payloads; "
                 "DROP FUNCTION agentaudit_erase_payload_facts(); "
                 "DROP TABLE error_facts, error_messages, error_cells, error_groups; "
                 "DELETE FROM schema_migrations WHERE name = '0007_error_facts'")
