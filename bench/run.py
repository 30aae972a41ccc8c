"""`make bench`: serving, ingest and token-check figures for docs/benchmarks.md, on both backends.

Method (one uvicorn worker pinned to CPU 0, the load generator on CPU 1, loopback HTTP):
  1. a store of N events (default 1,000,000 item usages) is built once and reused by later runs:
     on SQLite in bench/results/data-N through the same validation and encoding path as the ingest
     API; on PostgreSQL with COPY by bench/pg_build.py, in the database siemgate_bench_1m (created
     on the `--postgres` server when missing);
  2. serve: C connections each follow a cursor chain of 1000-event pages (v2, then v1) for a
     fixed time; events/s = items received / seconds, events per server CPU-second (the server's
     user + system time during the run: steadier when other work shares the machine) and events
     per CPU-second of the server and its PostgreSQL backends together (what serving costs in all);
  3. latency: one connection fetches a 1000-event page at the start and at the end of the store;
  4. ingest: C connections POST 1000-event batches (new uuids) over HTTP; events/s stored;
  5. token check: TokenService.authenticate in-process, first use (ES256 verify) and cached;
  6. PostgreSQL page latency again on a store of --large-events (default 10M, siemgate_bench_10m;
     its COPY build takes several minutes the first time and is recorded).
SQLite and PostgreSQL (sharing the machine) are measured in the same run with their servers up
together: serving alternates between them in --rounds short runs and the latency requests of all
stores interleave one by one, so that other work on the machine weighs on each alike. The table
ends with PostgreSQL's share of SQLite's serving rate (over all rounds, and the median of the
rounds' shares) and the 10M/1M latency ratios; the load average before and after is recorded.
Results go to bench/results/latest.json.

--postgres none runs SQLite alone; --database-url postgresql://... runs PostgreSQL alone on that
database (results in bench/results/latest-postgres-<N>w-<events>.json); --workers N serves with
`serve --workers N` (unpinned when N > 1).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
sys.path.insert(0, str(ROOT))

from events import event_batch  # noqa: E402
from siemgate.composition.stores import open_store  # noqa: E402
from siemgate.composition.wiring import build_services  # noqa: E402
from siemgate.config import load_settings  # noqa: E402
from siemgate.integrity.tree import integrate  # noqa: E402
from siemgate.model.features import ALL_FEATURES, Feature  # noqa: E402
from siemgate.model.ids import new_id  # noqa: E402
from siemgate.store.sqlite import SQLiteStore  # noqa: E402

FEATURE = Feature.ITEMUSAGES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_store(data_dir: Path, events: int) -> dict[str, str]:
    """Create (or reuse) a store with `events` item usages; returns credentials."""
    meta_path = data_dir / "bench.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("events") == events:
            return dict(meta)
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(data_dir=data_dir, sqlite_synchronous="NORMAL")
    store = SQLiteStore(data_dir / "siemgate.db", synchronous="NORMAL")
    store.migrate()
    services = build_services(settings, store)
    account = store.create_account(new_id(), "Bench", time.time_ns())
    integration = store.create_integration(account.id, new_id(), "other", "bench", "", time.time_ns())
    token, _ = services.tokens.issue(account, integration, "bench", ALL_FEATURES, None)
    key, _ = services.ingest_keys.create(account, "bench", ALL_FEATURES)
    start = time.time_ns() - 100 * 86400 * 1_000_000_000
    step = (100 * 86400 * 1_000_000_000) // events
    started = time.perf_counter()
    for offset in range(0, events, 1000):
        n = min(1000, events - offset)
        services.writer.write(account.id, FEATURE, event_batch(n, start + offset * step, step))
        if offset % 100_000 == 0:
            print(f"  building store: {offset:,}/{events:,} events", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    store.close()
    meta = {"events": events, "token": token, "ingest_key": key, "build_seconds": round(elapsed, 1)}
    meta_path.write_text(json.dumps(meta))
    return meta


class Server:
    def __init__(
        self,
        data_dir: Path,
        cpu: str | None,
        database_url: str | None = None,
        workers: int = 1,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.database_url = database_url
        env = {
            **os.environ,
            **({"SIEMGATE_DATABASE_URL": database_url} if database_url else {}),
            "SIEMGATE_DATA_DIR": str(data_dir),
            "SIEMGATE_LOG_LEVEL": "warning",
            "SIEMGATE_RATE_LIMIT_PER_MINUTE": "100000000",
            "SIEMGATE_ACCOUNT_RATE_LIMIT_PER_MINUTE": "100000000",
            "SIEMGATE_RATE_LIMIT_PER_HOUR": "1000000000",
            "SIEMGATE_ADMIN_RATE_LIMIT_PER_MINUTE": "100000000",  # the console benchmark's own requests
            "SIEMGATE_ADMIN_RATE_LIMIT_PER_HOUR": "1000000000",
            "SIEMGATE_SQLITE_SYNCHRONOUS": "NORMAL",
            "SIEMGATE_ALERTS_ENABLED": "false",  # the serving and ingest paths alone
            **(extra_env or {}),
        }
        cmd = [sys.executable, "-m", "siemgate", "serve", "--port", str(self.port), "--workers", str(workers)]
        if cpu is not None and workers == 1 and shutil.which("taskset"):
            cmd = ["taskset", "-c", cpu, *cmd]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120  # a server starts in seconds, but the machine may be busy
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()  # stopped, so that reading its stderr to the end cannot wait forever
                self.proc.wait(30)
                raise RuntimeError(
                    f"server did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                )
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its worker processes."""
        return _tree_cpu(self.proc.pid)

    def database_cpu(self) -> dict[int, float]:
        """CPU seconds used so far by each PostgreSQL backend connected to the server's database
        (its pool's connections; PostgreSQL on this machine), by pid; {} on SQLite."""
        if self.database_url is None:
            return {}
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            pids = [
                int(pid)
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        return {pid: _tree_cpu(pid) for pid in pids}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of process `pid` and its descendants (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(_tree_cpu(c) for c in children)


def _served(
    server: Server, version: int, seconds: float, connections: int, token: str, chains: list[bytes] | None = None
) -> dict[str, Any]:
    """serve_rate plus the events served per CPU-second of the server (steadier than events/s when
    other work shares the machine: it is what one fully busy server core would serve)."""
    cpu, database = server.cpu_seconds(), server.database_cpu()
    result = serve_rate(server.port, token, version, seconds, connections, chains)
    used = server.cpu_seconds() - cpu
    used_database = sum(seconds - database.get(pid, 0.0) for pid, seconds in server.database_cpu().items())
    result["server_cpu_seconds"] = round(used, 2)
    result["database_cpu_seconds"] = round(used_database, 2)
    result["events_per_server_cpu_second"] = (
        round(result["events_per_second"] * result["seconds"] / used) if used else None
    )
    return result


def _cursor_of(body: bytes) -> bytes:
    # Our envelope starts {"cursor":"<cursor>","has_more":...: no JSON parse needed on the client.
    end = body.index(b'"', 11)
    return body[11:end]


def _count_items(body: bytes, feature_marker: bytes) -> int:
    return body.count(feature_marker)


def serve_rate(
    port: int, token: str, version: int, seconds: float, connections: int, chains: list[bytes] | None = None
) -> dict[str, Any]:
    """Events/s over `connections` cursor chains of 1000-event pages. `chains`, when given, holds
    each chain's next request body (empty: a new chain) and is left holding it, so that a later
    call goes on following the same chains, as a SIEM does."""
    chains = chains if chains is not None else [b""] * connections
    counts = [0] * connections
    pages = [0] * connections
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    span_ns = 100 * 86400 * 1_000_000_000

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        # Each chain starts at a different part of the store.
        start = time.time_ns() - span_ns + (span_ns * i) // (connections + 1)
        body = chains[i] or orjson.dumps(
            {"limit": 1000, "start_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start / 1e9))}
        )
        while time.monotonic() < stop:
            conn.request("POST", f"/api/v{version}/{FEATURE.value}", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {data[:200]!r}")
            n = data.count(b'"used_version"')
            counts[i] += n
            pages[i] += 1
            body = b'{"cursor":"' + _cursor_of(data) + b'"}'
            if n < 1000:  # reached the end of the store: start over
                body = orjson.dumps({"limit": 1000, "start_time": "2020-01-01T00:00:00Z"})
        chains[i] = body
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {"events_per_second": round(sum(counts) / elapsed), "pages": sum(pages), "seconds": round(elapsed, 1)}


def latency_requests(port: int, token: str, events: int) -> dict[str, bytes]:
    """The bodies of the latency requests: the cursor of a 1000-event page near the start and near
    the end of the store, and a reset from 2020 (which finds its start by binary search)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}

    def fetch(body: bytes) -> bytes:
        conn.request("POST", f"/api/v2/{FEATURE.value}", body=body, headers=headers)
        return conn.getresponse().read()

    reset = orjson.dumps({"limit": 1000, "start_time": "2020-01-01T00:00:00Z"})
    start_cursor = _cursor_of(fetch(reset))
    # Near the end: a window that starts 1500 events before the last one. The store may have been
    # built a while ago, so the window moves back until its second page is a full one.
    span_ns = 100 * 86400 * 1_000_000_000
    back = 1500
    while True:
        near_end = time.time_ns() - span_ns + (span_ns // events) * (events - back)
        end_body = orjson.dumps(
            {"limit": 1000, "start_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(near_end / 1e9))}
        )
        end_cursor = _cursor_of(fetch(end_body))
        second = fetch(b'{"cursor":"' + end_cursor + b'"}')
        if second.count(b'"used_version"') == 1000 or back >= events:
            break
        back *= 2
    conn.close()
    return {"start": b'{"cursor":"' + start_cursor + b'"}', "end": b'{"cursor":"' + end_cursor + b'"}', "reset": reset}


def page_latency(targets: dict[str, tuple[int, str, int]], repeats: int) -> dict[str, dict[str, Any]]:
    """Median and p95 latency of each latency request on each target (name -> port, token, store
    events), the targets' requests interleaved one by one so that other work on the machine weighs
    on all of them alike."""
    conns: dict[str, http.client.HTTPConnection] = {}
    bodies: dict[str, dict[str, bytes]] = {}
    samples: dict[str, dict[str, list[float]]] = {}
    for name, (port, token, events) in targets.items():
        conns[name] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        bodies[name] = latency_requests(port, token, events)
        samples[name] = {kind: [] for kind in bodies[name]}
    for kind in ("start", "end", "reset"):
        for _ in range(repeats):
            for name, (_, token, _) in targets.items():
                t = time.perf_counter()
                conns[name].request(
                    "POST",
                    f"/api/v2/{FEATURE.value}",
                    body=bodies[name][kind],
                    headers={"Authorization": f"Bearer {token}"},
                )
                conns[name].getresponse().read()
                samples[name][kind].append((time.perf_counter() - t) * 1000)
    results: dict[str, dict[str, Any]] = {}
    for name, kinds in samples.items():
        conns[name].close()
        result: dict[str, Any] = {}
        for kind, values in kinds.items():
            values.sort()
            if kind == "reset":
                result["reset_median_ms"] = round(statistics.median(values), 2)
            else:
                result[kind] = {
                    "median_ms": round(statistics.median(values), 2),
                    "p95_ms": round(values[int(len(values) * 0.95) - 1], 2),
                }
        results[name] = result
    return results


def ingest_rate(port: int, key: str, batches: int, connections: int, warm_up: int = 4) -> dict[str, Any]:
    """Events/s stored over HTTP in 1000-event batches, after `warm_up` batches that are not counted
    (the first requests build the validators and prepare the statements)."""
    now = time.time_ns()
    bodies = [orjson.dumps(event_batch(1000, now - 3600 * 1_000_000_000, 1000)) for _ in range(batches)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    stored = [0] * connections

    def post(conn: http.client.HTTPConnection, body: bytes) -> int:
        conn.request("POST", f"/api/ingest/v2/{FEATURE.value}", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:300]!r}")
        return int(json.loads(data)["stored"])

    for _ in range(warm_up):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        post(conn, orjson.dumps(event_batch(1000, now - 7200 * 1_000_000_000, 1000)))
        conn.close()

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in bodies[i::connections]:
            stored[i] += post(conn, body)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"events_per_second": round(sum(stored) / elapsed), "events": sum(stored), "seconds": round(elapsed, 2)}


def token_check(data_dir: Path, database_url: str | None = None) -> dict[str, Any]:
    """Cost of TokenService.authenticate: first use (ES256 verify) and cached (hash + record check)."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    store = open_store(settings)
    services = build_services(settings, store)
    account = store.list_accounts()[0]
    integration = store.list_integrations(account.id)[0]
    tokens = [services.tokens.issue(account, integration, f"t{i}", ALL_FEATURES, None)[0] for i in range(200)]
    started = time.perf_counter()
    for t in tokens:
        services.tokens.authenticate(f"Bearer {t}")
    cold = (time.perf_counter() - started) / len(tokens)
    n = 20000
    header = f"Bearer {tokens[0]}"
    started = time.perf_counter()
    for _ in range(n):
        services.tokens.authenticate(header)
    warm = (time.perf_counter() - started) / n
    for i, _ in enumerate(tokens):
        store.revoke_token(store.list_tokens(account.id)[-1 - i].id, time.time_ns())
    store.close()
    return {"first_use_us": round(cold * 1e6, 1), "cached_us": round(warm * 1e6, 1)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def _pg_database(base_url: str, events: int) -> str:
    """The URL of the benchmark database for `events` events on the server of `base_url`
    (siemgate_bench_1m, siemgate_bench_10m, ...), created empty when missing."""
    import psycopg

    name = f"siemgate_bench_{events // 1_000_000}m" if events % 1_000_000 == 0 else f"siemgate_bench_{events}"
    server = base_url.rstrip("/").rsplit("/", 1)[0] if base_url.count("/") > 2 else base_url.rstrip("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def _store(events: int, database_url: str | None) -> tuple[Path, dict[str, Any]]:
    """The benchmark store's data directory and credentials (built the first time, then reused)."""
    if database_url is None:
        data_dir = RESULTS / f"data-{events}"
        print(f"store: {events:,} item usages in {data_dir}", file=sys.stderr)
        return data_dir, build_store(data_dir, events)
    from pg_build import build_pg_store

    data_dir = RESULTS / f"pg-data-{events}"
    data_dir.mkdir(exist_ok=True)
    meta_path = data_dir / "bench.json"
    known = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    print(f"store: {events:,} item usages in PostgreSQL ({database_url})", file=sys.stderr)
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    meta = build_pg_store(database_url, settings, events, FEATURE, known)
    meta_path.write_text(json.dumps(meta))
    return data_dir, meta


def _integrate_log(data_dir: Path, database_url: str | None) -> float:
    """Bring the integrity log of the benchmark stream up to its head before measuring (a new
    store's first server would otherwise hash millions of entries while it is being measured);
    returns the seconds it took (0 when already done)."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    store = open_store(settings)
    try:
        started = time.perf_counter()
        for account in store.list_accounts():
            integrate(store, account.id, FEATURE, time.time_ns())
        return round(time.perf_counter() - started, 1)
    finally:
        store.close()


def serve_rounds(
    servers: dict[str, tuple[Server, str, int]], version: int, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Serving rate of each server (name -> server, token, store events), measured in
    `args.rounds` short runs that alternate between the servers, so that other work on the machine
    weighs on each alike; also each round's rate, to compare servers round by round."""
    totals: dict[str, dict[str, Any]] = {
        name: {"events": 0, "seconds": 0.0, "cpu": 0.0, "database_cpu": 0.0, "pages": 0, "rounds": []}
        for name in servers
    }
    chains = {name: [b""] * args.connections for name in servers}  # each round goes on along the same chains
    for _ in range(args.rounds):
        for name, (server, token, _) in servers.items():
            r = _served(server, version, args.seconds / args.rounds, args.connections, token, chains[name])
            t = totals[name]
            t["events"] += r["events_per_second"] * r["seconds"]
            t["seconds"] += r["seconds"]
            t["cpu"] += r["server_cpu_seconds"]
            t["database_cpu"] += r["database_cpu_seconds"]
            t["pages"] += r["pages"]
            t["rounds"].append(r["events_per_second"])
    return {
        name: {
            "events_per_second": round(t["events"] / t["seconds"]),
            "pages": t["pages"],
            "seconds": round(t["seconds"], 1),
            "server_cpu_seconds": round(t["cpu"], 2),
            "events_per_server_cpu_second": round(t["events"] / t["cpu"]) if t["cpu"] else None,
            "database_cpu_seconds": round(t["database_cpu"], 2),
            # what serving an event costs in all (server and PostgreSQL): steadiest under load
            "events_per_cpu_second": round(t["events"] / (t["cpu"] + t["database_cpu"])) if t["cpu"] else None,
            "rounds": t["rounds"],
        }
        for name, t in totals.items()
    }


def _prepared(events: int, database_url: str | None, workers: int) -> dict[str, Any]:
    """A run's description before it is measured: its store (built or reused), log integrated."""
    data_dir, meta = _store(events, database_url)
    return {
        "backend": "postgres" if database_url else "sqlite",
        "workers": workers,
        "store_events": events,
        "store_build_seconds": meta["build_seconds"],
        "log_integration_seconds": _integrate_log(data_dir, database_url),
        "data_dir": data_dir,
        "database_url": database_url,
        "meta": meta,
    }


def measure(plans: dict[str, tuple[int, str | None, bool]], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every planned run (name -> store events, database URL or None for SQLite, latency only),
    their servers up together: serving alternates between them round by round and latency
    requests interleave, so they are compared under the same load."""
    runs = {name: _prepared(events, url, args.workers) for name, (events, url, _) in plans.items()}
    for run in runs.values():
        run["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    servers: dict[str, Server] = {}
    try:
        for name, run in runs.items():
            servers[name] = Server(run["data_dir"], cpu="0", database_url=run["database_url"], workers=args.workers)
        serving = {
            name: (servers[name], runs[name]["meta"]["token"], runs[name]["store_events"])
            for name, (_, _, latency_only) in plans.items()
            if not latency_only
        }
        if serving:
            for version in (2, 1):
                for name, result in serve_rounds(serving, version, args).items():
                    runs[name][f"serve_v{version}"] = result
        targets = {name: (servers[name].port, run["meta"]["token"], run["store_events"]) for name, run in runs.items()}
        for name, latency in page_latency(targets, args.repeats).items():
            runs[name]["latency"] = latency
        for name in serving:
            run = runs[name]
            run["ingest"] = ingest_rate(
                servers[name].port, run["meta"]["ingest_key"], args.ingest_batches, args.connections
            )
    finally:
        for server in servers.values():
            server.stop()
    for name in serving:
        runs[name]["token_check"] = token_check(runs[name]["data_dir"], runs[name]["database_url"])
    for run in runs.values():
        run["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        for key in ("data_dir", "database_url", "meta"):
            del run[key]
    return runs


def _rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    latency = r["latency"]
    rows = [
        (
            "page latency at the start (median/p95)",
            f"{latency['start']['median_ms']} / {latency['start']['p95_ms']} ms",
        ),
        ("page latency at the end (median/p95)", f"{latency['end']['median_ms']} / {latency['end']['p95_ms']} ms"),
        ("reset from 2020 (median)", f"{latency['reset_median_ms']} ms"),
    ]
    if "serve_v2" in r:
        rows = [
            ("serve v2, 1000-event pages", f"{r['serve_v2']['events_per_second']:,} events/s"),
            ("serve v1, 1000-event pages", f"{r['serve_v1']['events_per_second']:,} events/s"),
            ("serve v2, per server CPU-second", f"{r['serve_v2']['events_per_server_cpu_second'] or 0:,} events"),
            ("serve v2, per CPU-second (server + database)", f"{r['serve_v2']['events_per_cpu_second'] or 0:,} events"),
            *rows,
            ("ingest over HTTP, 1000/request", f"{r['ingest']['events_per_second']:,} events/s"),
            ("token check, first use", f"{r['token_check']['first_use_us']} µs"),
            ("token check, cached", f"{r['token_check']['cached_us']} µs"),
        ]
    load = "/".join(str(x) for x in r["load_average_before"]), "/".join(str(x) for x in r["load_average_after"])
    return [*rows, ("load average (1/5/15 min) before, after", f"{load[0]}, {load[1]}")]


def _comparison(runs: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """PostgreSQL as a share of SQLite (serving), and page latency at the large store against 1M."""
    out = []
    sqlite, pg = runs.get("sqlite"), runs.get("postgres")
    if sqlite and pg and "serve_v2" in sqlite and "serve_v2" in pg:
        for v in ("serve_v2", "serve_v1"):
            share = pg[v]["events_per_second"] / max(1, sqlite[v]["events_per_second"])
            rounds = [p / max(1, s) for p, s in zip(pg[v]["rounds"], sqlite[v]["rounds"], strict=True)]
            per_cpu = pg[v]["events_per_cpu_second"] / max(1, sqlite[v]["events_per_cpu_second"])
            out.append(
                (
                    f"PostgreSQL / SQLite, {v.replace('_', ' ')} (goal >= 50 %):"
                    " all rounds; median round; per CPU-second (server + database)",
                    f"{share:.0%}; {statistics.median(rounds):.0%}; {per_cpu:.0%}",
                )
            )
    for name, run in runs.items():
        backend = name.split("-")[0]
        small = runs.get(backend)
        if name == backend or small is None:
            continue
        for where in ("start", "end"):
            ratio = run["latency"][where]["median_ms"] / small["latency"][where]["median_ms"]
            out.append(
                (f"{backend} page latency at the {where}, {name.split('-')[1]} / 1M (goal 0.8-1.2)", f"{ratio:.2f}")
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="store size (default 1,000,000)")
    parser.add_argument(
        "--seconds", type=float, default=15, help="serving time per backend and API version, over all rounds"
    )
    parser.add_argument("--connections", type=int, default=2, help="concurrent client connections")
    parser.add_argument("--ingest-batches", type=int, default=60, help="1000-event batches to ingest")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server for the default run (databases siemgate_bench_1m, ..._10m are created there);"
        " 'none' to run SQLite alone",
    )
    parser.add_argument(
        "--large-events",
        type=int,
        default=10_000_000,
        help="also measure PostgreSQL page latency on a store this large (0: skip)",
    )
    parser.add_argument("--database-url", help="run on this PostgreSQL database alone (an empty one the first time)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers N)")
    parser.add_argument("--latency-only", action="store_true", help="skip the serve and ingest rates")
    parser.add_argument("--rounds", type=int, default=5, help="serve runs alternating between the backends")
    parser.add_argument("--repeats", type=int, default=200, help="latency samples per request and store")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    plans: dict[str, tuple[int, str | None, bool]] = {}
    if args.database_url:
        plans["postgres"] = (args.events, args.database_url, args.latency_only)
    else:
        plans["sqlite"] = (args.events, None, args.latency_only)
        if args.postgres != "none":
            plans["postgres"] = (args.events, _pg_database(args.postgres, args.events), args.latency_only)
            if args.large_events:
                large = f"postgres-{args.large_events // 1_000_000}M"
                plans[large] = (args.large_events, _pg_database(args.postgres, args.large_events), True)
    runs = measure(plans, args)
    results = {"machine": machine(), "runs": runs, "comparison": dict(_comparison(runs))}
    result_file = "latest.json" if args.workers == 1 and not args.database_url else f"latest-{args.workers}w.json"
    if args.database_url:
        result_file = f"latest-postgres-{args.workers}w-{args.events}.json"
    (RESULTS / result_file).write_text(json.dumps(results, indent=2))
    print(
        f"\nsiemgate benchmarks — {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"Python {results['machine']['python']}\n"
    )
    for name, run in runs.items():
        print(
            f"  {name}, store of {run['store_events']:,} events (built in {run['store_build_seconds']} s,"
            f" its log integrated in {run['log_integration_seconds']} s more this run)"
        )
        for label, value in _rows(run):
            print(f"    {label:<46} {value:>26}")
    for label, value in _comparison(runs):
        print(f"  {label:<100} {value:>16}")
    print(f"\nfull results: {RESULTS / result_file}")


if __name__ == "__main__":
    main()
