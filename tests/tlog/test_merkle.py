"""RFC 9162 hashing, compact ranges and proofs against published vectors and the RFC's example."""

from __future__ import annotations

import pytest

from siemgate.tlog.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    decompose,
    leaf_hash,
    node_hash,
    root_of,
    tree_reader,
)
from siemgate.tlog.proof import (
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    range_proof,
    verify_consistency,
    verify_inclusion,
    verify_range,
)

# The Certificate Transparency reference leaves and roots (certificate-transparency-go and
# transparency-dev/merkle test data; the same in every RFC 6962 implementation).
LEAF_DATA = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based index, size, proof) and (size1, size2, proof) from transparency-dev/merkle proof tests.
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
LEAVES = [leaf_hash(d) for d in LEAF_DATA]
READ = tree_reader(LEAVES)


def test_roots_match_the_reference_for_every_size() -> None:
    assert EMPTY_ROOT.hex() == ROOTS[0]
    for n in range(len(LEAVES) + 1):
        assert root_of(LEAVES[:n]).hex() == ROOTS[n], n


def test_domain_separation_leaf_and_node_differ() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    # A leaf whose data is 0x01||a||b hashes differently from the node over a and b.
    assert leaf_hash(a + b) != node_hash(a, b)
    assert leaf_hash(b"") != EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    assert [h.hex() for h in inclusion_proof(index, size, READ)] == proof
    verify_inclusion(index, size, LEAVES[index], [bytes.fromhex(h) for h in proof], bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_vectors(size1: int, size2: int, proof: list[str]) -> None:
    assert [h.hex() for h in consistency_proof(size1, size2, READ)] == proof
    verify_consistency(
        size1, size2, bytes.fromhex(ROOTS[size1]), bytes.fromhex(ROOTS[size2]), [bytes.fromhex(h) for h in proof]
    )


# RFC 9162 §2.1.5: the 7-leaf tree with nodes a..l; as leaf ranges.
NAMES = {
    "a": (0, 1),
    "b": (1, 2),
    "c": (2, 3),
    "d": (3, 4),
    "e": (4, 5),
    "f": (5, 6),
    "j": (6, 7),
    "g": (0, 2),
    "h": (2, 4),
    "i": (4, 6),
    "k": (0, 4),
    "l": (4, 7),
}


def _names(ranges: list[tuple[int, int]]) -> str:
    inverse = {v: k for k, v in NAMES.items()}
    return "".join(inverse[r] for r in ranges)


def test_rfc_worked_example() -> None:
    assert _names(inclusion_ranges(0, 7)) == "bhl"
    assert _names(inclusion_ranges(3, 7)) == "cgl"
    assert _names(inclusion_ranges(4, 7)) == "fjk"
    assert _names(inclusion_ranges(6, 7)) == "ik"
    assert _names(consistency_ranges(3, 7)) == "cdgl"
    assert _names(consistency_ranges(4, 7)) == "l"
    assert _names(consistency_ranges(6, 7)) == "ijk"


def test_trivial_consistency_cases() -> None:
    r7 = bytes.fromhex(ROOTS[7])
    verify_consistency(0, 7, EMPTY_ROOT, r7, [])
    verify_consistency(7, 7, r7, r7, [])
    with pytest.raises(ProofError, match="forked"):
        verify_consistency(7, 7, r7, bytes.fromhex(ROOTS[6]), [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(7, 7, r7, r7, [r7])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 7, EMPTY_ROOT, r7, [r7])
    with pytest.raises(ProofError, match="never shrinks"):
        verify_consistency(7, 6, r7, bytes.fromhex(ROOTS[6]), [])
    with pytest.raises(ProofError, match="needs"):
        verify_consistency(1, 2, bytes.fromhex(ROOTS[1]), bytes.fromhex(ROOTS[2]), [])


def test_inclusion_bounds_and_hash_sizes() -> None:
    root = bytes.fromhex(ROOTS[1])
    verify_inclusion(0, 1, LEAVES[0], [], root)
    for index, size in ((0, 0), (1, 1), (2, 1)):
        with pytest.raises(ProofError, match="not below"):
            verify_inclusion(index, size, LEAVES[0], [], root)
    with pytest.raises(ProofError, match="bytes"):
        verify_inclusion(0, 1, b"short", [], root)


def test_decompose_and_compact_ranges_rebuild_every_root() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(70)]
    read = tree_reader(leaves)
    assert decompose(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert decompose(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
    for begin in range(0, 70, 3):
        for end in range(begin, 71, 5):
            nodes = decompose(begin, end)
            assert sum(1 << lv for lv, _ in nodes) == end - begin
            rng = CompactRange.of(0, begin, [read(lv, i) for lv, i in decompose(0, begin)])
            for leaf in leaves[begin:end]:
                rng.append_leaf(leaf)
            assert rng.root() == root_of(leaves[:end])
            verify_range(begin, end, 70, leaves[begin:end], range_proof(begin, end, 70, read), root_of(leaves))


def test_compact_range_refuses_misaligned_nodes_and_wrong_counts() -> None:
    rng = CompactRange()
    rng.append_leaf(LEAVES[0])
    with pytest.raises(ValueError, match="cannot start"):
        rng.append_node(1, LEAVES[1])
    with pytest.raises(ProofError, match="nodes"):
        CompactRange.of(0, 7, [LEAVES[0]])
