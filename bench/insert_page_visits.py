"""Why sign-in inserts get dearer once audit events sort after them (docs/benchmarks.md,
"Alerting on ingest", fourth round): in-process, one SQLite store and EventWriter, alerting off,
the alerts bench's 40 realistic 1000-event sign-in batches, with an audit event of `--sizes`
bytes of `aux_info` recorded after every second batch (0: none). For each size, the CPU of the
sign-in `insert_events` calls per event and the pages SQLite's writer connection visited per
batch (`sqlite3_db_status` CACHE_HIT and CACHE_MISS, read through ctypes on the connection's
handle: CPython 3.11's sqlite3 connection object starts with its `sqlite3 *`).

    python bench/insert_page_visits.py [--sizes 0,50,1200,15000] [--runs 3]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alerts_ingest import realistic_batches
from siemgate.accounts.actor import SYSTEM
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import InsertResult, NewEvent
from siemgate.store.sqlite import SQLiteStore

CACHE_HIT, CACHE_MISS = 7, 8  # SQLITE_DBSTATUS_*


class PageCounter:
    """Page visits of one sqlite3 connection since the last read (each read resets them)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        path = ctypes.util.find_library("sqlite3")
        if path is None:
            raise SystemExit("libsqlite3 not found: the counters need the library Python's sqlite3 uses")
        self.lib = ctypes.CDLL(path)
        self.db = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value

    def read(self, op: int) -> int:
        current, highest = ctypes.c_int(), ctypes.c_int()
        self.lib.sqlite3_db_status(ctypes.c_void_p(self.db), op, ctypes.byref(current), ctypes.byref(highest), 1)
        return current.value


def one_run(
    size: int, warm: list[list[dict[str, Any]]], timed: list[list[dict[str, Any]]]
) -> tuple[float, float, float]:
    """(µs of CPU per sign-in event, page hits and misses per batch) of one fresh store."""
    with tempfile.TemporaryDirectory(prefix="siemgate-bench-pages-") as tmp:
        store = SQLiteStore(Path(tmp) / "siemgate.db")
        store.migrate()
        services = build_services(load_settings(data_dir=Path(tmp), alerts_enabled=False), store)
        account = store.create_account(new_id(), "Bench", time.time_ns())
        for batch in warm:
            services.writer.write(account.id, Feature.SIGNINATTEMPTS, batch)
        counter = PageCounter(store._writer)
        insert = store.insert_events
        totals = {"cpu": 0.0, "hits": 0, "misses": 0}

        def measured(account_id: int, feature: Feature, events: list[NewEvent]) -> InsertResult:
            if feature != Feature.SIGNINATTEMPTS:
                return insert(account_id, feature, events)
            counter.read(CACHE_HIT), counter.read(CACHE_MISS)
            started = time.thread_time()
            result = insert(account_id, feature, events)
            totals["cpu"] += time.thread_time() - started
            totals["hits"] += counter.read(CACHE_HIT)
            totals["misses"] += counter.read(CACHE_MISS)
            return result

        store.insert_events = measured  # type: ignore[method-assign]
        for i, batch in enumerate(timed):
            services.writer.write(account.id, Feature.SIGNINATTEMPTS, batch)
            if size and i % 2 == 0:
                services.audit.record(account, SYSTEM, "create", "account", aux_info="y" * size)
        services.close()
    events = sum(len(b) for b in timed)
    return totals["cpu"] / events * 1e6, totals["hits"] / len(timed), totals["misses"] / len(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,50,1200,15000", help="aux_info sizes of the audit events; 0: none")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    warm, timed = realistic_batches()
    warm_events, timed_events = [orjson.loads(b) for b in warm], [orjson.loads(b) for b in timed]
    sizes = [int(s) for s in args.sizes.split(",")]
    for run in range(args.runs):
        for size in sizes:  # sizes alternate within each run, so load on the machine hits them alike
            cpu, hits, misses = one_run(size, warm_events, timed_events)
            what = f"audit events of {size} B between the batches" if size else "no audit events"
            print(f"run {run + 1}, {what}: {cpu:.2f} µs per sign-in event; {hits:,.0f} page hits and"
                  f" {misses:,.0f} misses per 1000-event insert", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
