"""Property tests: every honest proof verifies; every tampered proof is refused (a flipped bit in
any hash, a wrong index or size, a truncated, extended or reordered path, a wrong root)."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siemgate.tlog.merkle import ProofError, leaf_hash, root_of, tree_reader
from siemgate.tlog.proof import (
    consistency_proof,
    inclusion_proof,
    range_proof,
    verify_consistency,
    verify_inclusion,
    verify_range,
)

MAX = 300
EXAMPLES = settings(max_examples=300, deadline=None)


@cache
def _tree() -> tuple[list[bytes], list[bytes]]:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX)]
    roots = [root_of(leaves[:n]) for n in range(MAX + 1)]
    return leaves, roots


def _flip(proof: list[bytes], which: int, byte: int, bit: int) -> list[bytes]:
    h = bytearray(proof[which])
    h[byte] ^= 1 << bit
    return [*proof[:which], bytes(h), *proof[which + 1 :]]


def _refused(check: object, *args: object) -> None:
    with pytest.raises(ProofError):
        check(*args)  # type: ignore[operator]


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@EXAMPLES
@given(index_and_size(), st.data())
def test_inclusion_tampering_is_refused(pos: tuple[int, int], data: st.DataObject) -> None:
    leaves, roots = _tree()
    index, size = pos
    read = tree_reader(leaves)
    proof = inclusion_proof(index, size, read)
    verify_inclusion(index, size, leaves[index], proof, roots[size])
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        flipped = _flip(proof, which, data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7)))
        _refused(verify_inclusion, index, size, leaves[index], flipped, roots[size])
        _refused(verify_inclusion, index, size, leaves[index], proof[:-1], roots[size])
        _refused(verify_inclusion, index, size, leaves[index], [*proof, proof[-1]], roots[size])
        _refused(verify_inclusion, index, size, leaves[index], [proof[0], *proof], roots[size])
    if len(set(proof)) > 1:
        _refused(verify_inclusion, index, size, leaves[index], proof[::-1], roots[size])
    other = data.draw(st.integers(0, MAX))
    if other != index:
        _refused(verify_inclusion, other, size, leaves[index], proof, roots[size])
    other_size = data.draw(st.integers(0, MAX))
    if other_size != size:
        # The same proof never proves the leaf in the (signed) tree of another size.
        _refused(verify_inclusion, index, other_size, leaves[index], proof, roots[other_size])
    wrong_leaf = leaves[(index + 1) % MAX]
    if size > 1:
        _refused(verify_inclusion, index, size, wrong_leaf, proof, roots[size])


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(2, MAX))
    return draw(st.integers(1, size2 - 1)), size2


@EXAMPLES
@given(two_sizes(), st.data())
def test_consistency_tampering_is_refused(sizes: tuple[int, int], data: st.DataObject) -> None:
    leaves, roots = _tree()
    size1, size2 = sizes
    proof = consistency_proof(size1, size2, tree_reader(leaves))
    verify_consistency(size1, size2, roots[size1], roots[size2], proof)
    which = data.draw(st.integers(0, len(proof) - 1))
    flipped = _flip(proof, which, data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7)))
    _refused(verify_consistency, size1, size2, roots[size1], roots[size2], flipped)
    _refused(verify_consistency, size1, size2, roots[size1], roots[size2], proof[:-1])
    _refused(verify_consistency, size1, size2, roots[size1], roots[size2], [*proof, proof[-1]])
    _refused(verify_consistency, size1, size2, roots[size1], roots[size2], [proof[0], *proof])
    _refused(verify_consistency, size1, size2, roots[size1], roots[size2], [])
    _refused(verify_consistency, size1, size2, roots[size2], roots[size1], proof)
    # A root claimed for another size (what a rewritten history would present) is refused.
    other = data.draw(st.integers(1, MAX))
    if other != size1:
        _refused(verify_consistency, other, size2, roots[size1], roots[size2], proof)
    # Sizes are bound to roots by the signed checkpoint: the proof does not link (size1, root1) to the
    # signed tree of any other size.
    other2 = data.draw(st.integers(1, MAX))
    if other2 != size2:
        _refused(verify_consistency, size1, other2, roots[size1], roots[other2], proof)
    # A different leaf anywhere in the newer tree (a rewritten history) is refused.
    changed = data.draw(st.integers(0, size2 - 1))
    forged = list(leaves[:size2])
    forged[changed] = leaf_hash(b"forged")
    forged_root = root_of(forged)
    forged_proof = consistency_proof(size1, size2, tree_reader(forged))
    if changed < size1:
        _refused(verify_consistency, size1, size2, roots[size1], forged_root, forged_proof)
    else:
        verify_consistency(size1, size2, roots[size1], forged_root, forged_proof)  # an honest extension


@st.composite
def a_range(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(1, MAX))
    begin = draw(st.integers(0, size - 1))
    return begin, draw(st.integers(begin + 1, size)), size


@EXAMPLES
@given(a_range(), st.data())
def test_range_tampering_is_refused(rng: tuple[int, int, int], data: st.DataObject) -> None:
    leaves, roots = _tree()
    begin, end, size = rng
    proof = range_proof(begin, end, size, tree_reader(leaves))
    verify_range(begin, end, size, leaves[begin:end], proof, roots[size])
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        flipped = _flip(proof, which, data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7)))
        _refused(verify_range, begin, end, size, leaves[begin:end], flipped, roots[size])
        _refused(verify_range, begin, end, size, leaves[begin:end], proof[:-1], roots[size])
    _refused(verify_range, begin, end, size, leaves[begin:end], [*proof, leaves[0]], roots[size])
    # A leaf of the range replaced, dropped or the range shifted by one.
    victim = data.draw(st.integers(begin, end - 1))
    changed = list(leaves[begin:end])
    changed[victim - begin] = leaf_hash(b"forged")
    _refused(verify_range, begin, end, size, changed, proof, roots[size])
    if end - begin > 1:
        _refused(verify_range, begin, end, size, leaves[begin : end - 1], proof, roots[size])
    if end < size:
        _refused(verify_range, begin + 1, end + 1, size, leaves[begin:end], proof, roots[size])
