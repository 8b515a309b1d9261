"""PostgreSQL schema of ``PostgresStore``: named migrations, day partitions and roles.

Tables (docs/postgresql.md draws them):

* ``events`` — the envelope of each event (every committed column but the payload), partitioned
  by ``day`` (UTC days since the epoch); never updated or deleted (grants and a trigger).
* ``event_payloads`` — the erasable payload, its salt and ``user_id``, partitioned by the same
  ``day``: retention drops a whole day of payloads in one ``DROP TABLE`` while the envelopes and
  leaves stay; ``payload_days_dropped`` says why.
* ``event_keys`` — (tenant, event_id) → seq, day: the global uniqueness a partitioned table
  cannot hold, so ingest is idempotent across partitions and collectors.
* ``log_state``, ``checkpoints``, ``merkle_tiles``, ``log_meta``, ``api_keys`` as in SQLite.
* ``legal_holds``, ``erasures`` (``0004_retention``) as in SQLite; ``event_payloads.erased_at``.

Roles (NOLOGIN groups; grant them to login roles): ``agentaudit_ingest`` appends,
``agentaudit_retention`` erases payloads, ``agentaudit_reader`` reads the tenants listed for it in
``tenant_readers`` (row-level security).

New migrations go at the end of ``MIGRATIONS``; applied ones are never edited.
"""

from __future__ import annotations

from agentaudit.store import (
    _pg_approval_facts,
    _pg_compliance_facts,
    _pg_cost_facts,
    _pg_errors,
    _pg_rollup,
)
from agentaudit.store.base import SAMPLE_STEP

__all__ = ["APPROVAL_FACTS_MIGRATION", "COMPLIANCE_FACTS_MIGRATION", "COST_FACTS_MIGRATION",
           "DERIVED_MIGRATIONS", "ERROR_FACTS_MIGRATION", "HOLD_MATCH", "INGEST_ROLE",
           "MIGRATIONS", "READER_ROLE", "RETENTION_ROLE", "RETENTION_TABLES", "ROLES", "ROLLED_MIGRATIONS",
           "ROLLUP_DAYS_MIGRATION", "ROLLUPS_MIGRATION", "SAMPLE_INDEX_MIGRATION",
           "TENANT_TABLES"]

INGEST_ROLE = "agentaudit_ingest"
RETENTION_ROLE = "agentaudit_retention"
READER_ROLE = "agentaudit_reader"
ROLES = (INGEST_ROLE, RETENTION_ROLE, READER_ROLE)

# Tables holding a ``tenant`` column: row-level security applies to them. (Migration 0003
# covers the first seven, later migrations the tables they add.)
_TENANT_TABLES_0003 = ("events", "event_payloads", "event_keys", "log_state", "checkpoints",
                       "merkle_tiles", "api_keys")
TENANT_TABLES = (*_TENANT_TABLES_0003, "alerts")

_C = 'COLLATE "C"'  # byte order, as SQLite compares text: reports sort the same on both

_TABLES = f"""
CREATE TABLE log_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO log_meta (key, value)
    VALUES ('log_id', substr(replace(gen_random_uuid()::text, '-', ''), 1, 16));
CREATE SEQUENCE events_id_seq;
CREATE TABLE events (
    id bigint NOT NULL DEFAULT nextval('events_id_seq'),
    tenant text {_C} NOT NULL,
    seq bigint NOT NULL,
    event_id text {_C} NOT NULL,
    event_type text {_C} NOT NULL,
    agent_name text {_C} NOT NULL,
    trace_id text {_C},
    parent_event_id text {_C},
    task_id text {_C},
    session_id text {_C},
    action text {_C},
    source text {_C},
    model text {_C},
    version text {_C},
    error_type text {_C},
    timestamp double precision NOT NULL,
    day integer NOT NULL CHECK (day = floor(timestamp / 86400)),
    duration_ms double precision,
    confidence double precision,
    token_count bigint,
    prompt_tokens bigint,
    completion_tokens bigint,
    cost_usd double precision,
    tier text {_C} NOT NULL,
    payload_sha256 bytea,
    leaf_hash bytea,
    PRIMARY KEY (tenant, seq, day)
) PARTITION BY RANGE (day);
CREATE INDEX ix_events_tenant_time ON events (tenant, timestamp, seq) INCLUDE (id, day);
CREATE INDEX ix_events_trace ON events (trace_id, timestamp, seq);
CREATE INDEX ix_events_task ON events (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX ix_events_session ON events (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX ix_events_agent_time ON events (tenant, agent_name, timestamp);
CREATE INDEX ix_events_type_time ON events (tenant, event_type, timestamp);
CREATE TABLE event_payloads (
    tenant text {_C} NOT NULL,
    seq bigint NOT NULL,
    day integer NOT NULL,
    user_id text {_C},
    payload bytea,
    salt bytea,
    erased text,
    PRIMARY KEY (tenant, seq, day) INCLUDE (user_id)
) PARTITION BY RANGE (day);
CREATE INDEX ix_payloads_user ON event_payloads (user_id) WHERE user_id IS NOT NULL;
CREATE TABLE event_keys (
    tenant text {_C} NOT NULL,
    event_id text {_C} NOT NULL,
    seq bigint NOT NULL,
    day integer NOT NULL,
    PRIMARY KEY (tenant, event_id),
    UNIQUE (tenant, seq)
);
CREATE TABLE payload_days_dropped (
    day integer PRIMARY KEY,
    reason text NOT NULL,
    dropped_at double precision NOT NULL
);
CREATE TABLE log_state (tenant text {_C} PRIMARY KEY, size bigint NOT NULL, frontier bytea);
CREATE TABLE checkpoints (
    tenant text {_C} NOT NULL,
    size bigint NOT NULL,
    root bytea NOT NULL,
    note text NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (tenant, size)
);
CREATE TABLE merkle_tiles (
    tenant text {_C} NOT NULL,
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (tenant, idx)
);
CREATE TABLE api_keys (
    id text {_C} PRIMARY KEY,
    tenant text {_C} NOT NULL,
    scope text NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
    name text,
    key_hash bytea NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision
);
CREATE INDEX ix_api_keys_tenant ON api_keys (tenant);
CREATE TABLE tenant_readers (
    role_name name NOT NULL,
    tenant text {_C} NOT NULL,
    PRIMARY KEY (role_name, tenant)
);
-- Every column of an event as SQLite keeps it in one row: what queries and verification read.
CREATE VIEW events_v WITH (security_invoker = true) AS
    SELECT e.id, e.tenant, e.seq, e.event_id, e.event_type, e.agent_name, e.trace_id,
           e.parent_event_id, e.task_id, e.session_id, p.user_id, e.action, e.source, e.model,
           e.version, e.error_type, e.timestamp, e.duration_ms, e.confidence, e.token_count,
           e.prompt_tokens, e.completion_tokens, e.cost_usd, e.tier, p.payload, p.salt,
           e.payload_sha256, e.leaf_hash, e.day,
           CASE WHEN p.tenant IS NULL THEN coalesce(
                    (SELECT d.reason FROM payload_days_dropped d WHERE d.day = e.day),
                    'payload row missing')
                ELSE p.erased END AS erased
    FROM events e LEFT JOIN event_payloads p
        ON p.tenant = e.tenant AND p.day = e.day AND p.seq = e.seq;
"""

# Day partitions are made by one function, serialised by a lock so that collectors racing to
# create the same day do not collide, and run as the schema owner (``SECURITY DEFINER``) so that
# the ingest role needs no DDL rights.
_FUNCTIONS = """
CREATE FUNCTION agentaudit_ensure_days(days integer[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE d integer; made integer := 0; t text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('agentaudit.partitions', 0));
    FOREACH d IN ARRAY days LOOP
        FOREACH t IN ARRAY ARRAY['events', 'event_payloads'] LOOP
            IF to_regclass(format('%I', t || '_d' || d)) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                               t || '_d' || d, t, d, d + 1);
                made := made + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN made;
END $fn$;
CREATE FUNCTION agentaudit_drop_payload_day(d integer, why text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO payload_days_dropped (day, reason, dropped_at)
        VALUES (d, why, extract(epoch FROM clock_timestamp()))
        ON CONFLICT (day) DO NOTHING;
    IF to_regclass(format('%I', 'event_payloads_d' || d)) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE %I', 'event_payloads_d' || d);
    RETURN true;
END $fn$;
CREATE FUNCTION agentaudit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'agentaudit: % on % refused: the audit log is append-only', TG_OP,
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $fn$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION agentaudit_append_only();
CREATE TRIGGER event_keys_append_only BEFORE UPDATE OR DELETE ON event_keys
    FOR EACH ROW EXECUTE FUNCTION agentaudit_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION agentaudit_append_only();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION agentaudit_append_only();
"""


def _create_roles() -> str:
    lines = [f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{r}') THEN "
             f"CREATE ROLE {r} NOLOGIN; END IF;" for r in ROLES]
    return "DO $do$ BEGIN " + " ".join(lines) + " END $do$;"


_ALL_TENANT_READ = ", ".join((*_TENANT_TABLES_0003, "log_meta", "payload_days_dropped",
                              "tenant_readers", "schema_migrations", "events_v"))

_GRANTS = f"""
REVOKE ALL ON {_ALL_TENANT_READ} FROM PUBLIC;
GRANT USAGE ON SCHEMA {{schema}} TO {INGEST_ROLE}, {RETENTION_ROLE}, {READER_ROLE};
GRANT SELECT ON {_ALL_TENANT_READ} TO {INGEST_ROLE}, {RETENTION_ROLE}, {READER_ROLE};
GRANT INSERT ON events, event_payloads, event_keys, checkpoints, merkle_tiles TO {INGEST_ROLE};
GRANT INSERT, UPDATE ON log_state TO {INGEST_ROLE};
GRANT INSERT, UPDATE (revoked_at), DELETE ON api_keys TO {INGEST_ROLE};
GRANT USAGE ON SEQUENCE events_id_seq TO {INGEST_ROLE};
GRANT UPDATE (payload, salt, user_id, erased) ON event_payloads TO {RETENTION_ROLE};
REVOKE ALL ON FUNCTION agentaudit_ensure_days(integer[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION agentaudit_drop_payload_day(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentaudit_ensure_days(integer[]) TO {INGEST_ROLE};
GRANT EXECUTE ON FUNCTION agentaudit_drop_payload_day(integer, text) TO {RETENTION_ROLE};
"""


def _row_security(tables: tuple[str, ...] = _TENANT_TABLES_0003) -> str:
    out = []
    for t in tables:
        out.append(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;")
        out.append(f"CREATE POLICY {t}_writers ON {t} TO {INGEST_ROLE}, {RETENTION_ROLE} "
                   "USING (true) WITH CHECK (true);")
        out.append(f"CREATE POLICY {t}_tenant_reader ON {t} FOR SELECT TO {READER_ROLE} "
                   "USING (tenant IN (SELECT r.tenant FROM tenant_readers r "
                   "WHERE r.role_name = current_user));")
    return "\n".join(out)


# -- 0004_retention: legal holds, erasure records, the erasure time of a payload, and the fast
# path of retention (``_pg_retention``). The retention role is also a member of the ingest role:
# every run, hold and erasure appends its ``audit.*`` event to the log it changes.
# ``agentaudit_truncate_payload_day`` empties one day partition of payloads at once, and only
# when, under a lock that keeps new payloads out of it, the payloads still stored in it are
# exactly those of the given events, none under an active legal hold. Rows erased earlier (of
# any tenant) hold no payload: they are set aside and put back, so they keep their own reason.
# Otherwise it changes nothing and says false.
RETENTION_TABLES = ("legal_holds", "erasures")

# An event ``e`` (with its payload row ``p``) is held when an active hold of its tenant matches.
HOLD_MATCH = (
    "h.tenant = e.tenant AND h.released_at IS NULL "
    "AND (h.trace_id IS NULL OR h.trace_id = e.trace_id) "
    "AND (h.session_id IS NULL OR h.session_id = e.session_id) "
    "AND (h.agent_name IS NULL OR h.agent_name = e.agent_name) "
    "AND (h.user_id IS NULL OR h.user_id = p.user_id) "
    "AND (h.from_ts IS NULL OR e.timestamp >= h.from_ts) "
    "AND (h.to_ts IS NULL OR e.timestamp < h.to_ts)"
)

_RETENTION = f"""
CREATE TABLE legal_holds (
    id text {_C} PRIMARY KEY,
    tenant text {_C} NOT NULL,
    reason text NOT NULL,
    trace_id text {_C},
    session_id text {_C},
    agent_name text {_C},
    user_id text {_C},
    from_ts double precision,
    to_ts double precision,
    created_at double precision NOT NULL,
    created_by text,
    released_at double precision,
    released_by text
);
CREATE INDEX ix_legal_holds_tenant ON legal_holds (tenant, released_at);
CREATE TABLE erasures (
    id text {_C} PRIMARY KEY,
    tenant text {_C} NOT NULL,
    kind text NOT NULL CHECK (kind IN ('retention', 'erasure')),
    selector text,
    reason text NOT NULL,
    at double precision NOT NULL,
    erased bigint NOT NULL,
    payload_bytes bigint NOT NULL,
    refused_held bigint NOT NULL,
    audit_event_id text
);
CREATE INDEX ix_erasures_tenant_at ON erasures (tenant, at);
ALTER TABLE event_payloads ADD COLUMN erased_at double precision;
CREATE FUNCTION agentaudit_truncate_payload_day(d integer, ids bigint[], why text,
                                                at double precision) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE part text := 'event_payloads_d' || d; live bigint; due bigint;
BEGIN
    IF to_regclass(format('%I', part)) IS NULL THEN
        RETURN false;
    END IF;
    -- SHARE: readers go on, writers of this day wait until the caller commits
    EXECUTE format('LOCK TABLE %I IN SHARE MODE', part);
    IF EXISTS (SELECT 1 FROM payload_days_dropped x WHERE x.day = d AND x.reason <> why) THEN
        RETURN false;  -- the day's one reason is another's: erase row by row
    END IF;
    EXECUTE format('SELECT count(*) FROM %I WHERE payload IS NOT NULL', part) INTO live;
    IF live <> cardinality(ids) THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT DISTINCT unnest($1) AS id) i '
                   'JOIN events e ON e.id = i.id AND e.day = $2 '
                   'JOIN %I p ON p.tenant = e.tenant AND p.seq = e.seq AND p.day = e.day '
                   'WHERE p.payload IS NOT NULL AND NOT EXISTS '
                   '(SELECT 1 FROM legal_holds h WHERE {HOLD_MATCH})', part)
        INTO due USING ids, d;
    IF due <> live THEN
        RETURN false;
    END IF;
    INSERT INTO payload_days_dropped (day, reason, dropped_at) VALUES (d, why, at)
        ON CONFLICT (day) DO NOTHING;
    DROP TABLE IF EXISTS pg_temp.agentaudit_erased_rows;
    EXECUTE format('CREATE TEMP TABLE agentaudit_erased_rows ON COMMIT DROP AS '
                   'SELECT * FROM %I WHERE payload IS NULL', part);
    EXECUTE format('TRUNCATE %I', part);
    EXECUTE format('INSERT INTO %I SELECT * FROM pg_temp.agentaudit_erased_rows', part);
    DROP TABLE pg_temp.agentaudit_erased_rows;
    RETURN true;
END $fn$;
GRANT {INGEST_ROLE} TO {RETENTION_ROLE};
REVOKE ALL ON legal_holds, erasures FROM PUBLIC;
GRANT SELECT ON legal_holds, erasures TO {INGEST_ROLE}, {RETENTION_ROLE}, {READER_ROLE};
GRANT INSERT, UPDATE (released_at, released_by) ON legal_holds TO {RETENTION_ROLE};
GRANT INSERT ON erasures TO {RETENTION_ROLE};
GRANT UPDATE (erased_at) ON event_payloads TO {RETENTION_ROLE};
REVOKE ALL ON FUNCTION agentaudit_truncate_payload_day(integer, bigint[], text, double precision)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    agentaudit_truncate_payload_day(integer, bigint[], text, double precision) TO {RETENTION_ROLE};
"""


# (name, SQL). ``{schema}`` is replaced by the schema the store lives in.
MIGRATIONS: list[tuple[str, str]] = [
    ("0001_events", _TABLES),
    ("0002_partition_functions", _FUNCTIONS),
    ("0003_roles", _create_roles() + _GRANTS + _row_security()),
    ("0004_retention", _RETENTION + _row_security(RETENTION_TABLES)),
]

# Alerts of the detection rules (``_pg_alerts``; the same columns as SQLite's ``0005_alerts``).
# Alerts are the state of incidents, not the log: the ingest role (the collector's detection)
# inserts and updates them; a reader sees its tenants' alerts and their deliveries.
_ALERTS = f"""
CREATE SEQUENCE alerts_id_seq;
CREATE TABLE alerts (
    id bigint PRIMARY KEY DEFAULT nextval('alerts_id_seq'),
    tenant text {_C} NOT NULL,
    event_id text {_C} NOT NULL,
    rule text {_C} NOT NULL,
    severity text {_C} NOT NULL,
    kind text {_C} NOT NULL,
    agent_name text {_C},
    trace_id text {_C},
    title text NOT NULL,
    explanation text NOT NULL,
    evidence text NOT NULL,
    dedup_key text {_C} NOT NULL,
    occurrences bigint NOT NULL DEFAULT 1,
    first_seen double precision NOT NULL,
    last_seen double precision NOT NULL,
    status text {_C} NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acked')),
    acked_by text,
    acked_at double precision,
    ack_note text
);
ALTER SEQUENCE alerts_id_seq OWNED BY alerts.id;
CREATE UNIQUE INDEX ux_alerts_event ON alerts (tenant, event_id);
CREATE INDEX ix_alerts_open ON alerts (tenant, dedup_key) WHERE status = 'open';
CREATE INDEX ix_alerts_time ON alerts (tenant, last_seen);
CREATE SEQUENCE alert_deliveries_id_seq;
CREATE TABLE alert_deliveries (
    id bigint PRIMARY KEY DEFAULT nextval('alert_deliveries_id_seq'),
    alert_id bigint NOT NULL REFERENCES alerts (id),
    sink text NOT NULL,
    status text NOT NULL CHECK (status IN ('delivered', 'dead', 'rate_limited')),
    attempts integer NOT NULL,
    last_error text,
    payload text NOT NULL,
    at double precision NOT NULL
);
ALTER SEQUENCE alert_deliveries_id_seq OWNED BY alert_deliveries.id;
CREATE INDEX ix_alert_deliveries_alert ON alert_deliveries (alert_id);
REVOKE ALL ON alerts, alert_deliveries FROM PUBLIC;
GRANT SELECT ON alerts, alert_deliveries TO {INGEST_ROLE}, {RETENTION_ROLE}, {READER_ROLE};
GRANT INSERT, UPDATE (occurrences, last_seen, status, acked_by, acked_at, ack_note)
    ON alerts TO {INGEST_ROLE};
GRANT INSERT ON alert_deliveries TO {INGEST_ROLE};
GRANT USAGE ON SEQUENCE alerts_id_seq, alert_deliveries_id_seq TO {INGEST_ROLE};
{_row_security(("alerts",))}
ALTER TABLE alert_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_deliveries_writers ON alert_deliveries TO {INGEST_ROLE}, {RETENTION_ROLE}
    USING (true) WITH CHECK (true);
CREATE POLICY alert_deliveries_tenant_reader ON alert_deliveries FOR SELECT TO {READER_ROLE}
    USING (alert_id IN (SELECT a.id FROM alerts a));
"""

MIGRATIONS.append(("0005_alerts", _ALERTS))

# Report rollups (``_pg_rollup``): hourly cells, open work, closers, the tool latency index.
MIGRATIONS.append(("0006_report_rollups", _pg_rollup.MIGRATION
                   + _pg_rollup.grants(INGEST_ROLE, READER_ROLE)
                   + _row_security(_pg_rollup.TABLES)))
ROLLUPS_MIGRATION = "0006_report_rollups"

# Error facts (``_pg_errors``): what the errors report reads, kept by the sequencer beside the
# rollups; the messages are erased with their payloads.
MIGRATIONS.append(("0007_error_facts", _pg_errors.migration(HOLD_MATCH)
                   + _pg_errors.grants(INGEST_ROLE, READER_ROLE)
                   + _row_security(_pg_errors.TABLES)))
ERROR_FACTS_MIGRATION = "0007_error_facts"
# What the compliance checks read (``_pg_compliance_facts``): interventions by trace, the tool
# calls' true tags (erased with the payloads), tool calls by tool.
MIGRATIONS.append(("0008_compliance_facts", _pg_compliance_facts.migration(HOLD_MATCH)
                   + _pg_compliance_facts.grants(INGEST_ROLE, READER_ROLE)
                   + _row_security(_pg_compliance_facts.TABLES)))
COMPLIANCE_FACTS_MIGRATION = "0008_compliance_facts"
# The rows the compliance report's PII scan samples from, when its stride is a multiple of
# SAMPLE_STEP (``base.sample_stride``, template ``cmp_payloads``): a SAMPLE_STEP-th of the
# period's index to walk instead of all of it (4.6 -> 0.5 s at 10 million events).
MIGRATIONS.append(("0009_sample_index", f"""
CREATE INDEX ix_events_sample ON events (tenant, timestamp, seq)
    INCLUDE (id, day, agent_name, event_id) WHERE id % {SAMPLE_STEP} = 0;
"""))
SAMPLE_INDEX_MIGRATION = "0009_sample_index"
# Day cells of the rollups (``_pg_rollup``): a period's whole days are read from a 24th of the
# rows the hourly cells take.
MIGRATIONS.append(("0010_rollup_days", _pg_rollup.day_migration(INGEST_ROLE, READER_ROLE)
                   + _row_security(("rollup_day",))))
ROLLUP_DAYS_MIGRATION = "0010_rollup_days"
# What the cost rankings read (``_pg_cost_facts``): per trace and task the token sums by model
# slot, per user, day and model the same (erased with the payloads).
_PAYLOAD_ROW_TABLES = _pg_errors.DAY_TABLES + _pg_compliance_facts.DAY_TABLES
MIGRATIONS.append(("0011_cost_facts", _pg_cost_facts.migration(
    HOLD_MATCH, _PAYLOAD_ROW_TABLES, _PAYLOAD_ROW_TABLES)
    + _pg_cost_facts.grants(INGEST_ROLE, READER_ROLE)
    + _row_security(_pg_cost_facts.TABLES)))
COST_FACTS_MIGRATION = "0011_cost_facts"
# What the approval check reads from payloads (``_pg_approval_facts``): the numbers of the tool
# calls' params, the approvers' names (erased with the payloads).
_APPROVAL_ROW_TABLES = _PAYLOAD_ROW_TABLES + _pg_approval_facts.TABLES
MIGRATIONS.append(("0012_approval_facts", _pg_approval_facts.migration(
    _pg_cost_facts.payload_functions(HOLD_MATCH, _APPROVAL_ROW_TABLES, _APPROVAL_ROW_TABLES))
    + _pg_compliance_facts.grants(INGEST_ROLE, READER_ROLE, _pg_approval_facts.TABLES)
    + _row_security(_pg_approval_facts.TABLES)))
APPROVAL_FACTS_MIGRATION = "0012_approval_facts"
# Migrations of derived tables and indexes only (the rows answer without them): a read-only
# store may open a database that lacks a suffix of them, and then reads no rolled template.
DERIVED_MIGRATIONS = (ROLLUPS_MIGRATION, ERROR_FACTS_MIGRATION, COMPLIANCE_FACTS_MIGRATION,
                      SAMPLE_INDEX_MIGRATION, ROLLUP_DAYS_MIGRATION, COST_FACTS_MIGRATION,
                      APPROVAL_FACTS_MIGRATION)
# those the rolled templates read (the sample index serves a plain one)
ROLLED_MIGRATIONS = (ROLLUPS_MIGRATION, ERROR_FACTS_MIGRATION, COMPLIANCE_FACTS_MIGRATION,
                     ROLLUP_DAYS_MIGRATION, COST_FACTS_MIGRATION, APPROVAL_FACTS_MIGRATION)
