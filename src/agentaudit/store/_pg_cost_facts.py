"""What the cost report's rankings read on PostgreSQL, kept with the events.

The cost report ranks the period's tasks, users and traces by a cost that depends on the price
table given at report time: an event of a priced model costs its tokens times the model's
prices, any other metered event the cost it recorded. So no total can be kept per trace; what
can be kept is what the cost is linear in. Per tenant, the sequencer keeps:

* ``cost_models`` — a slot (1, 2, ...) for each model (or none) its metered events name.
* ``cost_groups`` — per trace and per task (``dim``; the events without one form the NULL
  key), over all time: the first and last metered event's time, the metered events, and per
  model slot the priced prompt tokens, the completion tokens and the recorded cost in
  pico-dollars (``numeric[]``, one element per slot: sums never overflow; and the same as
  ``float8[]``, which rank). A group whose events all lie in the period costs ``Σ slot: tokens
  × prices`` (one row, no grouping: 540,000 traces ranked in about 0.4 s at 10 million
  events); a group straddling an edge of the period (found by its first or last time: few) is
  summed from its events.
* ``cost_user_totals`` and ``cost_users`` — per user and model, and per user, day and model,
  the same sums; the day cells are partitioned by day with the payloads (``user_id`` is
  payload: erasable). Erasing a payload row subtracts its event from both (trigger
  ``event_payloads_erase_user_cost``); a day of payloads dropped or emptied is subtracted from
  the totals (``agentaudit_user_cost_day_gone``), then its cells go with it
  (``_pg_payload_facts``). A user whose events all lie in the period is read from its totals;
  one crossing an edge from its day cells inside the period and the events of the other days.
  The events with no user (none given, or erased) are the rollups' metered totals less the
  users'. At ingest the collector gives each metered event's user: no payload is read.

Migration ``0011_cost_facts``; ``_pg_cost_rank.rank`` answers ``rpt_cost_top`` from them (the
plain template in ``_pg_reports`` stays the reference: tests/postgres/test_pg_cost_facts.py).
"""

from __future__ import annotations

from agentaudit.store import _pg_payload_facts
from agentaudit.store._pg_measures import metered, priced_tokens, recorded

__all__ = ["DAY_TABLES", "TABLES", "after_insert_statements", "grants", "migration",
           "payload_functions", "rebuild_statements"]

TABLES = ("cost_models", "cost_groups", "cost_users", "cost_user_totals")
DAY_TABLES = ("cost_users",)  # partitioned by day with the payloads, erased with them
DIMS = ("trace", "task")  # the cost_groups kept, by the events' column ``{dim}_id``
# one partition per dimension: a ranking reads only its own groups
_DIM_PARTITIONS = "\n".join(f"CREATE TABLE cost_groups_{d} PARTITION OF cost_groups "
                            f"FOR VALUES IN ('{d}');" for d in DIMS)
_C = 'COLLATE "C"'

(_PT, _CT), _METERED = priced_tokens("n."), metered("n.")
_DOLLARS, _PICO_REST = recorded("n.")
# an event's recorded cost in pico-dollars (0 when none): what the plain template sums
_REC = f"coalesce({_DOLLARS}::numeric * 1000000000000 + {_PICO_REST}, 0)"


# the user of event ``n``: its payload row's (a probe of its day)
_PAYLOAD_USER = ("(SELECT p.user_id FROM event_payloads p WHERE p.tenant = n.tenant "
                 "AND p.day = n.day AND p.seq = n.seq)")


def _metered(source: str, user: str = "NULL::text") -> str:
    """The metered events of ``source`` (rows ``n``) with their model's slot and sums (and
    ``user``, an expression of ``n``)."""
    return (f"SELECT n.tenant, n.day, n.seq, n.trace_id, n.task_id, n.model, n.timestamp, "
            f"m.slot, ({_PT})::numeric AS pt, ({_CT})::numeric AS ct, {_REC} AS rec, "
            f"{user} AS user_id "
            f"FROM {source} JOIN cost_models m ON m.tenant = n.tenant "
            f"AND m.model IS NOT DISTINCT FROM n.model WHERE {_METERED}")


def _slots(source: str) -> str:
    """Give each model of ``source``'s metered events (rows ``n``) that has none a slot; the
    tenant's sequencer lock orders these inserts."""
    return (
        "INSERT INTO cost_models (tenant, model, slot) SELECT x.tenant, x.model, "
        "(SELECT coalesce(max(c.slot), 0) FROM cost_models c WHERE c.tenant = x.tenant) "
        "+ row_number() OVER (PARTITION BY x.tenant ORDER BY x.model NULLS FIRST) "
        f"FROM (SELECT DISTINCT n.tenant, n.model FROM {source} WHERE {_METERED} "
        "AND NOT EXISTS (SELECT 1 FROM cost_models c WHERE c.tenant = n.tenant "
        "AND c.model IS NOT DISTINCT FROM n.model)) x")


def _groups(source: str, dim: str, key: str) -> str:
    """Fold ``source``'s metered events into their ``dim`` groups (by column ``key``): per
    group and slot the sums, laid out over every slot of the tenant (0 where none) in one
    join, so that no function runs per new group."""
    task = "max(task)" if dim == "trace" else "NULL::text"
    return (
        f"WITH s AS (SELECT tenant, {key} AS key, slot, min(timestamp) AS f, "
        "max(timestamp) AS l, count(*) AS n, max(task_id) AS task, sum(pt) AS pt, "
        f"sum(ct) AS ct, sum(rec) AS rec FROM ({_metered(source)}) x GROUP BY 1, 2, 3), "
        "k AS (SELECT tenant, key, min(f) AS f, max(l) AS l, sum(n) AS n, "
        f"{task} AS task FROM s GROUP BY 1, 2), "
        "grid AS (SELECT k.*, i FROM k CROSS JOIN LATERAL generate_series(1, (SELECT "
        "max(c.slot) FROM cost_models c WHERE c.tenant = k.tenant)) AS i) "
        "INSERT INTO cost_groups (tenant, dim, key, first_ts, last_ts, calls, task_id, pt, ct, "
        f"rec) SELECT g.tenant, '{dim}', g.key, g.f, g.l, g.n, g.task, "
        + ", ".join(f"array_agg(coalesce(s.{c}, 0) ORDER BY g.i)" for c in ("pt", "ct", "rec"))
        # (equalities only, so that it is a hash join; '' and NULL told apart)
        + " FROM grid g LEFT JOIN s ON s.tenant = g.tenant AND s.slot = g.i "
        "AND coalesce(s.key, '') = coalesce(g.key, '') AND (s.key IS NULL) = (g.key IS NULL) "
        "GROUP BY g.tenant, g.key, g.f, g.l, g.n, g.task "
        "ON CONFLICT (tenant, dim, key) DO UPDATE SET "
        "first_ts = least(cost_groups.first_ts, excluded.first_ts), "
        "last_ts = greatest(cost_groups.last_ts, excluded.last_ts), "
        "calls = cost_groups.calls + excluded.calls, "
        "task_id = greatest(cost_groups.task_id, excluded.task_id), "
        + ", ".join(f"{c} = agentaudit_add_arrays(cost_groups.{c}, excluded.{c})"
                    for c in ("pt", "ct", "rec")))


def _users(source: str, user: str) -> str:
    """Fold ``source``'s metered events with a user (``user`` of each row ``n``) into their
    (day, user, model) cells and their (user, model) totals, in one statement."""
    def fold(table: str, day: str) -> str:
        return (f"INSERT INTO {table} (tenant, {day}user_id, model, first_ts, last_ts, calls, pt, "
                f"ct, rec) SELECT tenant, {day}user_id, model, min(timestamp), max(timestamp), "
                f"count(*), sum(pt), sum(ct), sum(rec) FROM u GROUP BY tenant, {day}user_id, "
                f"model ON CONFLICT (tenant, {day}user_id, model) DO UPDATE SET "
                f"first_ts = least({table}.first_ts, excluded.first_ts), "
                f"last_ts = greatest({table}.last_ts, excluded.last_ts), "
                + ", ".join(f"{c} = {table}.{c} + excluded.{c}"
                            for c in ("calls", "pt", "ct", "rec")))
    return (f"WITH u AS MATERIALIZED (SELECT * FROM ({_metered(source, user)}) x "
            f"WHERE user_id IS NOT NULL), cells AS ({fold('cost_users', 'day, ')}) "
            + fold("cost_user_totals", ""))


def _fill_all(source: str, users: str | None = None) -> tuple[str, ...]:
    """Fold the events of ``source`` into the cost facts; their users are read from their
    payloads, or given by ``users`` (a subquery of ``source``'s metered events with a user,
    with a ``user_id`` column)."""
    n = source + " n"
    return (_slots(n), *(_groups(n, dim, f"{dim}_id") for dim in DIMS),
            _users(n, _PAYLOAD_USER) if users is None else _users(users + " n", "n.user_id"))


def after_insert_statements(source: str, users: str) -> tuple[str, ...]:
    """Fold the rows of ``source`` (a subquery of events) into the cost facts; ``users``: its
    metered events with a user, with their ``user_id`` (which the collector knows)."""
    return _fill_all(source, users)


def rebuild_statements() -> tuple[str, ...]:
    """Recompute tenant ``%(tenant)s``'s cost facts (inside ``_pg_rollup.rebuild``)."""
    return (*(f"DELETE FROM {t} WHERE tenant = %(tenant)s" for t in reversed(TABLES)),
            *_fill_all("(SELECT * FROM events WHERE tenant = %(tenant)s)"))


_ERASED = (f"SELECT n.model, 1 AS calls, ({_PT})::numeric AS pt, ({_CT})::numeric AS ct, "
           f"{_REC} AS rec FROM events n WHERE n.tenant = NEW.tenant AND n.day = NEW.day "
           f"AND n.seq = NEW.seq AND {_METERED}")
_LESS = "calls = c.calls - x.calls, pt = c.pt - x.pt, ct = c.ct - x.ct, rec = c.rec - x.rec"
_DAY_GONE = "    PERFORM agentaudit_user_cost_day_gone(d);\n"
# an erased user's event leaves its day cell and its totals; a day of payloads dropped or
# emptied takes its day cells with it (``_pg_payload_facts``) after leaving the totals
_ERASE_USER = f"""
CREATE FUNCTION agentaudit_erase_user_cost() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    UPDATE cost_users c SET {_LESS} FROM ({_ERASED}) x
     WHERE c.tenant = NEW.tenant AND c.day = NEW.day AND c.user_id = OLD.user_id
       AND c.model IS NOT DISTINCT FROM x.model;
    DELETE FROM cost_users c WHERE c.tenant = NEW.tenant AND c.day = NEW.day
       AND c.user_id = OLD.user_id AND c.calls <= 0;
    UPDATE cost_user_totals c SET {_LESS} FROM ({_ERASED}) x
     WHERE c.tenant = NEW.tenant AND c.user_id = OLD.user_id
       AND c.model IS NOT DISTINCT FROM x.model;
    DELETE FROM cost_user_totals c WHERE c.tenant = NEW.tenant AND c.user_id = OLD.user_id
       AND c.calls <= 0;
    RETURN NULL;
END $fn$;
CREATE FUNCTION agentaudit_user_cost_day_gone(d integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    IF to_regclass(format('%I', 'cost_users_d' || d)) IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('UPDATE cost_user_totals c SET {_LESS.replace("%", "%%")} FROM (SELECT tenant, '
                   'user_id, model, sum(calls) AS calls, sum(pt) AS pt, sum(ct) AS ct, '
                   'sum(rec) AS rec FROM %I GROUP BY 1, 2, 3) x WHERE c.tenant = x.tenant '
                   'AND c.user_id = x.user_id AND c.model IS NOT DISTINCT FROM x.model',
                   'cost_users_d' || d);
    DELETE FROM cost_user_totals c WHERE c.calls <= 0;
END $fn$;
CREATE TRIGGER event_payloads_erase_user_cost AFTER UPDATE OF user_id ON event_payloads
    FOR EACH ROW WHEN (OLD.user_id IS NOT NULL AND NEW.user_id IS DISTINCT FROM OLD.user_id)
    EXECUTE FUNCTION agentaudit_erase_user_cost();
"""

_ARRAYS = """
CREATE FUNCTION agentaudit_add_arrays(a numeric[], b numeric[]) RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i), '{}')
      FROM generate_series(1, greatest(cardinality(a), cardinality(b))) AS i
$fn$;
"""


def _user_table(table: str, day: str) -> str:
    """The ``CREATE TABLE`` of a user's sums per model (and ``day`` column, when given)."""
    return "\n    ".join(
        (f"CREATE TABLE {table} (", f"tenant text {_C} NOT NULL,", *((day,) if day else ()),
         f"user_id text {_C} NOT NULL,", f"model text {_C},",
         "first_ts double precision NOT NULL,", "last_ts double precision NOT NULL,",
         "calls bigint NOT NULL,", "pt numeric NOT NULL,", "ct numeric NOT NULL,",
         "rec numeric NOT NULL")) + "\n)"


def payload_functions(hold_match: str, row_tables: tuple[str, ...],
                      day_tables: tuple[str, ...]) -> str:
    """The payload functions (``_pg_payload_facts``) over ``day_tables`` and ``cost_users``,
    which leaves its user totals before a day goes."""
    return _pg_payload_facts.functions(hold_match, day_tables + DAY_TABLES, row_tables, _DAY_GONE)


def migration(hold_match: str, row_tables: tuple[str, ...], day_tables: tuple[str, ...]) -> str:
    """``0011_cost_facts``: the tables filled from the stored events, and the payload
    functions with ``cost_users`` among the day tables (not among ``row_tables``, whose rows
    are deleted by (tenant, day, seq): a user's cell loses an erased event by the trigger)."""
    return f"""
CREATE TABLE cost_models (
    tenant text {_C} NOT NULL,
    model text {_C},
    slot integer NOT NULL,
    PRIMARY KEY (tenant, slot)
);
CREATE UNIQUE INDEX ux_cost_models ON cost_models (tenant, model) NULLS NOT DISTINCT;
CREATE TABLE cost_groups (
    tenant text {_C} NOT NULL,
    dim text {_C} NOT NULL,
    first_ts double precision NOT NULL,
    last_ts double precision NOT NULL,
    calls bigint NOT NULL,
    -- the sums as floats first (fixed-size elements near the row's start: the ranking reads
    -- only these), then the key and the exact sums
    ptf double precision[] GENERATED ALWAYS AS (pt::double precision[]) STORED,
    ctf double precision[] GENERATED ALWAYS AS (ct::double precision[]) STORED,
    recf double precision[] GENERATED ALWAYS AS (rec::double precision[]) STORED,
    key text {_C},
    task_id text {_C},
    pt numeric[] NOT NULL,
    ct numeric[] NOT NULL,
    rec numeric[] NOT NULL
) PARTITION BY LIST (dim);
{_DIM_PARTITIONS}
CREATE UNIQUE INDEX ux_cost_groups ON cost_groups (tenant, dim, key) NULLS NOT DISTINCT;
-- the groups crossing a time: those starting before it, or those ending after it
CREATE INDEX ix_cost_groups_first ON cost_groups (tenant, dim, first_ts) INCLUDE (last_ts);
CREATE INDEX ix_cost_groups_last ON cost_groups (tenant, dim, last_ts) INCLUDE (first_ts);
{_user_table("cost_users", "day integer NOT NULL,")} PARTITION BY RANGE (day);
CREATE UNIQUE INDEX ux_cost_users ON cost_users (tenant, day, user_id, model) NULLS NOT DISTINCT;
{_user_table("cost_user_totals", "")};
CREATE UNIQUE INDEX ux_cost_user_totals ON cost_user_totals (tenant, user_id, model)
    NULLS NOT DISTINCT;
{_ARRAYS}
{_pg_payload_facts.partitions_of_payload_days("cost_users")}
{_ERASE_USER}
{payload_functions(hold_match, row_tables, day_tables)}
{"; ".join(_fill_all("events"))};
ANALYZE cost_models;
ANALYZE cost_groups;
ANALYZE cost_user_totals;
"""


def grants(ingest: str, reader: str) -> str:
    """The sequencer (ingest role) inserts and updates; readers read (row security beside)."""
    return (f"REVOKE ALL ON {', '.join(TABLES)} FROM PUBLIC; "
            f"GRANT INSERT ON {', '.join(TABLES)} TO {ingest}; "
            f"GRANT UPDATE ON cost_groups, cost_users, cost_user_totals TO {ingest}; "
            f"GRANT SELECT ON {', '.join(TABLES)} TO {ingest}, {reader};")
