"""What the approval check reads from payloads on PostgreSQL, kept beside them: the numbers of the
tool calls' params and the approvers' names.

For each call of a listed tool the check compares ``params[amount_param]`` with ``min_amount``
and, for the calls that need an approval, names the approver (``params.by``) of the latest
approval in the call's trace (found in ``interventions``, ``_pg_compliance_facts``). Both are
payload: at 10 million events the check read 77,000 refunds' payloads and 11,000 approvals'
(0.5 and 0.3 s of the compliance report). So the sequencer keeps them at ingest in tables
partitioned by day with the payloads and erased with them (``_pg_payload_facts``):

* ``call_numbers`` — every top-level parameter of a tool call whose value is a JSON number
  (0, or of magnitude within 1e-300..1e300: exactly a float8, in Python and in SQL alike), by
  name: the amount parameter is policy configuration, chosen when the report runs;
* ``approvers`` — the ``params.by`` of a human intervention in a trace, when it is a string.

A value not kept (the parameter missing, a string, ``null``, out of that range, the payload
erased, or an event written by a collector that does not keep these tables) is read from the
payload as the plain template reads it: a missing fact costs time, never a different answer —
so there is nothing to rebuild after an older collector ran, and nothing to check but grants
and partitions. Migration ``0012_approval_facts``; the rolled ``cmp_tool_approval`` is in
``_pg_rolled_reports``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentaudit.events import AuditEvent
from agentaudit.store import _pg_payload_facts

__all__ = ["INSERTS", "TABLES", "facts_of", "migration", "rebuild_statements"]

TABLES = ("call_numbers", "approvers")  # partitioned by day with the payloads, erased with them
_C = 'COLLATE "C"'
# a number is kept when it is 0 or its magnitude is within these (so that it is a float8 in
# Python and in SQL alike, never an overflow, an underflow or an error)
_TINY, _HUGE = 1e-300, 1e300
_DOC = "convert_from(p.payload, 'UTF8')::jsonb"


def _text(s: Any) -> bool:
    """``s`` is a str that a PostgreSQL text holds (no NUL, encodable as UTF-8)."""
    if not isinstance(s, str) or "\x00" in s:
        return False
    if s.isascii():
        return True
    try:
        s.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def numbers_of(params: Mapping[Any, Any] | None) -> list[tuple[str, float]]:
    """The (name, value) kept in ``call_numbers`` for a tool call's params: its top-level
    parameters whose value is a JSON number (not a bool), as ``_numbers`` takes them."""
    if not params:
        return []
    return [(k, float(v)) for k, v in params.items()
            if type(v) in (int, float) and (v == 0 or _TINY < abs(v) < _HUGE) and _text(k)]


def facts_of(tenant: str, day: int, seq: int, ev: AuditEvent,
             numbers: list[tuple[str, int, int, str, float]],
             approvers: list[tuple[str, int, int, str]]) -> None:
    """Add stored event ``ev``'s facts to a batch's ``numbers`` and ``approvers`` (its params
    are the stored payload's: ``rows.encode_payload``)."""
    if ev.event_type == "agent.tool_call":
        numbers += ((tenant, day, seq, k, v) for k, v in numbers_of(ev.params))
    elif ev.event_type == "agent.human_intervention" and ev.trace_id is not None:
        by = (ev.params or {}).get("by")
        if _text(by):
            approvers.append((tenant, day, seq, by))


# the facts the collector took from a batch's events (``facts_of``), as (statement, the names
# of its array parameters in column order)
INSERTS = (
    ("INSERT INTO call_numbers (tenant, day, seq, param, value) "
     "SELECT * FROM unnest(%(num_tenant)s::text[], %(num_day)s::integer[], "
     "%(num_seq)s::bigint[], %(num_param)s::text[], %(num_value)s::float8[])",
     ("num_tenant", "num_day", "num_seq", "num_param", "num_value")),
    ("INSERT INTO approvers (tenant, day, seq, approver) "
     "SELECT * FROM unnest(%(by_tenant)s::text[], %(by_day)s::integer[], "
     "%(by_seq)s::bigint[], %(by_name)s::text[])",
     ("by_tenant", "by_day", "by_seq", "by_name")))


def _numbers(source: str) -> str:
    """Insert the numbers of the tool calls of ``source`` (rows ``n``), as ``numbers_of``."""
    return (
        "INSERT INTO call_numbers (tenant, day, seq, param, value) "
        "SELECT n.tenant, n.day, n.seq, k.key, k.num::float8 "
        f"FROM {source} JOIN event_payloads p ON p.tenant = n.tenant AND p.day = n.day "
        f"AND p.seq = n.seq CROSS JOIN LATERAL (SELECT key, value::text::numeric AS num "
        f"FROM jsonb_each(CASE WHEN jsonb_typeof({_DOC} -> 'params') = 'object' "
        f"THEN {_DOC} -> 'params' ELSE '{{}}'::jsonb END) WHERE jsonb_typeof(value) = 'number') k "
        "WHERE n.event_type = 'agent.tool_call' "
        f"AND (k.num = 0 OR abs(k.num) > {_TINY} AND abs(k.num) < {_HUGE})")


def _approvers(source: str) -> str:
    """Insert the approvers named by the interventions of ``source`` (rows ``n``) that belong
    to a trace, as ``facts_of``."""
    return (
        "INSERT INTO approvers (tenant, day, seq, approver) "
        f"SELECT n.tenant, n.day, n.seq, {_DOC} #>> '{{params,by}}' "
        f"FROM {source} JOIN event_payloads p ON p.tenant = n.tenant AND p.day = n.day "
        "AND p.seq = n.seq WHERE n.event_type = 'agent.human_intervention' "
        f"AND n.trace_id IS NOT NULL AND jsonb_typeof({_DOC} #> '{{params,by}}') = 'string'")


def rebuild_statements() -> tuple[str, ...]:
    """Recompute tenant ``%(tenant)s``'s approval facts (inside ``_pg_rollup.rebuild``)."""
    mine = "(SELECT * FROM events WHERE tenant = %(tenant)s) n"
    return (*(f"DELETE FROM {t} WHERE tenant = %(tenant)s" for t in TABLES),
            _numbers(mine), _approvers(mine))


def migration(payload_functions: str) -> str:
    """``0012_approval_facts``: the tables filled from the stored events, and
    ``payload_functions`` (the partition and erasure functions with them among their tables)."""
    return f"""
CREATE TABLE call_numbers (
    tenant text {_C} NOT NULL,
    day integer NOT NULL,
    seq bigint NOT NULL,
    param text {_C} NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (tenant, day, seq, param) INCLUDE (value)
) PARTITION BY RANGE (day);
CREATE TABLE approvers (
    tenant text {_C} NOT NULL,
    day integer NOT NULL,
    seq bigint NOT NULL,
    approver text NOT NULL,
    PRIMARY KEY (tenant, day, seq) INCLUDE (approver)
) PARTITION BY RANGE (day);
{_pg_payload_facts.partitions_of_payload_days("call_numbers")}
{_pg_payload_facts.partitions_of_payload_days("approvers")}
{payload_functions}
{_numbers("events n")};
{_approvers("events n")};
ANALYZE call_numbers;
ANALYZE approvers;
"""
