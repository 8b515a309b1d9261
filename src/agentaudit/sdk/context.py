"""Trace context: which trace and parent event the next event belongs to.

A ``Frame`` lives in a ContextVar, so nested calls, threads started with a copied context
(``contextvars.copy_context().run``, ``asyncio.to_thread``) and asyncio tasks all land in one
trace with the right ``parent_event_id``.
"""

from __future__ import annotations

import contextlib
import contextvars
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any

from agentaudit.events import EventType, new_event_id

if TYPE_CHECKING:
    from agentaudit.sdk.logger import AuditLogger

__all__ = ["ET", "Frame", "ToolCall", "Trace", "current_frame", "new_trace_id"]

# EventType's values as plain str: the events built on the caller's hot path carry these (equal
# to the members; cheaper to reach than an enum member, and bound into SQL as they are)
ET = SimpleNamespace(**{m.name: m.value for m in EventType})


class Frame:
    """Where the next event hangs: trace, parent event, agent, session, user, task.

    Immutable by convention; a plain slots class because building one is on the caller's hot
    path (a frozen dataclass costs several times more).
    """

    __slots__ = ("agent", "parent_id", "session_id", "task_id", "trace_id", "user_id")

    def __init__(self, trace_id: str, parent_id: str | None, agent: str,
                 session_id: str | None = None, user_id: str | None = None,
                 task_id: str | None = None) -> None:
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.agent = agent
        self.session_id = session_id
        self.user_id = user_id
        self.task_id = task_id

    def child(self, parent_id: str, agent: str | None = None) -> Frame:
        """The same context one level down, under ``parent_id`` (optionally another agent)."""
        return Frame(self.trace_id, parent_id, agent or self.agent, self.session_id,
                     self.user_id, self.task_id)

    def __repr__(self) -> str:
        return (f"Frame(trace_id={self.trace_id!r}, parent_id={self.parent_id!r}, "
                f"agent={self.agent!r})")


_current: contextvars.ContextVar[Frame | None] = contextvars.ContextVar("agentaudit_frame",
                                                                        default=None)


def current_frame() -> Frame | None:
    """The innermost active trace frame of this context, if any."""
    return _current.get()


def new_trace_id() -> str:
    """A 32-hex-digit, time-ordered trace id (W3C/OpenTelemetry compatible)."""
    return new_event_id().replace("-", "")


def _mark_logged(exc: BaseException) -> bool:
    """True the first time an exception is seen, so one failure is one agent.error."""
    if getattr(exc, "__agentaudit_logged__", False):
        return False
    with contextlib.suppress(Exception):
        exc.__agentaudit_logged__ = True  # type: ignore[attr-defined]
    return True


class ToolCall:
    """``with t.tool_call("get_order", params) as call: call.result = ...``

    Logs agent.tool_call on entry and agent.tool_result with the duration on exit; an exception
    becomes agent.error (with the duration) and propagates.
    """

    __slots__ = ("_frame", "_inner", "_logger", "_start", "_token", "event_id", "name", "params",
                 "result", "tags")

    def __init__(self, logger: AuditLogger, frame: Frame, name: str,
                 params: dict[str, Any] | None, tags: dict[str, str] | None = None) -> None:
        self._logger = logger
        self._frame = frame
        self.name = name
        self.params = params
        self.result: Any = None
        self.tags = tags
        self.event_id = ""
        self._start = 0.0
        self._token: contextvars.Token[Frame | None] | None = None
        self._inner: Frame | None = None  # the frame under the tool_call event (set on entry)

    def __enter__(self) -> ToolCall:
        f = self._frame
        self.event_id = self._logger._emit(ET.TOOL_CALL, f, action=self.name,
                                           params=self.params, tags=self.tags)
        self._inner = inner = f.child(self.event_id)
        self._token = _current.set(inner)
        self._start = self._logger._clock()
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        ms = max(0.0, (self._logger._clock() - self._start) * 1000.0)
        if self._token is not None:
            _current.reset(self._token)
        f = self._inner or self._frame.child(self.event_id)
        if exc is None:
            self._logger._emit(ET.TOOL_RESULT, f, action=self.name, result=self.result,
                               duration_ms=ms, tags=self.tags)
        elif isinstance(exc, Exception) and _mark_logged(exc):
            self._logger._emit(ET.ERROR, f, action=self.name, error=str(exc),
                               error_type=type(exc).__name__, duration_ms=ms, tags=self.tags)

    async def __aenter__(self) -> ToolCall:
        return self.__enter__()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(et, exc, tb)


class Trace:
    """One agent's invocation: ``with audit.trace("refund request", agent="Router") as t:``.

    Entering logs agent.invocation and makes it the parent of what follows; leaving logs the
    closing agent.decision ``finish`` (with the total duration and ``t.result``), or agent.error
    if the block raised (and re-raises).
    """

    def __init__(self, logger: AuditLogger, name: str, frame: Frame,
                 params: dict[str, Any] | None = None) -> None:
        self._logger = logger
        self.name = name
        self._outer = frame  # where the invocation event itself hangs
        self._params = params
        self.event_id = ""
        self.result: Any = None
        self._frame = frame
        self._start = 0.0
        self._token: contextvars.Token[Frame | None] | None = None
        self._entered = False

    @property
    def trace_id(self) -> str:
        return self._frame.trace_id

    @property
    def agent(self) -> str:
        return self._frame.agent

    def _begin(self) -> None:
        if self._entered:
            return
        self._entered = True
        self.event_id = self._logger._emit(ET.INVOCATION, self._outer, action=self.name,
                                           params=self._params)
        self._frame = self._outer.child(self.event_id)
        self._start = self._logger._clock()

    def __enter__(self) -> Trace:
        self._begin()
        self._token = _current.set(self._frame)
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        ms = max(0.0, (self._logger._clock() - self._start) * 1000.0)
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if exc is None:
            self._logger._emit(ET.DECISION, self._frame, action="finish",
                               result=self.result, duration_ms=ms)
        elif isinstance(exc, Exception) and _mark_logged(exc):
            self._logger._emit(ET.ERROR, self._frame, action=self.name, error=str(exc),
                               error_type=type(exc).__name__, duration_ms=ms)

    async def __aenter__(self) -> Trace:
        return self.__enter__()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(et, exc, tb)

    # -- steps inside the trace ----------------------------------------------------------------

    def reasoning(self, text: str, **fields: Any) -> str:
        self._begin()
        return self._logger._emit(ET.REASONING, self._frame, reasoning=text, **fields)

    def tool_call(self, name: str, params: dict[str, Any] | None = None,
                  tags: dict[str, str] | None = None) -> ToolCall:
        self._begin()
        return ToolCall(self._logger, self._frame, name, params, tags)

    def decision(self, name: str, reasoning: str | None = None, confidence: float | None = None,
                 **fields: Any) -> str:
        self._begin()
        return self._logger._emit(ET.DECISION, self._frame, action=name,
                                  reasoning=reasoning, confidence=confidence, **fields)

    def handoff(self, to_agent: str, context_summary: str | None = None,
                reason: str | None = None, **fields: Any) -> Trace:
        """Log agent.handoff and return the receiving agent's trace, nested under it."""
        self._begin()
        params = {"from_agent": self._frame.agent, "to_agent": to_agent}
        if context_summary is not None:
            params["context_summary"] = context_summary
        handoff_id = self._logger._emit(ET.HANDOFF, self._frame,
                                        action=f"handoff to {to_agent}", params=params,
                                        reasoning=reason, **fields)
        child = self._frame.child(handoff_id, to_agent)
        return Trace(self._logger, context_summary or f"handoff from {self._frame.agent}", child)

    def human(self, kind: str, by: str, reason: str | None = None, **fields: Any) -> str:
        """agent.human_intervention: approval, rejection, override, escalation, confirmation."""
        self._begin()
        params = {"kind": str(kind), "by": by, **fields.pop("params", {})}
        return self._logger._emit(ET.HUMAN_INTERVENTION, self._frame, action=str(kind),
                                  params=params, reasoning=reason, **fields)

    def llm_response(self, model: str, output: Any = None, prompt_tokens: int | None = None,
                     completion_tokens: int | None = None, **fields: Any) -> str:
        self._begin()
        return self._logger._emit(
            ET.LLM_RESPONSE, self._frame, action="llm_response", model=model, result=output,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            token_count=_total(prompt_tokens, completion_tokens), **fields)

    def token_usage(self, model: str, prompt_tokens: int, completion_tokens: int,
                    **fields: Any) -> str:
        self._begin()
        return self._logger._emit(
            ET.TOKEN_USAGE, self._frame, action="token_usage", model=model,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            token_count=_total(prompt_tokens, completion_tokens), **fields)

    def feedback(self, score: float | None = None, comment: str | None = None,
                 by: str | None = None, **fields: Any) -> str:
        self._begin()
        params: dict[str, Any] = {"score": score, "comment": comment, "by": by}
        return self._logger._emit(ET.FEEDBACK, self._frame, action="feedback",
                                  params={k: v for k, v in params.items() if v is not None},
                                  **fields)

    def error(self, error: BaseException | str, **fields: Any) -> str:
        self._begin()
        if isinstance(error, BaseException):
            _mark_logged(error)
            fields.setdefault("error_type", type(error).__name__)
        return self._logger._emit(ET.ERROR, self._frame, error=str(error), **fields)


def _total(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)
