"""Plain argument parsing for ``agentaudit trace`` without importing Typer (it costs ~100 ms).

Anything unusual (help, unknown options, a missing id) returns None and goes to Typer, which
owns the documented interface and its error messages.
"""

from __future__ import annotations

from typing import Any

__all__ = ["parse_trace_args"]

_TRACE_OPTIONS = {
    "--db": "db",
    "--tenant": "tenant",
    "--graph": "graph",
    "--format": "fmt",
    "-o": "output",
    "--output": "output",
}


def parse_trace_args(args: list[str]) -> dict[str, Any] | None:
    """Keyword arguments of ``commands.run_trace`` for ``args``, or None to let Typer decide."""
    opts: dict[str, Any] = {"db": None, "tenant": "default", "graph": None, "fmt": "table",
                            "output": None}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional.extend(args[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            key = _TRACE_OPTIONS.get(name)
            if key is None or (eq and name == "-o"):
                return None
            if not eq:
                i += 1
                if i >= len(args):
                    return None
                value = args[i]
            opts[key] = value
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 1:
        return None
    opts["trace_id"] = positional[0]
    return opts
