"""What alerting costs ingest: HTTP ingest of sign-in attempts with the starter rules on, against
the same with alerting off, in alternating pairs within one run (the median ratio of the pairs
is the figure; docs/benchmarks.md, "Alerting on ingest").

Each pair starts two fresh servers (each its own SQLite store, pinned to the same core), one with
SIEMGATE_ALERTS_ENABLED on and one off, ingests warm-up batches into both, then the same
`--batches` 1000-event batches over `--connections` connections, alternating between the two
servers every `--chunk` batches (and which goes first), so both meet the same load from the rest
of the machine; the pair's ratio is on / off.
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

Both stores hold `--history-days` (default 7) of the account's ordinary activity first (the
simulator's, every stream, the same in both), as every store in use does: with an empty account
the sign-ins are appended at the very end of SQLite's b-trees, its cheapest insert, until the
first alert is recorded in the audit stream (which sorts after them) and moves every later insert
into the middle of the tree: the alerting server alone then paid ~1 µs per event for an effect
any account with audit history has anyway (docs/benchmarks.md, "Fourth round").
`--history-days 0` measures the empty account.

Two rates per server: events per second (wall clock, the time its chunks took), and events per
CPU-second of the server process (/proc) from its first timed batch until its log worker has
integrated the last one (the work off the request path, and the idle checks of both servers in
between, included), which a machine shared with other work disturbs much less.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
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
from siemgate.simulate.runner import simulate_history
from siemgate.simulate.world import build_world
from siemgate.store.sqlite import SQLiteStore

COUNTRIES = ["CA", "US", "FR", "DE", "GB"]
ACCOUNT_UUID = new_id()
HISTORY_END_NS = time.time_ns()
HISTORY_BEFORE_DAYS = 6.0  # the history ends before the timed batches' days begin


def make_users(count: int) -> list[dict[str, Any]]:
    """`count` people, each signing in from one country or two (the same for every run)."""
    rng = random.Random(7)
    return [
        {"uuid": new_id(), "name": f"User {i}", "email": f"user{i}@example.com",
         "countries": rng.sample(COUNTRIES, rng.choice([1, 1, 1, 2]))}
        for i in range(count)
    ]  # fmt: skip


def realistic_batches(count: int = 40, users: int = 500) -> tuple[list[bytes], list[bytes]]:
    """(warm-up bodies, `count` timed bodies) of the realistic mix with the bench's defaults."""
    shape = argparse.Namespace(batches=count, days=5.5, alerts_per_1000_per_day=13.5)
    return batches(shape, "realistic", make_users(users), time.time_ns())


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


def ingest_key_for(data_dir: Path, history_days: float) -> str:
    """A fresh store in `data_dir` with one account and `history_days` of its ordinary activity
    before the run (the simulator's, every stream, the same in every store); its ingest key."""
    store = SQLiteStore(data_dir / "siemgate.db")
    store.migrate()
    services = build_services(load_settings(data_dir=data_dir, alerts_enabled=False), store)
    account = store.create_account(ACCOUNT_UUID, "Bench", time.time_ns())
    key, _ = services.ingest_keys.create(account, "bench", ALL_FEATURES)
    if history_days:
        world = build_world(account.uuid, account.name, 500, seed=7)
        end = HISTORY_END_NS - int(HISTORY_BEFORE_DAYS * 86400 * 10**9)
        simulate_history(services.writer, account.id, world, days=history_days, end_ns=end, seed=7, progress=False)
    services.close()
    return key


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alert_count(data_dir: Path) -> int:
    """The alerts stored so far in the run's store."""
    db = sqlite3.connect(data_dir / "siemgate.db")
    try:
        return int(db.execute("SELECT count(*) FROM alerts").fetchone()[0])
    finally:
        db.close()


class Site:
    """A fresh server (its own SQLite store) with alerting on or off (and `env` added to its
    environment), and `connections` HTTP connections to it; `send` posts batches over them at once
    and adds the wall-clock time they took."""

    def __init__(
        self, alerts: bool, data_dir: Path, connections: int, history_days: float, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        key = ingest_key_for(data_dir, history_days)
        env = {**(env or {}), "SIEMGATE_ALERTS_ENABLED": "true" if alerts else "false"}
        self.server = Server(data_dir, cpu="0", extra_env=env)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conns = [
            http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120) for _ in range(connections)
        ]
        self.stored, self.wall = 0, 0.0

    def post(self, conn: http.client.HTTPConnection, body: bytes) -> int:
        conn.request("POST", "/api/ingest/v2/signinattempts", body=body, headers=self.headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:300]!r}")
        return int(json.loads(data)["stored"])

    def settle(self) -> None:
        """Wait until the server's log worker has integrated every stored event (it runs every 2 s,
        off the request path): the CPU a batch costs includes its integration."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            db = sqlite3.connect(self.data_dir / "siemgate.db", timeout=30)
            try:
                behind = db.execute(
                    "SELECT count(*) FROM streams s LEFT JOIN log_state l"
                    " ON l.account_id = s.account_id AND l.feature = s.feature WHERE coalesce(l.size, -1) < s.head_seq"
                ).fetchone()[0]
            finally:
                db.close()
            if not behind:
                return
            time.sleep(0.1)
        raise RuntimeError("the server's log worker did not integrate the events within 2 minutes")

    def send(self, bodies: list[bytes]) -> None:
        done = [0] * len(self.conns)

        def worker(i: int) -> None:
            for body in bodies[i :: len(self.conns)]:
                done[i] += self.post(self.conns[i], body)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(self.conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.wall += time.perf_counter() - started
        self.stored += sum(done)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.server.stop()


def feed(sites: list[Site], bodies: list[bytes], chunk: int) -> list[float]:
    """Send `bodies` to every site in chunks of `chunk` batches, a different site first at each
    chunk, so that all meet the same load from the rest of the machine. Returns the CPU seconds each
    server used from then until its log worker integrated the last batch (`Site.settle`)."""
    before = [cpu_seconds(site.server.proc.pid) for site in sites]
    for n, start in enumerate(range(0, len(bodies), chunk)):
        first = n % len(sites)
        for site in sites[first:] + sites[:first]:
            site.send(bodies[start : start + chunk])
    spent = []
    for site, cpu in zip(sites, before, strict=True):
        site.settle()
        spent.append(cpu_seconds(site.server.proc.pid) - cpu)
    return spent


def use_sitecustomize(folder: Path, text: str) -> None:
    """Servers started from now on import a `sitecustomize.py` holding `text` (written to `folder`):
    how the diagnostic benches patch siemgate inside its servers without changing it."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(text)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def one_pair(args: argparse.Namespace, bodies: list[bytes], warm: list[bytes], on_first: bool) -> dict[str, Any]:
    """Two fresh servers, alerting on and off, fed the same batches in alternating chunks of
    `--chunk` batches (the order alternating too), so both see the same load on the machine; the
    one started first (`on_first`) alternates from pair to pair too, since of two servers of the
    same code the one started first can run a few percent faster (docs/benchmarks.md, ninth round).
    Rates (events per second, per server CPU-second) of each, and the alerts the timed batches fired."""
    with tempfile.TemporaryDirectory(prefix="siemgate-bench-alerts-") as tmp:
        sites = {
            on: Site(on, Path(tmp) / ("on" if on else "off"), args.connections, args.history_days)
            for on in ((True, False) if on_first else (False, True))
        }
        try:
            for site in sites.values():
                site.send(warm)
                site.settle()
                site.stored, site.wall = 0, 0.0
            before = alert_count(sites[True].data_dir)
            # all the CPU the batches cost, their logs' integration included
            cpu = dict(zip((True, False), feed([sites[True], sites[False]], bodies, args.chunk), strict=True))
        finally:
            for site in sites.values():
                site.close()
        on, off = sites[True], sites[False]
        return {"on": on.stored / on.wall, "off": off.stored / off.wall, "on_cpu": on.stored / cpu[True],
                "off_cpu": off.stored / cpu[False], "alerts": alert_count(on.data_dir) - before}  # fmt: skip


def pairs_of(mix: str, args: argparse.Namespace, users: list[dict[str, Any]]) -> dict[str, Any]:
    """Alternating on/off pairs of one mix; the medians of their ratios."""
    warm, bodies = batches(args, mix, users, time.time_ns())
    pairs = []
    for i in range(args.pairs):
        r = one_pair(args, bodies, warm, on_first=i % 2 == 0)
        on, off, on_cpu, off_cpu, fired = r["on"], r["off"], r["on_cpu"], r["off_cpu"], r["alerts"]
        pairs.append({"on": round(on), "off": round(off), "ratio": on / off, "alerts": fired,
                      "on_cpu": round(on_cpu), "off_cpu": round(off_cpu), "cpu_ratio": on_cpu / off_cpu,
                      "load": os.getloadavg()[0]})  # fmt: skip
        line = (
            f"{mix} pair {i + 1}: on {on:,.0f} ev/s, off {off:,.0f} ev/s, ratio {on / off:.2f}; per server CPU-second"
        )
        print(f"{line} on {on_cpu:,.0f}, off {off_cpu:,.0f}, ratio {on_cpu / off_cpu:.2f}; {fired} alerts; "
              f"{'on' if i % 2 == 0 else 'off'} started first; load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
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
    parser.add_argument("--chunk", type=int, default=4, help="batches sent to one server before the other")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--mixes", default="realistic,dense", help="realistic, dense (the worst case), or both")
    parser.add_argument("--days", type=float, default=5.5, help="realistic mix: the days the batches cover")
    help = "realistic mix: alerts injected per 1,000 people per day (the precision benchmark's)"
    parser.add_argument("--alerts-per-1000-per-day", type=float, default=13.5, help=help)
    help = "days of the account's ordinary activity (simulated, every stream) stored before the run; 0: a fresh account"
    parser.add_argument("--history-days", type=float, default=7.0, help=help)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    users = make_users(args.users)
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
