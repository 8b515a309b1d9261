"""The ``agentaudit`` command line.

Start-up time matters (``agentaudit trace`` has a budget of 300 ms, Python start-up included), so
this module imports nothing heavy: ``trace`` is dispatched straight to its implementation when
its arguments are plain, and every other invocation (including ``--help``) goes through the
Typer application in ``agentaudit.cli.app``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def _run(args: list[str]) -> int:
    if args[:1] == ["trace"]:
        from agentaudit.cli.fastpath import parse_trace_args

        parsed = parse_trace_args(args[1:])
        if parsed is not None:
            from agentaudit.cli.commands import run_trace

            return run_trace(**parsed)
    from agentaudit.cli.app import run_app

    return run_app(args)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Every error becomes one line on stderr (``agentaudit: error: …``), never a traceback.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("agentaudit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``agentaudit export | head``): stop quietly.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except SystemExit as e:  # sys.exit() deep inside a library: keep its code
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:
        from agentaudit.cli.errors import report_error

        return report_error(e)
