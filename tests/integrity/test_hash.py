"""The short-input SHA-256 is SHA-256: the same digests as OpenSSL's on every length."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from agentaudit.integrity._hash import SHORT_INPUT, sha256_digest, short_sha256


def test_known_answers() -> None:
    # FIPS 180-4 examples ("abc" and the empty string)
    assert short_sha256(b"abc").hexdigest() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert sha256_digest(b"").hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


@settings(max_examples=300)
@given(st.binary(max_size=3 * SHORT_INPUT))
def test_both_implementations_agree(data: bytes) -> None:
    expected = hashlib.sha256(data).digest()
    assert short_sha256(data).digest() == expected
    assert sha256_digest(data) == expected


def test_lengths_around_the_switch() -> None:
    for n in range(SHORT_INPUT - 70, SHORT_INPUT + 70):
        data = bytes(range(256)) * 2
        assert sha256_digest(data[:n]) == hashlib.sha256(data[:n]).digest()
