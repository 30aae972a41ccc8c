"""`make bench` (proofs part): the proofs served beside the Events API at 10M leaves, as a SIEM
receives and checks them — an event's c2sp tlog-proof, consistency proofs, and page proofs of a
1000-event page (dense, with late events outside the window, and a sparse time window) — their
sizes on the wire and the time `siemgate-verify` takes to check them. docs/benchmarks.md, "Proofs".

Method: the synthetic 10M-leaf log of bench/tlog.py (tile hashes kept, lower nodes recomputed),
except that the leaves of the pages measured are entries of real ~500-byte event bodies, so a page
is verified exactly as served: every item hashed, its timestamp parsed, the leaves rebuilt into
the signed root with the proof's compact ranges, the checkpoint's Ed25519 signature checked.
Times are medians of repeated runs of the verifier's functions (what the CLI does after reading
its files), in CPU time of this process and in wall time: the machine's two cores were shared with
other test suites, so wall times are upper bounds and CPU times the better measure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siemgate.tlog.bundle import format_hashes
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.entry import Entry, entry_for
from siemgate.tlog.keys import PublicKeyring, SignerKeyring
from siemgate.tlog.merkle import decompose
from siemgate.tlog.note import sign_note
from siemgate.tlog.page_proof import Leaf, PageProof
from siemgate.tlog.proof import consistency_proof, inclusion_proof, range_proof
from siemgate.tlog.tlog_proof import TlogProof, entry_extra, verify_event
from siemgate.tlog.verify_page import verify_page
from tlog import ROOT, T0, Tree, entry, event_body, median_us

ORIGIN = "bench.example/siemgate/A/auditevents"
IN_WINDOW = T0 // 2  # bodies' timestamps are after this; "late" entries before it


class Pages:
    """Which indices hold real event bodies, and whether each is in the page's time window."""

    def __init__(self) -> None:
        self.bodies: dict[int, bytes] = {}
        self.late: set[int] = set()

    def add(self, begin: int, leaves: int, served: Callable[[int], bool]) -> tuple[int, int]:
        """A page of `leaves` leaves from `begin`: leaf `begin + j` holds a body in the window when
        `served(j)`, else a late entry outside it; returns its range [begin, end)."""
        for j in range(leaves):
            if served(j):
                self.bodies[begin + j] = event_body(begin + j)
            else:
                self.late.add(begin + j)
        return begin, begin + leaves

    def entry(self, i: int) -> Entry:
        body = self.bodies.get(i)
        if body is not None:
            return entry_for(T0 + i * 1000, body)
        if i in self.late:
            return Entry(IN_WINDOW - 10**12 - i, entry(i).body_sha256)
        return entry(i)


def median_cpu_us(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times) * 1e6


def page_artefacts(tree: Tree, pages: Pages, begin: int, end: int, note: str) -> tuple[bytes, dict[str, Any], int]:
    """The page bytes as served, its page proof (JSON) and the number of proof hashes."""
    items = [pages.bodies[i] for i in range(begin, end) if i in pages.bodies]
    page = b'{"cursor":"' + b"C" * 86 + b'","has_more":true,"items":[' + b",".join(items) + b"]}"
    proof = PageProof(note, IN_WINDOW, None, reset=False, tail=False, first_idx=begin, end_idx=end)
    for i in range(begin, end):
        leaf = Leaf(i, pages.entry(i))
        (proof.items if i in pages.bodies else proof.omitted).append(leaf)
    hashes = range_proof(begin, end, tree.size, tree.read)
    split = len(decompose(0, begin))
    proof.left, proof.right = hashes[:split], hashes[split:]
    return page, proof.to_json(), len(hashes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=10_000_000)
    args = parser.parse_args()
    n = args.leaves
    pages = Pages()
    cases = {
        "page of 1000, all in the window": pages.add(n // 2 + 17, 1000, lambda j: True),
        "page of 1000 + 100 late events outside the window": pages.add(n // 2 + 5000, 1100, lambda j: j % 11 != 10),
        "sparse window: 100 served of 10,000 leaves": pages.add(n // 2 + 20000, 10_000, lambda j: j % 100 == 0),
    }
    t = time.process_time()
    tree = Tree(n, pages.entry)
    print(f"built the {n:,}-leaf tree in {time.process_time() - t:.0f} CPU s")
    results: dict[str, Any] = {"leaves": n, "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        ring = SignerKeyring.create(Path(tmp) / "keys", "bench.example/siemgate")
        signers = ring.signers_for(ORIGIN)
        note = sign_note(Checkpoint(ORIGIN, n, tree.root, 1_767_225_600).text(), signers)
        keys: PublicKeyring = ring.public()

        # one event: its tlog-proof text as served, checked as `siemgate-verify event` does
        idx = cases["page of 1000, all in the window"][0] + 3
        body = pages.bodies[idx]
        text = TlogProof(idx, inclusion_proof(idx, n, tree.read), note, entry_extra(idx, pages.entry(idx))).text()
        assert verify_event(body, text, keys).index == idx
        results["event_proof_bytes"] = len(text.encode())
        results["event_proof_hashes"] = len(inclusion_proof(idx, n, tree.read))
        results["event_verify_us"] = median_us(lambda: verify_event(body, text, keys), 300)
        results["event_verify_cpu_us"] = median_cpu_us(lambda: verify_event(body, text, keys), 300)

        for name, old in (("consistency_from_n_minus_1000", n - 1000), ("consistency_from_half", n // 2)):
            served = format_hashes(consistency_proof(old, n, tree.read))
            results[f"{name}_bytes"] = len(served.encode())

        for name, (begin, end) in cases.items():
            page, proof, hashes = page_artefacts(tree, pages, begin, end, note)
            report = verify_page(page, proof, keys)
            assert report.ok, report.lines()
            wire = json.dumps(proof, separators=(",", ":")).encode()
            verify: Callable[[], object] = lambda page=page, proof=proof: verify_page(page, proof, keys)  # noqa: E731
            results[name] = {
                "leaves": end - begin,
                "served": report.served,
                "omitted": report.omitted,
                "proof_hashes": hashes,
                "proof_json_bytes": len(wire),
                "page_bytes": len(page),
                "verify_ms": median_us(verify, 7) / 1000,
                "verify_cpu_ms": median_cpu_us(verify, 7) / 1000,
            }
    for key, value in results.items():
        print(f"{key:52} {value}")
    out = ROOT / "results" / "proofs.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
