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
- on-queue, on-wait: evaluation in a thread of its own, fed by the listener, each pass taking every
  batch queued (on-wait: waiting up to 0.1 s for 4): what evaluating larger batches off the
  request thread saves
- off-copy, on-copy: off and on again (the spread between two servers of the same code in a round)
- thr-keys: threshold rules only read their candidates' group keys (no windows, nothing fires);
  thr-nodirty: threshold windows kept but never saved
- off-burn: alerting off, ~1 ms of pure arithmetic per batch after it is stored; off-touch,
  off-touchall: alerting off, two nested fields read from every 10th (every) event after it is
  stored: whether CPU or memory reads in the write path cost more than themselves
- off-serial, on-serial: one write at a time per server (a lock around EventWriter.write); on-pre:
  the same, with the alert listener called before the insert (seqs predicted), while the batch's
  objects are still in cache
- thr-keys-nocache, on-nocache: thr-keys and on with the group keys' JSON texts made afresh
  each time instead of remembered (nothing of a batch kept by the key cache)
- on-lazycp: alerting on, the checkpoint committed only with alerts, state or failures (else
  moved in memory): what a commit per batch costs
- off-backfill, off-backfill-compact: alerting off, but the first large write reads the stream's
  history in chunks as first-seen backfill does and keeps each user's countries (compact: that
  state rebuilt in one piece afterwards): whether a heap sprinkled by backfill slows ingest
- off-serialall, on-serialall: off and on with one request's whole batch (decoding, parsing,
  validation, insert, evaluation) at a time per server, not only its write (off-serial)
- off-jemalloc, on-jemalloc: off and on with Python's small-object allocator replaced by jemalloc
  (`PYTHONMALLOC=malloc`, `LD_PRELOAD` of the system's libjemalloc.so.2, Debian's libjemalloc2):
  whether what alerting costs code that is not its own is how the allocator lays out each batch

Every server also reports the CPU its request threads spent validating and encoding the
1000-event batches (`EventWriter._prepare`), which shows the cost alerting adds to code that is
not its own.

    python bench/alerts_ablation.py [--rounds 6] [--variants off,on,no-threshold,...]

(the default variants are the first eight above, the fifth round's; the others are the sixth's
to the tenth's)
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
    elif _variant in ("on-queue", "on-wait"):
        import threading
        _AE = _evaluator.AlertEvaluator
        _orig = _AE.on_stored
        _q = []
        _cv = threading.Condition()
        def _enqueue(self, batch):
            with _cv:
                _q.append((self, batch))
                _cv.notify()
        def _worker():
            while True:
                with _cv:
                    while not _q:
                        _cv.wait()
                    if _variant == "on-wait":
                        _cv.wait_for(lambda: len(_q) >= 4, timeout=0.1)
                    items = _q[:]
                    _q.clear()
                groups = {}
                for ev, b in items:
                    groups.setdefault((id(ev), b.account_id, b.feature, b.history), (ev, []))[1].append(b)
                for (_, a, f, h), (ev, bs) in groups.items():
                    bs.sort(key=lambda b: b.events[0][0])
                    seqs, events, times = [], [], []
                    for b in bs:
                        seqs.extend(b.events.seqs)
                        events.extend(b.events.events)
                        times.extend(b.times)
                    _orig(ev, _ingest.StoredBatch(a, f, _ingest.SeqEvents(seqs, events), times, h))
        threading.Thread(target=_worker, daemon=True).start()
        _AE.on_stored = _enqueue
    elif _variant in ("thr-keys", "thr-keys-nocache", "on-nocache"):
        def _keys(self, p, rule, test, positions, batch):
            seqs, bodies, stamps, oldest, _, found = batch
            matching = [
                i
                for i in positions
                if (ts := stamps[i]) is not None
                and (oldest is None or ts >= oldest)
                and (test is None or test(bodies[i]))
            ]
            for values in rule.group_key.many(bodies, matching):
                _engine._json_key(values)
        if _variant != "on-nocache":
            _engine.Evaluator._count_all = _keys
        if _variant != "thr-keys":
            import orjson
            _engine._json_key = lambda values: orjson.dumps(list(values)).decode()
    elif _variant == "on-lazycp":
        import dataclasses
        _AE = _evaluator.AlertEvaluator
        _orig_commit = _AE._commit
        _stored = {}
        def _lazy(self, commit):
            key = (commit.account_id, commit.feature)
            if commit.feature is None:
                return _orig_commit(self, commit)
            if key in _stored and not (commit.state or commit.alerts or commit.deliveries or commit.failures):
                self._checkpoints[key] = commit.new_seq
                return None
            if key in _stored:
                commit = dataclasses.replace(commit, expected_seq=_stored[key])
            _orig_commit(self, commit)
            _stored[key] = commit.new_seq
            return None
        _AE._commit = _lazy
    elif _variant in ("off-backfill", "off-backfill-compact"):
        import orjson
        _write = _ingest.EventWriter.write
        _learnt = {}
        def _backfilling(self, account_id, feature, items, **kwargs):
            if not _learnt and len(items) >= 500:  # the first big batch: read the history as backfill does
                after, head = 0, self.store.head_seq(account_id, feature)
                while after < head:
                    rows = self.store.read_events(account_id, feature, after, 0, None, 2000)
                    if not rows:
                        break
                    chunk = [(seq, orjson.loads(body)) for seq, body, _ in rows]
                    after = chunk[-1][0]
                    for _, event in chunk:
                        user, country = event.get("target_user", {}).get("uuid"), event.get("country")
                        if isinstance(user, str) and isinstance(country, str):
                            _learnt.setdefault(user.lower(), {})[country.lower()] = None
                if _variant == "off-backfill-compact":  # the same state, rebuilt once the history is gone
                    text = orjson.dumps(_learnt)
                    _learnt.clear()
                    _learnt.update(orjson.loads(text))
            return _write(self, account_id, feature, items, **kwargs)
        _ingest.EventWriter.write = _backfilling
    elif _variant == "thr-nodirty":
        _count = _engine.Evaluator._count_all
        class _NoDirty(set):
            def add(self, item):
                if item[1] != "window":
                    set.add(self, item)
        def _nodirty(self, *args):
            book = self.book
            if type(book.dirty) is not _NoDirty:
                book.dirty = _NoDirty(book.dirty)
            return _count(self, *args)
        _engine.Evaluator._count_all = _nodirty
    elif _variant in ("off-burn", "off-touch", "off-touchall"):
        _write = _ingest.EventWriter.write
        def _extra(self, account_id, feature, items, **kwargs):
            result = _write(self, account_id, feature, items, **kwargs)
            if len(items) >= 500:
                if _variant == "off-burn":
                    x = 0
                    for k in range(20000):
                        x += k * k
                else:
                    step = 10 if _variant == "off-touch" else 1
                    for event in items[::step]:
                        event["client"]["ip_address"]
                        event["target_user"]["email"]
            return result
        _ingest.EventWriter.write = _extra
    elif _variant in ("off-serialall", "on-serialall"):
        import threading
        _routes = importlib.import_module("siemgate.api.ingest_routes")
        _alock = threading.Lock()
        _store = _routes._store_batch
        def _one_at_a_time(*args):
            with _alock:
                return _store(*args)
        _routes._store_batch = _one_at_a_time
    elif _variant in ("on-serial", "on-pre", "off-serial"):
        import threading
        _wlock = threading.RLock()
        _write = _ingest.EventWriter.write
        def _serial(self, account_id, feature, items, **kwargs):
            with _wlock:
                if _variant != "on-pre" or len(items) < 500:
                    return _write(self, account_id, feature, items, **kwargs)
                validated, new = self._prepare(feature, items, strict=True, account_id=account_id)
                head = self.store.head_seq(account_id, feature)
                seqs = list(range(head + 1, head + 1 + len(new)))
                events, times = [e for _, e in validated], [t for t, _ in validated]
                batch = _ingest.StoredBatch(account_id, feature, _ingest.SeqEvents(seqs, events), times, False)
                for listener in self._listeners:
                    listener(batch)
                result = self.store.insert_events(account_id, feature, new)
                return _ingest.WriteResult(len(new), result.stored, result.duplicates)
        _ingest.EventWriter.write = _serial
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
    "on-queue",
    "on-wait",
    "off-copy",
    "on-serial",
    "on-pre",
    "off-serial",
    "off-burn",
    "off-touch",
    "off-touchall",
    "thr-keys",
    "thr-nodirty",
    "on-copy",
    "off-switch",
    "thr-keys-nocache",
    "on-nocache",
    "on-lazycp",
    "off-backfill",
    "off-backfill-compact",
    "off-jemalloc",
    "on-jemalloc",
    "off-serialall",
    "on-serialall",
)


def jemalloc_env() -> dict[str, str]:
    """The environment that runs a server on jemalloc; SystemExit when the library is missing."""
    found = sorted(Path("/usr/lib").glob("*/libjemalloc.so.2")) + sorted(Path("/usr/lib").glob("libjemalloc.so.2"))
    if not found:
        raise SystemExit("the -jemalloc variants need libjemalloc.so.2 (apt-get install libjemalloc2)")
    return {"PYTHONMALLOC": "malloc", "LD_PRELOAD": str(found[0])}


def one_round(variants: list[str], warm: list[bytes], bodies: list[bytes], tmp: Path) -> dict[str, tuple[float, float]]:
    """(server CPU µs per event, `_prepare` µs per event) of each variant, fed round-robin."""
    sites = {}
    for name in variants:
        report = tmp / f"{name}.report"
        env = {"BENCH_VARIANT": name, "BENCH_REPORT": str(report)}
        if name.endswith("-jemalloc"):
            env |= jemalloc_env()
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
