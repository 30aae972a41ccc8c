"""What alerting costs ingest: HTTP ingest of sign-in attempts with the starter rules on, against
the same with alerting off, in alternating pairs within one run (the median ratio of the pairs
is the figure; docs/benchmarks.md, "Alerting on ingest").

Each run starts a fresh server (its own SQLite store) with SIEMGATE_ALERTS_ENABLED on or off,
ingests warm-up batches, then `--batches` 1000-event batches over `--connections` connections.
The events: `--users` people, 90 % successful sign-ins (countries they use, so the first-seen rule
looks up every one) and 10 % failed passwords (counted by the brute-force and credential-stuffing
windows). Two mixes (`--mixes`):

- realistic: the batches spread over the last `--days` days (every batch a slice of time), so
  ordinary failures rarely meet in one window, with brute-force bursts (10 failures of one person
  within a minute) injected so that the run fires the alert volume the precision benchmark
  measures on 90 days of simulated activity (`--alerts-per-1000-per-day`, docs/alerts.md,
  "Precision"): about 34 alerts for 500 people over 5 days.
- dense (the worst case): every batch one second after the previous, the whole run within a
  minute, so most people and addresses cross a threshold (about 290 alerts).

Two rates per run: events per second (wall clock), and events per CPU-second of the server
process (/proc), which a machine shared with other work disturbs much less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Server
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.sqlite import SQLiteStore

COUNTRIES = ["CA", "US", "FR", "DE", "GB"]


def signin_event(user: dict[str, Any], ts: int, ok: bool, rng: random.Random) -> dict[str, Any]:
    country = user["countries"][rng.randrange(len(user["countries"]))]
    return {
        "uuid": new_id(),
        "session_uuid": new_id(),
        "timestamp": format_ns(ts),
        "category": "success" if ok else "credentials_failed",
        "type": "credentials_ok" if ok else "password_secret_bad",
        "country": country,
        "target_user": {k: user[k] for k in ("uuid", "name", "email")},
        "client": {
            "app_name": "1Password for Mac",
            "app_version": "81024002",
            "platform_name": "Mac",
            "platform_version": "14.2",
            "os_name": "MacOSX",
            "os_version": "14.2.1",
            "ip_address": f"198.51.100.{rng.randrange(1, 255)}",
        },
        "location": {"country": country, "region": "-", "city": "-", "latitude": 43.6, "longitude": -79.4},
    }


def signin_batch(
    users: list[dict[str, Any]], n: int, start_ns: int, step_ns: int, rng: random.Random, bursts: int = 0
) -> list[dict[str, Any]]:
    """`n` sign-ins `step_ns` apart from `start_ns`, 10 % failed; the last `bursts` * 10 of them
    replaced by brute-force bursts (10 failures of one person, 6 s apart, from their own address)."""
    times = [start_ns + i * step_ns for i in range(n)]
    events = [signin_event(rng.choice(users), ts, rng.random() < 0.9, rng) for ts in times]
    for b in range(bursts):
        user, at = rng.choice(users), start_ns + rng.randrange(n - 10) * step_ns
        ip = f"203.0.113.{rng.randrange(1, 255)}"
        for k in range(10):
            slot = n - (b + 1) * 10 + k
            times[slot] = at + k * 6 * 10**9
            events[slot] = signin_event(user, times[slot], False, rng)
            events[slot]["client"]["ip_address"] = ip
    return [event for _, event in sorted(zip(times, events, strict=True), key=lambda pair: pair[0])]


def batches(
    args: argparse.Namespace, mix: str, users: list[dict[str, Any]], now: int
) -> tuple[list[bytes], list[bytes]]:
    """(warm-up bodies, timed bodies) of one mix, the same for every run."""
    rng = random.Random(7)
    if mix == "dense":
        warm = [signin_batch(users, 1000, now - 7200 * 10**9 + i * 10**9, 10**6, rng) for i in range(4)]
        timed = [signin_batch(users, 1000, now - 3600 * 10**9 + i * 10**9, 10**6, rng) for i in range(args.batches)]
    else:
        span = int(args.days * 86400 * 10**9) // (args.batches + 4)  # the time one batch covers
        alerts = args.alerts_per_1000_per_day * len(users) / 1000 * args.days * args.batches / (args.batches + 4)
        per = [round(alerts * (i + 1) / args.batches) - round(alerts * i / args.batches) for i in range(args.batches)]
        start = now - int(args.days * 86400 * 10**9) - 3600 * 10**9
        warm = [signin_batch(users, 1000, start + i * span, span // 1000, rng) for i in range(4)]
        timed = [
            signin_batch(users, 1000, start + (4 + i) * span, span // 1000, rng, per[i]) for i in range(args.batches)
        ]
    return [orjson.dumps(b) for b in warm], [orjson.dumps(b) for b in timed]


def ingest_key_for(data_dir: Path) -> str:
    """A fresh store in `data_dir` with one account; its ingest key."""
    store = SQLiteStore(data_dir / "siemgate.db")
    store.migrate()
    services = build_services(load_settings(data_dir=data_dir, alerts_enabled=False), store)
    account = store.create_account(new_id(), "Bench", time.time_ns())
    key, _ = services.ingest_keys.create(account, "bench", ALL_FEATURES)
    services.close()
    return key


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(alerts: bool, args: argparse.Namespace, bodies: list[bytes], warm: list[bytes]) -> tuple[float, float, int]:
    """(events per second, events per CPU-second of the server) while the timed batches ran, and
    the number of alerts fired."""
    import http.client
    import threading

    with tempfile.TemporaryDirectory(prefix="siemgate-bench-alerts-") as tmp:
        data_dir = Path(tmp)
        key = ingest_key_for(data_dir)
        server = Server(data_dir, cpu="0", extra_env={"SIEMGATE_ALERTS_ENABLED": "true" if alerts else "false"})
        try:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

            def post(conn: http.client.HTTPConnection, body: bytes) -> int:
                conn.request("POST", "/api/ingest/v2/signinattempts", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {data[:300]!r}")
                return int(json.loads(data)["stored"])

            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            for body in warm:
                post(conn, body)
            conn.close()
            stored = [0] * args.connections

            def worker(i: int) -> None:
                c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                for body in bodies[i :: args.connections]:
                    stored[i] += post(c, body)
                c.close()

            started, cpu_started = time.perf_counter(), cpu_seconds(server.proc.pid)
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed, cpu = time.perf_counter() - started, cpu_seconds(server.proc.pid) - cpu_started
            rates = sum(stored) / elapsed, sum(stored) / cpu
        finally:
            server.stop()
        db = sqlite3.connect(data_dir / "siemgate.db")
        try:
            fired = int(db.execute("SELECT count(*) FROM alerts").fetchone()[0])
        finally:
            db.close()
        return (*rates, fired)


def pairs_of(mix: str, args: argparse.Namespace, users: list[dict[str, Any]]) -> dict[str, Any]:
    """Alternating on/off pairs of one mix; the medians of their ratios."""
    warm, bodies = batches(args, mix, users, time.time_ns())
    pairs = []
    for i in range(args.pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        runs = {on: one_run(on, args, bodies, warm) for on in order}
        (on, on_cpu, fired), (off, off_cpu, _) = runs[True], runs[False]
        pairs.append({"on": round(on), "off": round(off), "ratio": on / off, "alerts": fired,
                      "on_cpu": round(on_cpu), "off_cpu": round(off_cpu), "cpu_ratio": on_cpu / off_cpu,
                      "load": os.getloadavg()[0]})  # fmt: skip
        line = (
            f"{mix} pair {i + 1}: on {on:,.0f} ev/s, off {off:,.0f} ev/s, ratio {on / off:.2f}; per server CPU-second"
        )
        print(f"{line} on {on_cpu:,.0f}, off {off_cpu:,.0f}, ratio {on_cpu / off_cpu:.2f}; {fired} alerts; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    return {
        "mix": mix,
        "pairs": pairs,
        "median_ratio": round(statistics.median(p["ratio"] for p in pairs), 3),
        "median_on": round(statistics.median(p["on"] for p in pairs)),
        "median_off": round(statistics.median(p["off"] for p in pairs)),
        "median_cpu_ratio": round(statistics.median(p["cpu_ratio"] for p in pairs), 3),
        "median_on_cpu": round(statistics.median(p["on_cpu"] for p in pairs)),
        "median_off_cpu": round(statistics.median(p["off_cpu"] for p in pairs)),
        "median_alerts": statistics.median(p["alerts"] for p in pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--mixes", default="realistic,dense", help="realistic, dense (the worst case), or both")
    parser.add_argument("--days", type=float, default=5.5, help="realistic mix: the days the batches cover")
    help = "realistic mix: alerts injected per 1,000 people per day (the precision benchmark's)"
    parser.add_argument("--alerts-per-1000-per-day", type=float, default=13.5, help=help)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    users = [
        {"uuid": new_id(), "name": f"User {i}", "email": f"user{i}@example.com",
         "countries": rng.sample(COUNTRIES, rng.choice([1, 1, 1, 2]))}
        for i in range(args.users)
    ]  # fmt: skip
    results = [pairs_of(mix, args, users) for mix in args.mixes.split(",")]
    if args.json:
        print(json.dumps({"users": args.users, "batches": args.batches, "results": results}))
        return
    for r in results:
        print(f"{r['mix']}: alerting on/off ingest ratio (median of {args.pairs} pairs): {r['median_ratio']:.2f} "
              f"({r['median_on']:,} vs {r['median_off']:,} events/s); per server CPU-second "
              f"{r['median_cpu_ratio']:.2f} ({r['median_on_cpu']:,} vs {r['median_off_cpu']:,}); "
              f"{r['median_alerts']:g} alerts per run")  # fmt: skip


if __name__ == "__main__":
    main()
