"""What the compliance checks read on PostgreSQL, kept with the events: interventions by trace and
the tool calls' true tags.

* ``interventions`` — the approval check looks, for each call of a listed tool, for the latest
  approval in its trace before it. Among the events that is a probe of the trace index of every
  day partition (an approval may be days older than the call): about 300 µs per call with 71
  days, 20–40 s for the 77,000 refunds of the 10-million-event benchmark store. The sequencer
  keeps the interventions of traces (envelope columns only: never erased) unpartitioned, by
  trace and time — one probe per call — as it keeps ``closers`` for the open work
  (``_pg_rollup``). The approver's name is payload: it is read from the found intervention's
  payload row, as the plain template reads it. The listed tools' calls are found with
  ``ix_events_calls`` (tool calls by tenant, tool and time, covering what the check reads) where
  the type index would fetch every tool call's row to read its tool.
* ``call_tags`` — the data-access check reads the calls of listed tools and the calls tagged
  with its tag (value true, 1 or yes, any case); finding the tagged ones meant reading every tool
  call's payload (1.9 million at 10 million events: 20 s). A tag is payload, so each tool call's
  true tags are kept in day partitions with the payloads and erased with them
  (``_pg_payload_facts``). The rolled check reads the payloads of the listed and tagged calls
  only, and applies the plain template's own condition to them: the same calls, the same
  answer.

Migration ``0008_compliance_facts``; the rolled ``cmp_tool_approval`` and ``cmp_data_access``
are in ``_pg_rolled_reports``. The amounts and approvers the approval check reads are kept by
``_pg_approval_facts``.
"""

from __future__ import annotations

from agentaudit.store import _pg_errors, _pg_payload_facts

__all__ = ["DAY_TABLES", "TABLES", "after_insert_statements", "grants", "migration",
           "rebuild_statements"]

TABLES = ("interventions", "call_tags")
DAY_TABLES = ("call_tags",)  # partitioned by day with the payloads, erased with them
_C = 'COLLATE "C"'
_TRUE = "('true', '1', 'yes')"  # a tag's values that mean true (lower case), as the check's


def _interventions(source: str) -> str:
    """Insert the interventions of ``source`` (rows ``n``) that belong to a trace."""
    return ("INSERT INTO interventions (tenant, trace_id, action, timestamp, seq, day) "
            "SELECT n.tenant, n.trace_id, n.action, n.timestamp, n.seq, n.day "
            f"FROM {source} WHERE n.event_type = 'agent.human_intervention' "
            "AND n.trace_id IS NOT NULL")


def _tags(source: str) -> str:
    """Insert the true tags of the tool calls of ``source`` (rows ``n``); only payloads with a
    tags object are parsed (payloads are compact JSON objects)."""
    doc = "convert_from(p.payload, 'UTF8')::jsonb"
    return (
        "INSERT INTO call_tags (tenant, day, seq, timestamp, agent_name, tag) "
        "SELECT n.tenant, n.day, n.seq, n.timestamp, n.agent_name, t.key "
        f"FROM {source} JOIN event_payloads p ON p.tenant = n.tenant AND p.day = n.day "
        f"AND p.seq = n.seq CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof({doc} "
        f"-> 'tags') = 'object' THEN {doc} -> 'tags' ELSE '{{}}'::jsonb END) AS t(key, value) "
        "WHERE n.event_type = 'agent.tool_call' "
        "AND position(convert_to('\"tags\":{', 'UTF8') IN p.payload) > 0 "
        f"AND lower(t.value) IN {_TRUE}")


def after_insert_statements(source: str, tagged: str) -> tuple[str, ...]:
    """Fold the rows of ``source`` (a subquery, aliased ``n``) into the compliance facts; the
    tags are read from the rows of ``tagged`` only (the batch's tool calls with a ``tags``
    field, which the collector knows without reading a payload)."""
    return (_interventions(source + " n"), _tags(tagged + " n"))


def rebuild_statements() -> tuple[str, ...]:
    """Recompute tenant ``%(tenant)s``'s compliance facts (inside ``_pg_rollup.rebuild``)."""
    mine = "(SELECT * FROM events WHERE tenant = %(tenant)s) n"
    return (*(f"DELETE FROM {t} WHERE tenant = %(tenant)s" for t in TABLES),
            _interventions(mine), _tags(mine))


def migration(hold_match: str) -> str:
    """``0008_compliance_facts``: the tables filled from the stored events, the tool-call index,
    and the payload functions with ``call_tags`` added."""
    return f"""
CREATE TABLE interventions (
    tenant text {_C} NOT NULL,
    trace_id text {_C} NOT NULL,
    action text {_C},
    timestamp double precision NOT NULL,
    seq bigint NOT NULL,
    day integer NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX ix_interventions_trace ON interventions (tenant, trace_id, timestamp, seq)
    INCLUDE (action, day);
CREATE TABLE call_tags (
    tenant text {_C} NOT NULL,
    day integer NOT NULL,
    seq bigint NOT NULL,
    timestamp double precision NOT NULL,
    agent_name text {_C} NOT NULL,
    tag text NOT NULL,
    PRIMARY KEY (tenant, day, seq, tag)
) PARTITION BY RANGE (day);
CREATE INDEX ix_call_tags_tag ON call_tags (tenant, tag, timestamp);
CREATE INDEX ix_events_calls ON events (tenant, action, timestamp)
    INCLUDE (event_id, trace_id, seq, day) WHERE event_type = 'agent.tool_call';
{_pg_payload_facts.partitions_of_payload_days("call_tags")}
{_pg_payload_facts.functions(hold_match, _pg_errors.DAY_TABLES + DAY_TABLES)}
{_interventions("events n")};
{_tags("events n")};
ANALYZE interventions;
"""


def grants(ingest: str, reader: str, tables: tuple[str, ...] = TABLES) -> str:
    """The sequencer (ingest role) inserts into ``tables``; readers read (row security is
    added beside)."""
    return (f"REVOKE ALL ON {', '.join(tables)} FROM PUBLIC; "
            f"GRANT INSERT ON {', '.join(tables)} TO {ingest}; "
            f"GRANT SELECT ON {', '.join(tables)} TO {ingest}, {reader};")
