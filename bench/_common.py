"""Shared helpers of the benchmark scripts: repeated runs, medians, tables and ``--json``.

Every figure a script prints is the median of ``--runs`` runs (min and max beside it), and every
ratio is computed inside each run before taking the median, so that a noisy neighbour slowing one
run down moves both sides of the ratio together.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

# The scripts are run as ``PYTHONPATH=src .venv/bin/python bench/x.py``; make a bare
# ``.venv/bin/python bench/x.py`` work too.
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

# Stores with integrity on sign checkpoints with the user's default key, creating it on first
# use under $XDG_CONFIG_HOME; benchmarks keep theirs under bench/out instead of the user's home.
if not os.environ.get("AGENTAUDIT_SIGNING_KEY"):
    os.environ["XDG_CONFIG_HOME"] = str(OUT / "config")

Metrics = dict[str, float]


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the flags every script shares."""
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="repetitions; figures are medians (>= 3)")
    p.add_argument("--json", action="store_true", help="print machine-readable results only")
    return p


def summarise(runs: Sequence[Metrics]) -> dict[str, dict[str, float]]:
    """``{metric: {median, min, max}}`` over the runs (metrics missing from a run are skipped)."""
    keys: list[str] = []
    for r in runs:
        keys.extend(k for k in r if k not in keys)
    out: dict[str, dict[str, float]] = {}
    for k in keys:
        values = [r[k] for r in runs if k in r]
        out[k] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation between closest ranks."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def fmt(value: float, digits: int = 2) -> str:
    """A number for a table: thousands separators for big ones, ``digits`` decimals for small."""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def cell(stats: dict[str, dict[str, float]], key: str, digits: int = 2) -> str:
    """``median (min–max)`` of one metric."""
    s = stats.get(key)
    if s is None:
        return "—"
    if s["min"] == s["max"]:
        return fmt(s["median"], digits)
    return f"{fmt(s['median'], digits)} ({fmt(s['min'], digits)}–{fmt(s['max'], digits)})"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table (readable as plain text too)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_1m": round(load[0], 2),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def env_line(env: dict[str, Any]) -> str:
    return (f"Python {env['python']} · SQLite {env['sqlite']} · {env['cpus']} CPUs · "
            f"load {env['loadavg_1m']} (1 min) · {env['when']}")


def run_repeated(runs: int, one_run: Callable[[int], Metrics], quiet: bool) -> list[Metrics]:
    """Call ``one_run(i)`` ``runs`` times, reporting progress on stderr."""
    results = []
    for i in range(runs):
        t0 = time.perf_counter()
        results.append(one_run(i))
        if not quiet:
            print(f"  run {i + 1}/{runs} done in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr, flush=True)
    return results


def emit_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True, default=str))


def note(quiet: bool, text: str) -> None:
    """Progress on stderr (never mixed into the table or the JSON on stdout)."""
    if not quiet:
        print(text, file=sys.stderr, flush=True)
