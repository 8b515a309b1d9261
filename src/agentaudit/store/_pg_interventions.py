"""The human interventions of a PostgreSQL store, by trace: what the tool-approval check reads.

The compliance report's approval check looks, for each call of a listed tool, for the latest
approval in its trace before it. Among the events that is a probe of the trace index of every
day partition (an approval may be days older than the call): about 300 µs per call with 71 days,
20–40 s for the 77,000 refunds of the 10-million-event benchmark store. So each tenant's
sequencer also keeps its interventions (envelope columns only: never erased) in the
unpartitioned ``interventions``, indexed by trace and time — one probe per call — inside the
batch transaction, as it keeps ``closers`` for the open work (``_pg_rollup``). The approver's
name is payload: it is read from the found intervention's payload row, as the plain template
reads it. Migration ``0008_interventions``; the rolled ``cmp_tool_approval`` is in
``_pg_rolled_reports``.
"""

from __future__ import annotations

__all__ = ["TABLES", "after_insert_statements", "grants", "migration", "rebuild_statements"]

TABLES = ("interventions",)
_C = 'COLLATE "C"'


def _fill(source: str) -> str:
    """Insert the interventions of ``source`` (rows ``n``) that belong to a trace."""
    return ("INSERT INTO interventions (tenant, trace_id, action, timestamp, seq, day) "
            "SELECT n.tenant, n.trace_id, n.action, n.timestamp, n.seq, n.day "
            f"FROM {source} WHERE n.event_type = 'agent.human_intervention' "
            "AND n.trace_id IS NOT NULL")


def after_insert_statements(source: str) -> tuple[str, ...]:
    """Fold the rows of ``source`` (a subquery, aliased ``n``) into ``interventions``."""
    return (_fill(source + " n"),)


def rebuild_statements() -> tuple[str, ...]:
    """Recompute tenant ``%(tenant)s``'s interventions (inside ``_pg_rollup.rebuild``)."""
    return ("DELETE FROM interventions WHERE tenant = %(tenant)s",
            _fill("(SELECT * FROM events WHERE tenant = %(tenant)s) n"))


def migration() -> str:
    """``0008_interventions``: the table, filled from the stored events."""
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
{_fill("events n")};
ANALYZE interventions;
"""


def grants(ingest: str, reader: str) -> str:
    """The sequencer (ingest role) inserts; readers read (row security is added beside)."""
    return (f"REVOKE ALL ON interventions FROM PUBLIC; GRANT INSERT ON interventions TO {ingest}; "
            f"GRANT SELECT ON interventions TO {ingest}, {reader};")
