"""The PII and secret detectors: true positives, validators, and no false positives on the ids
and times an audit log is full of."""

from __future__ import annotations

import pytest

from agentaudit.redact import DETECTORS, Finding, detector_names, scan
from agentaudit.redact.detectors import iban_ok, luhn_ok


def found(text: str) -> list[tuple[str, str]]:
    return [(f.detector, text[f.start:f.end]) for f in scan(text)]


@pytest.mark.parametrize(("text", "detector", "match"), [
    ("write to jane.doe+x@example.co.uk today", "email", "jane.doe+x@example.co.uk"),
    ("mailto:bob@example.com", "email", "bob@example.com"),
    ("call +44 20 7946 0958", "phone", "+44 20 7946 0958"),
    ("call +14155550123.", "phone", "+14155550123"),
    ("call (415) 555-0123", "phone", "(415) 555-0123"),
    ("call 415.555.0123 now", "phone", "415.555.0123"),
    ("card 4111 1111 1111 1111", "card_number", "4111 1111 1111 1111"),
    ("card 5555-5555-5555-4444", "card_number", "5555-5555-5555-4444"),
    ("amex 378282246310005", "card_number", "378282246310005"),
    ("IBAN DE89 3704 0044 0532 0130 00", "iban", "DE89 3704 0044 0532 0130 00"),
    ("iban GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
    ("ssn 123-45-6789", "us_ssn", "123-45-6789"),
    ("from 192.168.1.20:443", "ipv4", "192.168.1.20"),
    ("from 2001:db8::8a2e:370:7334", "ipv6", "2001:db8::8a2e:370:7334"),
    ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ipv6",
     "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("key AKIAIOSFODNN7EXAMPLE", "aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Bl\\n-----END OPENSSH PRIVATE KEY-----",
     "private_key",
     "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Bl\\n-----END OPENSSH PRIVATE KEY-----"),
    ("t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl", "jwt",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl"),
    ("Authorization: Bearer abcDEF123456ghiJKL", "bearer_token", "abcDEF123456ghiJKL"),
    ("OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx", "api_key",
     "sk-proj-abcdefghijklmnopqrstuvwx"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("postgres://admin:s3cr3t@db.internal/app", "url_password", "s3cr3t"),
])
def test_finds(text: str, detector: str, match: str) -> None:
    assert (detector, match) in found(text)


@pytest.mark.parametrize("text", [
    "event 0192f3a4-5b6c-7d8e-9f01-234567890abc",
    "all digits 12345678-1234-1234-1234-123456789012",
    "at 2026-11-01T10:00:00Z, 2026-11-01T10:00:00.123+00:00 and 2026-11-01 10:00:00+05:30",
    "order ORD-12345678 and ORD-784512, invoice INV-2024123",
    "epoch 1732560000 and ms 1732560000123 and 1795039212.0065708",
    "amount 249.99 USD, 3 items, version 1.2.3, v1.2.3.4, 10:00:00",
    "trace 019ab62a0b00edc5fcf3c7f8d96257a3",
    "message <0a1b2c3d4e@mail.example.com>",
    "email 'jane.doe@' is not a valid address; sender support@",
    "card 4111 1111 1111 1112 fails Luhn; 0000 0000 0000 0000 is not a card",
    "iban DE89 3704 0044 0532 0130 01 fails mod-97",
    "ssn 000-12-3456 and 666-12-3456 are never issued",
    "mac 00:1a:2b:3c:4d:5e and 999.1.1.1",
    "user user-00042 in sess-19ab62a0b0048520f with tracking 1Z00AB12CD34",
])
def test_no_false_positives(text: str) -> None:
    assert found(text) == []


def test_validators() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82WEST12345698765433")
    assert not iban_ok("DE8937040044053201300")  # one digit short for Germany


def test_scan_order_and_selection() -> None:
    text = "mail a@b.io or call +14155550123"
    assert scan(text) == [Finding("email", 5, 11), Finding("phone", 20, 32)]
    assert scan(text, ["phone"]) == [Finding("phone", 20, 32)]
    with pytest.raises(ValueError, match="unknown detector 'x'"):
        scan(text, ["x"])
    assert detector_names() == [d.name for d in DETECTORS]
    assert len(set(detector_names())) == 13
