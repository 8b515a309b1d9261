"""Periodic retention inside ``agentaudit serve``: every ``retention_interval`` seconds the
expired payloads of every tenant are looked up on a read connection (a SQLite WAL reader or
another PostgreSQL connection: ingest goes on meanwhile), then erased by the group-commit writer (which owns the write connection) between
two commits, re-checking legal holds. A run that erases nothing records nothing, so an idle
collector does not fill its log with empty runs; a run that erases is an
``audit.retention_run`` event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agentaudit.retention import RetentionConfig, RetentionRun, load_config
from agentaudit.retention.job import Groups, commit_retention, plan_retention
from agentaudit.server.writer import WriterClosed

__all__ = ["retention_loop", "run_retention_once", "start_periodic_retention"]

log = logging.getLogger("agentaudit.server")


def start_periodic_retention(collector: Any) -> asyncio.Task[None] | None:
    """Start the loop (None when ``retention_interval`` is 0); a bad config fails here."""
    settings = collector.settings
    if not settings.retention_interval:
        return None
    config = load_config(settings.retention_config or None)
    for warning in config.warnings():
        log.warning("agentaudit: %s", warning)
    return asyncio.get_running_loop().create_task(
        retention_loop(collector, config, settings.retention_interval))


def _plan_all(collector: Any, config: RetentionConfig,
              now: float) -> list[tuple[RetentionRun, Groups]]:
    with collector.pool.store() as reader:
        return [plan_retention(reader, config.policy(t), now=now)
                for t in reader.info().tenants]


async def run_retention_once(collector: Any, config: RetentionConfig) -> list[RetentionRun]:
    """One run over every tenant: read off the writer thread, erase on it."""
    plans = await asyncio.to_thread(_plan_all, collector, config, time.time())
    runs = []
    for run, groups in plans:
        if not any(groups.values()):
            continue  # nothing to erase: nothing to write or record

        def commit(store: Any, run: RetentionRun = run, groups: Groups = groups) -> RetentionRun:
            return commit_retention(store, run, groups, actor="server", record_empty=False)
        runs.append(await asyncio.wrap_future(collector.writer.run_job(commit)))
    return runs


async def retention_loop(collector: Any, config: RetentionConfig, interval: float) -> None:
    """Apply retention every ``interval`` seconds until cancelled or the writer closes."""
    while True:
        await asyncio.sleep(interval)
        try:
            runs = await run_retention_once(collector, config)
        except WriterClosed:
            return
        except Exception as e:  # noqa: BLE001 - the next run tries again; serving goes on
            log.error("agentaudit: retention run failed: %r", e)
            continue
        for run in runs:
            log.info("agentaudit: retention erased %d payloads of tenant %r (%d kept by legal "
                     "hold)", run.erased, run.tenant, run.kept_by_hold)
