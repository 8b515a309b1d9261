"""RFC 8785 JSON Canonicalization Scheme (JCS).

`canonical_json(obj)` returns the canonical UTF-8 bytes of a JSON value made
of dict (str keys), list/tuple, str, int, float, bool and None:

* object members sorted by the UTF-16 code units of their names;
* numbers formatted as ECMAScript ``Number.prototype.toString`` (shortest
  round-trip digits, exponent form below 1e-6 and from 1e21 up, ``-0`` as
  ``0``); Python ints are emitted as integers and must lie within ±2**53;
* strings escaped as ``JSON.stringify`` does (only ``"``, ``\\`` and controls
  below U+0020; everything else raw UTF-8); lone surrogates are rejected;
* NaN and Infinity raise ValueError, non-str keys and other types TypeError.

Fast path.  A C encoder (orjson, else msgspec, else the stdlib) does the
work when its output is provably the JCS output:

* every key in the value is free of characters above U+FFFF, so code point
  order (what the encoders sort by) equals UTF-16 code unit order;
* every float is either integral with magnitude below 2**53 (replaced by the
  equal int, which both notations print as the same digits) or non-integral
  with 1e-4 <= |x| < 1e16, where every encoder prints Python's shortest
  round-trip repr in plain notation, which is also what ECMAScript prints;
* ints lie within ±2**53 and all containers and scalars have exact builtin
  types (subclasses may override ``__str__`` and the like).

Anything else goes through `_reference_canonical_json`, a direct recursive
walker; encoder errors fall back to it too, so errors are always its errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["canonical_json"]

MAX_SAFE_INTEGER = 2**53
_MAX = MAX_SAFE_INTEGER

Encoder = Callable[[Any], bytes]

# -- reference walker ------------------------------------------------------

_ESCAPES: dict[int, str] = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update(
    {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
)


def es_number(x: float) -> str:
    """Format a float as ECMAScript ``Number.prototype.toString`` does."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"{x!r} is not a valid JSON number (RFC 8785 rejects NaN and Infinity)")
    if x == 0.0:
        return "0"
    text = repr(x)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    # value == 0.<digits> * 10**n
    n = len(int_part) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    s = stripped.rstrip("0")
    k = len(s)
    if k <= n <= 21:
        return sign + s + "0" * (n - k)
    if 0 < n <= 21:
        return sign + s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + s
    e = n - 1
    exp_text = f"e+{e}" if e >= 0 else f"e-{-e}"
    if k == 1:
        return sign + s + exp_text
    return sign + s[0] + "." + s[1:] + exp_text


def _es_int(i: int) -> str:
    if not -_MAX <= i <= _MAX:
        raise ValueError(
            f"integer {int.__repr__(i)} is outside ±2**53 and not interoperable "
            "(I-JSON, RFC 7493 §2.2); encode it as a string"
        )
    return int.__repr__(i)


def _utf16_key(item: tuple[str, Any]) -> bytes:
    return item[0].encode("utf-16-be", "surrogatepass")


def _emit(obj: object, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append('"' + obj.translate(_ESCAPES) + '"')
    elif isinstance(obj, int):
        out.append(_es_int(obj))
    elif isinstance(obj, float):
        out.append(es_number(obj))
    elif isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key).__name__}: {key!r}")
        out.append("{")
        for i, (key, value) in enumerate(sorted(obj.items(), key=_utf16_key)):
            if i:
                out.append(",")
            out.append('"' + key.translate(_ESCAPES) + '":')
            _emit(value, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _emit(value, out)
        out.append("]")
    else:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _reference_canonical_json(obj: object) -> bytes:
    """Canonicalize with the plain recursive walker (the fast path's fallback)."""
    out: list[str] = []
    try:
        _emit(obj, out)
    except RecursionError:
        raise ValueError("value is nested too deeply or contains a reference cycle") from None
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"string contains a lone surrogate {exc.object[exc.start : exc.end]!r}; "
            "RFC 8785 requires well-formed Unicode"
        ) from None


# -- fast path -------------------------------------------------------------


class _Ineligible(Exception):
    """The value needs the reference walker."""




def _prep_value(v: Any) -> Any:
    """Return `v` (or an equivalent) ready for the C encoder, else raise _Ineligible."""
    t = type(v)
    if t is str or v is None or t is bool:
        return v
    if t is int:
        if -_MAX <= v <= _MAX:
            return v
        raise _Ineligible
    if t is float:
        if v.is_integer():
            if -_MAX < v < _MAX:
                return int(v)
            raise _Ineligible
        if 1e-4 <= abs(v) < 1e16:
            return v
        raise _Ineligible
    if t is dict:
        return _prep_dict(v)
    if t is list or t is tuple:
        out: list[Any] | None = None
        for i, item in enumerate(v):
            new = _prep_value(item)
            if new is not item:
                if out is None:
                    out = list(v)
                out[i] = new
        return v if out is None else out
    raise _Ineligible


def _prep_dict(d: dict[Any, Any]) -> dict[Any, Any]:
    keys = "".join(d)  # TypeError for a non-str key: the reference reports it
    if not keys.isascii() and max(keys) > "\uffff":
        raise _Ineligible
    out: dict[Any, Any] | None = None
    for k, v in d.items():
        # Inlined _prep_value for the common scalar cases: this is the hot loop.
        t = type(v)
        if t is str or v is None or t is bool:
            continue
        if t is int:
            if -_MAX <= v <= _MAX:
                continue
            raise _Ineligible
        if t is float:
            if v.is_integer():
                if not -_MAX < v < _MAX:
                    raise _Ineligible
                new: Any = int(v)
            elif 1e-4 <= abs(v) < 1e16:
                continue
            else:
                raise _Ineligible
        else:
            new = _prep_value(v)
            if new is v:
                continue
        if out is None:
            out = dict(d)
        out[k] = new
    return d if out is None else out


def _orjson_encoder() -> Encoder:
    import orjson

    dumps, option = orjson.dumps, orjson.OPT_SORT_KEYS

    def encode(obj: Any) -> bytes:
        return dumps(obj, option=option)

    return encode


def _msgspec_encoder() -> Encoder:
    import msgspec

    return msgspec.json.Encoder(order="sorted").encode


def _stdlib_encoder() -> Encoder:
    encoder = json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    )

    def encode(obj: Any) -> bytes:
        return encoder.encode(obj).encode("utf-8")

    return encode


ENGINES: dict[str, Callable[[], Encoder]] = {
    "orjson": _orjson_encoder,
    "msgspec": _msgspec_encoder,
    "json": _stdlib_encoder,
}

_SELF_CHECK: tuple[object, ...] = (
    {"b": [1, 0.5, 12345.678, None, True, False], "a": {"z": '"\\\b\f\n\r\t\x00\x1f\x7f'}},
    {"s": "\u2028\u00e9\u20ac\U0001f600", "n": -9007199254740992, "f": -0.0001},
    [0.1, 123456789012345.6, 4503599627370495.5, 1e-4, 12.0, "\ue000"],
)


def _select_engine() -> tuple[str, Encoder]:
    for name, factory in ENGINES.items():
        try:
            encode = factory()
            if all(encode(_prep_value(v)) == _reference_canonical_json(v) for v in _SELF_CHECK):
                return name, encode
        except Exception:  # an unusable engine is simply skipped
            continue
    raise RuntimeError("no usable JSON encoder")  # pragma: no cover - stdlib always works


ENGINE, _encode = _select_engine()


def canonical_json(obj: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of `obj`."""
    try:
        prepared = _prep_dict(obj) if type(obj) is dict else _prep_value(obj)
        return _encode(prepared)
    except _Ineligible:
        pass
    except (TypeError, ValueError, OverflowError, RecursionError):
        pass  # let the reference walker raise its own, precise error
    return _reference_canonical_json(obj)
