"""``AuditLogger``: the SDK's front door.

Every method builds an event on the caller's thread (a few hundred nanoseconds), hands it to the
background writer and returns its ``event_id``; the busiest seed methods (tool calls and results,
decisions, reasoning), called without extra fields, take a shorter way to the same event
(``_defer``). Nothing here raises into agent code: a broken argument becomes a counted, logged
failure in ``stats()``.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import os
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agentaudit.events import AuditEvent, new_event_id
from agentaudit.exceptions import ConfigError
from agentaudit.redact.redactor import Redactor
from agentaudit.sdk.context import ET, Frame, ToolCall, Trace, current_frame
from agentaudit.sdk.context import _current as _frame_var
from agentaudit.sdk.spool import Spool, default_spool_dir
from agentaudit.sdk.writer import OVERFLOW_POLICIES, Sink, Writer, WriterStats
from agentaudit.store import Store, check_store_url, default_store_url, open_store

__all__ = ["AuditLogger"]

log = logging.getLogger("agentaudit")
# Hooks that see every event any logger records (``agentaudit.testing.capture_events``).
CAPTURE_HOOKS: list[Callable[[AuditEvent], None]] = []
F = TypeVar("F", bound=Callable[..., Any])


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as e:
        raise ConfigError(f"{name}={raw!r} is not a number") from e


class AuditLogger:
    """Records what agents do. ``AuditLogger(store="agentaudit.db")``.

    ``store`` is a path, ``sqlite:///path``, an open ``Store``, or None for ``AGENTAUDIT_DB``
    (default ``./agentaudit.db``), or a collector's ``http(s)://host:4318`` (with ``api_key``,
    default ``AGENTAUDIT_API_KEY``). ``overflow`` chooses what happens when ``max_queue`` events are
    waiting: ``block`` (up to ``block_timeout`` s, then spill), ``spill`` to the local spool, or
    ``drop`` (counted in ``stats().dropped``). ``redact`` is the redaction policy applied on the
    writer thread: None for ``AGENTAUDIT_REDACT_CONFIG`` or the default (secrets and card numbers
    masked), a ``Redactor``, or False for none (docs/redaction.md).
    """

    def __init__(self, store: str | Store | None = None, *, tenant: str = "default",
                 overflow: str | None = None, max_queue: int | None = None,
                 batch_size: int = 2000, flush_interval: float | None = None,
                 block_timeout: float | None = None, spool_dir: str | os.PathLike[str] | None = None,
                 source: str | None = None, version: str | None = None,
                 integrity: bool = True, synchronous: str | None = None,
                 clock: Callable[[], float] | None = None,
                 id_factory: Callable[[], str] | None = None,
                 api_key: str | None = None, redact: Redactor | bool | None = None) -> None:
        overflow = overflow or os.environ.get("AGENTAUDIT_OVERFLOW", "block")
        if overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")
        max_queue = max_queue or int(_env_float("AGENTAUDIT_MAX_QUEUE", 100_000))
        if max_queue < 1 or batch_size < 1:
            raise ConfigError("max_queue and batch_size must be positive")
        flush_interval = flush_interval if flush_interval is not None else _env_float(
            "AGENTAUDIT_FLUSH_INTERVAL", 0.2)
        block_timeout = block_timeout if block_timeout is not None else _env_float(
            "AGENTAUDIT_BLOCK_TIMEOUT", 5.0)
        self.tenant = tenant
        # A clock and id factory may be injected for simulations and deterministic backfills
        # (the demo uses both); by default events carry wall-clock time and UUIDv7 ids.
        self._clock = clock or time.time
        self._new_id = id_factory or new_event_id
        self.source = source
        self.version = version
        if isinstance(store, Store):
            ready: Store = store
            self.store_url = getattr(store, "path", None) and str(store.path) or repr(store)

            def open_sink() -> Sink:
                return ready  # type: ignore[return-value]
        else:
            url = str(store) if store is not None else default_store_url()
            check_store_url(url)
            self.store_url = url
            options: dict[str, Any] = {"integrity": integrity}
            sync = synchronous or os.environ.get("AGENTAUDIT_SYNCHRONOUS")
            if sync:
                options["synchronous"] = sync

            if url.startswith(("http://", "https://")):  # a collector (agentaudit serve)
                from agentaudit.sdk.http_sink import HttpSink, check_collector_url

                check_collector_url(url)
                key = api_key if api_key is not None else os.environ.get("AGENTAUDIT_API_KEY")

                def open_sink() -> Sink:
                    return HttpSink(url, api_key=key)
            else:
                def open_sink() -> Sink:
                    return open_store(url, **options)  # type: ignore[return-value]

        spool = Spool(default_spool_dir(self.store_url) if spool_dir is None
                      else Path(spool_dir))
        self._writer = Writer(open_sink, spool, batch_size=batch_size,
                              flush_interval=flush_interval, max_queue=max_queue,
                              overflow=overflow, block_timeout=block_timeout,
                              close_sink=not isinstance(store, Store),
                              redact=_redactor(redact))
        self._submit = self._writer.submit
        _register_atexit(self)

    # -- core ----------------------------------------------------------------------------------

    def log(self, event: AuditEvent) -> str:
        """Record a fully built event as it is (its timestamp is kept: imports, backfills)."""
        try:
            if event.tenant == "default" and self.tenant != "default":
                event.tenant = self.tenant
            self._dispatch(event)
            return event.event_id
        except Exception as e:  # never into agent code
            self._writer.caller_failed(f"log() failed: {e!r}")
            return getattr(event, "event_id", "")

    def _dispatch(self, ev: AuditEvent) -> None:
        if CAPTURE_HOOKS:
            for hook in CAPTURE_HOOKS:
                hook(ev)
        self._submit(ev)

    def _emit(self, event_type: str, frame: Frame | None, agent_name: str | None = None,
              action: str | None = None, params: Any = None, result: Any = None,
              reasoning: str | None = None, confidence: float | None = None,
              duration_ms: float | None = None, tags: dict[str, str] | None = None,
              **fields: Any) -> str:
        """Build an event in ``frame`` (trace, parent, agent, session, user) and submit it.
        The fields most events carry are named parameters (no ``**fields`` dict for them)."""
        try:
            now = self._clock()
            if frame is None:
                frame = Frame(self.new_trace_id(), None, agent_name or "unknown")
            # 15 keywords at most: with more (or with ``**fields``) CPython builds a dict for
            # the call and msgspec takes its slow path; the rest are set afterwards
            ev = AuditEvent(event_type=event_type, agent_name=agent_name or frame.agent,
                            event_id=self._new_id(), task_id=frame.task_id,
                            session_id=frame.session_id, action=action, params=params,
                            result=result, source=self.source,
                            parent_event_id=frame.parent_id, trace_id=frame.trace_id,
                            timestamp=now, version=self.version, tenant=self.tenant,
                            user_id=frame.user_id)
            if reasoning is not None:
                ev.reasoning = reasoning
            if confidence is not None:
                ev.confidence = confidence
            if duration_ms is not None:
                ev.duration_ms = duration_ms
            if tags is not None:
                ev.tags = tags
            for name, value in fields.items():
                # explicit values win; a None leaves what the trace context supplies (every
                # other field is None already)
                if value is not None:
                    setattr(ev, name, value)
            if CAPTURE_HOOKS:
                for hook in CAPTURE_HOOKS:
                    hook(ev)
            # Writer.submit, inlined: this is the whole cost the caller pays for durability.
            w = self._writer
            n = len(w._queue)
            if n >= w.max_queue:
                w._overflow(ev)
            else:
                w._queue.append(ev)
                if n + 1 >= w.batch_size:
                    w._wake.set()
            return ev.event_id
        except Exception as e:
            self._writer.caller_failed(f"could not record {event_type}: {e!r}")
            return ""

    def _defer(self, event_type: str, agent_name: str, trace_id: str | None,
               parent_id: str | None, action: str | None = None, params: Any = None,
               result: Any = None, reasoning: str | None = None,
               confidence: float | None = None, duration_ms: float | None = None) -> str:
        """``_emit`` of a seed method called without extra fields, for less of the caller's
        time (a quarter less with the writer running, bench/sdk_overhead.py): the
        trace context resolved as ``_frame_for`` does but without a ``Frame``, the event built
        from named fields (no ``**fields`` dict), queued as ``Writer.submit`` does. Nothing but
        the event is kept per call: it is untracked by the cyclic GC, and every object the
        queue holds is walked by the agent's own full collections."""
        try:
            cur = _frame_var.get()
            if cur is not None:
                if trace_id is None:
                    trace_id = cur.trace_id
                if cur.trace_id != trace_id:
                    cur = None  # another trace's context: its session/user/task do not apply
                elif parent_id is None:
                    parent_id = cur.parent_id
            # at most 15 keywords (in field order): with more, CPython builds a dict for the
            # call and msgspec takes its slow path (3.1 against 0.76 µs on a slow machine)
            ev = AuditEvent(event_type=event_type, agent_name=agent_name, event_id=self._new_id(),
                            action=action, params=params, result=result, reasoning=reasoning,
                            confidence=confidence, source=self.source, parent_event_id=parent_id,
                            trace_id=trace_id or self.new_trace_id(), timestamp=self._clock(),
                            duration_ms=duration_ms, version=self.version, tenant=self.tenant)
            if cur is not None:
                ev.session_id, ev.user_id, ev.task_id = cur.session_id, cur.user_id, cur.task_id
            w = self._writer
            q = w._queue
            n = len(q)
            if n >= w.max_queue:
                w._overflow(ev)
            else:
                q.append(ev)
                if n + 1 >= w.batch_size:
                    w._wake.set()
            return ev.event_id
        except Exception as e:
            self._writer.caller_failed(f"could not record {event_type}: {e!r}")
            return ""

    def _frame_for(self, agent_name: str, trace_id: str | None, parent_id: str | None = None,
                   session_id: str | None = None, user_id: str | None = None,
                   task_id: str | None = None) -> Frame:
        cur = current_frame()
        if trace_id is None and cur is not None:
            trace_id = cur.trace_id
        if parent_id is None and cur is not None and cur.trace_id == trace_id:
            parent_id = cur.parent_id
        if cur is not None and cur.trace_id == trace_id:
            session_id = session_id or cur.session_id
            user_id = user_id or cur.user_id
            task_id = task_id or cur.task_id
        return Frame(trace_id or self.new_trace_id(), parent_id, agent_name, session_id, user_id,
                     task_id)

    def new_trace_id(self) -> str:
        """A 32-hex-digit trace id from this logger's id factory (time-ordered by default)."""
        return self._new_id().replace("-", "")

    # -- context managers and decorators -------------------------------------------------------

    def trace(self, name: str, agent: str, *, session_id: str | None = None,
              user_id: str | None = None, task_id: str | None = None,
              trace_id: str | None = None, params: dict[str, Any] | None = None) -> Trace:
        """An agent invocation; nested ``trace`` calls join the enclosing trace as children."""
        frame = self._frame_for(agent, trace_id, None, session_id, user_id, task_id)
        return Trace(self, name, frame, params)

    def tool_call(self, name: str, params: dict[str, Any] | None = None, *,
                  agent: str | None = None) -> ToolCall:
        """A tool call in the current trace (or a new one when outside any trace)."""
        cur = current_frame()
        frame = cur if cur is not None and agent is None else self._frame_for(agent or "unknown", None)
        return ToolCall(self, frame, name, params)

    def tool(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator: each call of the function is a tool call with its arguments as params."""

        def decorate(fn: F) -> F:
            tool_name = name or fn.__name__
            sig = _signature(fn)

            def params_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
                try:
                    bound = sig.bind_partial(*args, **kwargs) if sig else None
                    return dict(bound.arguments) if bound else {"args": list(args), **kwargs}
                except TypeError:
                    return {"args": list(args), **kwargs}

            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.tool_call(tool_name, params_of(args, kwargs)) as call:
                        call.result = await fn(*args, **kwargs)
                        return call.result
                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.tool_call(tool_name, params_of(args, kwargs)) as call:
                    call.result = fn(*args, **kwargs)
                    return call.result
            return wrapper  # type: ignore[return-value]

        return decorate

    def agent(self, agent_name: str, name: str | None = None) -> Callable[[F], F]:
        """Decorator: each call of the function is an invocation of ``agent_name``."""

        def decorate(fn: F) -> F:
            action = name or fn.__name__
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.trace(action, agent=agent_name) as t:
                        t.result = await fn(*args, **kwargs)
                        return t.result
                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.trace(action, agent=agent_name) as t:
                    t.result = fn(*args, **kwargs)
                    return t.result
            return wrapper  # type: ignore[return-value]

        return decorate

    # -- the seed's methods --------------------------------------------------------------------

    def log_invocation(self, agent_name: str, task: str, session_id: str | None = None,
                       trace_id: str | None = None, **fields: Any) -> str:
        frame = self._frame_for(agent_name, trace_id, fields.pop("parent_id", None), session_id,
                                fields.pop("user_id", None), fields.pop("task_id", None))
        return self._emit(ET.INVOCATION, frame, action=_short(task),
                          params={"task": task, **fields.pop("params", {})}, **fields)

    def log_reasoning(self, agent_name: str, reasoning: str, trace_id: str | None = None,
                      parent_id: str | None = None, **fields: Any) -> str:
        if not fields and not CAPTURE_HOOKS:
            return self._defer(ET.REASONING, agent_name, trace_id, parent_id,
                               reasoning=reasoning)
        return self._emit(ET.REASONING, self._frame_for(agent_name, trace_id, parent_id),
                          reasoning=reasoning, **fields)

    def log_tool_call(self, agent_name: str, tool_name: str, params: dict[str, Any] | None = None,
                      trace_id: str | None = None, parent_id: str | None = None,
                      **fields: Any) -> str:
        if not fields and not CAPTURE_HOOKS:
            return self._defer(ET.TOOL_CALL, agent_name, trace_id, parent_id, tool_name, params)
        return self._emit(ET.TOOL_CALL, self._frame_for(agent_name, trace_id, parent_id),
                          action=tool_name, params=params, **fields)

    def log_tool_result(self, agent_name: str, tool_name: str, result: Any = None,
                        duration_ms: float | None = None, trace_id: str | None = None,
                        parent_id: str | None = None, **fields: Any) -> str:
        if not fields and not CAPTURE_HOOKS:
            return self._defer(ET.TOOL_RESULT, agent_name, trace_id, parent_id, tool_name,
                               result=result, duration_ms=duration_ms)
        return self._emit(ET.TOOL_RESULT, self._frame_for(agent_name, trace_id, parent_id),
                          action=tool_name, result=result, duration_ms=duration_ms, **fields)

    def log_decision(self, agent_name: str, decision: str, reasoning: str | None = None,
                     confidence: float | None = None, trace_id: str | None = None,
                     parent_id: str | None = None, **fields: Any) -> str:
        if not fields and not CAPTURE_HOOKS:
            return self._defer(ET.DECISION, agent_name, trace_id, parent_id, decision,
                               reasoning=reasoning, confidence=confidence)
        return self._emit(ET.DECISION, self._frame_for(agent_name, trace_id, parent_id),
                          action=decision, reasoning=reasoning, confidence=confidence, **fields)

    def log_error(self, agent_name: str, error: BaseException | str,
                  context: dict[str, Any] | None = None, trace_id: str | None = None,
                  parent_id: str | None = None, **fields: Any) -> str:
        if isinstance(error, BaseException):
            fields.setdefault("error_type", type(error).__name__)
        return self._emit(ET.ERROR, self._frame_for(agent_name, trace_id, parent_id),
                          error=str(error), params=context, **fields)

    def log_handoff(self, from_agent: str, to_agent: str, context: str | None = None,
                    trace_id: str | None = None, parent_id: str | None = None,
                    **fields: Any) -> str:
        params = {"from_agent": from_agent, "to_agent": to_agent}
        if context is not None:
            params["context_summary"] = context
        return self._emit(ET.HANDOFF, self._frame_for(from_agent, trace_id, parent_id),
                          action=f"handoff to {to_agent}", params=params, **fields)

    def log_human_intervention(self, agent_name: str, kind: str, by: str,
                               reason: str | None = None, trace_id: str | None = None,
                               parent_id: str | None = None, **fields: Any) -> str:
        params = {"kind": str(kind), "by": by, **fields.pop("params", {})}
        return self._emit(ET.HUMAN_INTERVENTION,
                          self._frame_for(agent_name, trace_id, parent_id), action=str(kind),
                          params=params, reasoning=reason, **fields)

    def log_llm_response(self, agent_name: str, model: str, output: Any = None,
                         prompt_tokens: int | None = None, completion_tokens: int | None = None,
                         trace_id: str | None = None, parent_id: str | None = None,
                         **fields: Any) -> str:
        total = None if prompt_tokens is None and completion_tokens is None else (
            (prompt_tokens or 0) + (completion_tokens or 0))
        return self._emit(ET.LLM_RESPONSE, self._frame_for(agent_name, trace_id, parent_id),
                          action="llm_response", model=model, result=output,
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                          token_count=total, **fields)

    def log_token_usage(self, agent_name: str, model: str, prompt_tokens: int,
                        completion_tokens: int, cost_usd: float | None = None,
                        trace_id: str | None = None, parent_id: str | None = None,
                        **fields: Any) -> str:
        return self._emit(ET.TOKEN_USAGE, self._frame_for(agent_name, trace_id, parent_id),
                          action="token_usage", model=model, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens,
                          token_count=prompt_tokens + completion_tokens, cost_usd=cost_usd,
                          **fields)

    def log_feedback(self, agent_name: str, score: float | None = None,
                     comment: str | None = None, by: str | None = None,
                     trace_id: str | None = None, parent_id: str | None = None,
                     **fields: Any) -> str:
        params = {k: v for k, v in {"score": score, "comment": comment, "by": by}.items()
                  if v is not None}
        return self._emit(ET.FEEDBACK, self._frame_for(agent_name, trace_id, parent_id),
                          action="feedback", params=params, **fields)

    # -- lifecycle -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Return True once every event logged before this call is durable (stored or spooled)."""
        try:
            return self._writer.flush(timeout)
        except Exception as e:
            self._writer._note_error(f"flush failed: {e!r}")
            return False

    def close(self, timeout: float | None = 10.0) -> bool:
        """Drain the queue (within ``timeout``), stop the writer and close the store."""
        try:
            return self._writer.close(timeout)
        except Exception as e:
            self._writer._note_error(f"close failed: {e!r}")
            return False

    def stats(self) -> WriterStats:
        """Counts of enqueued, written, spilled, dropped and failed events."""
        return self._writer.stats()

    def __enter__(self) -> AuditLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _redactor(redact: Redactor | bool | None) -> Callable[[AuditEvent], AuditEvent] | None:
    if redact is False:
        return None
    if isinstance(redact, Redactor):
        return redact.redact
    return Redactor.from_env().redact


def _short(text: str, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


_loggers: weakref.WeakSet[AuditLogger] = weakref.WeakSet()
_atexit_registered = False


def _drain_all() -> None:
    deadline = _env_float("AGENTAUDIT_EXIT_TIMEOUT", 10.0)
    for logger in list(_loggers):
        logger.close(deadline)


def _register_atexit(logger: AuditLogger) -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_drain_all)
        _atexit_registered = True
    _loggers.add(logger)

