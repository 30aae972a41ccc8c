"""`make soak` (`PYTHONPATH=tests python -m history.soak`): randomized adversarial histories
(history_harness.py) back to back, alternating SQLite and PostgreSQL, bigger and longer than in
`make test`, for SOAK_MINUTES (default 15).
Writes test-artifacts/soak/summary.json (histories, events checked, faults injected, failures)
and keeps every failing history under test-artifacts/soak/<backend>-<seed>/. Exit 1 when any
history broke the cursor contract."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

from history.history_harness import Scale, run_history

OUT = Path(os.environ.get("SOAK_OUT") or Path(__file__).resolve().parents[2] / "test-artifacts" / "soak")


def main() -> int:
    # SIGTERM ends the soak like Ctrl-C: the running history stops its servers and processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    minutes = float(os.environ.get("SOAK_MINUTES", "15"))
    backends = os.environ.get("SOAK_BACKENDS", "sqlite,postgres").split(",")
    seed0 = int(os.environ.get("SOAK_SEED") or random.randrange(2**32))
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed0)
    deadline = time.monotonic() + minutes * 60
    summary: dict[str, object] = {"seed": seed0, "minutes": minutes, "histories": 0, "failures": []}
    totals = {"events_sent": 0, "events_stored": 0, "events_delivered": 0, "pages": 0, "faults": 0}
    runs = []
    n = 0
    while time.monotonic() < deadline - 60 or n == 0:
        backend = backends[n % len(backends)]
        seed = rng.randrange(2**32)
        scale = Scale(
            servers=rng.choice([2, 3]),
            writers=rng.choice([2, 3, 4]),
            readers=rng.choice([3, 4, 6]),
            seconds=rng.choice([15.0, 30.0, 45.0]),
            faults=rng.choice([4, 6, 8]),
            pace=rng.choice([0.0, 0.005, 0.02]),
            reader_timeout=600.0,
            # Tens of thousands of events: a reader of 1-event pages could not catch up in time.
            limits=(5, 10, 50, 100, 250, 1000),
        )
        folder = OUT / "work"
        started = time.monotonic()
        outcome = run_history(backend, seed, folder, scale)
        n += 1
        for key in ("events_sent", "events_stored", "events_delivered", "pages"):
            totals[key] += outcome.counts.get(key, 0)
        totals["faults"] += len(outcome.faults)
        run = {
            "backend": backend,
            "seed": seed,
            "seconds": round(time.monotonic() - started),
            "scale": scale.__dict__,
            "counts": outcome.counts,
            "faults": outcome.faults,
            "violations": outcome.violations,
        }
        runs.append(run)
        status = "ok" if not outcome.violations else f"FAILED ({len(outcome.violations)} lines)"
        print(f"history {n}: {backend} seed {seed}: {status} {outcome.counts}", flush=True)
        if outcome.violations:
            kept = OUT / f"{backend}-{seed}"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(folder, kept)
            summary["failures"].append(str(kept))  # type: ignore[attr-defined]
            print("\n".join(outcome.violations), flush=True)
        summary.update(histories=n, totals=totals, runs=runs)
        (OUT / "summary.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(OUT / "work", ignore_errors=True)
    print(f"soak: {n} histories, {totals}; failures: {summary['failures'] or 'none'}")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
