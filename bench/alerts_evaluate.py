"""What evaluating the starter rules costs on its own (docs/benchmarks.md, "Alerting on ingest",
sixth round): `Evaluator.evaluate` over the alerts bench's realistic sign-in batches, validated
first as ingest validates them, with no store, no HTTP and no other work in between; thread CPU per
event, the median and minimum of `--runs` runs (each on fresh state, after the 4 warm-up batches).

Compare two versions of siemgate by running it twice, once with `PYTHONPATH=<other checkout>/src`;
the firings count must be the same. `--budget` evaluates as the server does, on an account's CPU
budget (one that is never spent): what checking it costs.

    python bench/alerts_evaluate.py [--runs 7] [--batches 40] [--budget]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alerts_ingest import realistic_batches
from siemgate.alerts.builtin import starter_rules
from siemgate.alerts.engine import Budget, Evaluator, RuleIndex, StateBook
from siemgate.alerts.model import compile_rule
from siemgate.model.features import Feature
from siemgate.model.validation import validate_events
from siemgate.store.ingest import SeqEvents

Batch = tuple[SeqEvents, list[int]]


def validated(bodies: list[bytes], first_seq: int) -> tuple[list[Batch], int]:
    """Each body's events as the EventWriter hands them to evaluation: (seq, event) pairs and times."""
    out = []
    seq = first_seq
    for body in bodies:
        events = validate_events(Feature.SIGNINATTEMPTS, orjson.loads(body), strict=True, now=time.time_ns())
        seqs = list(range(seq, seq + len(events)))
        out.append((SeqEvents(seqs, [event for _, event in events]), [ts for ts, _ in events]))
        seq += len(events)
    return out, seq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--budget", action="store_true", help="check a CPU budget as the server does")
    args = parser.parse_args()
    warm_bodies, bodies = realistic_batches(args.batches)
    rules = [compile_rule(r) for r in starter_rules().values() if r.source == "signinattempts"]
    warm, seq = validated(warm_bodies, 1)
    timed, _ = validated(bodies, seq)
    events = sum(len(pairs) for pairs, _ in timed)
    spent, fired = [], 0
    for _ in range(args.runs):
        book, index = StateBook(), RuleIndex(rules)
        for pairs, times in warm:
            Evaluator(rules, book, index).evaluate(pairs, times=times, oldest=0)
        fired = 0
        started = time.thread_time()
        for pairs, times in timed:
            budget = Budget(3600) if args.budget else None
            fired += len(Evaluator(rules, book, index).evaluate(pairs, times=times, oldest=0, budget=budget))
        spent.append((time.thread_time() - started) / events * 1e6)
    print(f"rules {', '.join(r.id for r in rules)}")
    median, least = statistics.median(spent), min(spent)
    print(f"{events} events, {fired} firings; µs per event: median {median:.3f}, min {least:.3f}")


if __name__ == "__main__":
    main()
