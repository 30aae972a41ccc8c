"""`make bench` (log in the store): what the tamper-evident log costs ingest, how fast older events
are backfilled, and the storage per event, on SQLite and PostgreSQL (docs/benchmarks.md, "Integrity
log in the store").

Ingest: 1000-event batches of audit events through the EventWriter (validation, encoding, the
store's transaction: every producer's path) into a fresh store with the log's entries on, and into
another with them off, in alternating pairs; the figure is the median of the pairs' ratios of
events per second (on / off), by wall clock and by CPU seconds of this process and, on PostgreSQL,
of its database backends (/proc), which a shared machine disturbs much less. The HTTP layer adds
the same cost to both sides, so the ratio over HTTP is closer to 1. Backfill: a store written with
the log off, then `integrate` (backfill and integration, as after an upgrade). Storage: the log
tables' size divided by the events.
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

import psycopg

from events import audit_batch
from siemgate.integrity.tree import integrate
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Store
from siemgate.store.ingest import EventWriter
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECOND = 1_000_000_000
AUDIT = Feature.AUDITEVENTS
LOG_TABLES = ("log_entries", "log_hashes", "log_state", "log_checkpoints")


class Backend:
    """Fresh stores of one kind, removed afterwards."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.tmp, self.schemas = kind, tmp, []

    def new(self) -> Store:
        if self.kind == "sqlite":
            store: Store = SQLiteStore(self.tmp / f"{new_id()}.db")
        else:
            schema = f"bench_{new_id().lower()[:12]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            self.schemas.append(schema)
            store = PostgresStore(f"{PG_URL}?options=-csearch_path%3D{schema}&application_name={schema}", max_size=2)
            store.application_name = schema  # type: ignore[attr-defined]
        store.migrate()
        return store

    def log_bytes(self, store: Store) -> int:
        if isinstance(store, SQLiteStore):
            conn = store._reader()
            try:
                rows = conn.execute(
                    "SELECT name, sum(pgsize) FROM dbstat WHERE name IN (?, ?, ?, ?) GROUP BY name", LOG_TABLES
                ).fetchall()
            except Exception:
                return -1
            return sum(int(r[1]) for r in rows)
        total = 0
        for table in LOG_TABLES:
            total += int(store._value("SELECT pg_total_relation_size(%s)", (table,)))  # type: ignore[attr-defined]
        return total

    def close(self) -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def batches(count: int, start: int) -> list[list[dict[str, Any]]]:
    return [audit_batch(1000, start + b * 1000 * SECOND, SECOND) for b in range(count // 1000)]


def backend_cpu(store: Store) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving `store` (0 for SQLite, whose work
    is this process's)."""
    if isinstance(store, SQLiteStore):
        return 0.0
    pids = store._rows(  # type: ignore[attr-defined]
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
        (store.application_name,),  # type: ignore[attr-defined]
    )
    total = 0.0
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def ingest_rate(store: Store, log_on: bool, work: list[list[dict[str, Any]]]) -> tuple[float, float]:
    """(events per wall second, events per CPU second of this process and its database backends)."""
    store.log_entries_on = log_on  # type: ignore[misc]
    account = store.create_account(new_id(), f"bench-{new_id()[:8]}", 0)
    writer = EventWriter(store, time.time_ns)
    writer.write(account.id, AUDIT, work[0])  # warm-up: the stream exists, statements are prepared
    began, cpu = time.perf_counter(), time.process_time() + backend_cpu(store)
    for batch in work[1:]:
        writer.write(account.id, AUDIT, batch)
    events = 1000 * (len(work) - 1)
    cpu = time.process_time() + backend_cpu(store) - cpu
    return events / (time.perf_counter() - began), events / cpu


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - began


def run_backend(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    backend = Backend(kind, tmp)
    start = time.time_ns() - 86400 * SECOND
    try:
        pairs = []
        for n in range(args.pairs):
            work = batches(args.events, start)
            rates: dict[bool, tuple[float, float]] = {}
            for log_on in (n % 2 == 0, n % 2 == 1):  # alternate which side goes first
                store = backend.new()
                try:
                    rates[log_on] = ingest_rate(store, log_on, [[dict(e, uuid=new_id()) for e in b] for b in work])
                finally:
                    store.close()
            pairs.append(
                {
                    "on_per_s": round(rates[True][0]),
                    "off_per_s": round(rates[False][0]),
                    "on_per_cpu_s": round(rates[True][1]),
                    "off_per_cpu_s": round(rates[False][1]),
                    "ratio_wall": round(rates[True][0] / rates[False][0], 3),
                    "ratio_cpu": round(rates[True][1] / rates[False][1], 3),
                }
            )
        store = backend.new()
        try:
            store.log_entries_on = False  # type: ignore[misc]
            account = store.create_account(new_id(), "backfill", 0)
            writer = EventWriter(store, time.time_ns)
            for batch in batches(args.backfill, start):
                writer.write(account.id, AUDIT, batch)
            done, took = timed(lambda: integrate(store, account.id, AUDIT, time.time_ns()))
            if done.size != args.backfill or done.error is not None:
                raise SystemExit(f"the backfill failed: {done}")
            log_bytes = backend.log_bytes(store)
        finally:
            store.close()
        return {
            "ingest_pairs": pairs,
            "ingest_ratio_wall_median": statistics.median(p["ratio_wall"] for p in pairs),
            "ingest_ratio_cpu_median": statistics.median(p["ratio_cpu"] for p in pairs),
            "backfill_events": args.backfill,
            "backfill_seconds": round(took, 2),
            "backfill_events_per_second": round(args.backfill / took),
            "log_bytes_per_event": round(log_bytes / args.backfill, 1) if log_bytes >= 0 else None,
        }
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per ingest run")
    parser.add_argument("--pairs", type=int, default=5, help="alternating on/off pairs")
    parser.add_argument("--backfill", type=int, default=100_000, help="events to backfill")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.backends.split(","):
            out[kind] = run_backend(kind, args, Path(tmp))
            print(f"{kind}: {json.dumps(out[kind])}", flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
