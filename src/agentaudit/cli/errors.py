"""How the CLI fails: one line on stderr, ``agentaudit: error: <reason>``, and an exit code.

Exit codes: 2 for usage errors (bad option values, unknown formats, unreadable times), 1 for
everything else (missing database, unknown trace, unreadable store), 130 on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import sys

from agentaudit.exceptions import AuditError, ConfigError

__all__ = ["USAGE", "UsageProblem", "report_error"]

USAGE = 2


class UsageProblem(ConfigError):
    """An option value the command cannot use (exit code 2)."""


def _parser_error(exc: BaseException) -> tuple[str, int] | None:
    """Message and exit code of a usage error raised by Typer's (vendored) Click parser."""
    module = type(exc).__module__
    if not module.startswith(("click", "typer")):
        return None
    if type(exc).__name__ == "Abort":
        return "aborted", 130
    format_message = getattr(exc, "format_message", None)
    code = getattr(exc, "exit_code", None)
    if callable(format_message) and isinstance(code, int):
        return str(format_message()), code
    return None


def report_error(exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr and return the exit code it deserves."""
    if os.environ.get("AGENTAUDIT_DEBUG"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    click_error = _parser_error(exc)
    if click_error is not None:
        message, code = click_error
    elif isinstance(exc, AuditError):
        message, code = str(exc), USAGE if isinstance(exc, ConfigError) else 1
    elif isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        message, code = f"cannot open{where}: {exc.strerror or exc}", 1
    else:
        message = f"unexpected {type(exc).__name__}: {exc} (set AGENTAUDIT_DEBUG=1 for details)"
        code = 1
    message = " ".join(str(message).split()) or type(exc).__name__
    with contextlib.suppress(OSError, ValueError):
        print(f"agentaudit: error: {message}", file=sys.stderr, flush=True)
    return code
