"""The app factory: ``create_app(settings)`` builds the collector's FastAPI application.

    uvicorn.run(create_app(ServerSettings(db="audit.db")), port=4318)

The lifespan opens the write store and starts the group-commit writer; shutdown commits what is
queued and closes every connection. No page asset comes from a CDN: the interactive docs pages
are off, ``/openapi.json`` is served.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from agentaudit.server.collector import Collector
from agentaudit.server.errors import install_error_handlers
from agentaudit.server.models import EventBatch, EventIn
from agentaudit.server.retention_task import start_periodic_retention
from agentaudit.server.settings import ServerSettings

__all__ = ["create_app"]

_DESCRIPTION = """\
The agentaudit collector: many agents, in many processes and languages, send their audit events
here (natively or as OpenTelemetry spans); auditors and dashboards read them back. Requests are
answered only after their events are durable. Authenticate with `Authorization: Bearer aa_…`
(see docs/api.md).
"""


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus the event models referenced by the raw request bodies."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():  # invalid parameters are answered 400, not 422
            operation.get("responses", {}).pop("422", None)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    for model in (EventIn, EventBatch):
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in definition.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = definition
    app.openapi_schema = schema
    return schema


def create_app(settings: ServerSettings) -> FastAPI:
    """The collector for ``settings``; nothing is opened until the app starts."""
    from agentaudit import __version__
    from agentaudit.server import (
        alert_routes,
        dashboard,
        ingest_routes,
        key_routes,
        query_routes,
        report_routes,
    )

    collector = Collector(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        collector.start(asyncio.get_running_loop())
        retention = start_periodic_retention(collector)
        try:
            yield
        finally:
            if retention is not None:
                retention.cancel()
            await asyncio.to_thread(collector.stop)

    app = FastAPI(title="agentaudit collector", version=__version__, description=_DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.collector = collector
    install_error_handlers(app)
    app.include_router(ingest_routes.router)
    app.include_router(query_routes.router)
    app.include_router(key_routes.router)
    app.include_router(alert_routes.router)
    app.include_router(report_routes.router)
    dashboard.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
