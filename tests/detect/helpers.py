"""Event builders and a real collector process for the detection tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server.conftest import free_port, wait_for

from agentaudit.detect import DetectionEngine, Firing, rules_from_mapping
from agentaudit.events import AuditEvent

SRC = Path(__file__).resolve().parents[2] / "src"
T0 = 1_790_000_000.0  # a fixed UTC time (2026-09-21T..)


def ev(event_type: str, agent: str = "Support", ts: float = T0, **fields: Any) -> AuditEvent:
    """An event as the store returns it (``agent.`` prefix optional)."""
    if not event_type.startswith(("agent.", "audit.")):
        event_type = "agent." + event_type
    fields.setdefault("trace_id", "trace-1")
    return AuditEvent(event_type=event_type, agent_name=agent, timestamp=ts, **fields)


def engine(only: str | None = None, **rules: dict[str, Any]) -> DetectionEngine:
    """An engine without history; ``only`` turns every other rule off."""
    from agentaudit.detect.rules import RULE_NAMES

    table: dict[str, dict[str, Any]] = {n: dict(r) for n, r in rules.items()}
    if only is not None:
        for name in RULE_NAMES:
            table.setdefault(name, {})["enabled"] = name == only
    return DetectionEngine(rules_from_mapping({"rules": table}))


def fired(eng: DetectionEngine, events: list[AuditEvent]) -> list[Firing]:
    return eng.evaluate(events)


class Collector:
    """``python -m agentaudit.cli serve --no-auth`` on a free loopback port."""

    def __init__(self, db: Path | str, home: Path, **env: str) -> None:
        self.db, self.home, self.port = db, home, free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUDIT_")}
        self.env.update({"PYTHONPATH": str(SRC), "XDG_CONFIG_HOME": str(home / "config"),
                         "XDG_STATE_HOME": str(home / "state"),
                         "AGENTAUDIT_SPOOL_DIR": str(home / "spool"), **env})
        self.log = home / f"collector-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Collector:
        import httpx

        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agentaudit.cli", "serve", "--no-auth", "--port",
                 str(self.port), "--db", str(self.db)], env=self.env, stdout=log,
                stderr=subprocess.STDOUT)

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited: {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 30)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
