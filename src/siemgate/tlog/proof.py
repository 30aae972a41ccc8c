"""Inclusion, consistency and range proofs: generation from a tree's perfect nodes and
verification (RFC 9162 §2.1.3 and §2.1.4; range proofs as transparency-dev compact ranges).

Generation lists each proof element as the leaf range `[a, b)` whose RFC subtree hash it is
(`inclusion_ranges`, `consistency_ranges`, `range_proof_ranges`), so a verifier holding the
leaves can say exactly which stored hash was wrong. Verifiers check everything RFC 9162 asks and
what implementations have been bitten by: `index < size`, `size1 <= size2`, equal sizes need an
empty proof and equal roots, the proof length is exact, `sn == 0` at the end, every hash 32 bytes.
They raise ProofError with a message that says what did not verify.
"""

from __future__ import annotations

from collections.abc import Sequence

from siemgate.tlog.merkle import (
    HASH_SIZE,
    CompactRange,
    NodeReader,
    ProofError,
    decompose,
    node_hash,
    subtree_hash,
)

Range = tuple[int, int]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges of the inclusion proof of `index` in a tree of `size` (leaf side first)."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    out: list[Range] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _split(end - begin)
        if index < begin + k:
            out.append((begin + k, end))
            end = begin + k
        else:
            out.append((begin, begin + k))
            begin += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The leaf ranges of the consistency proof from `size1` to `size2` (RFC 9162 SUBPROOF)."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 in (0, size2):
        return []
    out: list[Range] = []
    begin, end, complete = 0, size2, True
    m = size1
    while True:
        n = end - begin
        if m == n:
            if not complete:
                out.append((begin, end))
            break
        k = _split(n)
        if m <= k:
            out.append((begin + k, end))
            end = begin + k
        else:
            out.append((begin, begin + k))
            m -= k
            begin += k
            complete = False
    out.reverse()
    return out


def range_proof_ranges(begin: int, end: int, size: int) -> list[Range]:
    """The ranges of a range proof for leaves `[begin, end)`: the compact ranges of `[0, begin)`
    and `[end, size)`."""
    if not 0 <= begin <= end <= size:
        raise ValueError(f"leaves [{begin}, {end}) are not in a tree of size {size}")
    return [_node_range(n) for n in decompose(0, begin)] + [_node_range(n) for n in decompose(end, size)]


def _node_range(node: tuple[int, int]) -> Range:
    level, index = node
    return index << level, (index + 1) << level


def hashes_for(ranges: Sequence[Range], read: NodeReader) -> list[bytes]:
    """The subtree hashes of `ranges`, read from a tree's perfect nodes."""
    return [subtree_hash(a, b, read) for a, b in ranges]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree of `size` leaves."""
    return hashes_for(inclusion_ranges(index, size), read)


def consistency_proof(size1: int, size2: int, read: NodeReader) -> list[bytes]:
    """The consistency proof from the tree of `size1` leaves to the tree of `size2` leaves."""
    return hashes_for(consistency_ranges(size1, size2), read)


def range_proof(begin: int, end: int, size: int, read: NodeReader) -> list[bytes]:
    """The hashes that, with leaves `[begin, end)`, rebuild the root of the tree of `size`."""
    return hashes_for(range_proof_ranges(begin, end, size), read)


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what} hash {i} has {len(h)} bytes; hashes have {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof leads to (RFC 9162 §2.1.3.2); ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    _check_hashes([leaf, *proof], "inclusion proof")
    expected = len(inclusion_ranges(index, size))
    if len(proof) != expected:
        raise ProofError(f"inclusion proof for index {index} in size {size} has {len(proof)} hashes, needs {expected}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `leaf` is at `index` in the tree of `size` leaves with `root`."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for index {index} does not lead to the root of size {size}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of `size2` leaves with `root2` extends the one of `size1` with `root1`
    (RFC 9162 §2.1.4.2). A tree of size 0 is extended by every tree, with an empty proof."""
    if size1 < 0 or size2 < 0:
        raise ProofError("tree sizes cannot be negative")
    if size1 > size2:
        raise ProofError(f"size {size2} is smaller than size {size1}: a log never shrinks")
    _check_hashes(proof, "consistency proof")
    if size1 == size2:
        if proof:
            raise ProofError(f"a consistency proof between equal sizes ({size1}) must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}: the log forked")
        return
    if size1 == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    expected = len(consistency_ranges(size1, size2))
    if len(proof) != expected:
        raise ProofError(f"consistency proof {size1} -> {size2} has {len(proof)} hashes, needs {expected}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")


def root_from_range(begin: int, end: int, size: int, leaves: Sequence[bytes], proof: Sequence[bytes]) -> bytes:
    """The root that leaves `[begin, end)` and their range proof lead to; ProofError if malformed."""
    if not 0 <= begin <= end <= size:
        raise ProofError(f"leaves [{begin}, {end}) are not in a tree of size {size}")
    if len(leaves) != end - begin:
        raise ProofError(f"range [{begin}, {end}) needs {end - begin} leaves, got {len(leaves)}")
    _check_hashes([*leaves, *proof], "range proof")
    left = decompose(0, begin)
    right = decompose(end, size)
    if len(proof) != len(left) + len(right):
        raise ProofError(
            f"range proof for [{begin}, {end}) in size {size} has {len(proof)} hashes, needs {len(left) + len(right)}"
        )
    rng = CompactRange.of(0, begin, proof[: len(left)])
    for leaf in leaves:
        rng.append_leaf(leaf)
    for (level, _), h in zip(right, proof[len(left) :], strict=True):
        rng.append_node(level, h)
    return rng.root()


def verify_range(begin: int, end: int, size: int, leaves: Sequence[bytes], proof: Sequence[bytes], root: bytes) -> None:
    """Check that `leaves` are the leaves `[begin, end)` of the tree of `size` with `root`."""
    if root_from_range(begin, end, size, leaves, proof) != root:
        raise ProofError(f"range proof for [{begin}, {end}) does not lead to the root of size {size}")
