"""`make bench` (proofs from the store): what serving a proof costs the server next to serving the
page it proves, on SQLite and PostgreSQL (docs/benchmarks.md, "Proofs").

Method: a store with N audit events (~600 bytes, written through the EventWriter with their log
entries), integrated, and a checkpoint of its whole tree signed by an in-process signer and stored.
Then, for 1000-event cursor pages at several positions, the page as the Events API reads it
(`PageReader.read`) and its page proof as the proof API builds it (`ProofService.page_proof`, with
the JSON encoding), and an event's inclusion proof and a consistency proof from N/2. Figures are
median wall times and mean CPU times (this process plus, on PostgreSQL, its database backends,
totalled over the runs: /proc counts in 10 ms ticks); the machine's two cores were shared, so the
CPU figures are the ones to read.
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

import orjson

from siemgate.api.events_routes import page_reader
from siemgate.api.page_request import CursorRequest
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.integrity.proofs import PageSpan
from siemgate.integrity.tree import integrate
from siemgate.model.cursor import Cursor, encode_cursor
from siemgate.model.ids import new_id
from siemgate.store.base import Store
from siemgate.store.ingest import EventWriter
from siemgate.store.shared.log import StoredCheckpoint
from siemgate.tlog.checkpoint import Checkpoint, unverified_text
from siemgate.tlog.keys import SignerKeyring
from siemgate.tlog.signer import Signer
from tlog_store import AUDIT, SECOND, Backend, backend_cpu, batches

ROOT = Path(__file__).resolve().parent
NAME = "bench.example/siemgate"


def measure(store: Store, fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median wall ms, mean CPU ms of this process and the store's backends) over `repeat` runs.
    CPU is totalled over the runs: the backends' CPU is read from /proc in clock ticks (10 ms)."""
    walls = []
    cpu = time.process_time() + backend_cpu(store)
    for _ in range(repeat):
        wall = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - wall)
    cpu = time.process_time() + backend_cpu(store) - cpu
    return statistics.median(walls) * 1000, cpu / repeat * 1000


def run_backend(kind: str, events: int, tmp: Path) -> dict[str, Any]:
    backend = Backend(kind, tmp)
    try:
        store = backend.new()
        account = store.create_account(new_id(), f"bench-{new_id()[:8]}", 0)
        start = time.time_ns() - 86400 * SECOND
        writer = EventWriter(store, time.time_ns)
        for batch in batches(events, start):
            writer.write(account.id, AUDIT, batch)
        integrate(store, account.id, AUDIT, time.time_ns())
        state = store.log_state(account.id, AUDIT)
        assert state is not None
        assert state.size == events
        ring = SignerKeyring.create(tmp / f"{kind}.keys", NAME)
        signer = Signer(ring, tmp / f"{kind}.state")
        note = signer.sign(f"{NAME}/{account.uuid}/auditevents", state.size, state.root, 0, [])
        signer.close()
        cp = Checkpoint.parse(unverified_text(note))
        store.add_log_checkpoint(account.id, AUDIT, StoredCheckpoint(cp.time, cp.size, note))
        services = build_services(load_settings(data_dir=tmp / kind), store, time.time_ns)
        reader = page_reader(services)
        out: dict[str, Any] = {"events": events}
        page_ms, proof_ms, proof_bytes = [], [], []
        for at in (events // 5, events // 2, events - 2000):
            cursor = encode_cursor(Cursor(account.uuid, AUDIT, at, start, None, 1000), services.keys.cursor_key)
            page = reader.read(account, AUDIT, CursorRequest(cursor), v1=False)
            assert page.count == 1000
            span = PageSpan(at, page.last_seq, start, None, reset=False)

            def proof(span: PageSpan = span) -> bytes:
                return orjson.dumps(services.proofs.page_proof(account.id, AUDIT, span, events // 2).to_json())

            page_ms.append(measure(store, lambda c=cursor: reader.read(account, AUDIT, CursorRequest(c), v1=False), 20))
            proof_ms.append(measure(store, proof, 10))
            proof_bytes.append(len(proof()))
        out["page_read_ms"] = {
            "wall": statistics.median(w for w, _ in page_ms),
            "cpu": statistics.median(c for _, c in page_ms),
        }
        out["page_proof_ms"] = {
            "wall": statistics.median(w for w, _ in proof_ms),
            "cpu": statistics.median(c for _, c in proof_ms),
        }
        out["page_proof_bytes"] = statistics.median(proof_bytes)
        wall, cpu = measure(store, lambda: services.proofs.event_proof(account.id, AUDIT, events // 3, None).text(), 20)
        out["event_proof_ms"] = {"wall": wall, "cpu": cpu}
        wall, cpu = measure(store, lambda: services.proofs.consistency(account.id, AUDIT, events // 2, events), 20)
        out["consistency_ms"] = {"wall": wall, "cpu": cpu}
        services.close()
        return out
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.backends.split(","):
            results[kind] = run_backend(kind, args.events, Path(tmp))
            print(kind, json.dumps(results[kind]))
    results["load_average_after"] = os.getloadavg()
    out = ROOT / "results" / "proofs_store.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
