"""Alerts: detection firings delivered to webhooks, Slack and the log (docs/detection.md)."""

from __future__ import annotations

from agentaudit.alerts.dispatcher import AlertDispatcher, Delivery
from agentaudit.alerts.sinks import (
    DeliveryFailed,
    LogSink,
    Sink,
    SlackSink,
    WebhookSink,
    sign,
    sinks_from_config,
    verify_signature,
)

__all__ = ["AlertDispatcher", "Delivery", "DeliveryFailed", "LogSink", "Sink", "SlackSink",
           "WebhookSink", "sign", "sinks_from_config", "verify_signature"]
