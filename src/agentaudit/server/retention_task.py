"""Periodic retention inside ``agentaudit serve``: every ``retention_interval`` seconds the
group-commit writer (which owns the write connection) applies the retention policy to every
tenant, between two commits. A run that erases nothing records nothing, so an idle collector
does not fill its log with empty runs; a run that erases is an ``audit.retention_run`` event.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agentaudit.retention import RetentionConfig, apply_all, load_config
from agentaudit.server.writer import WriterClosed

__all__ = ["retention_loop", "start_periodic_retention"]

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


async def retention_loop(collector: Any, config: RetentionConfig, interval: float) -> None:
    """Apply retention every ``interval`` seconds until cancelled or the writer closes."""
    while True:
        await asyncio.sleep(interval)
        try:
            future = collector.writer.run_job(
                lambda store: apply_all(store, config, actor="server", record_empty=False))
            runs = await asyncio.wrap_future(future)
        except WriterClosed:
            return
        except Exception as e:  # noqa: BLE001 - the next run tries again; serving goes on
            log.error("agentaudit: retention run failed: %r", e)
            continue
        for run in runs:
            if run.erased or run.kept_by_hold:
                log.info("agentaudit: retention erased %d payloads of tenant %r (%d kept by "
                         "legal hold)", run.erased, run.tenant, run.kept_by_hold)
