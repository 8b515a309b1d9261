"""Options shared by every command module (one definition, one help text)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["Db", "Output", "Tenant"]

Db = Annotated[str | None, typer.Option(
    "--db", envvar="AGENTAUDIT_DB", metavar="PATH",
    help="The audit database: a file path, sqlite:///path or postgresql://user@host/db. "
         "Default: $AGENTAUDIT_DB, "
         "else ./agentaudit.db. Commands that only read never create it.")]
Tenant = Annotated[str, typer.Option("--tenant", metavar="NAME",
                                     help="The tenant whose log to read.")]
Output = Annotated[str | None, typer.Option("-o", "--output", metavar="FILE",
                                            help="Write to FILE instead of stdout.")]
