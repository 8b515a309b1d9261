"""Error facts of a PostgreSQL store: what the errors report reads, kept with the events.

At ten million events a store holds about 400,000 errors. Read from the day partitions, each
costs a heap row, a payload row (its message) and a probe of the trace for the next call of its
tool (a retry?): 20 s for the errors report. So each tenant's sequencer also keeps, inside the
batch transaction, beside the report rollups (``after_insert``):

* ``error_facts`` — one row per error with the envelope columns the report groups by and
  ``next_call``: the time of the first call of the same tool in the same trace after the error
  (in time order, then seq), if it came within ``HORIZON_S``. Errors and their retries arrive
  in any order: a new error looks for a later call among the stored events (its own batch's
  included), and a new call moves ``next_call`` of the earlier errors it follows. A retry window
  longer than the horizon is answered from the events, as the plain template does. Envelope
  columns only: never erased.
* ``error_cells`` — per tenant, hour, agent, tool and error type: how many errors and the
  last one's time (the report's counts by type, tool and agent: whole hours from the cells,
  the period's ragged edges from ``error_facts``, as the report rollups do).
* ``error_groups`` — per tenant, trace and tool: how many errors, the first's and the last's
  time. A trace's tool failing repeatedly in a period failed as often overall: the report
  reads only the groups that reach its threshold, counting a group's errors in the period
  only when it straddles an edge (or for one agent).
* ``error_messages`` — the error text of each error whose payload has one, partitioned by day
  as ``event_payloads`` and erased with it by every path that erases payloads
  (``_pg_payload_facts``).

The rolled ``rpt_error_facts`` and ``rpt_retries`` (``_pg_rolled_reports``) read them; the plain
templates stay the reference (tests/postgres/test_pg_error_facts.py).
"""

from __future__ import annotations

from agentaudit.store import _pg_payload_facts

__all__ = ["HORIZON_S", "MESSAGE", "next_call", "TABLES", "after_insert_statements", "grants", "migration",
           "rebuild_statements"]

TABLES = ("error_facts", "error_messages", "error_cells", "error_groups")
DAY_TABLES = ("error_messages",)  # partitioned by day with the payloads, erased with them
HORIZON_S = 86400.0  # how long after an error its next call is looked for at ingest

_C = 'COLLATE "C"'
# the message of payload row ``p``, as the plain template reads it
MESSAGE = _pg_payload_facts.payload_json("error", "p")
_ERROR = "event_type = 'agent.error'"


def next_call(e: str, window: str) -> str:
    """The time of the first call of error ``e``'s tool in its trace after it (in time order,
    then seq) within ``window`` seconds, and within the days of that window: the plain
    ``rpt_retries`` look-up (window ``:retry_window_s``) and the one kept at ingest (the
    horizon). Read through the trace's events in time order (``ix_events_trace``): the tool
    and type conditions are written ``(…) IS TRUE`` (the same rows) so that no index on them
    is used, and the lower time bound the condition implies is stated; otherwise the planner
    may read, for each error, every call of the tool (``ix_events_calls``) or every tool call
    (``ix_events_type_time``) of the window."""
    return (f"(SELECT c.timestamp FROM events c WHERE c.trace_id = {e}.trace_id "
            f"AND c.tenant = {e}.tenant AND (c.event_type = 'agent.tool_call') IS TRUE "
            f"AND (c.action = {e}.action) IS TRUE AND c.timestamp >= {e}.timestamp "
            f"AND (c.timestamp > {e}.timestamp "
            f"OR (c.timestamp = {e}.timestamp AND c.seq > {e}.seq)) "
            f"AND c.timestamp <= {e}.timestamp + {window} AND c.day >= {e}.day "
            f"AND c.day <= floor(({e}.timestamp + {window}) / 86400)::int "
            "ORDER BY c.timestamp, c.seq LIMIT 1)")


def _facts(source: str) -> str:
    """Insert the errors of ``source`` (rows ``n``) into ``error_facts``."""
    return ("INSERT INTO error_facts (tenant, seq, day, timestamp, event_id, agent_name, action, "
            "error_type, trace_id, next_call) SELECT n.tenant, n.seq, n.day, n.timestamp, "
            "n.event_id, n.agent_name, n.action, n.error_type, n.trace_id, "
            f"CASE WHEN n.action IS NOT NULL AND n.trace_id IS NOT NULL THEN {next_call('n', f'{HORIZON_S}::float8')} "
            f"END FROM {source} WHERE n.{_ERROR}")


def _messages(source: str) -> str:
    """Insert the messages of the errors of ``source`` (rows ``n``) into ``error_messages``."""
    return ("INSERT INTO error_messages (tenant, seq, day, timestamp, agent_name, error_type, "
            f"message) SELECT n.tenant, n.seq, n.day, n.timestamp, n.agent_name, n.error_type, "
            f"{MESSAGE} FROM {source} JOIN event_payloads p ON p.tenant = n.tenant "
            f"AND p.day = n.day AND p.seq = n.seq WHERE n.{_ERROR} AND {MESSAGE} IS NOT NULL")


def _cells(source: str) -> str:
    """Fold the errors of ``source`` (rows ``n``) into their hourly cells."""
    return ("INSERT INTO error_cells (tenant, hour, agent_name, action, error_type, errors, "
            "last_ts) SELECT n.tenant, floor(n.timestamp / 3600)::bigint, n.agent_name, "
            "n.action, n.error_type, count(*), max(n.timestamp) "
            f"FROM {source} WHERE n.{_ERROR} GROUP BY 1, 2, 3, 4, 5 "
            "ON CONFLICT (tenant, hour, agent_name, action, error_type) DO UPDATE SET "
            "errors = error_cells.errors + excluded.errors, "
            "last_ts = greatest(error_cells.last_ts, excluded.last_ts)")


def _groups(source: str) -> str:
    """Count the errors of ``source`` (rows ``n``) per trace and tool."""
    return ("INSERT INTO error_groups (tenant, trace_id, action, errors, first_ts, last_ts) "
            "SELECT n.tenant, n.trace_id, n.action, count(*), min(n.timestamp), "
            f"max(n.timestamp) FROM {source} WHERE n.{_ERROR} AND n.trace_id IS NOT NULL "
            "AND n.action IS NOT NULL GROUP BY 1, 2, 3 "
            "ON CONFLICT (tenant, trace_id, action) DO UPDATE SET "
            "errors = error_groups.errors + excluded.errors, "
            "first_ts = least(error_groups.first_ts, excluded.first_ts), "
            "last_ts = greatest(error_groups.last_ts, excluded.last_ts)")


# A new call is the next call of the earlier errors of its trace and tool it precedes the next
# call of (within the horizon); the earliest of the batch's calls wins.
_RETRIES = (
    "UPDATE error_facts f SET next_call = m.ts FROM (SELECT x.tenant, x.seq, "
    "min(c.timestamp) AS ts FROM {source} JOIN error_facts x ON x.tenant = c.tenant "
    "AND x.trace_id = c.trace_id AND x.action = c.action AND (c.timestamp > x.timestamp "
    "OR (c.timestamp = x.timestamp AND c.seq > x.seq)) "
    f"AND c.timestamp <= x.timestamp + {HORIZON_S}::float8 "
    "WHERE c.event_type = 'agent.tool_call' GROUP BY x.tenant, x.seq) m "
    "WHERE f.tenant = m.tenant AND f.seq = m.seq AND (f.next_call IS NULL OR m.ts < f.next_call)")


def after_insert_statements(source: str) -> tuple[str, ...]:
    """The statements that fold the rows of ``source`` (a subquery; aliased ``n`` and ``c``
    in turn) into the error facts: errors first (their next call among all stored rows), then
    the calls (the errors they follow, the batch's own included: no change there)."""
    return (_facts(source + " n"), _messages(source + " n"), _cells(source + " n"),
            _groups(source + " n"), _RETRIES.format(source=source + " c"))


def rebuild_statements() -> tuple[str, ...]:
    """Recompute tenant ``%(tenant)s``'s error facts (inside ``_pg_rollup.rebuild``)."""
    mine = "(SELECT * FROM events WHERE tenant = %(tenant)s)"
    return (*(f"DELETE FROM {t} WHERE tenant = %(tenant)s" for t in TABLES),
            _facts(mine + " n"), _messages(mine + " n"), _cells(mine + " n"),
            _groups(mine + " n"))


def migration(hold_match: str) -> str:
    """``0007_error_facts``: the tables, filled from the stored events, and the functions."""
    return f"""
CREATE TABLE error_facts (
    tenant text {_C} NOT NULL,
    seq bigint NOT NULL,
    day integer NOT NULL,
    timestamp double precision NOT NULL,
    event_id text {_C} NOT NULL,
    agent_name text {_C} NOT NULL,
    action text {_C},
    error_type text {_C},
    trace_id text {_C},
    next_call double precision,
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX ix_error_facts_time ON error_facts (tenant, timestamp);
CREATE INDEX ix_error_facts_trace ON error_facts (tenant, trace_id, action)
    WHERE trace_id IS NOT NULL AND action IS NOT NULL;
CREATE INDEX ix_error_facts_retries ON error_facts (tenant, action, timestamp)
    INCLUDE (event_id, next_call, agent_name, day)
    WHERE trace_id IS NOT NULL AND action IS NOT NULL AND next_call IS NOT NULL;
CREATE TABLE error_messages (
    tenant text {_C} NOT NULL,
    seq bigint NOT NULL,
    day integer NOT NULL,
    timestamp double precision NOT NULL,
    agent_name text {_C} NOT NULL,
    error_type text {_C},
    message text NOT NULL,
    PRIMARY KEY (tenant, seq, day)
) PARTITION BY RANGE (day);
CREATE INDEX ix_error_messages_time ON error_messages (tenant, timestamp);
CREATE TABLE error_cells (
    tenant text {_C} NOT NULL,
    hour bigint NOT NULL,
    agent_name text {_C} NOT NULL,
    action text {_C},
    error_type text {_C},
    errors bigint NOT NULL,
    last_ts double precision NOT NULL
);
CREATE UNIQUE INDEX ux_error_cells ON error_cells (tenant, hour, agent_name, action, error_type)
    NULLS NOT DISTINCT;
CREATE TABLE error_groups (
    tenant text {_C} NOT NULL,
    trace_id text {_C} NOT NULL,
    action text {_C} NOT NULL,
    errors bigint NOT NULL,
    first_ts double precision NOT NULL,
    last_ts double precision NOT NULL,
    PRIMARY KEY (tenant, trace_id, action)
);
CREATE INDEX ix_error_groups_errors ON error_groups (tenant, errors);
{_pg_payload_facts.partitions_of_payload_days("error_messages")}
{_pg_payload_facts.functions(hold_match, DAY_TABLES)}
CREATE TRIGGER event_payloads_erase_facts AFTER UPDATE OF payload ON event_payloads
    FOR EACH ROW WHEN (OLD.payload IS NOT NULL AND NEW.payload IS NULL)
    EXECUTE FUNCTION agentaudit_erase_payload_facts();
{_facts("events n")};
{_messages("events n")};
{_cells("events n")};
{_groups("events n")};
ANALYZE error_facts;
"""


def grants(ingest: str, reader: str) -> str:
    """The sequencer (ingest role) writes the facts, moving only ``next_call``; readers read
    them (row security is added beside). The trigger and the retention functions erase
    messages as the schema owner."""
    return (f"REVOKE ALL ON {', '.join(TABLES)} FROM PUBLIC; "
            f"GRANT INSERT, UPDATE (next_call) ON error_facts TO {ingest}; "
            f"GRANT INSERT ON error_messages TO {ingest}; "
            f"GRANT INSERT, UPDATE ON error_cells, error_groups TO {ingest}; "
            f"GRANT SELECT ON {', '.join(TABLES)} TO {ingest}, {reader}; "
            "REVOKE ALL ON FUNCTION agentaudit_erase_payload_facts() FROM PUBLIC;")

