"""Where alerts go: a generic JSON webhook (HMAC-SHA256 signed), a Slack-compatible incoming
webhook, stdout and the log.

The webhook signs ``<timestamp>.<body>`` with HMAC-SHA256 and sends
``X-Agentaudit-Timestamp`` and ``X-Agentaudit-Signature: sha256=<hex>``; a receiver recomputes
it with the shared secret (``verify_signature``) and rejects old timestamps to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from agentaudit.detect.rules import SEVERITIES
from agentaudit.exceptions import ConfigError

__all__ = ["DeliveryFailed", "LogSink", "Sink", "SlackSink", "WebhookSink", "sign",
           "sinks_from_config", "verify_signature"]

log = logging.getLogger("agentaudit.alerts")
_ICON = {"info": ":information_source:", "low": ":large_blue_circle:",
         "medium": ":warning:", "high": ":rotating_light:", "critical": ":fire:"}


class DeliveryFailed(Exception):
    """A delivery attempt failed; ``retry`` says whether another attempt can succeed."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str,
                     max_age: float | None = 300.0, now: float | None = None) -> bool:
    """True when ``signature`` signs this body and timestamp (and the timestamp is recent)."""
    if max_age is not None:
        try:
            age = abs((time.time() if now is None else now) - float(timestamp))
        except ValueError:
            return False
        if age > max_age:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class Sink:
    """Common settings: ``name``, ``min_severity``, attempts and backoff, a rate limit."""

    name: str
    min_severity: str = "low"
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    rate_per_minute: float = 30.0
    timeout: float = 10.0

    def payload(self, alert: dict[str, Any]) -> bytes:
        return json.dumps(alert, sort_keys=True, default=str).encode("utf-8")

    def send(self, body: bytes) -> None:
        raise NotImplementedError


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "agentaudit-alerts", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured URL)
            resp.read()
    except urllib.error.HTTPError as e:
        retry = e.code >= 500 or e.code in (408, 425, 429)
        raise DeliveryFailed(f"HTTP {e.code} from {url}", retry=retry) from e
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise DeliveryFailed(f"cannot reach {url}: {reason}") from e


@dataclass
class WebhookSink(Sink):
    url: str = ""
    secret: bytes = b""

    def send(self, body: bytes) -> None:
        headers = {}
        if self.secret:
            ts = str(int(time.time()))
            headers = {"X-Agentaudit-Timestamp": ts,
                       "X-Agentaudit-Signature": sign(self.secret, ts, body)}
        _post(self.url, body, headers, self.timeout)


@dataclass
class SlackSink(WebhookSink):
    """A Slack incoming webhook (or anything that takes Slack's ``text`` + ``blocks``)."""

    def payload(self, alert: dict[str, Any]) -> bytes:
        sev = alert["severity"]
        head = f"{_ICON.get(sev, '')} *[{sev.upper()}] {alert['title']}*"
        facts = (f"rule `{alert['rule']}` · agent `{alert['agent']}` · tenant "
                 f"`{alert['tenant']}` · event `{alert['event_id']}`")
        evidence = ", ".join(f"`{e}`" for e in alert["evidence"][:5])
        text = f"{head}\n{alert['explanation']}"
        return json.dumps({"text": text, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": facts}]},
            {"type": "context", "elements": [{"type": "mrkdwn",
                                              "text": f"evidence: {evidence or '-'}"}]},
        ]}).encode("utf-8")


@dataclass
class LogSink(Sink):
    """One JSON line per alert on stdout (``type = "stdout"``) or the ``agentaudit.alerts``
    logger at WARNING (``type = "log"``)."""

    stream: str = "log"
    max_attempts: int = 1
    rate_per_minute: float = 600.0

    def send(self, body: bytes) -> None:
        line = body.decode("utf-8")
        if self.stream == "stdout":
            print(line, file=sys.stdout, flush=True)
        else:
            log.warning("agentaudit alert: %s", line)


_KNOWN = {"type", "name", "url", "url_env", "secret", "secret_env", "min_severity",
          "max_attempts", "backoff_seconds", "max_backoff_seconds", "rate_per_minute",
          "timeout"}


def _from_env(cfg: dict[str, Any], key: str, where: str) -> str:
    value = cfg.get(key, "")
    var = cfg.get(f"{key}_env")
    if var:
        value = os.environ.get(var, "")
        if not value:
            raise ConfigError(f"{where}: environment variable {var} ({key}) is not set")
    return str(value)


def sinks_from_config(items: list[Any]) -> list[Sink]:
    """Sinks from ``[[alerts.sinks]]`` tables; a bad entry is a ``ConfigError`` naming it."""
    sinks: list[Sink] = []
    for i, cfg in enumerate(items):
        where = f"alerts.sinks[{i}]"
        if not isinstance(cfg, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(cfg) - _KNOWN
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}")
        kind = cfg.get("type")
        common: dict[str, Any] = {"name": str(cfg.get("name") or f"{kind}-{i}")}
        for key in ("min_severity", "max_attempts", "backoff_seconds", "max_backoff_seconds",
                    "rate_per_minute", "timeout"):
            if key in cfg:
                common[key] = cfg[key]
        if common.get("min_severity", "low") not in SEVERITIES:
            raise ConfigError(f"{where}.min_severity must be one of {', '.join(SEVERITIES)}")
        if int(common.get("max_attempts", 1)) < 1:
            raise ConfigError(f"{where}.max_attempts must be at least 1")
        if kind in ("webhook", "slack"):
            url = _from_env(cfg, "url", where)
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{where}.url must be an http(s) URL, not {url!r}")
            secret = _from_env(cfg, "secret", where).encode("utf-8")
            if kind == "webhook" and not secret:
                raise ConfigError(f"{where}: a webhook needs secret or secret_env (the HMAC "
                                  "key receivers verify alerts with)")
            cls = WebhookSink if kind == "webhook" else SlackSink
            sinks.append(cls(url=url, secret=secret, **common))
        elif kind in ("log", "stdout"):
            sinks.append(LogSink(stream=kind, **common))
        else:
            raise ConfigError(f"{where}.type must be webhook, slack, log or stdout, "
                              f"not {kind!r}")
    return sinks
