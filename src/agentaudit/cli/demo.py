"""``agentaudit demo``: write a realistic multi-agent workload, with one incident, to a store."""

from __future__ import annotations

from typing import Any

from agentaudit.cli.errors import UsageProblem
from agentaudit.cli.output import make_console
from agentaudit.exceptions import AuditError

__all__ = ["DEFAULT_DEMO_DB", "run_demo_command"]

# Not AGENTAUDIT_DB: demo events must never land in a real audit log by accident.
DEFAULT_DEMO_DB = "demo.db"


def run_demo_command(db: str, tenant: str = "default", traces: int = 1000,
                     events: int | None = None, days: float = 7.0, seed: int = 42) -> int:
    """Run ``agentaudit.demo.run_demo`` with a progress bar on stderr and print a summary."""
    if traces < 1:
        raise UsageProblem(f"--traces must be at least 1, not {traces}")
    if events is not None and events < 1:
        raise UsageProblem(f"--events must be at least 1, not {events}")
    if not days > 0:
        raise UsageProblem(f"--days must be more than 0, not {days}")
    try:
        from agentaudit.demo import run_demo
    except ImportError as e:
        if e.name not in ("agentaudit.demo",):
            raise
        raise AuditError("the demo workload (agentaudit.demo) is not part of this build") from e
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("writing demo traces"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(),
                        console=make_console(stderr=True))
    task = progress.add_task("demo", total=traces)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        result: Any = run_demo(db, traces=traces, events=events, days=days, seed=seed,
                               tenant=tenant, progress=on_progress)
    console = make_console()
    console.print(f"Wrote {result.events:,} events in {result.traces:,} traces to {db} "
                  f"in {result.seconds:.1f} s.")
    db_opt = f" --db {db}" + (f" --tenant {tenant}" if tenant != "default" else "")
    console.print(f"The incident: trace {result.incident_trace_id} (task {result.incident_task_id})."
                  f" Try: agentaudit trace{db_opt} {result.incident_task_id}")
    return 0
