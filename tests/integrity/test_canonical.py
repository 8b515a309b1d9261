"""RFC 8785 canonical JSON: vectors, edge cases and fast path == independent oracle."""

from __future__ import annotations

import decimal
import enum
import json
import math
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentaudit.integrity import canonical
from agentaudit.integrity.canonical import canonical_json, es_number

# -- an independent oracle -------------------------------------------------
# Written without repr(), str.translate or the module's helpers: shortest
# digits are searched with exact Decimal arithmetic, keys are sorted by
# explicitly computed UTF-16 code units, strings are escaped char by char.

_EXACT = decimal.Context(prec=2000)


def _utf16_units(s: str) -> list[int]:
    units: list[int] = []
    for ch in s:
        cp = ord(ch)
        if cp >= 0x10000:
            cp -= 0x10000
            units += [0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)]
        else:
            units.append(cp)
    return units


def _oracle_string(s: str) -> str:
    short = {
        '"': '\\"',
        "\\": "\\\\",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
    }
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            raise ValueError("lone surrogate")
        if ch in short:
            out.append(short[ch])
        elif cp < 0x20:
            out.append("\\u" + format(cp, "04x"))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _shortest(x: float) -> tuple[str, int]:
    """Digits s and exponent n with x == 0.s * 10**n, per ECMA-262 Number::toString."""
    exact = _EXACT.create_decimal(x)
    for p in range(1, 18):
        mant, exp = f"{x:.{p - 1}e}".split("e")
        rounded = int(mant.replace(".", ""))
        scale = int(exp) - (p - 1)
        found = []
        for d in (rounded - 1, rounded, rounded + 1):
            if d > 0 and float(Decimal(d).scaleb(scale, _EXACT)) == x:
                found.append(
                    (abs(_EXACT.subtract(Decimal(d).scaleb(scale, _EXACT), exact)), d % 2, d)
                )
        if found:
            d = min(found)[2]
            s = str(d).rstrip("0")
            n = scale + len(str(d))
            return s, n
    raise AssertionError(x)


def _oracle_number(x: float) -> str:
    if not math.isfinite(x):
        raise ValueError("non-finite")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _oracle_number(-x)
    s, n = _shortest(x)
    k = len(s)
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return f"{s[:n]}.{s[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    sign = "+" if e > 0 else "-"
    mantissa = s if k == 1 else f"{s[0]}.{s[1:]}"
    return f"{mantissa}e{sign}{abs(e)}"


def oracle(obj: Any) -> bytes:
    def enc(v: Any) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, str):
            return _oracle_string(v)
        if isinstance(v, int):
            if abs(v) > 2**53:
                raise ValueError("int out of range")
            return format(v, "d")
        if isinstance(v, float):
            return _oracle_number(v)
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(enc(i) for i in v) + "]"
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError("key")
            keys = sorted(v, key=_utf16_units)
            return "{" + ",".join(_oracle_string(k) + ":" + enc(v[k]) for k in keys) + "}"
        raise TypeError(type(v).__name__)

    return enc(obj).encode("utf-8")


# -- engines ---------------------------------------------------------------


def _available_engines() -> Iterator[str]:
    for name, factory in canonical.ENGINES.items():
        try:
            factory()
        except ImportError:
            continue
        yield name


ENGINE_NAMES = list(_available_engines())


@pytest.fixture(params=ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    saved = canonical._encode
    canonical._encode = canonical.ENGINES[request.param]()
    try:
        yield request.param
    finally:
        canonical._encode = saved


# -- RFC 8785 vectors ------------------------------------------------------

# RFC 8785 Appendix B, "Number Serialization Samples" (IEEE-754 hex -> JCS text).
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]
RFC8785_REJECTED = ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"]


def _from_hex(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


@pytest.mark.parametrize(("bits", "expected"), RFC8785_NUMBERS)
def test_rfc8785_number_samples(bits: str, expected: str, engine: str) -> None:
    x = _from_hex(bits)
    assert es_number(x) == expected
    assert _oracle_number(x) == expected
    assert canonical_json(x) == expected.encode()
    assert canonical_json({"n": [x]}) == b'{"n":[' + expected.encode() + b"]}"


@pytest.mark.parametrize("bits", RFC8785_REJECTED)
def test_rfc8785_nan_and_infinity_rejected(bits: str, engine: str) -> None:
    with pytest.raises(ValueError):
        canonical_json(_from_hex(bits))
    with pytest.raises(ValueError):
        canonical_json({"a": [1, _from_hex(bits)]})


def test_rfc8785_sorting_example(engine: str) -> None:
    # RFC 8785 §3.2.3 "Sorting of Object Properties": the example object and
    # the order its property values must come out in.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    out = json.loads(canonical_json(value))
    assert list(out.values()) == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


# Input/expected pairs from cyberphone/json-canonicalization testdata/input/*.json
# and testdata/output/*.json (the RFC 8785 authors' reference test data).
CYBERPHONE = [
    (  # values.json
        '{"numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],'
        ' "escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}',
        '{"escaping":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/","literals":[null,true,false],'
        '"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}',
    ),
    (  # structures.json
        '{"1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0}, "10": { }, "": "empty",'
        ' "a": { }, "111": [ { } ], "A": { }}',
        '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}',
    ),
    (  # weird.json
        '{"\\u20ac": "Euro Sign", "1": "One", "\\u0080": "Control\\u007f",'
        ' "\\ud83d\\ude02": "Smiley", "\\u00f6": "Latin Small Letter O With Diaeresis",'
        ' "\\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}',
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
        '"ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\U0001f602":"Smiley",'
        '"\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    ),
    (  # unicode.json: no normalization
        '{"Unnormalized Unicode":"\\u1e0d\\u0307"}',
        '{"Unnormalized Unicode":"\u1e0d\u0307"}',
    ),
    (  # french.json: no locale-aware ordering
        '{"peach": "This sorting order", "péché": "is wrong according to French",'
        ' "pêche": "but canonicalization MUST", "sin": "ignore locale"}',
        '{"peach":"This sorting order","péché":"is wrong according to French",'
        '"pêche":"but canonicalization MUST","sin":"ignore locale"}',
    ),
]


@pytest.mark.parametrize(("source", "expected"), CYBERPHONE)
def test_reference_testdata(source: str, expected: str, engine: str) -> None:
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


# -- edge cases ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-0.0, "0"),
        (0.0, "0"),
        (1.0, "1"),
        (-12.0, "-12"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (1e-5, "0.00001"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.25e-7, "1.25e-7"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (2.0**53, "9007199254740992"),
        (2.0**60, "1152921504606847000"),
        (5e-324, "5e-324"),
    ],
)
def test_number_formatting(value: float, expected: str, engine: str) -> None:
    assert canonical_json(value) == expected.encode()
    assert canonical_json([value]) == f"[{expected}]".encode()


def test_integers(engine: str) -> None:
    assert canonical_json([0, -1, 2**53, -(2**53)]) == b"[0,-1,9007199254740992,-9007199254740992]"
    for bad in (2**53 + 1, -(2**53) - 1, 2**64, 10**30):
        with pytest.raises(ValueError, match=str(bad)):
            canonical_json({"n": bad})


def test_literals_and_containers(engine: str) -> None:
    assert canonical_json([True, False, None, (), [], {}]) == b"[true,false,null,[],[],{}]"
    assert canonical_json(("a", (1, 2))) == b'["a",[1,2]]'
    assert canonical_json({"b": True, "a": 1}) == b'{"a":1,"b":true}'


def test_string_escaping(engine: str) -> None:
    s = "".join(chr(i) for i in range(0x20)) + '"\\/\x7f\u2028\u2029\u00e9\U0001f600'
    expected = (
        '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r'
        "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
        '\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\"\\\\/\x7f\u2028\u2029\u00e9\U0001f600"'
    )
    assert canonical_json(s) == expected.encode("utf-8")
    assert canonical_json({s: s}) == (("{" + expected + ":" + expected + "}").encode("utf-8"))


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "\udc00\ud800"])
def test_lone_surrogates_rejected(bad: str, engine: str) -> None:
    for value in (bad, [bad], {"k": bad}, {bad: 1}):
        with pytest.raises(ValueError, match="surrogate"):
            canonical_json(value)


def test_utf16_order_differs_from_code_point_order(engine: str) -> None:
    # U+E000..U+FFFF sort after astral characters in UTF-16 but before them by code point.
    value = {"\uffff": 1, "\U00010000": 2, "\ue000": 3, "z": 4}
    assert canonical_json(value) == '{"z":4,"\U00010000":2,"\ue000":3,"\uffff":1}'.encode()


@pytest.mark.parametrize("key", [1, 1.5, None, True, (1,), b"k"])
def test_non_str_keys_rejected(key: Any, engine: str) -> None:
    with pytest.raises(TypeError, match="keys must be str"):
        canonical_json({key: 1})
    with pytest.raises(TypeError):
        canonical_json({"a": {key: 1, "b": 2}})


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object(), Decimal("1.5"), 1j])
def test_unsupported_types_rejected(value: Any, engine: str) -> None:
    with pytest.raises(TypeError):
        canonical_json({"v": value})


class Color(enum.IntEnum):
    RED = 1


class Text(str):
    def __str__(self) -> str:
        return "wrong"


def test_builtin_subclasses_use_their_values(engine: str) -> None:
    value = OrderedDict([("b", Color.RED), ("a", Text("t"))])
    assert canonical_json(value) == b'{"a":"t","b":1}'
    assert canonical_json([Color.RED, Text("x")]) == b'[1,"x"]'


def test_cycles_rejected(engine: str) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        canonical_json(loop)


ENVELOPE = {
    "event_id": "0192f5e0-7c4e-7a51-9d3e-5b6f2a1c9e01",
    "event_type": "tool_call",
    "seq": 123456,
    "timestamp": 1732567890.123456,
    "duration_ms": 12.0,
    "token_count": 512,
    "agent_name": "planner",
    "payload_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "parent_id": None,
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "run_id": "run-7",
    "model": "gpt-4o",
    "provider": "openai",
    "status": "ok",
    "error": None,
    "tool_name": "search",
    "input_tokens": 100,
    "output_tokens": 412,
    "cost_usd": 0.00123,
    "session_id": "s-1",
    "user_id": "u-42",
    "schema_version": 1,
    "prev_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "redacted": False,
}


def test_envelope_takes_the_fast_path(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = oracle(ENVELOPE)
    assert b'"duration_ms":12,' in expected

    def boom(obj: object) -> bytes:
        raise AssertionError("fell back to the reference walker")

    monkeypatch.setattr(canonical, "_reference_canonical_json", boom)
    assert canonical_json(ENVELOPE) == expected
    nested = {"attrs": {"k": [1.5, 2.0, {"x": None}]}, **ENVELOPE}
    assert canonical_json(nested) == oracle(nested)


def test_input_not_mutated(engine: str) -> None:
    value = {"a": [1.0, {"b": 2.0}], "c": 3.0}
    canonical_json(value)
    assert value == {"a": [1.0, {"b": 2.0}], "c": 3.0}
    assert type(value["c"]) is float


# -- fast path == oracle == reference, on arbitrary values -----------------

_SPECIAL_CHARS = st.sampled_from(
    [
        "\x00",
        "\x1f",
        "\x7f",
        '"',
        "\\",
        "\u2028",
        "\ue000",
        "\uffff",
        "\U00010000",
        "\U0001f600",
        "a",
    ]
)
_text = st.lists(st.characters(exclude_categories=["Cs"]) | _SPECIAL_CHARS, max_size=8).map("".join)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-8, max_value=1e-3),
    st.floats(min_value=1e15, max_value=1e22),
    st.integers(-(2**60), 2**60).map(float),
    st.sampled_from(
        [0.0, -0.0, 5e-324, 1e21, 1e-6, 1e-7, 1e-4, 1e16, 2.0**53, 1.7976931348623157e308]
    ),
)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), _floats, _text)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(_text, children, max_size=5),
    ),
    max_leaves=25,
)


def _check(value: Any, fn: Callable[[Any], bytes]) -> None:
    assert fn(value) == oracle(value)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_fast_equals_oracle(value: Any) -> None:
    _check(value, canonical_json)
    _check(value, canonical._reference_canonical_json)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_every_engine_equals_oracle(value: Any) -> None:
    saved = canonical._encode
    try:
        for name in ENGINE_NAMES:
            canonical._encode = canonical.ENGINES[name]()
            _check(value, canonical_json)
    finally:
        canonical._encode = saved


@settings(max_examples=2000, deadline=None)
@given(_floats)
def test_number_formatting_equals_oracle(x: float) -> None:
    assert es_number(x) == _oracle_number(x)
    assert canonical_json(x) == canonical_json([x])[1:-1] == _oracle_number(x).encode()


@given(st.dictionaries(_text, st.integers(0, 9), max_size=12))
def test_key_order_is_utf16(value: dict[str, int]) -> None:
    keys = list(json.loads(canonical_json(value)))
    assert keys == sorted(value, key=_utf16_units)


def test_fallback_to_the_reference_walker_keeps_no_memory() -> None:
    """Values the fast path declines (an ``Enum`` member that is a ``str``) take the reference
    walker; the decline must not leave anything behind per call (a shared exception instance
    once collected a traceback chain on every fallback: gigabytes over a million events)."""
    import gc
    import tracemalloc

    class Kind(enum.StrEnum):
        TOOL = "agent.tool_call"

    doc = {"event_type": Kind.TOOL, "seq": 1, "params": {"a": [1, 2.5, "x"]}}
    expected = canonical_json({"event_type": "agent.tool_call", "seq": 1,
                               "params": {"a": [1, 2.5, "x"]}})
    for _ in range(100):  # warm caches before measuring
        assert canonical_json(doc) == expected
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            canonical_json(doc)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 200_000, f"{grown:,} bytes kept after 20,000 fallbacks"
