"""`MerkleCache`: O(log n) roots and proofs over a large log, with cached tile roots.

See the `agentaudit.integrity.merkle` docstring for the approach.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence

from .merkle import EMPTY_ROOT, _split, consistency_ranges, inclusion_ranges, node_hash, root

__all__ = ["LeafReader", "MerkleCache"]

LeafReader = Callable[[int, int], Sequence[bytes]]

_TILE_TREES_KEPT = 4


class MerkleCache:
    """Roots and proofs for a log read through `get_leaves(start, end)`.

    `tiles` maps tile index i to the root of leaves [i*T, (i+1)*T) with
    T = 2**tile_height; missing tiles are computed from leaves and stored
    into it, so a write-through mapping persists them.  Nodes above tile
    level are memoized in memory.  Only complete, immutable subtrees are
    cached, so the cache stays valid as `size` grows (append-only log).
    """

    def __init__(
        self,
        get_leaves: LeafReader,
        size: int,
        *,
        tile_height: int = 8,
        tiles: MutableMapping[int, bytes] | None = None,
    ) -> None:
        if size < 0 or tile_height < 0:
            raise ValueError("size and tile_height must be non-negative")
        self.get_leaves = get_leaves
        self.size = size
        self.tile_height = tile_height
        self.tiles: MutableMapping[int, bytes] = {} if tiles is None else tiles
        self._upper: dict[tuple[int, int], bytes] = {}
        # every level of the few complete tiles proofs went through last (levels[0] = leaves)
        self._tile_trees: dict[int, list[list[bytes]]] = {}
        self._edge: dict[tuple[int, int], bytes] = {}

    @classmethod
    def for_leaves(cls, leaf_hashes: Sequence[bytes], *, tile_height: int = 8) -> MerkleCache:
        """A cache over an in-memory list of leaf hashes."""
        return cls(lambda a, b: leaf_hashes[a:b], len(leaf_hashes), tile_height=tile_height)

    def _leaves(self, start: int, end: int) -> Sequence[bytes]:
        leaves = self.get_leaves(start, end)
        if len(leaves) != end - start:
            raise LookupError(f"get_leaves({start}, {end}) returned {len(leaves)} leaves")
        return leaves

    def perfect_root(self, level: int, index: int) -> bytes:
        """Root of the perfect subtree over leaves [index << level, (index + 1) << level)."""
        if (index + 1) << level > self.size:
            raise ValueError(f"subtree ({level}, {index}) is not complete at size {self.size}")
        th = self.tile_height
        if level > th:
            key = (level, index)
            h = self._upper.get(key)
            if h is None:
                h = node_hash(
                    self.perfect_root(level - 1, 2 * index),
                    self.perfect_root(level - 1, 2 * index + 1),
                )
                self._upper[key] = h
            return h
        if level == th:
            h = self.tiles.get(index)
            if h is None:
                h = self.tiles[index] = self._tile_node(th, index)
            return h
        if (((index >> (th - level)) + 1) << th) <= self.size:
            return self._tile_node(level, index)
        return self._edge_root(index << level, (index + 1) << level)

    def _edge_root(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end) past the last complete tile (the log's growing edge,
        which every proof of an older event also crosses), kept for the next proofs."""
        h = self._edge.get((start, end))
        if h is None:
            h = root(self._leaves(start, end))
            if len(self._edge) >= 64:
                del self._edge[next(iter(self._edge))]
            self._edge[start, end] = h
        return h

    def _tile_node(self, level: int, index: int) -> bytes:
        """A node inside a complete tile, from that tile's whole tree: built from one read of
        its leaves and kept for the next proofs (neighbouring events share their tile, so an
        export of many events reads each tile's leaves once instead of 8 times per event)."""
        th = self.tile_height
        tile = index >> (th - level)
        tree = self._tile_trees.get(tile)
        if tree is None:
            tree = [list(self._leaves(tile << th, (tile + 1) << th))]
            while len(tree[-1]) > 1:
                below = tree[-1]
                tree.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below), 2)])
            if len(self._tile_trees) >= _TILE_TREES_KEPT:
                del self._tile_trees[next(iter(self._tile_trees))]
            self._tile_trees[tile] = tree
        return tree[level][index - (tile << (th - level))]

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), using cached perfect subtrees."""
        if not 0 <= start < end <= self.size:
            raise ValueError(f"bad subtree range [{start}, {end}) at size {self.size}")
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.perfect_root(n.bit_length() - 1, start // n)
        if n < 1 << self.tile_height:
            return self._edge_root(start, end)
        mid = start + _split(n)
        return node_hash(self.subtree_root(start, mid), self.subtree_root(mid, end))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} beyond the log size {self.size}")
        return EMPTY_ROOT if size == 0 else self.subtree_root(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if size > self.size:
            raise ValueError(f"size {size} beyond the log size {self.size}")
        return [self.subtree_root(a, b) for a, b in inclusion_ranges(index, size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        if new_size > self.size:
            raise ValueError(f"size {new_size} beyond the log size {self.size}")
        return [self.subtree_root(a, b) for a, b in consistency_ranges(old_size, new_size)]
