"""Stores: where events are kept. ``open_store`` picks the backend from a URL or path."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agentaudit.exceptions import ConfigError
from agentaudit.store.base import AppendResult, EventQuery, Page, Store, StoreInfo

__all__ = [
    "DEFAULT_DB",
    "AppendResult",
    "EventQuery",
    "Page",
    "Store",
    "StoreInfo",
    "check_store_url",
    "default_store_url",
    "open_store",
    "sqlite_path",
]

DEFAULT_DB = "agentaudit.db"


def default_store_url() -> str:
    """``AGENTAUDIT_DB`` when set, else ``./agentaudit.db``."""
    return os.environ.get("AGENTAUDIT_DB") or DEFAULT_DB


def sqlite_path(url: str) -> str | None:
    """The file path of a SQLite store URL or plain path; None for other backends."""
    if url.startswith("sqlite://"):
        parts = urlsplit(url)
        path = parts.path
        if parts.netloc:  # sqlite://relative/path is a common slip; accept it
            path = parts.netloc + path
        elif path.startswith("//"):
            path = path[1:]
        elif path.startswith("/") and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            path = path[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
        return path
    if "://" in url:
        return None
    return url


def check_store_url(url: str) -> None:
    """Raise ConfigError now for a URL no backend can open (the SDK checks in its constructor)."""
    if sqlite_path(url) is not None:
        if not sqlite_path(url):
            raise ConfigError(f"store URL {url!r} has no file path")
        return
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https", "postgresql", "postgres"):
        raise ConfigError(f"unsupported store URL scheme {scheme!r} in {url!r}: use a file path, "
                          "sqlite:///path, postgresql://… or http(s)://collector")


def open_store(url: str | None = None, *, create: bool = True, readonly: bool = False,
               **options: Any) -> Store:
    """Open the store at ``url``: a path or ``sqlite:///path`` (SQLiteStore), or
    ``postgresql://user@host:port/db`` (PostgresStore, psycopg 3)."""
    url = url or default_store_url()
    path = sqlite_path(url)
    if path is not None:
        from agentaudit.store.sqlite import SQLiteStore

        query = parse_qs(urlsplit(url).query) if url.startswith("sqlite:") else {}
        if "synchronous" in query:
            options.setdefault("synchronous", query["synchronous"][-1])
        if "?" in path:
            path = path.split("?", 1)[0]
        if not path:
            raise ConfigError(f"store URL {url!r} has no file path")
        return SQLiteStore(path, create=create, readonly=readonly, **options)
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        try:
            from agentaudit.store.postgres import PostgresStore
        except ImportError as e:  # pragma: no cover - psycopg is a dependency
            raise ConfigError(f"the PostgreSQL backend needs psycopg 3: {e}") from e
        return PostgresStore(url, create=create, readonly=readonly, **options)
    raise ConfigError(f"unsupported store URL scheme {scheme!r} in {url!r}: "
                      "use a file path, sqlite:///path or postgresql://…")
