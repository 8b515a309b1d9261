"""Integrity primitives: RFC 8785 canonical JSON, RFC 9162 Merkle trees, signed checkpoints."""

from __future__ import annotations

__all__: list[str] = []
