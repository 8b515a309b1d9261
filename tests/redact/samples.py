"""Sensitive values every capture test sends, and the clean values that must survive."""

from __future__ import annotations

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6\n"
       "-----END RSA PRIVATE KEY-----")

# name -> value; each must be gone from the database file (secrets and cards by default).
SECRETS = {
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "jwt": JWT,
    "bearer": "zq8Lm2Vn7Rt4Yx1Wb6Kc",
    "openai": "sk-proj-Zk29fQ0sLm4Xw8Rb1Vc7Ny5Tq3",
    "stripe": "sk_live_51HxQ2kLmN8pQrStUv",
    "url_password": "S3cr3tPassw0rdXYZ",
    "field_password": "hunter2-Very-Secret-Value",
    "pem_body": "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6",
}
CARDS = {"visa": "4111 1111 1111 1111", "mastercard": "5500-0000-0000-0004",
         "amex_digits": "378282246310005"}
PII = {"email": "alice.liddell@example.org", "phone": "+44 20 7946 0958",
       "iban": "GB82 WEST 1234 5698 7654 32", "ssn": "123-45-6789",
       "ipv4": "203.0.113.42", "ipv6": "2001:db8::8a2e:370:7334"}
CLEAN = ["ORD-12345678", "2026-11-25T23:40:53Z", "0193a0b2-7c1d-7e3f-8a9b-0123456789ab",
         "1732578053", "1732578053123"]


def sensitive_text() -> str:
    """Prose holding every kind of value at once."""
    return (f"mail {PII['email']} or call {PII['phone']}; pay {CARDS['visa']} / "
            f"{CARDS['mastercard']}; iban {PII['iban']}; ssn {PII['ssn']}; from {PII['ipv4']} "
            f"and {PII['ipv6']}; key {SECRETS['aws']} token {JWT} "
            f"Authorization: Bearer {SECRETS['bearer']} {SECRETS['openai']} "
            f"{SECRETS['stripe']} postgres://app:{SECRETS['url_password']}@db.example.com/x\n"
            f"{PEM}")


def sensitive_params() -> dict[str, object]:
    """Nested params: prose, a list, a sensitive key, a card as an integer, clean ids."""
    return {"query": sensitive_text(),
            "nested": {"deeper": [{"note": sensitive_text()}, CARDS["amex_digits"]],
                       "password": SECRETS["field_password"]},
            "amount_card": int(CARDS["amex_digits"]),
            "order": CLEAN[0], "at": CLEAN[1], "id": CLEAN[2], "epoch": CLEAN[3],
            "epoch_ms": int(CLEAN[4])}


ALL_ON = {"modes": {"email": "hash", "phone": "mask", "iban": "mask", "ssn": "mask",
                    "ip": "mask", "secrets": "mask", "card": "mask"},
          "key": "test-key-of-tenant"}


def raw_bytes(db: object) -> bytes:
    """The database file and its WAL, as bytes on disk."""
    from pathlib import Path

    path = Path(str(db))
    data = b""
    for p in (path, Path(f"{path}-wal")):
        if p.exists():
            with open(p, "rb") as f:
                data += f.read()
    return data


def leaked(data: bytes, values: dict[str, str]) -> list[str]:
    """Names of values found in data (also with separators removed, for cards)."""
    out = []
    for name, value in values.items():
        forms = {value, value.replace(" ", "").replace("-", "")} if name in CARDS else {value}
        if any(f.encode() in data for f in forms):
            out.append(name)
    return out
