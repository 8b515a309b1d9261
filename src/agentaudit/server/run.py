"""Running the collector under uvicorn (what ``agentaudit serve`` does)."""

from __future__ import annotations

import logging
import sys

from agentaudit.server.settings import ServerSettings

__all__ = ["serve"]


def _check_store(settings: ServerSettings) -> int:
    """Open (and migrate) the store once so that a bad --db fails before listening; return the
    number of live API keys."""
    from agentaudit.store import open_store

    store = open_store(settings.db, synchronous=settings.synchronous)
    try:
        keys = getattr(store, "list_keys", None)
        return sum(1 for k in keys() if not k.revoked) if keys else 0
    finally:
        store.close()


def serve(host: str | None = None, port: int | None = None, db: str | None = None,
          no_auth: bool = False, settings: ServerSettings | None = None,
          detect_rules: str | None = None, detect: bool | None = None,
          workers: int | None = None) -> int:
    """Serve until interrupted; returns the exit code."""
    import uvicorn

    from agentaudit.server.app import create_app

    if settings is None:
        settings = ServerSettings.from_env(host=host, port=port, db=db,
                                           auth_disabled=True if no_auth else None,
                                           detect_rules=detect_rules, detect=detect,
                                           workers=workers)
    live_keys = _check_store(settings)
    if settings.retention_interval:  # a bad retention config fails before listening
        from agentaudit.retention import load_config

        load_config(settings.retention_config or None)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    auth = "off (loopback only, tenant 'default')" if settings.auth_disabled else "API keys"
    workers = f", {settings.workers} worker processes" if settings.workers > 1 else ""
    print(f"agentaudit collector on http://{settings.host}:{settings.port} — db {settings.db}, "
          f"auth: {auth}{workers}", file=sys.stderr, flush=True)
    if not settings.auth_disabled and live_keys == 0:
        print("agentaudit: no API keys yet: create one with `agentaudit keys create --tenant T "
              "--scope ingest`", file=sys.stderr, flush=True)
    if settings.workers > 1:
        from agentaudit.server.workers import serve_workers

        # a bad rules or redaction file fails here, once, before listening
        create_app(settings).state.collector.stop(timeout=5)
        return serve_workers(settings)
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                            log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=10, server_header=False)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
