"""`make bench` (log part): the cost of the tamper-evident log's library at 10M leaves — integrating
entries, proof sizes, verification times, checkpoint signing, and bundle verification.
Figures and method: docs/benchmarks.md, "Integrity log".

Method: a synthetic log of N entries (entry i = timestamp T0 + i ns and the SHA-256 of a 500-byte
body) is integrated with a compact range, keeping the hashes of full 256-leaf tiles (level 8) as a
store would; proofs are then read from those tiles (lower nodes recomputed from the entries, as
the verifier does). Short operations are medians of repeated runs; integration and bundle
verification are CPU seconds of this process (wall time on a shared machine says little). Other
work shared the machine's two cores, so the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from siemgate.model.timestamps import format_ns
from siemgate.tlog.bundle import Manifest, write_bundle
from siemgate.tlog.checkpoint import Checkpoint, open_checkpoint
from siemgate.tlog.entry import Entry, entry_for
from siemgate.tlog.keys import SignerKeyring
from siemgate.tlog.merkle import CompactRange, decompose, leaf_hash, root_of, tree_reader
from siemgate.tlog.note import sign_note
from siemgate.tlog.proof import (
    consistency_proof,
    inclusion_proof,
    range_proof,
    verify_consistency,
    verify_inclusion,
    verify_range,
)
from siemgate.tlog.verify import verify_bundle

ROOT = Path(__file__).resolve().parent
T0 = 1_767_225_600_000_000_000
TILE = 8
BODY = b"x" * 500


def entry(i: int) -> Entry:
    return Entry(T0 + i, hashlib.sha256(i.to_bytes(8, "big")).digest())


class Tree:
    """Tile hashes of a synthetic log; perfect nodes below the tile level recomputed from entries."""

    def __init__(self, size: int, entry_of: Callable[[int], Entry] = entry) -> None:
        self.size = size
        self.entry_of = entry_of
        self.tiles: list[bytes] = []
        tile: list[bytes] = []
        for i in range(size):
            tile.append(leaf_hash(entry_of(i).encode()))
            if len(tile) == 1 << TILE:
                self.tiles.append(root_of(tile))
                tile = []
        self._upper = tree_reader(self.tiles)
        self.root = self.root_at(size)

    def root_at(self, size: int) -> bytes:
        """The root of the first `size` leaves, from the compact range of [0, size)."""
        return CompactRange.of(0, size, [self.read(lv, i) for lv, i in decompose(0, size)]).root()

    def read(self, level: int, index: int) -> bytes:
        if level >= TILE:
            return self._upper(level - TILE, index)
        first = index << level
        return root_of(leaf_hash(self.entry_of(i).encode()) for i in range(first, first + (1 << level)))


def event_body(i: int) -> bytes:
    """About 500 bytes of stored event JSON."""
    head = f'{{"uuid":"{i:026d}","timestamp":"{format_ns(T0 + i * 1000)}","action":"update","pad":"'
    return (head + "x" * (480 - len(head)) + '"}').encode()


def median_us(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=10_000_000)
    parser.add_argument("--bundle", type=int, default=200_000, help="entries in the bundle verified")
    args = parser.parse_args()
    n = args.leaves
    results: dict[str, object] = {"leaves": n}

    t = time.process_time()
    tree = Tree(n)
    build = time.process_time() - t  # CPU time: wall time on a shared machine says little
    results["integrate_us_per_entry"] = build / n * 1e6
    print(
        f"integrated {n:,} entries (entry + leaf hash + 256-leaf tile hashes): {build:.1f} s, "
        f"{build / n * 1e6:.2f} µs/entry, {n / build:,.0f} entries/s"
    )
    # The cost of an entry alone (SHA-256 of a 500-byte body + leaf hash), what ingest adds per event.
    per_event = median_us(lambda: leaf_hash(Entry(T0, hashlib.sha256(BODY).digest()).encode()), 20_000)
    results["entry_and_leaf_us"] = per_event
    print(f"entry of a 500-byte body + its leaf hash: {per_event:.2f} µs")

    index = n // 3
    incl = inclusion_proof(index, n, tree.read)
    leaf = leaf_hash(entry(index).encode())
    results["inclusion_hashes"] = len(incl)
    results["inclusion_verify_us"] = median_us(lambda: verify_inclusion(index, n, leaf, incl, tree.root), 2000)
    old = n - 1000
    old_root = tree.root_at(old)
    cons = consistency_proof(old, n, tree.read)
    results["consistency_hashes"] = len(cons)
    results["consistency_verify_us"] = median_us(lambda: verify_consistency(old, n, old_root, tree.root, cons), 2000)
    half = n // 2
    half_root = tree.root_at(half)
    cons_half = consistency_proof(half, n, tree.read)
    results["consistency_half_hashes"] = len(cons_half)
    verify_consistency(half, n, half_root, tree.root, cons_half)
    begin = n // 2 + 17
    page = [leaf_hash(entry(i).encode()) for i in range(begin, begin + 1000)]
    rproof = range_proof(begin, begin + 1000, n, tree.read)
    results["range_1000_hashes"] = len(rproof)
    results["range_1000_verify_us"] = median_us(
        lambda: verify_range(begin, begin + 1000, n, page, rproof, tree.root), 50
    )

    with tempfile.TemporaryDirectory() as tmp:
        ring = SignerKeyring.create(Path(tmp) / "keys", "bench.example/siemgate")
        origin = "bench.example/siemgate/A/auditevents"
        cp = Checkpoint(origin, n, tree.root, 1_767_225_600)
        signers = ring.signers_for(origin)
        note = sign_note(cp.text(), signers)
        public = ring.public()
        results["checkpoint_bytes"] = len(note.encode())
        results["checkpoint_sign_us"] = median_us(lambda: sign_note(cp.text(), signers), 500)
        results["checkpoint_verify_us"] = median_us(lambda: open_checkpoint(note, public), 500)

        m = args.bundle
        bodies = [event_body(i) for i in range(m)]
        entries = [entry_for(T0 + i * 1000, body) for i, body in enumerate(bodies)]
        broot = root_of(e.leaf() for e in entries)
        bnote = sign_note(Checkpoint(origin, m, broot, 1_767_225_600).text(), signers)
        bundle = Path(tmp) / "bundle"
        write_bundle(bundle, Manifest(origin, m, 0, None), entries, enumerate(bodies), [bnote])
        t = time.process_time()
        report = verify_bundle(bundle, public, max_age=0)
        elapsed = time.process_time() - t
        assert report.ok, report.lines()
        results["bundle_entries_per_s"] = m / elapsed
    results["inclusion_bytes"] = 32 * len(incl)
    results["consistency_bytes"] = 32 * len(cons)
    results["range_1000_bytes"] = 32 * len(rproof)
    for key, value in results.items():
        print(f"{key:28} {value:,.2f}" if isinstance(value, float) else f"{key:28} {value}")
    out = ROOT / "results" / "tlog.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
