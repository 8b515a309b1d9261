"""The collector (``agentaudit serve``): HTTP and OTLP ingest, API keys, the query API.

Imported lazily, so that ``agentaudit keys`` does not load FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from agentaudit.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from agentaudit.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'agentaudit.server' has no attribute {name!r}")
