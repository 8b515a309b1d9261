"""OTLP/JSON: the proto3 JSON mapping with OTLP's deviations (hex ids, integer enums).

``google.protobuf.json_format`` reads ``bytes`` fields as base64, so a hex ``traceId`` given to
it straight would be silently misdecoded (32 hex digits are valid base64 for 24 bytes). The ids
are therefore checked and turned into base64 here, at known paths, before the standard parser
runs; everything else (int64 as string or number, enums as integers or names, unknown fields
ignored) is what ``json_format`` already does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from agentaudit.exceptions import BadRequest

__all__ = ["encode_otlp_json", "parse_otlp_json"]

_KIND_NAMES = frozenset(Span.SpanKind.keys())
_STATUS_NAMES = frozenset(Status.StatusCode.keys())
_HEX = re.compile(r"[0-9A-Fa-f]*")
# (camelCase key, snake_case key, id size in bytes)
_SPAN_IDS = (("traceId", "trace_id", 16), ("spanId", "span_id", 8),
             ("parentSpanId", "parent_span_id", 8))
_LINK_IDS = (("traceId", "trace_id", 16), ("spanId", "span_id", 8))


def parse_otlp_json(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/JSON ``ExportTraceServiceRequest``; ``BadRequest`` names the bad part."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as e:
        raise BadRequest(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(_clipped(f"malformed JSON: {e}")) from e
    except RecursionError as e:
        raise BadRequest("malformed JSON: nested too deeply") from e
    if not isinstance(doc, dict):
        raise BadRequest(f"OTLP/JSON body must be a JSON object, got {_kind(doc)}")
    _hex_ids_to_base64(doc)
    try:
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        # ParseError names the field; the others come from lone surrogates or deep nesting
        raise BadRequest(_clipped(f"invalid OTLP/JSON: {e}")) from e


def encode_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """The OTLP/JSON encoding of ``request``: lowercase hex ids, integer enums."""
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for span, keys in _id_holders(doc, "resourceSpans"):
        for camel, _snake, _size in keys:
            if span.get(camel):
                span[camel] = base64.b64decode(span[camel]).hex()
    return json.dumps(doc, separators=(",", ":")).encode()


def _id_holders(doc: dict[str, Any], key: str) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
    """Every span and link object of an (already well-formed) encoded request."""
    out: list[tuple[dict[str, Any], tuple[Any, ...]]] = []
    for rs in doc.get(key) or []:
        for ss in rs.get("scopeSpans") or []:
            for span in ss.get("spans") or []:
                out.append((span, _SPAN_IDS))
                out.extend((link, _LINK_IDS) for link in span.get("links") or [])
    return out


def _hex_ids_to_base64(doc: dict[str, Any]) -> None:
    """Check every span and link id of ``doc`` and rewrite it in the base64 json_format reads."""
    for i, rs in enumerate(_objects(doc, "resourceSpans", "resource_spans", "")):
        where = f"resourceSpans[{i}]"
        if "scopeSpans" not in rs and "instrumentationLibrarySpans" in rs:  # OTLP < 0.15
            rs["scopeSpans"] = rs.pop("instrumentationLibrarySpans")
            for ss in rs["scopeSpans"] if isinstance(rs["scopeSpans"], list) else []:
                if isinstance(ss, dict) and "instrumentationLibrary" in ss:
                    ss["scope"] = ss.pop("instrumentationLibrary")
        for j, ss in enumerate(_objects(rs, "scopeSpans", "scope_spans", where)):
            for k, span in enumerate(_objects(ss, "spans", "spans", f"{where}.scopeSpans[{j}]")):
                span_path = f"{where}.scopeSpans[{j}].spans[{k}]"
                _convert(span, _SPAN_IDS, span_path)
                _check_enums(span, span_path)
                for n, link in enumerate(_objects(span, "links", "links", span_path)):
                    _convert(link, _LINK_IDS, f"{span_path}.links[{n}]")


def _objects(parent: dict[str, Any], camel: str, snake: str, where: str) -> list[dict[str, Any]]:
    """The list of objects under ``camel`` (or ``snake``); absent or null means none."""
    key = camel if camel in parent else snake
    value = parent.get(key)
    if value is None:
        return []
    path = f"{where}.{camel}" if where else camel
    if not isinstance(value, list):
        raise BadRequest(f"{path} must be an array, got {_kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRequest(f"{path}[{i}] must be an object, got {_kind(item)}")
    return value


def _convert(obj: dict[str, Any], keys: tuple[tuple[str, str, int], ...], where: str) -> None:
    for camel, snake, size in keys:
        for key in (camel, snake):
            if key in obj and obj[key] is not None:
                obj[key] = _hex_to_base64(obj[key], size, f"{where}.{camel}")


def _check_enums(span: dict[str, Any], where: str) -> None:
    """Enum names are tolerated (OTLP says integers); an unknown name is an error, not unset."""
    status = span.get("status")
    for value, names, path in ((span.get("kind"), _KIND_NAMES, f"{where}.kind"),
                               (status.get("code") if isinstance(status, dict) else None,
                                _STATUS_NAMES, f"{where}.status.code")):
        if isinstance(value, bool):
            raise BadRequest(f"{path} must be an integer, got a boolean")
        if isinstance(value, str) and value not in names:
            shown = value if len(value) <= 64 else value[:61] + "..."
            raise BadRequest(f"{path} {shown!r} is not an OTLP enum value (send an integer)")


def _hex_to_base64(value: Any, size: int, path: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{path} must be a hex string, got {_kind(value)}")
    if value == "":
        return ""  # unset, as in protobuf; the mapper rejects spans without ids
    if len(value) != 2 * size or not _HEX.fullmatch(value):
        shown = value if len(value) <= 64 else value[:61] + "..."
        raise BadRequest(f"{path} {shown!r} is not {2 * size} hex digits "
                         "(OTLP/JSON ids are hex, not base64)")
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except (ValueError, binascii.Error) as e:  # pragma: no cover - the regex guards this
        raise BadRequest(f"{path} is not hex: {e}") from e


def _clipped(message: str, limit: int = 500) -> str:
    """Error messages may quote the input; never echo more than ``limit`` characters of it."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
