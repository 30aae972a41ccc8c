"""`make bench`, part 3: the web console's pages on a store of a million events.

Method:
  1. a store of ~1,000,000 events over 95 days, all three streams, is built once in
     bench/results/console-<users>u-<days>d and reused: the simulator (siemgate.simulate, 600
     people) generates them in two worker processes, which also validate, encode and extract the
     facets exactly as EventWriter does; the main process inserts them in 1000-event batches;
  2. `siemgate serve` (one process, unpinned: a browser's parallel requests may use both cores)
     on 127.0.0.1; the benchmark signs in as the account's owner (a console session cookie);
  3. for each console page, the requests console.js issues when the page loads (BOARDS and
     explorerPage), with the page's time window ending at the store's last event:
       - each dashboard (sign-ins, item usages, audit) at 24h, 7d, 30d and 90d;
       - the explorer (sign-ins, item usages) at 7d, 30d and 90d with no filter, a kind filter, an
         actor filter and a rare value (an IP seen a few times);
       - "load more" ten times (ten 50-event pages, one after the other) at 90d;
     each page is timed `--repeats` times (after one warm-up pass over all pages): its requests
     in parallel as the browser sends them (wall), and one at a time (sum, and the slowest one).
Prints a table (p50 / p95 over the repetitions) and writes bench/results/console-<backend>.json.

--index-cost also measures what a candidate index on facets(account_id, feature, kind, ts) would
cost ingest: the simulated days after the store's end, POSTed over HTTP in 1000-event batches into
copies of the store without and with it, alternating (siemgate has no such index: see
docs/benchmarks.md, "Console on a million events").

--database-url postgresql://... runs the same on PostgreSQL: the SQLite store is copied there
once with `siemgate db copy`'s Copier (the database must be empty the first time) and reused.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
sys.path.insert(0, str(ROOT))

from run import Server, machine  # noqa: E402
from siemgate.accounts.actor import CLI  # noqa: E402
from siemgate.composition.wiring import build_services  # noqa: E402
from siemgate.config import load_settings  # noqa: E402
from siemgate.model.encoding import encode_event  # noqa: E402
from siemgate.model.facets import Facets, extract_facets  # noqa: E402
from siemgate.model.features import ALL_FEATURES, Feature  # noqa: E402
from siemgate.model.timestamps import format_ns  # noqa: E402
from siemgate.model.validation import validate_events  # noqa: E402
from siemgate.simulate.generator import DAY, history  # noqa: E402
from siemgate.simulate.world import World, build_world  # noqa: E402
from siemgate.store.base import NewEvent  # noqa: E402
from siemgate.store.sqlite import SQLiteStore  # noqa: E402

OWNER = "owner@bench.example.com"
PASSWORD = "console-bench-password"
CHUNK_DAYS = 5
HOUR = 3600 * 1_000_000_000
RANGES = {"24h": DAY // 1_000_000_000, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
API = "/api/admin/v1"

# --- building the store ---------------------------------------------------------------------------

Encoded = tuple[str, int, bytes, int | None, tuple[str | None, ...]]  # uuid, ts, body, v1 cut, facets
_world: World | None = None


def _init_worker(account_uuid: str, users: int, seed: int) -> None:
    global _world
    _world = build_world(account_uuid, "Bench Co", users, seed)


def _simulate(start: int, end: int, seed: int) -> dict[Feature, list[dict[str, Any]]]:
    assert _world is not None
    raw: dict[Feature, list[dict[str, Any]]] = {f: [] for f in ALL_FEATURES}
    for feature, event in history(_world, start, end - 1, seed):
        raw[feature].append(event)
    return raw


def _chunk(args: tuple[int, int, int]) -> dict[str, list[Encoded]]:
    """Simulate [start, end) and validate, encode and extract facets as EventWriter.write does."""
    start, end, seed = args
    out: dict[str, list[Encoded]] = {}
    for feature, events in _simulate(start, end, seed).items():
        encoded: list[Encoded] = []
        for i in range(0, len(events), 1000):
            for ts, event in validate_events(feature, events[i : i + 1000], strict=True, now=end):
                body, cut = encode_event(feature, event)
                encoded.append((event["uuid"], ts, body, cut, tuple(extract_facets(feature, event))))
        out[feature.value] = encoded
    return out


def build_store(data_dir: Path, users: int, days: int, seed: int = 7) -> dict[str, Any]:
    """Create (or reuse) the console store; returns what the benchmark needs to know about it."""
    meta_path = data_dir / "bench.json"
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    if data_dir.exists():
        shutil.rmtree(data_dir)  # an interrupted build
    data_dir.mkdir(parents=True)
    settings = load_settings(data_dir=data_dir, sqlite_synchronous="NORMAL")
    store = SQLiteStore(data_dir / "siemgate.db", synchronous="NORMAL")
    store.migrate()
    services = build_services(settings, store)
    account, _ = services.people.create_account(CLI, "Bench Co", OWNER, "Bench Owner", PASSWORD)
    end = (time.time_ns() // HOUR) * HOUR
    start = end - days * DAY
    chunks = [(t, min(t + CHUNK_DAYS * DAY, end), seed) for t in range(start, end, CHUNK_DAYS * DAY)]
    counts = dict.fromkeys((f.value for f in ALL_FEATURES), 0)
    started = time.perf_counter()
    with ProcessPoolExecutor(2, initializer=_init_worker, initargs=(account.uuid, users, seed)) as pool:
        for done, encoded in enumerate(pool.map(_chunk, chunks), start=1):
            for name, rows in encoded.items():
                feature = Feature(name)
                for i in range(0, len(rows), 1000):
                    batch = [
                        NewEvent(u, ts, body, cut, False, Facets(*f)) for u, ts, body, cut, f in rows[i : i + 1000]
                    ]
                    counts[name] += store.insert_events(account.id, feature, batch).stored
            print(f"  building store: {done}/{len(chunks)} chunks, {sum(counts.values()):,} events", file=sys.stderr)
    elapsed = time.perf_counter() - started
    store.close()
    meta = {
        "users": users,
        "days": days,
        "start_ns": start,
        "end_ns": end,
        "account": account.uuid,
        "events": counts,
        "build_seconds": round(elapsed, 1),
        "samples": _samples(data_dir / "siemgate.db"),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def _samples(path: Path) -> dict[str, dict[str, str]]:
    """Filter values for the explorer, per stream: a mid-frequency kind, a median actor, a rare IP."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out = {}
    for feature in (Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES):
        where = f"FROM facets WHERE feature = {feature.code}"
        kinds = conn.execute(f"SELECT kind, count(*) c {where} AND kind IS NOT NULL GROUP BY 1 ORDER BY 2 DESC")
        kind_rows = kinds.fetchall()
        actors = conn.execute(f"SELECT actor, count(*) {where} AND actor IS NOT NULL GROUP BY 1 ORDER BY 2").fetchall()
        ips = conn.execute(
            f"SELECT ip, count(*) {where} AND ip IS NOT NULL GROUP BY 1 HAVING count(*) BETWEEN 2 AND 5 ORDER BY 1"
        ).fetchall()
        out[feature.value] = {
            "kind": kind_rows[min(1, len(kind_rows) - 1)][0],  # the second most common
            "actor": actors[len(actors) // 2][0],
            "ip": ips[len(ips) // 2][0],
        }
    conn.close()
    return out


def copy_to_postgres(sqlite_db: Path, url: str) -> None:
    """Copy the console store into PostgreSQL once (like `siemgate db copy`), then ANALYZE."""
    from siemgate.dbcopy import Copier
    from siemgate.store.postgres import PostgresStore

    target = PostgresStore(url)
    try:
        target.migrate()
        if target.list_accounts():
            return  # copied before
        copier = Copier(sqlite_db, target, chunk=20_000)
        started = time.perf_counter()
        try:
            copier.run(lambda what, n: None)
        finally:
            copier.close()
        with target._conn("cannot analyze") as conn:
            conn.execute("ANALYZE")
        print(f"  copied into PostgreSQL in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    finally:
        target.close()


# --- the console's requests ---------------------------------------------------------------------


def _window(meta: dict[str, Any], seconds: int) -> dict[str, str]:
    end = int(meta["end_ns"])
    return {"start": format_ns(end - seconds * 1_000_000_000), "end": format_ns(end)}


def _stats(account: str, feature: str, params: dict[str, Any]) -> str:
    return f"{API}/accounts/{account}/stats/{feature}?{urllib.parse.urlencode(params)}"


def _events(account: str, feature: str, params: dict[str, Any]) -> str:
    return f"{API}/accounts/{account}/events/{feature}?{urllib.parse.urlencode(params)}"


def dashboard_requests(account: str, board: str, w: dict[str, str]) -> list[str]:
    """BOARDS[board] in console.js."""
    if board == "signins":
        f = "signinattempts"
        return [
            _stats(account, f, {**w, "group_by": "kind", "interval": "auto", "limit": 5000}),
            _stats(account, f, {**w, "group_by": "kind,detail", "limit": 5000}),
            _stats(account, f, {**w, "group_by": "kind,country", "limit": 5000}),
            _stats(account, f, {**w, "group_by": "kind,actor", "limit": 5000}),
            _stats(account, f, {**w, "group_by": "country", "limit": 300}),
        ]
    if board == "items":
        f = "itemusages"
        return [
            _stats(account, f, {**w, "group_by": "kind", "interval": "auto", "limit": 5000}),
            _stats(account, f, {**w, "group_by": "detail", "limit": 10}),
            _stats(account, f, {**w, "group_by": "actor", "limit": 10}),
        ]
    f = "auditevents"
    return [
        _stats(account, f, {**w, "group_by": "kind", "interval": "auto", "limit": 5000}),
        _stats(account, f, {**w, "group_by": "actor", "limit": 10}),
        _stats(account, f, {**w, "group_by": "detail", "limit": 10}),
    ]


def explorer_requests(account: str, feature: str, w: dict[str, str], filters: dict[str, str]) -> list[str]:
    """explorerPage's search(): the first page, the total (updateSummary), the filter choices."""
    query = {**w, **filters}
    return [
        _events(account, feature, {**query, "limit": 50}),
        _stats(account, feature, query),
        _stats(account, feature, {**w, "group_by": "kind", "limit": 100}),
        _stats(account, feature, {**w, "group_by": "detail", "limit": 50}),
        *([_stats(account, feature, {**w, "group_by": "app", "limit": 50})] if feature != "auditevents" else []),
    ]


class Client:
    """HTTP/1.1 connections to the server with the session cookie. Each page load opens its own
    connections, as a browser does after the server has closed idle ones (uvicorn: after 5 s)."""

    def __init__(self, port: int) -> None:
        self.port = port
        conn = self.connect()
        body = orjson.dumps({"email": OWNER, "password": PASSWORD})
        conn.request("POST", f"{API}/session", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"sign-in failed: {response.status} {data[:200]!r}")
        cookie = response.getheader("set-cookie", "").split(";", 1)[0]
        conn.close()
        self.headers = {"Cookie": cookie}
        self.pool = ThreadPoolExecutor(6)  # a browser's connections per host

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def get(self, conn: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        conn.request("GET", path, headers=self.headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {data[:300]!r}")
        return elapsed, data

    def parallel(self, paths: list[str]) -> float:
        """All the paths at once, each on a connection of its own; the wall time."""
        conns = [self.connect() for _ in paths]
        started = time.perf_counter()
        list(self.pool.map(self.get, conns, paths))
        elapsed = time.perf_counter() - started
        for conn in conns:
            conn.close()
        return elapsed

    def one_at_a_time(self, paths: list[str]) -> list[float]:
        conn = self.connect()
        each = [self.get(conn, path)[0] for path in paths]
        conn.close()
        return each

    def close(self) -> None:
        self.pool.shutdown()


Page = tuple[str, str, Callable[[Client], dict[str, float]]]  # group, name, measure once


def _load(paths: list[str]) -> Callable[[Client], dict[str, float]]:
    def measure(client: Client) -> dict[str, float]:
        wall = client.parallel(paths)
        each = client.one_at_a_time(paths)
        return {
            "wall": wall,
            "sum": sum(each),
            "max": max(each),
            **{_label(p): t for p, t in zip(paths, each, strict=True)},
        }

    return measure


def _label(path: str) -> str:
    """A request's short name: events, or stats with its grouping (total: no grouping)."""
    kind = "events" if "/events/" in path else "stats"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    if kind == "events":
        return "events" + ("+cursor" if "cursor" in query else "")
    group = query.get("group_by", ["total"])[0]
    return f"stats {group}" + (" over time" if "interval" in query else "") + f" limit {query.get('limit', ['100'])[0]}"


def _paging(first: str, pages: int) -> Callable[[Client], dict[str, float]]:
    def measure(client: Client) -> dict[str, float]:
        conn = client.connect()
        each = []
        path = first
        for _ in range(pages):
            elapsed, data = client.get(conn, path)
            each.append(elapsed)
            cursor = orjson.loads(data)["next_cursor"]
            if cursor is None:
                break
            path = f"{first}&cursor={urllib.parse.quote(cursor)}"
        conn.close()
        return {"wall": sum(each), "sum": sum(each), "max": max(each), "first page": each[0]}

    return measure


def pages(meta: dict[str, Any]) -> Iterator[Page]:
    account = meta["account"]
    for board in ("signins", "items", "audit"):
        for label, seconds in RANGES.items():
            yield "dashboard", f"{board} {label}", _load(dashboard_requests(account, board, _window(meta, seconds)))
    for feature in ("signinattempts", "itemusages"):
        sample = meta["samples"][feature]
        filters = {
            "no filter": {},
            f"kind={sample['kind']}": {"kind": sample["kind"]},
            "actor": {"actor": sample["actor"]},
            "rare ip": {"ip": sample["ip"]},
            # the console's forgiving filters: part of an address in another case, a country prefix
            "forgiving actor": {"actor": sample["actor"].split("@")[0][:6].upper(), "match": "forgiving"},
            "forgiving country": {"country": "u", "match": "forgiving"},
        }
        for label in ("7d", "30d", "90d"):
            w = _window(meta, RANGES[label])
            for name, f in filters.items():
                yield "explorer", f"{feature} {label} {name}", _load(explorer_requests(account, feature, w, f))
        w = _window(meta, RANGES["90d"])
        for name, f in (("no filter", {}), ("actor", {"actor": sample["actor"]})):
            first = _events(account, feature, {**w, **f, "limit": 50})
            yield "paging", f"{feature} 90d {name}: 10 pages", _paging(first, 10)


def run_pages(client: Client, meta: dict[str, Any], repeats: int, only: str | None) -> list[dict[str, Any]]:
    chosen = [p for p in pages(meta) if only is None or only in p[1]]
    for _, _, measure in chosen:  # warm-up: the page cache and the server's statements
        measure(client)
    samples: dict[str, list[dict[str, float]]] = {name: [] for _, name, _ in chosen}
    for _ in range(repeats):
        for _, name, measure in chosen:
            samples[name].append(measure(client))
    results = []
    for group, name, _ in chosen:
        row: dict[str, Any] = {"group": group, "page": name}
        for key in ("wall", "sum", "max"):
            values = sorted(s[key] * 1000 for s in samples[name])
            row[key] = {"p50_ms": round(statistics.median(values), 1), "p95_ms": round(_p95(values), 1)}
        labels = [k for k in samples[name][0] if k not in ("wall", "sum", "max")]
        row["requests_p50_ms"] = {k: round(statistics.median(s[k] * 1000 for s in samples[name]), 1) for k in labels}
        results.append(row)
    return results


def _p95(sorted_values: list[float]) -> float:
    return sorted_values[max(0, -(-len(sorted_values) * 95 // 100) - 1)]  # nearest rank


# --- what a candidate index would cost ingest ----------------------------------------------------

CANDIDATE_INDEX = "CREATE INDEX facets_by_kind ON facets(account_id, feature, kind, ts)"


def ingest_cost(data_dir: Path, meta: dict[str, Any], events: int, rounds: int) -> dict[str, Any]:
    """Events/s stored over HTTP (1000-event batches of the simulated activity of the days after the
    store's end, 2 connections, the server pinned to one core) into copies of the store without and
    with CANDIDATE_INDEX; rounds alternate between the two."""
    _init_worker(meta["account"], meta["users"], 7)
    days = events // 8_000 + 1  # ~10,000 events a day
    raw = _simulate(meta["end_ns"], meta["end_ns"] + days * DAY, 99)
    full = [(f.value, items[i : i + 1000]) for f, items in raw.items() for i in range(0, len(items) - 999, 1000)]
    full = sorted(full, key=lambda batch: str(batch[1][0]["timestamp"]))[: max(1, events // 1000)]  # as sent
    batches = [(name, orjson.dumps(items)) for name, items in full]
    sent = sum(len(items) for _, items in full)
    results: dict[str, list[tuple[int, int]]] = {"without": [], "with": []}
    for _ in range(rounds):
        for variant in results:
            results[variant].append(_ingest_into_copy(data_dir, batches, index=variant == "with"))
    out = {
        variant: {
            "events_per_second": sorted(r[0] for r in runs),
            "per_cpu_second": sorted(r[1] for r in runs),
            "median": round(statistics.median(r[0] for r in runs)),
            "median_per_cpu_second": round(statistics.median(r[1] for r in runs)),
        }
        for variant, runs in results.items()
    }
    return {"index": CANDIDATE_INDEX, "events": sent, "batches": len(batches), "rounds": rounds, **out}


def _ingest_into_copy(data_dir: Path, batches: list[tuple[str, bytes]], *, index: bool) -> tuple[int, int]:
    """(events/s, events per CPU-second of the server) ingesting into a copy of the store."""
    copy = RESULTS / "console-ingest-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data_dir, copy)
    try:
        store = SQLiteStore(copy / "siemgate.db")
        try:
            store.migrate()
            key, _ = build_services(load_settings(data_dir=copy), store).ingest_keys.create(
                store.list_accounts()[0], "ingest bench", ALL_FEATURES
            )
            if index:
                with store._write() as conn:
                    conn.execute(CANDIDATE_INDEX)
        finally:
            store.close()
        os.sync()  # the copy's pages are written out before the clock starts, not during
        # the batches continue the store's activity past its end, days ahead of the clock when the
        # store is new: the ingest API refuses more than ingest_max_future_seconds (1 day) ahead
        server = Server(copy, cpu="0", extra_env={"SIEMGATE_INGEST_MAX_FUTURE_SECONDS": str(366 * 86400)})
        try:
            cpu = _cpu_seconds(server.proc.pid)
            rate, stored = _post_batches(server.port, key, batches)
            return rate, round(stored / (_cpu_seconds(server.proc.pid) - cpu))
        finally:
            server.stop()
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _post_batches(port: int, key: str, batches: list[tuple[str, bytes]]) -> tuple[int, int]:
    """(events/s, events stored) for the batches POSTed over two connections."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    stored = [0, 0]

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for feature, body in batches[i::2]:
            conn.request("POST", f"/api/ingest/v2/{feature}", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {data[:300]!r}")
            stored[i] += json.loads(data)["stored"]
        conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(worker, range(2)))  # a refused batch stops the run (a thread's error was only printed)
    return round(sum(stored) / (time.perf_counter() - started)), sum(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=600, help="people simulated (default 600: ~1M events)")
    parser.add_argument("--days", type=int, default=95, help="days of history (default 95)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each page")
    parser.add_argument("--only", help="only pages whose name contains this")
    parser.add_argument("--database-url", help="run on this PostgreSQL database (an empty one the first time)")
    parser.add_argument("--index-cost", action="store_true", help="also measure a kind index's cost to ingest")
    parser.add_argument("--ingest-events", type=int, default=40_000, help="events per ingest run (--index-cost)")
    parser.add_argument("--ingest-rounds", type=int, default=5, help="ingest runs without and with the index")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    data_dir = RESULTS / f"console-{args.users}u-{args.days}d"
    print(f"store: {args.days} days of activity of {args.users} people in {data_dir}", file=sys.stderr)
    meta = build_store(data_dir, args.users, args.days)
    backend = "postgres" if args.database_url else "sqlite"
    if args.database_url:
        copy_to_postgres(data_dir / "siemgate.db", args.database_url)
    server = Server(data_dir, cpu=None, database_url=args.database_url)
    try:
        client = Client(server.port)
        try:
            results = run_pages(client, meta, args.repeats, args.only)
        finally:
            client.close()
    finally:
        server.stop()
    load = os.getloadavg()[0]  # other work on the machine slows the parallel requests most
    ingest = None
    if args.index_cost and not args.database_url:
        print("ingest without and with a kind index ...", file=sys.stderr)
        ingest = ingest_cost(data_dir, meta, args.ingest_events, args.ingest_rounds)
    total = sum(meta["events"].values())
    report = {
        "machine": {**machine(), "sqlite": sqlite3.sqlite_version, "load_average_1m": round(load, 2)},
        "backend": backend,
        "store": {k: meta[k] for k in ("users", "days", "events", "build_seconds", "samples")},
        "repeats": args.repeats,
        "pages": results,
        "ingest": ingest,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (RESULTS / f"console-{backend}.json").write_text(json.dumps(report, indent=2))
    m = report["machine"]
    print(
        f"\nsiemgate console pages ({backend}) — {m['cpu']}, {m['cores']} cores, Python {m['python']},"
        f" SQLite {m['sqlite']}; {total:,} events over {meta['days']} days ({meta['events']});"
        f" p50 / p95 of {args.repeats} runs, ms\n"
    )
    width = max(len(r["page"]) for r in results)
    print(f"  {'page':<{width}}  {'parallel (wall)':>17}  {'one at a time':>17}  {'slowest request':>17}")
    for r in results:
        cells = [f"{r[k]['p50_ms']:>7} / {r[k]['p95_ms']:<7}" for k in ("wall", "sum", "max")]
        print(f"  {r['page']:<{width}}  {cells[0]:>17}  {cells[1]:>17}  {cells[2]:>17}")
    if ingest:
        print(
            f"\ningest over HTTP, {ingest['events']:,} events in 1000-event batches (median of {ingest['rounds']}):"
            f" as shipped {ingest['without']['median']:,} events/s"
            f" ({ingest['without']['median_per_cpu_second']:,} per server CPU-second);"
            f" with a kind index {ingest['with']['median']:,} ({ingest['with']['median_per_cpu_second']:,})"
        )
    where = RESULTS / f"console-{backend}.json"
    print(f"\n{report['seconds']} s in all (load average {load:.1f}); full results: {where}")


if __name__ == "__main__":
    main()
