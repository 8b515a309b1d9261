"""``agentaudit serve`` (the collector) and ``agentaudit keys`` (its API keys).

Declarations only import Typer; the server, uvicorn and the store load when a command runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from agentaudit.cli.options import Db

if TYPE_CHECKING:
    from agentaudit.store._sqlite_keys import ApiKey
    from agentaudit.store.sqlite import SQLiteStore

__all__ = ["keys_app", "serve_command"]



def serve_command(
    host: Annotated[str, typer.Option(
        "--host", metavar="ADDRESS",
        help="Address to listen on. Any address other than loopback requires API keys.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT",
                                      help="TCP port (4318 is the OTLP/HTTP port).")] = 4318,
    db: Db = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth",
        help="Accept requests without an API key, all as tenant 'default' with every scope. "
             "Refused unless --host is a loopback address.")] = False,
    rules: Annotated[str | None, typer.Option(
        "--rules", metavar="FILE",
        help="Detection rules and alert sinks (TOML, see docs/detection.md). Default: "
             "$AGENTAUDIT_DETECT_RULES, else the packaged rules, no sinks.")] = None,
    no_detect: Annotated[bool, typer.Option(
        "--no-detect", help="Do not run the detection rules on what is stored.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", metavar="N", min=1, max=64,
        help="Collector processes sharing the port, each with its own writer on the same "
             "store (default 1, or $AGENTAUDIT_WORKERS). More than one uses more cores; see "
             "docs/deploy.md for what changes.")] = None,
) -> int:
    """Run the collector: HTTP ingest (POST /v1/events), OTLP/HTTP traces (POST /v1/traces),
    the query API, a live stream, /metrics and /healthz.

    Requests are answered once their events are durable. Stop with Ctrl-C (queued events are
    committed first). Limits and tuning: AGENTAUDIT_* variables, see docs/deploy.md.
    """
    from agentaudit.server.run import serve

    return serve(host=host, port=port, db=db, no_auth=no_auth, detect_rules=rules,
                 detect=False if no_detect else None, workers=workers)


keys_app = typer.Typer(
    name="keys", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Manage the collector's API keys: create (prints the secret once), list, revoke.",
)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", metavar="NAME",
                                        help="The tenant the key writes to or reads.")],
    scope: Annotated[str, typer.Option(
        "--scope", metavar="ingest|read|admin",
        help="ingest (write events only), read (query only) or admin (manage keys and read).")],
    name: Annotated[str | None, typer.Option("--name", metavar="TEXT",
                                             help="A label to recognise the key by.")] = None,
    db: Db = None,
) -> int:
    """Create an API key and print its secret on stdout, once: only its hash is stored."""
    from agentaudit.cli.errors import UsageProblem
    from agentaudit.server.keys import create_key_audited
    from agentaudit.store._sqlite_keys import SCOPES

    if scope not in SCOPES:
        raise UsageProblem(f"--scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    with _open_key_store(db, create=True) as store:
        key, secret = create_key_audited(store, tenant, scope, name, actor="cli")
    typer.echo(secret)
    print(f"created key {key.id} (tenant {key.tenant}, scope {key.scope}); the secret above is "
          "shown only now", file=sys.stderr)
    return 0


@keys_app.command("list")
def keys_list(
    db: Db = None,
    tenant: Annotated[str | None, typer.Option("--tenant", metavar="NAME",
                                               help="Only the keys of this tenant.")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="table|json",
                                     help="table or json.")] = "table",
) -> int:
    """List API keys (never their secrets), revoked ones included."""
    from agentaudit.cli.output import check_choice, to_json

    check_choice("--format", fmt, ("table", "json"))
    with _open_key_store(db, create=False) as store:
        keys = store.list_keys(tenant)
    if fmt == "json":
        from dataclasses import asdict

        typer.echo(to_json([asdict(k) for k in keys]))
        return 0
    _print_keys(keys)
    return 0


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key id (aa_ + 12 hex digits, "
                                                               "as `keys list` shows).")],
    db: Db = None,
) -> int:
    """Revoke an API key at once (also for a running collector)."""
    from agentaudit.exceptions import NotFound
    from agentaudit.server.keys import revoke_key_audited

    with _open_key_store(db, create=False) as store:
        key, newly = revoke_key_audited(store, key_id, None, actor="cli")
    if key is None:
        raise NotFound(f"no API key {key_id!r}")
    print(f"revoked key {key.id}" if newly else f"key {key.id} was already revoked",
          file=sys.stderr)
    return 0


def _open_key_store(db: str | None, create: bool) -> SQLiteStore:
    from agentaudit.exceptions import ConfigError
    from agentaudit.store import default_store_url, open_store

    store = open_store(db or default_store_url(), create=create)
    if not hasattr(store, "create_key"):
        store.close()
        raise ConfigError(f"the {store.backend} backend does not hold API keys yet")
    return store


def _print_keys(keys: list[ApiKey]) -> None:
    from rich.console import Console
    from rich.table import Table

    from agentaudit.query import iso_time

    table = Table("id", "tenant", "scope", "name", "created", "revoked", box=None)
    for k in keys:
        table.add_row(k.id, k.tenant, k.scope, k.name or "", iso_time(k.created_at) or "",
                      iso_time(k.revoked_at) or "")
    Console(width=160).print(table)
