"""Facts read from payloads, kept in day partitions beside ``event_payloads`` and erased with them.

Some report checks need a few values of a payload (an error's message, a tool call's tags) for
many events; reading each payload row is a look-up into one of many day partitions. So the
sequencer copies those values at ingest into tables partitioned by day like
``event_payloads`` (``_pg_errors.DAY_TABLES``, ``_pg_compliance_facts.DAY_TABLES``,
``_pg_cost_facts.DAY_TABLES``). A value
taken from a payload must go when the payload goes, by every path that erases payloads:

* erasure row by row (``UPDATE event_payloads SET payload = NULL``): the row trigger
  ``event_payloads_erase_facts`` deletes the event's facts (``agentaudit_erase_payload_facts``,
  run as the schema owner: the retention role needs no right on these tables) from the tables
  keyed by event; ``cost_users``, whose cells sum many events, has its own trigger;
* a whole day emptied (``agentaudit_truncate_payload_day``): the day's fact partitions are
  emptied too (the erased rows it keeps have no facts left: the trigger deleted them);
* a day of payloads dropped (``agentaudit_drop_payload_day``): its fact partitions are dropped.

``agentaudit_ensure_days`` makes the facts' partitions with the payloads'. Each migration that
adds such a table replaces these functions (same signatures: a collector of an older version
that calls them keeps every partition paired) with the list of all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["functions", "partitions_of_payload_days", "payload_json"]


def payload_json(path: str, alias: str = "") -> str:
    """``json_extract(payload, '$.a.b')`` of SQLite as text (``alias.payload`` when given)."""
    col = f"{alias}.payload" if alias else "payload"
    keys = ",".join(path.split("."))
    return f"(convert_from({col}, 'UTF8')::jsonb #>> '{{{keys}}}')"


def _array(tables: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{t}'" for t in tables) + "]"


def partitions_of_payload_days(table: str) -> str:
    """Create ``table``'s partition of each day whose payload partition exists."""
    return f"""
DO $do$ DECLARE d integer; BEGIN
    FOR d IN SELECT substr(c.relname, 17)::int FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'event_payloads'::regclass
               AND c.relname ~ '^event_payloads_d-?[0-9]+$' LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)',
                       '{table}_d' || d, d, d + 1);
    END LOOP;
END $do$;
"""


def functions(hold_match: str, day_tables: Sequence[str],
              row_tables: Sequence[str] | None = None, day_gone: str = "") -> str:
    """The partition and erasure functions for the payload facts in ``day_tables``; an erased
    payload row deletes its event's rows (by tenant, day and seq) from ``row_tables`` (all of
    them unless given); ``day_gone`` (PL/pgSQL lines, day ``d``) runs before a day's facts are
    dropped or emptied."""
    facts = _array(day_tables)
    rows = facts if row_tables is None else _array(row_tables)
    return f"""
CREATE OR REPLACE FUNCTION agentaudit_ensure_days(days integer[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE d integer; made integer := 0; t text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('agentaudit.partitions', 0));
    FOREACH d IN ARRAY days LOOP
        FOREACH t IN ARRAY ARRAY['events', 'event_payloads'] || {facts} LOOP
            IF to_regclass(format('%I', t || '_d' || d)) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                               t || '_d' || d, t, d, d + 1);
                made := made + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN made;
END $fn$;
CREATE OR REPLACE FUNCTION agentaudit_drop_payload_day(d integer, why text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE t text;
BEGIN
    INSERT INTO payload_days_dropped (day, reason, dropped_at)
        VALUES (d, why, extract(epoch FROM clock_timestamp()))
        ON CONFLICT (day) DO NOTHING;
{day_gone}    FOREACH t IN ARRAY {facts} LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', t || '_d' || d);
    END LOOP;
    IF to_regclass(format('%I', 'event_payloads_d' || d)) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE %I', 'event_payloads_d' || d);
    RETURN true;
END $fn$;
CREATE OR REPLACE FUNCTION agentaudit_erase_payload_facts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY {rows} LOOP
        EXECUTE format('DELETE FROM %I WHERE tenant = $1 AND day = $2 AND seq = $3', t)
            USING NEW.tenant, NEW.day, NEW.seq;
    END LOOP;
    RETURN NULL;
END $fn$;
{_truncate_function(hold_match, facts, day_gone)}
"""


def _truncate_function(hold_match: str, facts: str, day_gone: str = "") -> str:
    """``agentaudit_truncate_payload_day`` of 0004, which also empties the day's facts."""
    return """
CREATE OR REPLACE FUNCTION agentaudit_truncate_payload_day(d integer, ids bigint[], why text,
                                                           at double precision) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE part text := 'event_payloads_d' || d; live bigint; due bigint; t text;
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
                   '(SELECT 1 FROM legal_holds h WHERE HOLD_MATCH)', part)
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
    FOREACH t IN ARRAY FACTS LOOP
        IF to_regclass(format('%I', t || '_d' || d)) IS NOT NULL THEN
            EXECUTE format('TRUNCATE %I', t || '_d' || d);
        END IF;
    END LOOP;
    EXECUTE format('INSERT INTO %I SELECT * FROM pg_temp.agentaudit_erased_rows', part);
    DROP TABLE pg_temp.agentaudit_erased_rows;
    RETURN true;
END $fn$;
""".replace("    FOREACH t IN ARRAY FACTS", day_gone + "    FOREACH t IN ARRAY FACTS").replace(
        "HOLD_MATCH", hold_match).replace("FACTS", facts)
