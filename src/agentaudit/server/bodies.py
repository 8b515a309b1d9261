"""Request bodies: read with a hard size cap, gunzip in a streaming way with a second cap, and
split native ingest bodies (JSON array, ``{"events": [...]}`` or NDJSON) into events.

Each event is decoded on its own with msgspec straight into ``AuditEvent`` and checked by
``validate_event``; only an event that fails is decoded again as plain data and run through
``event_from_dict`` for a message naming the bad field. No pydantic on this path.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
from fastapi import Request

from agentaudit.events import AuditEvent, event_from_dict, validate_event
from agentaudit.exceptions import ValidationError
from agentaudit.server.errors import ApiError
from agentaudit.server.settings import ServerSettings

__all__ = ["JSON_TYPES", "NDJSON_TYPES", "ParsedBatch", "decode_event", "discard_body", "media_type",
           "parse_events", "read_body", "split_body"]

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/jsonlines"})
_DRAIN_LIMIT = 256 * 1024 * 1024  # read (and discard) at most this much of a refused body


def media_type(request: Request) -> str:
    """The Content-Type without parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class _Gunzip:
    """Streaming gzip decompression (multi-member) that refuses to grow past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []
        self._d = zlib.decompressobj(wbits=31)
        self._in_member = False

    def feed(self, data: bytes) -> None:
        while data:
            self._in_member = True
            try:
                out = self._d.decompress(data, self.limit - self.size + 1)
            except zlib.error as e:
                raise ApiError(400, "the body is not valid gzip") from e
            self.size += len(out)
            if self.size > self.limit:
                raise ApiError(413, f"the body decompresses to more than {self.limit} bytes")
            self.parts.append(out)
            if self._d.eof:  # the next gzip member, if any
                data = self._d.unused_data
                self._d = zlib.decompressobj(wbits=31)
                self._in_member = False
            else:
                data = self._d.unconsumed_tail

    def result(self) -> bytes:
        if self._in_member:
            raise ApiError(400, "the gzip body is truncated")
        return b"".join(self.parts)


async def _drain(request: Request, already: int) -> None:
    """Read the rest of a refused body so that the client hears the answer."""
    with contextlib.suppress(Exception):  # already consumed, or the client went away
        async for chunk in request.stream():
            already += len(chunk)
            if already > _DRAIN_LIMIT:
                return


async def read_body(request: Request, settings: ServerSettings) -> bytes:
    """The request body, decompressed; 413 past either cap, 415 for an unknown encoding."""
    limit = settings.max_body_bytes
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        await _drain(request, 0)
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        await _drain(request, 0)
        raise ApiError(413, f"the body is {declared} bytes; the limit is {limit}")
    gunzip = _Gunzip(settings.max_decompressed_bytes) if encoding in ("gzip", "x-gzip") else None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            await _drain(request, size)
            raise ApiError(413, f"the body is larger than the limit of {limit} bytes")
        if gunzip is None:
            parts.append(chunk)
        else:
            try:
                gunzip.feed(chunk)
            except ApiError:
                await _drain(request, size)
                raise
    if gunzip is None:
        return b"".join(parts)
    if size == 0:
        return b""
    return gunzip.result()


class _Envelope(msgspec.Struct):
    events: list[msgspec.Raw]


class _TenantOnly(msgspec.Struct):
    tenant: Any = None


_RAW = msgspec.json.Decoder(msgspec.Raw)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_EVENT = msgspec.json.Decoder(AuditEvent)
_EVENTS = msgspec.json.Decoder(list[AuditEvent])
_TENANT = msgspec.json.Decoder(_TenantOnly)
_ANY = msgspec.json.Decoder()
_WS = b" \t\r\n"


@dataclass
class ParsedBatch:
    """The valid events of a body and the rejected ones (index in the body, reason)."""

    events: list[AuditEvent] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def _lines(body: bytes) -> list[bytes]:
    return [line for line in (x.strip(_WS) for x in body.split(b"\n")) if line]


def split_body(body: bytes, content_type: str) -> list[bytes] | list[msgspec.Raw]:
    """The raw JSON of each event in the body; 400 when the body cannot be read."""
    if content_type in NDJSON_TYPES:
        return _lines(body)
    if content_type not in JSON_TYPES and content_type != "":
        raise ApiError(415, f"unsupported Content-Type {content_type!r}: use application/json "
                            "or application/x-ndjson")
    text = body.lstrip(_WS)
    if not text:
        raise ApiError(400, "empty body: send a JSON array of events, {\"events\": [...]} or "
                            "NDJSON")
    try:
        if text[:1] == b"[":
            return _RAW_LIST.decode(body)
        if text[:1] == b"{":
            return _split_object(body)
    except msgspec.ValidationError as e:
        raise ApiError(400, f"unexpected JSON structure: {e}") from e
    except msgspec.DecodeError as e:
        raise ApiError(400, f"malformed JSON: {e}") from e
    raise ApiError(400, "expected a JSON array of events, an object {\"events\": [...]} or NDJSON")


def _split_object(body: bytes) -> list[bytes] | list[msgspec.Raw]:
    try:
        return _ENVELOPE.decode(body).events
    except msgspec.ValidationError as e:
        if "missing required field `events`" not in str(e):
            raise
    try:
        return [_RAW.decode(body)]  # one object: one event
    except msgspec.DecodeError as e:
        if "trailing characters" in str(e):
            return _lines(body)  # objects one after another: NDJSON without its Content-Type
        raise


def _explicit_tenant(raw: bytes | msgspec.Raw) -> bool:
    data = bytes(raw)
    if b'"tenant"' not in data:
        return False
    try:
        return _TENANT.decode(data).tenant is not None
    except (msgspec.ValidationError, msgspec.DecodeError):
        return True


def _decode_one(raw: bytes | msgspec.Raw) -> AuditEvent:
    try:
        return _EVENT.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        try:
            data = _ANY.decode(raw)
        except msgspec.DecodeError as e:
            raise ValidationError("event", f"malformed JSON: {e}") from e
        return event_from_dict(data)  # raises, naming the field


def _decode_all(raws: list[bytes] | list[msgspec.Raw]) -> list[AuditEvent] | None:
    """Every event in one C call when all decode (the common case); None when one does not."""
    try:
        return _EVENTS.decode(b"[" + b",".join(raws) + b"]")
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _admit(ev: AuditEvent, raw: bytes | msgspec.Raw, tenant: str) -> AuditEvent:
    """``ev`` in ``tenant`` and validated; ``ValidationError`` names what is wrong."""
    ev.seq = ev.leaf_hash = None  # set by the store only
    if ev.tenant != tenant:
        if ev.tenant != "default" or _explicit_tenant(raw):
            raise ValidationError("tenant", f"the event claims tenant {ev.tenant!r} but the API "
                                            f"key belongs to tenant {tenant!r}")
        ev.tenant = tenant
    return validate_event(ev)


def decode_event(raw: bytes | msgspec.Raw, tenant: str) -> AuditEvent:
    """One event of ``tenant``, validated; ``ValidationError`` names what is wrong."""
    return _admit(_decode_one(raw), raw, tenant)


def parse_events(body: bytes, content_type: str, tenant: str,
                 settings: ServerSettings) -> ParsedBatch:
    """Split, size-check and validate every event; invalid ones are listed, not fatal."""
    raws = split_body(body, content_type)
    if len(raws) > settings.max_batch_events:
        raise ApiError(413, f"{len(raws)} events in one request; the limit is "
                            f"{settings.max_batch_events}")
    limit = settings.max_event_bytes
    for i, raw in enumerate(raws):
        if len(raw) > limit:
            raise ApiError(413, f"event {i} is larger than the limit of {limit} bytes")
    decoded = _decode_all(raws)
    out = ParsedBatch()
    for i, raw in enumerate(raws):
        try:
            ev = decoded[i] if decoded is not None else _decode_one(raw)
            out.events.append(_admit(ev, raw, tenant))
        except ValidationError as e:
            out.rejected.append({"index": i, "error": str(e)})
    return out


async def discard_body(request: Request) -> None:
    """Read whatever is left of a refused request's body, so the client hears the answer."""
    await _drain(request, 0)
