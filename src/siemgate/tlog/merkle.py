"""RFC 9162 §2.1 Merkle tree hashing and compact ranges.

Leaves and interior nodes are domain-separated: `leaf = SHA-256(0x00 || entry)`,
`node = SHA-256(0x01 || left || right)`; the root of the empty tree is `SHA-256("")`.

A *perfect node* `(level, index)` is the root of the perfect subtree over leaves
`[index * 2**level, (index + 1) * 2**level)`. A *compact range* `[begin, end)` is the smallest list
of perfect nodes that covers exactly that range (transparency-dev's "compact ranges"): for `[0, n)`
it is one node per set bit of `n`, largest first, and folding it from the right gives the RFC tree
hash of the first `n` leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> hash of that perfect node; how proof generation reads a stored tree.
NodeReader = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof, root or tree size does not verify; the message says what failed."""


def leaf_hash(entry: bytes) -> bytes:
    """The RFC 9162 leaf hash of one entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def decompose(begin: int, end: int) -> list[tuple[int, int]]:
    """The perfect nodes `(level, index)` of the compact range `[begin, end)`, left to right."""
    if not 0 <= begin <= end:
        raise ValueError(f"invalid range [{begin}, {end})")
    nodes: list[tuple[int, int]] = []
    while begin < end:
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while begin + (1 << level) > end:
            level -= 1
        nodes.append((level, begin >> level))
        begin += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a compact range `[0, n)` given its node hashes (largest first)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


class CompactRange:
    """The compact range `[begin, end)`: append leaves or aligned perfect nodes, read its root.

    Appending to `[0, n)` costs one leaf hash plus, amortised, one node hash: this is how a log
    integrates entries and how a verifier recomputes roots while streaming leaves.
    """

    __slots__ = ("_levels", "_nodes", "begin", "end")

    def __init__(self, begin: int = 0) -> None:
        self.begin = self.end = begin
        self._levels: list[int] = []
        self._nodes: list[bytes] = []

    @classmethod
    def of(cls, begin: int, end: int, hashes: Sequence[bytes]) -> CompactRange:
        """The range `[begin, end)` from the hashes of its perfect nodes (as `decompose` lists them).

        Raises ProofError when the number of hashes is not the number of nodes of that range.
        """
        nodes = decompose(begin, end)
        if len(hashes) != len(nodes):
            raise ProofError(f"compact range [{begin}, {end}) has {len(nodes)} nodes, got {len(hashes)} hashes")
        rng = cls(begin)
        for (level, _), h in zip(nodes, hashes, strict=True):
            rng.append_node(level, _checked(h))
        return rng

    def append_leaf(self, leaf: bytes) -> None:
        """Append one leaf hash (level 0)."""
        self.append_node(0, leaf)

    def append_node(self, level: int, h: bytes) -> None:
        """Append the perfect node of `level` that starts at `end`; `end` must be aligned to it."""
        if self.end & ((1 << level) - 1):
            raise ValueError(f"a level-{level} node cannot start at index {self.end}")
        size = 1 << level
        start = self.end
        levels, nodes = self._levels, self._nodes
        # Merge with the left neighbour while the pair is the two halves of one perfect node.
        while levels and levels[-1] == level and (start >> level) & 1 and start - (1 << level) >= self.begin:
            h = node_hash(nodes.pop(), h)
            levels.pop()
            start -= 1 << level
            level += 1
        levels.append(level)
        nodes.append(h)
        self.end += size

    def hashes(self) -> list[bytes]:
        """The node hashes, left to right."""
        return list(self._nodes)

    def root(self) -> bytes:
        """The RFC 9162 root of the leaves `[0, end)`; only defined when `begin` is 0."""
        if self.begin != 0:
            raise ValueError("a root is defined only for a range that starts at 0")
        return fold(self._nodes)


def _checked(h: bytes) -> bytes:
    if len(h) != HASH_SIZE:
        raise ProofError(f"a hash has {len(h)} bytes; SHA-256 hashes have {HASH_SIZE}")
    return h


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The RFC 9162 root over leaf hashes."""
    rng = CompactRange()
    for leaf in leaves:
        rng.append_leaf(leaf)
    return rng.root()


def subtree_hash(begin: int, end: int, read: NodeReader) -> bytes:
    """MTH of leaves `[begin, end)` (the RFC's hash of D[begin:end]) from perfect nodes.

    `begin` must be aligned so that the range is an RFC subtree (as proof generation uses it)."""
    nodes = decompose(begin, end)
    if not nodes:
        return EMPTY_ROOT
    return fold([read(level, index) for level, index in nodes])


def tree_reader(leaves: Sequence[bytes]) -> NodeReader:
    """A NodeReader over leaf hashes held in memory (tests, small trees, the verifier)."""
    cache: dict[tuple[int, int], bytes] = {}

    def read(level: int, index: int) -> bytes:
        if level == 0:
            return leaves[index]
        key = (level, index)
        h = cache.get(key)
        if h is None:
            h = cache[key] = node_hash(read(level - 1, 2 * index), read(level - 1, 2 * index + 1))
        return h

    return read
