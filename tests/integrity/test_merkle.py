"""RFC 6962 / RFC 9162 Merkle tree: published vectors, proof properties, compact ranges, cache."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentaudit.integrity.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleCache,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    root,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# -- published vectors -----------------------------------------------------
# Data copied from github.com/transparency-dev/merkle: testonly/constants.go
# (LeafInputs, NodeHashes, RootHashes) and proof/verify_test.go
# (inclusionProofs, consistencyProofs).  Vectors use 0-based leaf indexes here.

LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
NODE_HASHES = [  # [level][index] for all complete subtrees of the 8-leaf tree
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
ROOT_HASHES = [  # by tree size 0..8
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
INCLUSION_VECTORS = [  # (index, size, proof)
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
CONSISTENCY_VECTORS = [  # (old_size, new_size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]


def test_hashing_vectors() -> None:
    assert EMPTY_ROOT == ROOT_HASHES[0] == root([])
    assert NODE_HASHES[0] == LEAVES
    for level in range(1, 4):
        for i, expected in enumerate(NODE_HASHES[level]):
            below = NODE_HASHES[level - 1]
            assert node_hash(below[2 * i], below[2 * i + 1]) == expected
            assert subtree_root(LEAVES, i << level, (i + 1) << level) == expected
    for size, expected in enumerate(ROOT_HASHES):
        assert root(LEAVES[:size]) == expected
        cr = CompactRange.from_leaves(LEAVES[:size])
        assert cr.root() == expected


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_vectors(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(LEAVES[:size], index) == proof
    assert MerkleCache.for_leaves(LEAVES[:size], tile_height=1).inclusion_proof(index) == proof
    assert verify_inclusion(LEAVES[index], index, size, proof, ROOT_HASHES[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_vectors(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(LEAVES[:new], old) == proof
    assert MerkleCache.for_leaves(LEAVES[:new], tile_height=1).consistency_proof(old) == proof
    assert verify_consistency(old, new, ROOT_HASHES[old], ROOT_HASHES[new], proof)


def test_rfc6962_example_tree() -> None:
    # RFC 6962 §2.1.3 example: seven leaves d0..d6 named a..f, j; g=(a,b),
    # h=(c,d), i=(e,f), k=(g,h), l=(i,j).  Hashes from the vectors above.
    leaves7 = LEAVES[:7]
    a, b, c, d, e, f, j = leaves7
    g, hh, i = NODE_HASHES[1][:3]
    k = NODE_HASHES[2][0]
    l_ = node_hash(i, j)
    top = node_hash(k, l_)
    assert root(leaves7) == top == ROOT_HASHES[7]
    # §2.1.3 audit paths: d0 -> [b, h, l], d3 -> [c, g, l], d4 -> [f, j, k], d6 -> [i, k].
    assert inclusion_proof(leaves7, 0) == [b, hh, l_]
    assert inclusion_proof(leaves7, 3) == [c, g, l_]
    assert inclusion_proof(leaves7, 4) == [f, j, k]
    assert inclusion_proof(leaves7, 6) == [i, k]
    # §2.1.3 consistency proofs: PROOF(3, D[7]) = [c, d, g, l], PROOF(4, D[7]) = [l],
    # PROOF(6, D[7]) = [i, j, k].
    assert consistency_proof(leaves7, 3) == [c, d, g, l_]
    assert consistency_proof(leaves7, 4) == [l_]
    assert consistency_proof(leaves7, 6) == [i, j, k]
    for old in (3, 4, 6):
        proof = consistency_proof(leaves7, old)
        assert verify_consistency(old, 7, ROOT_HASHES[old], top, proof)
    for idx in range(7):
        assert verify_inclusion(leaves7[idx], idx, 7, inclusion_proof(leaves7, idx), top)
    del e


# -- helpers ---------------------------------------------------------------


def make_leaves(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"{salt}:{i}".encode()) for i in range(n)]


def flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _expr(lo: int, hi: int, known: dict[tuple[int, int], Any]) -> Any:
    """The hash expression of MTH(D[lo:hi]) in terms of known nodes."""
    if (lo, hi) in known:
        return known[(lo, hi)]
    if hi - lo == 1:
        return ("unknown leaf", lo)
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    return (_expr(lo, lo + k, known), _expr(lo + k, hi, known))


def inclusion_shape(index: int, size: int) -> Any:
    """What the verifier computes for (index, size), as an expression over proof slots."""
    if not 0 <= index < size:
        return None
    known: dict[tuple[int, int], Any] = {(index, index + 1): "leaf"}
    known.update({r: n for n, r in enumerate(inclusion_ranges(index, size))})
    return _expr(0, size, known)


def consistency_shape(old: int, new: int) -> Any:
    if not 0 < old < new:
        return None
    known: dict[tuple[int, int], Any] = {r: n for n, r in enumerate(consistency_ranges(old, new))}
    if old & (old - 1) == 0:
        known[(0, old)] = "old root"
    return _expr(0, old, known), _expr(0, new, known)


# -- proof properties ------------------------------------------------------


def test_all_proofs_verify_small_trees() -> None:
    for n in range(1, 65):
        leaves = make_leaves(n)
        r = root(leaves)
        for i in range(n):
            assert verify_inclusion(leaves[i], i, n, inclusion_proof(leaves, i), r)
        for m in range(1, n + 1):
            assert verify_consistency(m, n, root(leaves[:m]), r, consistency_proof(leaves, m))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300))
def test_every_proof_verifies(n: int) -> None:
    leaves = make_leaves(n)
    r = root(leaves)
    cache = MerkleCache.for_leaves(leaves, tile_height=3)
    for i in range(n):
        proof = cache.inclusion_proof(i)
        assert verify_inclusion(leaves[i], i, n, proof, r)
    for m in range(1, n + 1):
        proof = cache.consistency_proof(m)
        assert verify_consistency(m, n, cache.root(m), r, proof)
    # spot-check the plain path (it is O(n) per proof)
    for i in {0, n // 2, n - 1}:
        assert inclusion_proof(leaves, i) == cache.inclusion_proof(i)
        assert consistency_proof(leaves, i + 1) == cache.consistency_proof(i + 1)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tampered_inclusion_rejected(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 300), label="size")
    i = data.draw(st.integers(0, n - 1), label="index")
    leaves = make_leaves(n)
    r, proof, leaf = root(leaves), inclusion_proof(leaves, i), leaves[i]
    assert verify_inclusion(leaf, i, n, proof, r)
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not verify_inclusion(flip(leaf, bit), i, n, proof, r)
    assert not verify_inclusion(leaf, i, n, proof, flip(r, bit))
    for pos in range(len(proof)):
        bad = list(proof)
        bad[pos] = flip(bad[pos], bit)
        assert not verify_inclusion(leaf, i, n, bad, r)
        assert not verify_inclusion(leaf, i, n, proof[:pos] + proof[pos + 1 :], r)
        assert not verify_inclusion(leaf, i, n, proof[:pos] + [r] + proof[pos:], r)
    assert not verify_inclusion(leaf, i, n, [*proof, r], r)
    assert not verify_inclusion(leaf, i, n, [*proof, EMPTY_ROOT], r)
    if proof:
        assert not verify_inclusion(leaf, i, n, proof[:-1], r)
    # Another index or size verifies exactly when it makes the verifier compute
    # the same hash expression: the size is only bound through the root.
    other_i = data.draw(st.integers(-2, n + 2), label="other index")
    if other_i != i:
        assert not verify_inclusion(leaf, other_i, n, proof, r)
    other_n = data.draw(st.integers(-2, 2 * n + 2), label="other size")
    same_shape = inclusion_shape(i, other_n) == inclusion_shape(i, n)
    assert verify_inclusion(leaf, i, other_n, proof, r) == same_shape
    for bogus in (n * 2, n // 2):
        if bogus != n:
            assert verify_inclusion(leaf, i, bogus, proof, r) == (
                inclusion_shape(i, bogus) == inclusion_shape(i, n)
            )


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tampered_consistency_rejected(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 300), label="new size")
    m = data.draw(st.integers(1, n - 1), label="old size")
    leaves = make_leaves(n)
    r1, r2, proof = root(leaves[:m]), root(leaves), consistency_proof(leaves, m)
    assert verify_consistency(m, n, r1, r2, proof)
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not verify_consistency(m, n, flip(r1, bit), r2, proof)
    assert not verify_consistency(m, n, r1, flip(r2, bit), proof)
    assert not verify_consistency(m, n, r2, r1, proof)
    assert not verify_consistency(m, n, r1, r2, [])
    for pos in range(len(proof)):
        bad = list(proof)
        bad[pos] = flip(bad[pos], bit)
        assert not verify_consistency(m, n, r1, r2, bad)
        assert not verify_consistency(m, n, r1, r2, proof[:pos] + proof[pos + 1 :])
        assert not verify_consistency(m, n, r1, r2, proof[:pos] + [proof[pos]] + proof[pos:])
    for extra in (r1, r2, EMPTY_ROOT):
        assert not verify_consistency(m, n, r1, r2, [*proof, extra])
        assert not verify_consistency(m, n, r1, r2, [extra, *proof])
    other_m = data.draw(st.integers(-1, n + 1), label="other old size")
    other_n = data.draw(st.integers(-1, 2 * n + 1), label="other new size")
    for om, on in ((other_m, n), (m, other_n), (other_m, other_n), (m + 1, n), (m - 1, n)):
        if (om, on) == (m, n):
            continue
        same_shape = consistency_shape(om, on) == consistency_shape(m, n)
        assert verify_consistency(om, on, r1, r2, proof) == same_shape, (om, on)


HASH = hashlib.sha256(b"x").digest()


@pytest.mark.parametrize(
    "args",
    [
        (HASH[:31], 0, 1, [], HASH[:31]),
        (HASH + b"\x00", 0, 1, [], HASH + b"\x00"),
        (HASH.hex(), 0, 1, [], HASH.hex()),
        (bytearray(HASH), 0, 1, [], HASH),
        (None, 0, 1, [], HASH),
        (HASH, -1, 1, [], HASH),
        (HASH, 1, 1, [], HASH),
        (HASH, 0, 0, [], HASH),
        (HASH, 0, -1, [], HASH),
        (HASH, True, 2, [HASH], HASH),
        (HASH, 0.0, 1, [], HASH),
        (HASH, 0, 1, None, HASH),
        (HASH, 0, 1, [b""], HASH),
        (HASH, 0, 1, [HASH], HASH),
        (HASH, 0, 2, [HASH[:16]], HASH),
        (HASH, 0, 2, HASH, HASH),
        (HASH, 0, 2, "abc", HASH),
        (HASH, 0, 2, 5, HASH),
        (HASH, 0, 1, [], None),
    ],
)
def test_verify_inclusion_malformed(args: tuple[Any, ...]) -> None:
    assert verify_inclusion(*args) is False


def test_verify_inclusion_single_leaf() -> None:
    assert verify_inclusion(HASH, 0, 1, [], HASH)
    assert verify_inclusion(HASH, 0, 1, (), HASH)
    assert not verify_inclusion(HASH, 0, 1, [], EMPTY_ROOT)


def test_verify_consistency_edges() -> None:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert verify_consistency(1, 1, a, a, [])
    assert verify_consistency(5, 5, a, a, ())
    assert not verify_consistency(1, 1, a, b, [])
    assert not verify_consistency(1, 1, a, a, [a])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, a, [])
    assert not verify_consistency(0, 2, EMPTY_ROOT, a, [a])
    assert not verify_consistency(2, 1, a, b, [a])
    assert not verify_consistency(-1, 1, a, b, [a])
    assert not verify_consistency(1, 2, a, b, [])
    assert not verify_consistency(1, 2, a, b, None)  # type: ignore[arg-type]
    assert not verify_consistency(1, 2, a[:31], b, [a])
    assert not verify_consistency(1, 2, a, b.hex(), [a])  # type: ignore[arg-type]
    assert not verify_consistency(1, 2, a, b, [a.hex()])  # type: ignore[list-item]
    assert not verify_consistency(True, 2, a, node_hash(a, b), [b])
    assert verify_consistency(1, 2, a, node_hash(a, b), [b])


def test_proof_generation_errors() -> None:
    leaves = make_leaves(5)
    for bad in (-1, 5, 6):
        with pytest.raises(ValueError):
            inclusion_proof(leaves, bad)
    for bad in (0, -1, 6):
        with pytest.raises(ValueError):
            consistency_proof(leaves, bad)
    assert consistency_proof(leaves, 5) == []
    with pytest.raises(ValueError):
        inclusion_proof([], 0)
    with pytest.raises(ValueError):
        subtree_root(leaves, 3, 3)


# -- compact range ---------------------------------------------------------


def test_compact_range_every_size() -> None:
    leaves = make_leaves(300)
    seen: dict[tuple[int, int], bytes] = {}

    def visit(level: int, index: int, value: bytes) -> None:
        assert (level, index) not in seen
        seen[(level, index)] = value

    cr = CompactRange(visitor=visit)
    assert cr.root() == EMPTY_ROOT
    for n in range(301):
        if n:
            cr.append(leaves[n - 1])
        assert cr.size == n
        assert cr.root() == root(leaves[:n])
        assert cr == CompactRange.from_leaves(leaves[:n])
        assert len(cr.nodes) == n.bit_count()
        restored = CompactRange.from_bytes(cr.to_bytes())
        assert restored == cr
        assert restored.root() == cr.root()
    # every completed perfect subtree was reported exactly once, with its root
    expected = {
        (level, i) for level in range(1, 9) for i in range(300 >> level) if (i + 1) << level <= 300
    }
    assert set(seen) == expected
    for (level, i), value in seen.items():
        assert value == subtree_root(leaves, i << level, (i + 1) << level)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 700), st.lists(st.integers(0, 300), max_size=6))
def test_extend_packed_equals_appending_one_by_one(start: int, pieces: list[int]) -> None:
    """Folding packed leaves a level at a time gives the frontier appends give, from any size
    and in pieces of any length (aligned or not)."""
    leaves = make_leaves(start + sum(pieces))
    one, packed = CompactRange.from_leaves(leaves[:start]), CompactRange.from_leaves(leaves[:start])
    at = start
    for n in pieces:
        one.extend(leaves[at:at + n])
        packed.extend_packed(b"".join(leaves[at:at + n]))
        at += n
        assert packed == one
        assert packed.root() == root(leaves[:at])
    with pytest.raises(ValueError):
        packed.extend_packed(b"x" * 31)


def test_extend_packed_with_a_visitor_reports_every_subtree() -> None:
    leaves = make_leaves(77)
    seen: list[tuple[int, int]] = []
    cr = CompactRange(visitor=lambda level, index, value: seen.append((level, index)))
    cr.extend_packed(b"".join(leaves))
    assert cr == CompactRange.from_leaves(leaves)
    assert len(seen) == len(set(seen)) == sum(77 >> level for level in range(1, 7))


def test_compact_range_resume_and_copy() -> None:
    leaves = make_leaves(100)
    cr = CompactRange.from_leaves(leaves[:37])
    blob = cr.to_bytes()
    assert len(blob) == 8 + 32 * (37).bit_count()
    resumed = CompactRange.from_bytes(blob)
    twin = resumed.copy()
    resumed.extend(leaves[37:])
    assert resumed.root() == root(leaves)
    assert twin.size == 37 and twin.root() == root(leaves[:37])


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x00" * 7, (1).to_bytes(8, "big"), (2).to_bytes(8, "big") + HASH * 2, b"\x00" * 9],
)
def test_compact_range_from_bytes_rejects(blob: bytes) -> None:
    with pytest.raises(ValueError):
        CompactRange.from_bytes(blob)


def test_compact_range_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        CompactRange(3, [HASH])
    with pytest.raises(ValueError):
        CompactRange(-1)
    with pytest.raises(ValueError):
        CompactRange(1, [HASH[:5]])
    with pytest.raises(ValueError):
        CompactRange().append(b"short")


# -- cache -----------------------------------------------------------------


class CountingLeaves:
    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self.reads = 0
        self.calls = 0

    def __call__(self, start: int, end: int) -> Sequence[bytes]:
        self.calls += 1
        self.reads += end - start
        return self.leaves[start:end]


@pytest.mark.parametrize("tile_height", [0, 1, 2, 3, 8])
def test_cache_equals_plain_path(tile_height: int) -> None:
    leaves = make_leaves(150)
    cache = MerkleCache.for_leaves(leaves, tile_height=tile_height)
    for n in (1, 2, 3, 7, 8, 9, 31, 64, 100, 150):
        sub = leaves[:n]
        assert cache.root(n) == root(sub)
        for i in range(n):
            assert cache.inclusion_proof(i, n) == inclusion_proof(sub, i)
        for m in range(1, n + 1):
            assert cache.consistency_proof(m, n) == consistency_proof(sub, m)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(0, 4), st.data())
def test_cache_equals_plain_path_random(n: int, tile_height: int, data: st.DataObject) -> None:
    leaves = make_leaves(n, salt=n)
    cache = MerkleCache.for_leaves(leaves, tile_height=tile_height)
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    assert cache.root() == root(leaves)
    assert cache.inclusion_proof(i) == inclusion_proof(leaves, i)
    assert cache.consistency_proof(m) == consistency_proof(leaves, m)


def test_cache_grows_with_the_log_and_reuses_tiles() -> None:
    leaves = make_leaves(2000)
    tiles: dict[int, bytes] = {}

    def record(level: int, index: int, value: bytes) -> None:
        if level == 4:
            tiles[index] = value

    cr = CompactRange(visitor=record)
    reader = CountingLeaves(leaves)
    cache = MerkleCache(reader, 0, tile_height=4, tiles=tiles)
    for n in range(1, 2001):
        cr.append(leaves[n - 1])
        if n % 97 == 0 or n == 2000:
            cache.size = n
            assert cache.root() == cr.root() == root(leaves[:n])
            before = reader.reads
            proof = cache.inclusion_proof(n // 3)
            assert verify_inclusion(leaves[n // 3], n // 3, n, proof, cr.root())
            # tiles come from the compact range: a proof reads under two tiles of leaves
            assert reader.reads - before < 2 * 16
            before = reader.reads
            cproof = cache.consistency_proof(n // 2 or 1)
            assert cproof == consistency_proof(leaves[:n], n // 2 or 1)
            assert reader.reads - before < 2 * 16
    assert len(tiles) == 2000 // 16


def test_cache_fills_a_write_through_tile_store() -> None:
    leaves = make_leaves(1000)
    tiles: dict[int, bytes] = {}
    first = MerkleCache(CountingLeaves(leaves), 1000, tile_height=5, tiles=tiles)
    first.inclusion_proof(500)
    assert tiles  # computed tiles were stored
    assert all(v == subtree_root(leaves, k * 32, (k + 1) * 32) for k, v in tiles.items())
    full = {k: subtree_root(leaves, k * 32, (k + 1) * 32) for k in range(1000 // 32)}
    reader = CountingLeaves(leaves)
    second = MerkleCache(reader, 1000, tile_height=5, tiles=full)
    assert second.root() == root(leaves)
    assert second.inclusion_proof(999) == inclusion_proof(leaves, 999)
    assert reader.reads < 2 * 32


def test_proofs_of_consecutive_events_read_each_tile_once() -> None:
    """An evidence bundle proves thousands of neighbouring events: each complete tile's leaves
    are read once for all of them (not once per level per event), and the proofs stay exact."""
    leaves = make_leaves(1000)
    reader = CountingLeaves(leaves)
    stored = {k: subtree_root(leaves, k * 16, (k + 1) * 16) for k in range(1000 // 16)}
    cache = MerkleCache(reader, 1000, tile_height=4, tiles=stored)  # as a store holds them
    for i in range(1000):
        assert cache.inclusion_proof(i) == inclusion_proof(leaves, i)
    # 62 complete tiles of 16 once each, and the 8 leaves past them once per range of them
    # that a proof needs ([992, 1000) for the first 992 events; 1, 2 and 4 leaves for the rest)
    assert reader.reads <= 992 + 8 + 8 * (1 + 2 + 4)
    assert reader.calls <= 62 + 1 + 8 * 3


def test_cache_errors() -> None:
    leaves = make_leaves(10)
    cache = MerkleCache.for_leaves(leaves, tile_height=2)
    with pytest.raises(ValueError):
        cache.root(11)
    with pytest.raises(ValueError):
        cache.inclusion_proof(3, 11)
    with pytest.raises(ValueError):
        cache.consistency_proof(3, 11)
    with pytest.raises(ValueError):
        cache.perfect_root(3, 1)  # leaves [8, 16) are not all there
    assert cache.root(0) == EMPTY_ROOT
    short = MerkleCache(lambda a, b: leaves[a : b - 1], 10, tile_height=2)
    with pytest.raises(LookupError):
        short.root()
