"""Where alerting's cost on ingest goes (docs/benchmarks.md, "Alerting on ingest", fourth round):
one pair of the alerts bench (`alerts_ingest.Site`, realistic mix, both stores with a week of
history), with the CPU time (`time.thread_time`) of the methods on the ingest and alerting paths
summed inside each server process. The methods are wrapped by a `sitecustomize.py` this script
writes to a temporary folder on the servers' PYTHONPATH (nothing in siemgate changes); SIGUSR1
starts the count after the warm-up, SIGUSR2 writes it out.

    python bench/alerts_profile.py [--history-days 7]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alerts_ingest import Site, feed, realistic_batches, use_sitecustomize

WRAPPED = [
    ("siemgate.store.ingest", "EventWriter", ["write", "_prepare"]),
    ("siemgate.store.sqlite", "SQLiteStore", ["insert_events", "mark_delivered", "commit_alert_evaluation"]),
    (
        "siemgate.alerts.evaluator",
        "AlertEvaluator",
        ["on_stored", "_commit", "_record_events", "_records", "_state", "_backfill", "catch_up", "record_pending"],
    ),
    ("siemgate.alerts.engine", "Evaluator", ["evaluate", "_count_all", "_learn_all", "_threshold_run", "_first_seen"]),
    ("siemgate.alerts.dispatch", "Dispatcher", ["pump"]),
    ("siemgate.alerts.engine", "RuleIndex", ["plan"]),
    ("siemgate.integrity.service", "LogService", ["run"]),
]

SITECUSTOMIZE = """
import collections, importlib, os, signal, time
if os.environ.get("BENCH_PROFILE_OUT"):
    _cpu, _calls = collections.defaultdict(float), collections.Counter()
    def _wrap(cls, name):
        inner, label = getattr(cls, name), f"{cls.__name__}.{name}"
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                _cpu[label] += time.thread_time() - started
                _calls[label] += 1
        setattr(cls, name, wrapper)
    for module, cls, names in WRAPPED:
        for name in names:
            _wrap(getattr(importlib.import_module(module), cls), name)
    def _dump(*_):
        with open(f"{os.environ['BENCH_PROFILE_OUT']}.{os.getpid()}", "w") as out:
            for label in sorted(_cpu):
                out.write(f"{label}\\t{_cpu[label]}\\t{_calls[label]}\\n")
    import gc
    _gc_started = [0.0]
    def _gc(phase, info):
        if phase == "start":
            _gc_started[0] = time.thread_time()
        else:
            _cpu[f"gc.collect(gen {info['generation']})"] += time.thread_time() - _gc_started[0]
            _calls[f"gc.collect(gen {info['generation']})"] += 1
    gc.callbacks.append(_gc)
    signal.signal(signal.SIGUSR1, lambda *_: (_cpu.clear(), _calls.clear()))
    signal.signal(signal.SIGUSR2, _dump)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history-days", type=float, default=7.0)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    warm, bodies = realistic_batches(args.batches)
    with tempfile.TemporaryDirectory(prefix="siemgate-bench-profile-") as tmp:
        use_sitecustomize(Path(tmp) / "site", f"WRAPPED = {WRAPPED!r}\n{SITECUSTOMIZE}")
        os.environ["BENCH_PROFILE_OUT"] = str(Path(tmp) / "profile")
        sites = {on: Site(on, Path(tmp) / ("on" if on else "off"), 2, args.history_days) for on in (True, False)}
        try:
            for site in sites.values():
                site.send(warm)
                site.settle()
            for site in sites.values():
                os.kill(site.server.proc.pid, signal.SIGUSR1)
            cpu = dict(zip((True, False), feed([sites[True], sites[False]], bodies, 4), strict=True))
            events = sum(len(orjson.loads(body)) for body in bodies)
            results = {}
            for on, site in sites.items():
                out = Path(f"{os.environ['BENCH_PROFILE_OUT']}.{site.server.proc.pid}")
                os.kill(site.server.proc.pid, signal.SIGUSR2)
                deadline = time.monotonic() + 30
                while not out.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)  # the server writes it from its signal handler
                results[on] = out.read_text().splitlines()
        finally:
            for site in sites.values():
                site.close()
    for on in (True, False):
        print(f"alerting {'on' if on else 'off'}: server CPU {cpu[on] / events * 1e6:.2f} µs per event")
        for line in results[on]:
            label, seconds, calls = line.split("\t")
            print(f"  {label:32} {float(seconds) / events * 1e6:6.2f} µs per event ({calls} calls)")


if __name__ == "__main__":
    main()
