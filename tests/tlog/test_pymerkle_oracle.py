"""Cross-check against an independent RFC 9162 implementation, pymerkle (1-based indices there)."""

from __future__ import annotations

from pymerkle import InmemoryTree
from pymerkle import verify_consistency as pm_verify_consistency
from pymerkle import verify_inclusion as pm_verify_inclusion

from siemgate.tlog.entry import entry_for
from siemgate.tlog.merkle import leaf_hash, root_of, tree_reader
from siemgate.tlog.proof import inclusion_proof

SIZE = 150


def _data() -> list[bytes]:
    # Real 41-byte entries, as the log stores them.
    return [entry_for(1_700_000_000_000_000_000 + i, b'{"n":%d}' % i).encode() for i in range(SIZE)]


def test_leaves_and_roots_agree_for_every_size() -> None:
    data = _data()
    tree = InmemoryTree()
    leaves = [leaf_hash(d) for d in data]
    for n, d in enumerate(data, 1):
        tree.append_entry(d)
        assert tree.get_leaf(n) == leaves[n - 1]  # pymerkle counts leaves from 1
        assert tree.get_root(n) == root_of(leaves[:n])


def test_inclusion_paths_agree_and_pymerkle_accepts_our_roots() -> None:
    data = _data()
    tree = InmemoryTree()
    for d in data:
        tree.append_entry(d)
    leaves = [leaf_hash(d) for d in data]
    read = tree_reader(leaves)
    for size in (1, 2, 3, 7, 64, 65, 127, SIZE):
        root = root_of(leaves[:size])
        for index in range(0, size, max(1, size // 13)):
            theirs = tree.prove_inclusion(index + 1, size)
            path = [bytes.fromhex(h) for h in theirs.serialize()["path"]]
            assert path[0] == leaves[index]
            assert path[1:] == inclusion_proof(index, size, read)
            pm_verify_inclusion(leaves[index], root, theirs)


def test_pymerkle_consistency_proofs_accept_our_roots() -> None:
    data = _data()
    tree = InmemoryTree()
    for d in data:
        tree.append_entry(d)
    leaves = [leaf_hash(d) for d in data]
    for size1, size2 in ((1, 2), (3, 7), (4, 8), (6, 13), (64, 65), (100, SIZE)):
        pm_verify_consistency(root_of(leaves[:size1]), root_of(leaves[:size2]), tree.prove_consistency(size1, size2))
