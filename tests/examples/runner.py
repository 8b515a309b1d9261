"""Helpers to run the programs of examples/ as a user would (subprocesses, a clean
environment) and to look at what they stored."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentaudit.events import AuditEvent
from agentaudit.store import EventQuery, open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Collector:
    """A running ``agentaudit serve``: its URL, database and an ingest key of ``tenant``."""

    url: str
    db: Path
    ingest_key: str
    tenant: str


def require(module: str) -> None:
    """Skip (loudly) when an agent framework is not installed; with CI=true, fail instead."""
    if os.environ.get("CI") == "true":
        importlib.import_module(module)
    else:
        import pytest

        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[dev]')")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh machine: no API keys, no agentaudit, OTLP or LangSmith
    settings (nothing that could send anything off this machine)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTAUDIT_", "OTEL_", "OPENAI_", "LANGCHAIN_", "LANGSMITH_"))}
    env.update({"XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state"),
                "AGENTAUDIT_SPOOL_DIR": str(home / "spool"), "PYTHONWARNINGS": "error"})
    env.update(extra)
    return env


def run_example(name: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run examples/``name`` in ``cwd``; its stdout. A failing example fails the test with its
    output."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def stored(db: Path, tenant: str = "default") -> list[AuditEvent]:
    """The agent.* events of ``tenant`` (not the audit.* events of key management)."""
    with open_store(str(db), create=False, readonly=True) as store:
        return [e for e in store.iter_events(EventQuery(tenant=tenant))
                if e.event_type.startswith("agent.")]


def find(events: list[AuditEvent], event_type: str,
         pred: Callable[[AuditEvent], bool] = lambda e: True) -> list[AuditEvent]:
    return [e for e in events if e.event_type == f"agent.{event_type}" and pred(e)]


def ancestors(event: AuditEvent, by_id: dict[str, AuditEvent]) -> list[AuditEvent]:
    out = []
    while event.parent_event_id:
        event = by_id[event.parent_event_id]
        out.append(event)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
