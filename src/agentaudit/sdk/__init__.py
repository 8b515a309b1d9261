"""The Python SDK: ``AuditLogger``, trace context managers, decorators and the writer."""

from __future__ import annotations

from agentaudit.sdk.context import ToolCall, Trace, current_frame, new_trace_id
from agentaudit.sdk.logger import AuditLogger
from agentaudit.sdk.writer import WriterStats

__all__ = ["AuditLogger", "ToolCall", "Trace", "WriterStats", "current_frame", "new_trace_id"]
