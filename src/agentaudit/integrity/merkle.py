"""RFC 6962 / RFC 9162 Merkle tree over SHA-256.

Hashing: ``leaf_hash(e) = SHA-256(0x00 || e)``, ``node_hash(l, r) =
SHA-256(0x01 || l || r)``; the empty tree's root is ``SHA-256("")``.

Plain functions take the full list of leaf hashes: `root` hashes level by
level (the odd node at the end of a level is carried up unchanged, which is
exactly the RFC's "split at the largest power of two" tree), and
`inclusion_proof` / `consistency_proof` follow RFC 9162 §2.1.3.1 PATH and
§2.1.4.1 SUBPROOF.  They do O(n) hashing: fine for tests and small logs.

Large logs.  Every node of a proof is the root of either a perfect subtree
(2**k leaves starting at a multiple of 2**k, immutable once complete) or a
right-edge subtree, which splits into a few perfect subtrees plus fewer than
one tile of leaves.  `MerkleCache` builds proofs from a
``get_leaves(start, end)`` callback and a mapping of *tile roots*: the roots
of the perfect subtrees of ``2**tile_height`` (default 256) leaves.  Nodes
above tile level are hashed from tile roots and memoized; nodes below it
from at most one tile of leaves.  With the tile roots at hand (the store
keeps them in a table, filled as `CompactRange.append` completes them via its
``visitor``) a proof costs O(log n) cached nodes, O(n / 2**tile_height)
hashes the first time the upper levels are needed, and fewer than ~2 tiles
of leaf reads.

(`MerkleCache` is defined in ``_tiles.py`` and importable from here.)

`CompactRange` is the log's frontier: the roots of the perfect subtrees of
the binary decomposition of its size.  Appending is O(1) amortized,
`root()` is O(log n), and `to_bytes` / `from_bytes` persist it in a row.

Verification (`verify_inclusion`, `verify_consistency`) implements RFC 9162
§2.1.3.2 / §2.1.4.2 and returns False, never raises, for anything invalid.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from agentaudit.integrity._hash import sha256_digest, short_sha256

if TYPE_CHECKING:
    from ._tiles import MerkleCache

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MerkleCache",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "root",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_sha256 = short_sha256  # every node hashes 65 bytes: CPython's SHA-256 starts faster (_hash.py)
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeVisitor = Callable[[int, int, bytes], None]


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return sha256_digest(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash (RFC 9162 MTH) of the given leaf hashes."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    sha = _sha256
    while len(level) > 1:
        pairs = iter(level)
        nxt = [sha(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH of ``leaf_hashes[start:end]``."""
    if not 0 <= start < end <= len(leaf_hashes):
        raise ValueError(f"bad subtree range [{start}, {end}) of {len(leaf_hashes)} leaves")
    return root(leaf_hashes[start:end])


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form the inclusion proof of `index` (RFC 9162 PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form the consistency proof (RFC 9162 SUBPROOF, b=true)."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo += k
            complete = False
    if not complete:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf `index` in the tree of all `leaf_hashes`."""
    return [root(leaf_hashes[a:b]) for a, b in inclusion_ranges(index, len(leaf_hashes))]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first `old_size` leaves are a prefix of all `leaf_hashes`."""
    return [root(leaf_hashes[a:b]) for a, b in consistency_ranges(old_size, len(leaf_hashes))]


# -- verification ----------------------------------------------------------


def _is_hash(h: object) -> bool:
    return isinstance(h, bytes) and len(h) == HASH_SIZE


def _is_count(n: object) -> bool:
    return type(n) is int and n >= 0


def _hashes(proof: object) -> list[bytes] | None:
    if isinstance(proof, (str, bytes, bytearray)) or not isinstance(proof, Iterable):
        return None
    items = list(proof)
    return items if all(_is_hash(p) for p in items) else None


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` place `leaf_hash` at `index` under `root`?"""
    try:
        path = _hashes(proof)
        if path is None or not (_is_hash(leaf_hash) and _is_hash(root)):
            return False
        if not (_is_count(index) and _is_count(size)) or index >= size:
            return False
        fn, sn, r = index, size - 1, leaf_hash
        for p in path:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = node_hash(p, r)
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
            else:
                r = node_hash(r, p)
            fn >>= 1
            sn >>= 1
        return sn == 0 and hmac.compare_digest(r, root)
    except Exception:  # never raise on hostile input
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (`old_size`, `old_root`) a prefix of (`new_size`, `new_root`)?"""
    try:
        path = _hashes(proof)
        if path is None or not (_is_hash(old_root) and _is_hash(new_root)):
            return False
        if not (_is_count(old_size) and _is_count(new_size)):
            return False
        if old_size == 0 or new_size < old_size:
            return False
        if old_size == new_size:
            return not path and hmac.compare_digest(old_root, new_root)
        if not path:
            return False
        if old_size & (old_size - 1) == 0:
            path.insert(0, old_root)
        fn, sn = old_size - 1, new_size - 1
        while fn & 1:
            fn >>= 1
            sn >>= 1
        fr = sr = path[0]
        for c in path[1:]:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                fr = node_hash(c, fr)
                sr = node_hash(c, sr)
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
            else:
                sr = node_hash(sr, c)
            fn >>= 1
            sn >>= 1
        return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)
    except Exception:  # never raise on hostile input
        return False


# -- incremental frontier --------------------------------------------------


class CompactRange:
    """Roots of the perfect subtrees covering leaves [0, size), largest first.

    `visitor(level, index, hash)` is called for every perfect subtree root of
    level >= 1 that an append completes (e.g. to record tile roots).
    """

    __slots__ = ("_nodes", "_size", "visitor")

    def __init__(
        self, size: int = 0, nodes: Iterable[bytes] = (), *, visitor: NodeVisitor | None = None
    ) -> None:
        node_list = list(nodes)
        if type(size) is not int or size < 0:
            raise ValueError(f"bad compact range size {size!r}")
        if len(node_list) != size.bit_count():
            raise ValueError(f"a compact range of size {size} needs {size.bit_count()} nodes")
        if not all(_is_hash(n) for n in node_list):
            raise ValueError("compact range nodes must be 32-byte hashes")
        self._size = size
        self._nodes = node_list
        self.visitor = visitor

    @classmethod
    def from_leaves(
        cls, leaf_hashes: Sequence[bytes], *, visitor: NodeVisitor | None = None
    ) -> CompactRange:
        """Build the frontier of a list of leaf hashes (without replaying appends)."""
        size, start, nodes = len(leaf_hashes), 0, []
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                nodes.append(root(leaf_hashes[start : start + (1 << level)]))
                start += 1 << level
        return cls(size, nodes, visitor=visitor)

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        return tuple(self._nodes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash: O(1) amortized, O(log n) worst case."""
        if not _is_hash(leaf_hash):
            raise ValueError("leaf hash must be 32 bytes")
        h, index, level = leaf_hash, self._size, 0
        nodes, visitor = self._nodes, self.visitor
        while index >> level & 1:
            h = _sha256(b"\x01" + nodes.pop() + h).digest()
            level += 1
            if visitor is not None:
                visitor(level, index >> level, h)
        nodes.append(h)
        self._size = index + 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    def extend_packed(self, packed: bytes) -> None:
        """Append the leaf hashes concatenated in ``packed`` (32 bytes each): the same result
        as appending them one by one, hashed a level at a time over the largest aligned
        perfect subtrees (verification folds millions of leaves this way). With a visitor,
        leaves are appended one by one so that it sees every completed subtree."""
        if len(packed) % HASH_SIZE:
            raise ValueError("packed leaf hashes must be a multiple of 32 bytes")
        if self.visitor is not None:
            self.extend(packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE))
            return
        count, done = len(packed) // HASH_SIZE, 0
        while done < count:
            # the largest 2**k leaves that fit and start at a multiple of 2**k
            k = min((self._size & -self._size).bit_length() - 1 if self._size else 63,
                    (count - done).bit_length() - 1)
            # one level at a time over the packed hashes: each node hashes 0x01 and one
            # 64-byte slice (its two children side by side)
            level = packed[done * HASH_SIZE : (done + (1 << k)) * HASH_SIZE]
            while len(level) > HASH_SIZE:
                level = b"".join([_sha256(b"\x01" + level[i : i + 2 * HASH_SIZE]).digest()
                                  for i in range(0, len(level), 2 * HASH_SIZE)])
            self._append_node(level, k)
            done += 1 << k

    def _append_node(self, h: bytes, level: int) -> None:
        """Append the root of a perfect subtree of 2**level leaves (size must be a multiple
        of 2**level): merged with the equal-sized subtrees to its left, as ``append`` does."""
        index, nodes = self._size >> level, self._nodes
        while index & 1:
            h = _sha256(b"\x01" + nodes.pop() + h).digest()
            index >>= 1
        nodes.append(h)
        self._size += 1 << level

    def root(self) -> bytes:
        """Root of the tree of `size` leaves, O(log n)."""
        if not self._nodes:
            return EMPTY_ROOT
        r = self._nodes[-1]
        for n in reversed(self._nodes[:-1]):
            r = node_hash(n, r)
        return r

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._nodes, visitor=self.visitor)

    def to_bytes(self) -> bytes:
        """8-byte big-endian size followed by the node hashes."""
        return self._size.to_bytes(8, "big") + b"".join(self._nodes)

    @classmethod
    def from_bytes(cls, data: bytes, *, visitor: NodeVisitor | None = None) -> CompactRange:
        if len(data) < 8 or (len(data) - 8) % HASH_SIZE:
            raise ValueError("malformed compact range")
        size = int.from_bytes(data[:8], "big")
        nodes = [data[i : i + HASH_SIZE] for i in range(8, len(data), HASH_SIZE)]
        return cls(size, nodes, visitor=visitor)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"


def __getattr__(name: str) -> object:
    # MerkleCache lives in _tiles (which imports this module); load it lazily.
    if name == "MerkleCache":
        from ._tiles import MerkleCache

        return MerkleCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
