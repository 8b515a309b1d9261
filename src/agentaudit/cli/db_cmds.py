"""``agentaudit db migrate`` and ``agentaudit db check``: the PostgreSQL store's schema,
partitions and roles (docs/postgresql.md). A SQLite file migrates itself when opened."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from agentaudit.cli.options import Db

__all__ = ["db_app"]

db_app = typer.Typer(
    name="db", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="The database behind the store: migrate the schema and create day partitions ahead "
         "(PostgreSQL), check schema version, partition coverage, role grants and row "
         "security.",
)

DaysAhead = Annotated[int, typer.Option("--days-ahead", metavar="N", min=0, max=366,
                                        help="Day partitions to have from today on.")]
Format = Annotated[str, typer.Option("--format", metavar="table|json",
                                     help="table (one line per check) or json.")]


def _connect(db: str | None) -> Any:
    """A psycopg connection for a postgresql:// URL; a ConfigError for anything else."""
    from agentaudit.exceptions import ConfigError, StoreError
    from agentaudit.store import default_store_url, sqlite_path
    from agentaudit.store.postgres import redact_url

    url = db or default_store_url()
    if sqlite_path(url) is not None:
        raise ConfigError(f"{url} is a SQLite store: it migrates itself when opened; "
                          "`agentaudit db` manages PostgreSQL stores (--db postgresql://…)")
    if not url.lower().startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"--db must be a postgresql:// URL, not {url!r}")
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10,
                               application_name="agentaudit-db")
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to {redact_url(url)}: "
                         f"{str(e).strip().splitlines()[0]}") from e


Rebuild = Annotated[bool, typer.Option(
    "--rebuild-rollups", help="Also recompute every tenant's report rollups from its events "
    "(after `db check` found events missing from them); each tenant's ingest waits meanwhile.")]


@db_app.command("migrate")
def migrate_command(db: Db = None, days_ahead: DaysAhead = 7,
                    rebuild_rollups: Rebuild = False) -> int:
    """Create or upgrade the agentaudit schema (tables, partition functions, roles ingest/
    retention/reader, row-level security) and the day partitions from yesterday to N days
    ahead. Run it as the database owner; safe to repeat and to run from several hosts."""
    import psycopg

    from agentaudit.exceptions import StoreError
    from agentaudit.store._pg_admin import migrate_database

    conn = _connect(db)
    try:
        done = migrate_database(conn, days_ahead, rebuild_rollups=rebuild_rollups)
    except psycopg.Error as e:
        raise StoreError(f"migration failed: {str(e).strip().splitlines()[0]}") from e
    finally:
        conn.close()
    applied = ", ".join(done["applied"]) or "none (up to date)"
    print(f"migrations applied: {applied}; partition tables created: "
          f"{done['partitions_created']} (days up to {done['partitions_ahead_until']})")
    if rebuild_rollups:
        print(f"report rollups rebuilt for {len(done['rollups_rebuilt'])} tenants: "
              + (", ".join(done["rollups_rebuilt"]) or "none"))
    return 0


@db_app.command("check")
def check_command(db: Db = None, days_ahead: DaysAhead = 2, fmt: Format = "table") -> int:
    """Check the schema version, that day partitions exist N days ahead (and beside every day of
    events), and the role grants, triggers and row-level security, those of retention and
    alerts included. Exit 1 when a check fails, naming what is wrong: a table without row
    security, a role that may update a column it should not, a function that another role
    than the retention role may run."""
    import psycopg

    from agentaudit.cli.errors import UsageProblem
    from agentaudit.exceptions import StoreError
    from agentaudit.store._pg_admin import check_database

    if fmt not in ("table", "json"):
        raise UsageProblem(f"--format must be table or json, not {fmt!r}")
    conn = _connect(db)
    try:
        checks = check_database(conn, days_ahead)
    except psycopg.Error as e:
        raise StoreError(f"cannot check the database: {str(e).strip().splitlines()[0]}") from e
    finally:
        conn.close()
    ok = all(c.ok for c in checks)
    if fmt == "json":
        print(json.dumps({"ok": ok, "checks": [c.__dict__ for c in checks]}, indent=2,
                         default=str))
    else:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<10} {c.detail}")
        if not ok:
            print("agentaudit: database check failed", file=sys.stderr)
    return 0 if ok else 1
