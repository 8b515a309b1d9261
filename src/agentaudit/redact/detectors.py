"""Detectors of personal data and secrets in text: a name, a compiled regex and a validator.

Each detector finds candidates with its regex and keeps those its validator accepts (a Luhn
check for card numbers, mod-97 for IBANs, a parse for IP addresses and JWTs). Patterns insist on
token boundaries so that UUIDs, ISO timestamps, epoch numbers and order ids such as
``ORD-12345678`` are not mistaken for phone, card or social security numbers.

``scan(text)`` returns every finding in text order; the compliance report counts them and the
redactor (a later module) replaces them. Only the standard library is used.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["DETECTORS", "Detector", "Finding", "detector_names", "scan"]

Validator = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Detector:
    """A kind of sensitive data: ``pattern`` finds candidates, ``validator`` confirms them.

    ``group`` is the regex group holding the sensitive part (a bearer token without the word
    ``Bearer``, the password of a URL); 0 is the whole match. ``needs`` lists substrings of which
    a text must contain one for the regex to run at all, ``gate`` a quick regex it must match
    (cheap pre-checks; by default the regex always runs).
    """

    name: str
    pattern: re.Pattern[str]
    validator: Validator | None = None
    group: int = 0
    needs: tuple[str, ...] = ()
    gate: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """``text[start:end]`` looks like ``detector``'s kind of data."""

    detector: str
    start: int
    end: int


# -- validators ----------------------------------------------------------------------------------

def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay,
# Maestro): a 13-19 digit number outside them (an epoch in ms, a tracking number) is not a card.
_CARD_PREFIX = re.compile(r"4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|6(?:011|5|4[4-9]|2)"
                          r"|35(?:2[89]|[3-8]\d)|3(?:0[0-5]|[68])|5[06-9]|6\d")


def _card_ok(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return (13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) is not None
            and len(set(digits)) > 1 and luhn_ok(digits))


# IBAN lengths of the countries most often seen; other countries are checked by mod-97 alone.
_IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26,
}


def iban_ok(text: str) -> bool:
    """ISO 13616: the country's length (when known) and the mod-97 check equal to 1."""
    iban = text.replace(" ", "").upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _ipv4_ok(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return text not in ("0.0.0.0", "255.255.255.255")


def _ipv6_ok(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    groups = [g for g in text.split(":") if g]
    return len(groups) >= 2 and (len(groups) == 8 or "::" in text)


def _b64json(part: str) -> object:
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.loads(raw)


def _jwt_ok(text: str) -> bool:
    try:
        header = _b64json(text.split(".", 1)[0])
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


_GENERATED_LOCAL = re.compile(r"[0-9a-f.\-]{10,}")


def _email_ok(text: str) -> bool:
    """Not a generated Message-ID (``<3f9a0c1b2d@mail.example.com>``): its local part is hex."""
    local = text.rpartition("@")[0]
    return _GENERATED_LOCAL.fullmatch(local) is None


# -- the detectors -------------------------------------------------------------------------------

# Boundaries: not inside a longer word, number or hyphenated id (UUIDs, ORD-12345678, dates).
# Patterns start with a character class and check what precedes it afterwards (``\d(?<!X\d)``):
# the regex engine then skips quickly over positions that cannot start a match.
_NOT_AFTER = r"(?<![\w\-+.]\d)"
_E = r"(?![\w\-]|\.\w)"
# Pre-checks: a text without 7 digits in a row (separators allowed) has no phone, card or SSN.
_DIGIT_RUN = re.compile(r"\d[\d \-.()]{5,}\d")
_DOTTED_QUAD = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_HEX_COLON = re.compile(r"[0-9A-Fa-f]::?[0-9A-Fa-f]")

DETECTORS: tuple[Detector, ...] = (
    Detector("email", re.compile(
        r"[A-Za-z0-9](?:(?<=mailto:[A-Za-z0-9])|(?<![\w.+%:/\-][A-Za-z0-9]))"
        r"[A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-]|\.\w)"),
        _email_ok, needs=("@",)),
    Detector("phone", re.compile(
        # E.164 with optional separators (+44 20 7946 0958, +14155550123), or the North American
        # form with separators ((415) 555-0123, 415-555-0123, 415.555.0123).
        r"\+(?<![\w+]\+)[1-9]\d{0,2}(?:[ .\-]?\(?\d{1,4}\)?){2,5}(?![\w\-])"
        r"|\((?<![\w\-+.]\()\d{3}\)\s?\d{3}[\-. ]\d{4}" + _E
        + r"|\d" + _NOT_AFTER + r"\d\d[\-. ]\d{3}[\-. ]\d{4}" + _E),
        lambda s: 8 <= sum(c.isdigit() for c in s) <= 15, gate=_DIGIT_RUN),
    Detector("card_number", re.compile(
        # 13-19 digits in one run, in groups of 4 (4-4-4-4, 4-4-4-4-3) or Amex's 4-6-5; never
        # a group inside a longer run of digit groups (the middle of an IBAN or account number).
        r"\d" + _NOT_AFTER + r"(?<!\d[ \-]\d)(?:\d{12,18}|\d{3}([ \-])\d{4}\1\d{4}\1\d{4}"
        r"(?:\1\d{3})?|\d{3}([ \-])\d{6}\2\d{5})(?![\w\-]|\.\w|[ \-]\d)"),
        _card_ok, gate=_DIGIT_RUN),
    Detector("iban", re.compile(
        r"[A-Z](?<![\w-][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w-])"),
        iban_ok),
    Detector("us_ssn", re.compile(
        r"\d" + _NOT_AFTER + r"\d\d(?<!000)(?<!666)(?<!9\d\d)-(?!00)\d{2}-(?!0000)\d{4}" + _E),
        gate=_DIGIT_RUN),
    Detector("ipv4", re.compile(
        r"\d(?<![\w.\-]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w\-]|\.\d)"), _ipv4_ok,
        gate=_DOTTED_QUAD),
    Detector("ipv6", re.compile(
        r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::[0-9A-Fa-f]{1,4}){1,7}|[0-9A-Fa-f]{1,4})"
        r"(?![\w:])|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}(?![\w:])"),
        _ipv6_ok, gate=_HEX_COLON),
    Detector("aws_access_key", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"
                                          r"(?![A-Za-z0-9])"),
             needs=("AKIA", "ASIA", "ABIA", "ACCA")),
    Detector("private_key", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"
        r"(?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----)?"),
             needs=("-----BEGIN ",)),
    Detector("jwt", re.compile(
        r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}(?![\w-])"),
        _jwt_ok, needs=("eyJ",)),
    Detector("bearer_token", re.compile(r"\b[Bb]earer\s+([A-Za-z0-9._~+/\-]{16,}=*)"), group=1,
             needs=("earer",)),
    Detector("api_key", re.compile(
        r"(?<![\w-])(?:sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_\-]{20,}"
        r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,})(?![\w-])"),
             needs=("sk-", "k_live_", "k_test_")),
    Detector("url_password", re.compile(
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s:/@\"'<>]{1,128}:([^\s@/\"'<>]{1,256})@[\w.\-]"),
        group=1, needs=("://",)),
)

_BY_NAME = {d.name: d for d in DETECTORS}


def detector_names() -> list[str]:
    """The names of the detectors, in scan order."""
    return [d.name for d in DETECTORS]


def _select(names: Iterable[str] | None) -> tuple[Detector, ...]:
    if names is None:
        return DETECTORS
    chosen = []
    for n in names:
        if n not in _BY_NAME:
            raise ValueError(f"unknown detector {n!r}; known: {', '.join(detector_names())}")
        chosen.append(_BY_NAME[n])
    return tuple(chosen)


def scan(text: str, detectors: Iterable[str] | None = None) -> list[Finding]:
    """Every finding in ``text`` (of all detectors, or those named), ordered by position."""
    found: list[Finding] = []
    for d in _select(detectors):
        if d.needs and not any(n in text for n in d.needs):
            continue
        if d.gate is not None and d.gate.search(text) is None:
            continue
        for m in d.pattern.finditer(text):
            start, end = m.span(d.group)
            if start < 0:
                continue
            if d.validator is None or d.validator(text[start:end]):
                found.append(Finding(d.name, start, end))
    found.sort(key=lambda f: (f.start, -f.end, f.detector))
    return found
