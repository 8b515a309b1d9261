"""SHA-256 that is cheap for short inputs.

``hashlib.sha256`` is OpenSSL's: fast per byte, but setting up each hash costs about a
microsecond (OpenSSL 3 fetches the algorithm every time). Most hashes of the log are short:
Merkle nodes (65 bytes) and payload digests (salt + payload, ~100 bytes). CPython's own
SHA-256 starts in a fraction of that time, so those use it; long inputs (leaf entries,
~650 bytes) stay with OpenSSL, which wins above ~300 bytes. Both compute SHA-256 (FIPS 180-4);
``tests/integrity/test_hash.py`` checks them against each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

__all__ = ["SHORT_INPUT", "sha256_digest", "short_sha256"]

short_sha256: Callable[[bytes], Any]
try:
    from _sha256 import sha256 as short_sha256  # CPython 3.11
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from _sha2 import sha256 as short_sha256  # type: ignore[no-redef]  # CPython 3.12+
    except ImportError:
        short_sha256 = hashlib.sha256

# Inputs shorter than this many bytes are hashed by ``short_sha256`` (measured crossover on
# the benchmark machine: ~350 bytes).
SHORT_INPUT = 320
_long_sha256 = hashlib.sha256


def sha256_digest(data: bytes) -> bytes:
    """SHA-256 of ``data``, by whichever implementation is cheaper for its length."""
    if len(data) < SHORT_INPUT:
        return short_sha256(data).digest()
    return _long_sha256(data).digest()
