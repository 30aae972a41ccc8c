"""Which part of alerting costs ingest what (docs/benchmarks.md, "Alerting on ingest", fifth
round): servers that differ only in one part of alerting switched off are fed the same realistic
batches round-robin (`alerts_ingest.Site`, both stores with a week of history), and each one's
CPU per ingested event is compared with the alerting-off server's, in rounds (medians reported).

Each variant is a server with alerting on and one part replaced by a `sitecustomize.py` this
script writes to a temporary folder on the servers' PYTHONPATH (nothing in siemgate changes):

- off: alerting off (the reference); on: alerting on, as shipped
- no-evaluation: the listener, the checkpoint and its commit run, but no rule is evaluated
- no-threshold: threshold and match rules do nothing (first-seen rules run)
- no-first-seen: first-seen rules do nothing (threshold and match rules run)
- no-firing: every rule runs and keeps its state, but nothing fires
- no-recording: alerts fire but are not recorded as audit events during the run
- off-pinned: alerting off, but every 10th event of a batch leaves a (time, uuid, seq) tuple in a
  ring of the last 1,000, as threshold windows keep their events: what keeping a few objects of
  each batch alive costs code that has nothing to do with alerting
- on-noretain: alerting on, but the threshold windows (and their unsaved changes) are dropped after
  every batch: what keeping them from batch to batch costs
- thr-fresh: alerting on, each threshold pass counting into empty windows of its own (nothing of
  them kept after the pass)
- thr-nofire: threshold rules count but never fire; fs-nofire: first-seen rules learn but never fire
- on-switch, off-switch: on and off with the interpreter's thread switch interval at 50 ms (5 ms is
  the default): what the two request threads' switching costs

Every server also reports the CPU its request threads spent validating and encoding the
1000-event batches (`EventWriter._prepare`), which shows the cost alerting adds to code that is
not its own.

    python bench/alerts_ablation.py [--rounds 6] [--variants off,on,no-threshold,...]

(the default variants are the first eight above, the fifth round's; the others are the sixth's)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alerts_ingest import Site, feed, realistic_batches, use_sitecustomize

SITECUSTOMIZE = """
import atexit, importlib, os, time
_variant = os.environ.get("BENCH_VARIANT")
if _variant:
    _engine = importlib.import_module("siemgate.alerts.engine")
    _evaluator = importlib.import_module("siemgate.alerts.evaluator")
    _ingest = importlib.import_module("siemgate.store.ingest")
    if _variant == "no-evaluation":
        _engine.Evaluator.evaluate = lambda self, *args, **kwargs: []
    elif _variant == "no-threshold":
        _engine.Evaluator._step = _engine.Evaluator._count_all = lambda self, *args: None
    elif _variant == "no-first-seen":
        _engine.Evaluator._learn_all = lambda self, *args: None
    elif _variant == "no-firing":
        _evaluate = _engine.Evaluator.evaluate
        _engine.Evaluator.evaluate = lambda self, *args, **kwargs: (_evaluate(self, *args, **kwargs), [])[1]
    elif _variant == "no-recording":
        _evaluator.AlertEvaluator._record_events = lambda self, *args: None
    elif _variant == "off-pinned":
        import collections
        _ring = collections.deque(maxlen=1000)
        _write = _ingest.EventWriter.write
        def _pinning(self, account_id, feature, items, **kwargs):
            result = _write(self, account_id, feature, items, **kwargs)
            for i, event in enumerate(items[::10]):
                if isinstance(event, dict):
                    _ring.append((int(str(10**18 + i)), event.get("uuid"), 100_000 + i))
            return result
        _ingest.EventWriter.write = _pinning
    elif _variant == "on-noretain":
        _evaluate = _engine.Evaluator.evaluate
        def _dropping(self, *args, **kwargs):
            try:
                return _evaluate(self, *args, **kwargs)
            finally:
                self.book.windows.clear()
                self.book.dirty = {d for d in self.book.dirty if d[1] != "window"}
        _engine.Evaluator.evaluate = _dropping
    elif _variant == "thr-fresh":
        _count = _engine.Evaluator._count_all
        def _fresh(self, *args):
            book = self.book
            kept = book.windows, book.dirty
            book.windows, book.dirty = {}, set()
            try:
                return _count(self, *args)
            finally:
                book.windows, book.dirty = kept
        _engine.Evaluator._count_all = _fresh
    elif _variant == "thr-nofire":
        _engine.Evaluator._threshold_run = lambda self, *args: None
    elif _variant == "fs-nofire":
        _engine.Evaluator._first_seen = lambda self, *args: None
    elif _variant.endswith("-switch"):
        import sys
        sys.setswitchinterval(0.05)
    _spent = [0.0, 0]
    _prepare = _ingest.EventWriter._prepare
    def _timed(self, feature, items, **kwargs):
        started = time.thread_time()
        try:
            return _prepare(self, feature, items, **kwargs)
        finally:
            if len(items) >= 500:
                _spent[0] += time.thread_time() - started
                _spent[1] += len(items)
    _ingest.EventWriter._prepare = _timed
    def _report():
        with open(os.environ["BENCH_REPORT"], "w") as out:
            out.write(f"{_spent[0]} {_spent[1]}")
    atexit.register(_report)
"""
VARIANTS = (
    "off",
    "on",
    "no-evaluation",
    "no-threshold",
    "no-first-seen",
    "no-firing",
    "no-recording",
    "off-pinned",
    "on-noretain",
    "thr-fresh",
    "thr-nofire",
    "fs-nofire",
    "on-switch",
    "off-switch",
)


def one_round(variants: list[str], warm: list[bytes], bodies: list[bytes], tmp: Path) -> dict[str, tuple[float, float]]:
    """(server CPU µs per event, `_prepare` µs per event) of each variant, fed round-robin."""
    sites = {}
    for name in variants:
        report = tmp / f"{name}.report"
        env = {"BENCH_VARIANT": name, "BENCH_REPORT": str(report)}
        sites[name] = Site(not name.startswith("off"), tmp / name, 2, 7.0, env)
    try:
        for site in sites.values():
            site.send(warm)
            site.settle()
        cpu = dict(zip(variants, feed([sites[name] for name in variants], bodies, 4), strict=True))
    finally:
        for site in sites.values():
            site.close()
    events = sum(site.stored for site in sites.values()) / len(sites)
    out = {}
    for name in variants:
        spent, validated = (tmp / f"{name}.report").read_text().split()
        out[name] = (cpu[name] / events * 1e6, float(spent) / max(int(validated), 1) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--variants", default=",".join(VARIANTS[:8]), help=f"from {', '.join(VARIANTS)}; off first")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if variants[0] != "off" or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: names from {', '.join(VARIANTS)}, starting with off")
    warm, bodies = realistic_batches(args.batches)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="siemgate-bench-ablation-") as tmp:
        use_sitecustomize(Path(tmp) / "site", SITECUSTOMIZE)
        for i in range(args.rounds):
            work = Path(tmp) / f"round{i}"
            work.mkdir()
            result = one_round(variants, warm, bodies, work)
            rounds.append(result)
            line = ", ".join(f"{name} {cpu:.1f} µs ({result['off'][0] / cpu:.3f})" for name, (cpu, _) in result.items())
            print(f"round {i + 1}: {line}", flush=True)
    print(f"\nmedians of {args.rounds} rounds (rate per server CPU-second relative to off; µs per event):")
    for name in variants:
        rate = statistics.median(r["off"][0] / r[name][0] for r in rounds)
        cpu = statistics.median(r[name][0] for r in rounds)
        prepare = statistics.median(r[name][1] for r in rounds)
        print(f"  {name:14} rate {rate:.3f}   server CPU {cpu:5.1f}   validating and encoding {prepare:5.2f}")


if __name__ == "__main__":
    main()
