"""Randomized adversarial histories against real `siemgate serve` processes (docs/cursors.md,
"The model the history checker enforces").

One history: a store (a SQLite file, or a fresh PostgreSQL schema) served by several `serve`
processes on 127.0.0.1; writer processes post batches of 1 to `max_batch` sign-in attempts to
random servers (events late by seconds to days, across day partitions; events of their own sent
again; events of a shared pool sent by several writers at once); reader processes follow cursor
chains on random servers (page sizes 1 to 1000, bounded and open windows). Meanwhile faults are
injected: a server killed with SIGKILL and started again, a writer killed with SIGKILL (and
replaced), a reader's token revoked (a new one is issued), the token signing key rotated. Every
send, acknowledgement and page is recorded in ops/*.jsonl; the stream as stored at the end in
final.json; `history_model.check` judges them. Everything is derived from one seed, but races
between processes do not replay: a failing history's folder is the evidence, re-checked offline
with `PYTHONPATH=tests python -m history.recheck FOLDER`.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from siemgate.composition.wiring import open_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from support.ports import free_port
from support.stores import drop_pg_schema, new_pg_schema, pg_schema_url

FEATURE = Feature.SIGNINATTEMPTS
SECOND = 1_000_000_000
DAY = 86_400 * SECOND
LIMITS = [1, 1, 2, 3, 7, 10, 50, 100, 250, 1000]
POLL = 0.02


@dataclass
class Scale:
    """How big a history is."""

    servers: int = 2
    writers: int = 2
    readers: int = 3
    seconds: float = 8.0  # how long the writers write
    max_batch: int = 1000
    faults: int = 4  # faults injected while the writers write
    pace: float = 0.01  # a writer's pause between batches (keeps a loaded machine usable)
    reader_timeout: float = 180.0  # readers must reach the end of data this long after the writers stop
    limits: tuple[int, ...] = tuple(LIMITS)  # the page sizes readers choose from


@dataclass
class Outcome:
    seed: int
    backend: str
    folder: Path
    violations: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)


# --- the processes -------------------------------------------------------------------------------


class _Log:
    """One process's operation log: a JSON object a line, flushed at once (a kill -9 loses at most
    the line being written, which the loader skips)."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", buffering=1)

    def __call__(self, **record: Any) -> None:
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")


def _event(uuid: str, ts: int, rng: random.Random) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "session_uuid": uuid,
        "timestamp": format_ns(ts),
        "category": "success",
        "type": "credentials_ok",
        "country": rng.choice(["CA", "FR", "JP"]),
        "details": None,
        "target_user": {
            "uuid": uuid,
            "name": "Ada",
            "email": "ada@example.com",
            "user_type": "user",
            "user_account_uuid": uuid,
        },
        "client": {
            "app_name": "1Password Browser Extension",
            "app_version": "20240",
            "platform_name": "Chrome",
            "platform_version": "120",
            "os_name": "MacOSX",
            "os_version": "14",
            "ip_address": "192.0.2.1",
        },
        "location": {"country": "CA", "region": "Ontario", "city": "Toronto", "latitude": 43.64, "longitude": -79.4},
        "account_uuid": uuid,
    }


def _lateness(rng: random.Random) -> int:
    """How old an event is when sent: mostly fresh, some seconds to hours late, some days late
    (1 to 3 days: across day partitions)."""
    roll = rng.random()
    if roll < 0.75:
        return rng.randint(0, 5 * SECOND)
    if roll < 0.9:
        return rng.randint(5 * SECOND, 6 * 3600 * SECOND)
    return rng.randint(1 * DAY, 3 * DAY)


def writer_main(wid: int, seed: int, cfg: dict[str, Any]) -> None:
    """Post batches until the stop file appears; retry a batch (on any server) until acknowledged."""
    rng = random.Random(seed)
    folder = Path(cfg["folder"])
    log = _Log(folder / "ops" / f"writer-{wid}.jsonl")
    pool: list[tuple[str, int]] = [tuple(e) for e in cfg["pool"]]
    mine: list[tuple[str, int]] = []
    bodies: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {cfg['ingest_key']}"}
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=60) for p in cfg["ports"]]
    batch_no = 0
    stop = folder / "stop"
    while not stop.exists():
        size = rng.choice([1, 2, 5, 10, 20, 50, 100]) if rng.random() < 0.9 else rng.randint(1, cfg["max_batch"])
        events: list[tuple[str, int]] = []
        now = time.time_ns()
        for _ in range(size):
            uuid = new_id()
            events.append((uuid, now - _lateness(rng)))
        if mine and rng.random() < 0.3:  # sent again: the same uuid and timestamp
            events += rng.sample(mine, min(len(mine), rng.randint(1, 5)))
        if rng.random() < 0.3:  # the shared pool: other writers send these too, at the same time
            events += rng.sample(pool, rng.randint(1, min(len(pool), 5)))
        rng.shuffle(events)
        for uuid, ts in events:
            if uuid not in bodies:
                bodies[uuid] = _event(uuid, ts, random.Random(uuid))
        body = json.dumps([bodies[u] for u, _ in events]).encode()
        batch_no += 1
        log(k="send", w=wid, b=batch_no, t=time.time(), ev=events)
        while True:
            client = rng.choice(clients)
            try:
                response = client.post(f"/api/ingest/v2/{FEATURE.value}", content=body, headers=headers)
            except httpx.HTTPError:
                time.sleep(POLL)  # a server is down (killed): another one, or the same once restarted
                continue
            if response.status_code == 200:
                log(k="ack", w=wid, b=batch_no, t=time.time())
                break
            if response.status_code >= 500 or response.status_code == 429:
                log(k="retry", w=wid, b=batch_no, st=response.status_code)
                time.sleep(POLL)
                continue
            log(k="error", w=wid, what=f"batch {batch_no}: {response.status_code} {response.text[:300]}")
            break
        mine += [e for e in events if e not in mine][:5]
        time.sleep(cfg["pace"])


def reader_main(rid: int, seed: int, cfg: dict[str, Any]) -> None:
    """Reset once, then follow the cursor on random servers until the end of data is seen after
    the writers stopped. A 401 (its token was revoked) waits for the next token in its file."""
    rng = random.Random(seed)
    folder = Path(cfg["folder"])
    log = _Log(folder / "ops" / f"reader-{rid}.jsonl")
    tokens_file = folder / f"tokens-{rid}.txt"
    tokens = tokens_file.read_text().split()
    token = tokens[-1]
    now = time.time_ns()
    start = now - rng.choice([60 * SECOND, 3600 * SECOND, DAY, 2 * DAY, 4 * DAY])
    end = None if rng.random() < 0.6 else start + rng.choice([3600 * SECOND, DAY, 3 * DAY, 5 * DAY])
    limit = rng.choice(cfg["limits"])
    idle = rng.choice([0.0, 0.001, 0.01, 0.05])  # how long it waits after an empty page
    log(k="reader", r=rid, start=start, end=end, limit=limit)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=60) for p in cfg["ports"]]
    reset: dict[str, Any] = {"start_time": format_ns(start), "limit": limit}
    if end is not None:
        reset["end_time"] = format_ns(end)
    cursor: str | None = None
    done_file = folder / "writers-done"
    deadline: float | None = None
    client = rng.choice(clients)
    while True:
        done = done_file.exists()
        if done and deadline is None:
            deadline = time.monotonic() + cfg["reader_timeout"]
        if deadline is not None and time.monotonic() > deadline:
            return  # not finished: the checker says so
        if rng.random() < 0.5:
            client = rng.choice(clients)
        request = reset if cursor is None else {"cursor": cursor}
        t0 = time.time()
        try:
            response = client.post(
                f"/api/v2/{FEATURE.value}", json=request, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError:
            client = rng.choice(clients)
            time.sleep(POLL)
            continue
        t1 = time.time()
        if response.status_code == 401:
            log(k="auth", r=rid, t=t1)
            while token in tokens or not tokens:  # the harness writes a new token before revoking the old
                time.sleep(POLL)
                tokens = [t for t in tokens_file.read_text().split() if t != token]
            token = tokens[-1]
            continue
        if response.status_code in (429, 500, 502, 503):
            log(k="retry", r=rid, st=response.status_code)
            time.sleep(POLL)
            continue
        if response.status_code != 200:
            log(k="error", what=f"reader {rid}: {response.status_code} {response.text[:300]}")
            return
        data = response.json()
        uuids = [item["uuid"] for item in data["items"]]
        log(k="page", r=rid, t0=t0, t1=t1, req=cursor, st=200, u=uuids, hm=data["has_more"], c=data["cursor"])
        cursor = data["cursor"]
        if done and not data["has_more"]:  # the end of data, read after every writer had stopped
            log(k="finished", r=rid)
            return
        if not uuids:
            time.sleep(idle)  # at the head: some poll in a tight loop, some like a connector


# --- one history -----------------------------------------------------------------------------------


class _Servers:
    def __init__(self, folder: Path, env: dict[str, str], count: int) -> None:
        self.folder = folder
        self.env = env
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        for i in range(count):
            self.start(i)
        for i in range(count):
            self.wait(i)

    def start(self, i: int) -> None:
        env = {**self.env, "SIEMGATE_DATA_DIR": str(self.folder / f"server-{i}")}
        with (self.folder / f"server-{i}.log").open("ab") as out:
            self.procs[i] = subprocess.Popen(
                [sys.executable, "-m", "siemgate", "serve", "--host", "127.0.0.1", "--port", str(self.ports[i])],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait(self, i: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self.procs[i]
            assert proc is not None
            if proc.poll() is not None:
                raise RuntimeError(f"server {i} exited: {(self.folder / f'server-{i}.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.ports[i]}/healthz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {i} did not start in {timeout}s")
            time.sleep(0.05)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for a server still running after 10 s (the history is over)."""
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def _store_url(backend: str, folder: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{(folder / 'siemgate.db').resolve()}", None
    schema = new_pg_schema()
    return pg_schema_url(schema), schema


def _drop_schema(schema: str | None) -> None:
    if schema is not None:
        drop_pg_schema(schema)


def run_history(backend: str, seed: int, folder: Path, scale: Scale) -> Outcome:
    """Run one history in `folder` (emptied first) and check it."""
    from .history_model import check, load, summary

    if folder.exists():
        shutil.rmtree(folder)
    (folder / "ops").mkdir(parents=True)
    rng = random.Random(seed)
    url, schema = _store_url(backend, folder)
    faults: list[str] = []
    servers: _Servers | None = None
    procs: dict[str, multiprocessing.process.BaseProcess] = {}
    try:
        admin = open_services(load_settings(data_dir=folder / "admin", database_url=url))
        try:
            store = admin.store
            account = store.create_account(new_id(), "History", admin.clock())

            def new_token(rid: int) -> tuple[str, str]:
                integration = store.create_integration(
                    account.id, new_id(), "other", f"reader-{rid}-{new_id()[:6]}", "", admin.clock()
                )
                token, record = admin.tokens.issue(account, integration, f"reader {rid}", ALL_FEATURES, None)
                return token, record.id

            token_ids: dict[int, str] = {}
            for rid in range(scale.readers):
                token, token_ids[rid] = new_token(rid)
                (folder / f"tokens-{rid}.txt").write_text(token + "\n")
            ingest_key, _ = admin.ingest_keys.create(account, "history writers", ALL_FEATURES)
            now = time.time_ns()
            pool = [(new_id(), now - _lateness(rng)) for _ in range(50)]
            env = {
                **os.environ,
                "SIEMGATE_DATABASE_URL": url,
                "SIEMGATE_LOG_LEVEL": "warning",
                "SIEMGATE_RATE_LIMIT_PER_MINUTE": "100000000",
                "SIEMGATE_ACCOUNT_RATE_LIMIT_PER_MINUTE": "100000000",
                "SIEMGATE_RATE_LIMIT_PER_HOUR": "1000000000",
                "SIEMGATE_ALERTS_ENABLED": "false",
                "SIEMGATE_DATABASE_POOL_SIZE": "3",
            }
            for name in ("SIEMGATE_CONFIG", "SIEMGATE_PORT", "SIEMGATE_HOST", "SIEMGATE_REDIS_URL"):
                env.pop(name, None)
            servers = _Servers(folder, env, scale.servers)
            cfg = {
                "folder": str(folder),
                "ports": servers.ports,
                "ingest_key": ingest_key,
                "pool": pool,
                "max_batch": scale.max_batch,
                "pace": scale.pace,
                "reader_timeout": scale.reader_timeout,
                "limits": list(scale.limits),
            }
            ctx = multiprocessing.get_context("spawn")
            writer_ids = list(range(scale.writers))
            for rid in range(scale.readers):
                procs[f"reader-{rid}"] = ctx.Process(target=reader_main, args=(rid, rng.randrange(2**32), cfg))
            for wid in writer_ids:
                procs[f"writer-{wid}"] = ctx.Process(target=writer_main, args=(wid, rng.randrange(2**32), cfg))
            for p in procs.values():
                p.start()
            started = time.monotonic()
            times = sorted(rng.uniform(0.15, 0.85) * scale.seconds for _ in range(scale.faults))
            kinds = ["kill-server", "revoke-token", "rotate-key", "kill-writer"]
            for n, at in enumerate(times):
                while time.monotonic() - started < at:
                    time.sleep(POLL)
                kind = kinds[n % len(kinds)] if n < len(kinds) else rng.choice(kinds)
                if kind == "kill-server":
                    i = rng.randrange(scale.servers)
                    servers.kill(i)
                    servers.start(i)
                    servers.wait(i)
                    faults.append(f"{at:.1f}s: server {i} killed (SIGKILL) and started again")
                elif kind == "revoke-token":
                    rid = rng.randrange(scale.readers)
                    token, token_id = new_token(rid)
                    with (folder / f"tokens-{rid}.txt").open("a") as f:
                        f.write(token + "\n")
                    store.revoke_token(token_ids[rid], admin.clock())
                    faults.append(f"{at:.1f}s: reader {rid}'s token revoked, a new one issued")
                    token_ids[rid] = token_id
                elif kind == "rotate-key":
                    new_kid, _ = admin.keys.rotate(store.live_token_kids(admin.clock()))
                    faults.append(f"{at:.1f}s: signing key rotated to {new_kid}")
                else:
                    wid = rng.choice(writer_ids)
                    proc = procs[f"writer-{wid}"]
                    if proc.pid is not None and proc.is_alive():
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.join(10)
                    new_wid = max(writer_ids) + 1
                    writer_ids.append(new_wid)
                    procs[f"writer-{new_wid}"] = ctx.Process(
                        target=writer_main, args=(new_wid, rng.randrange(2**32), cfg)
                    )
                    procs[f"writer-{new_wid}"].start()
                    faults.append(f"{at:.1f}s: writer {wid} killed (SIGKILL), writer {new_wid} started")
            while time.monotonic() - started < scale.seconds:
                time.sleep(POLL)
            (folder / "stop").touch()
            for name, p in procs.items():
                if name.startswith("writer"):
                    p.join(120)
            done_at = time.time()
            (folder / "writers-done").touch()
            for name, p in procs.items():
                if name.startswith("reader"):
                    p.join(scale.reader_timeout + 60)
            events = []
            after = 0
            while True:
                rows = store.read_events(account.id, FEATURE, after, 0, None, 1000)
                if not rows:
                    break
                events += [[seq, json.loads(body)["uuid"]] for seq, body, _ in rows]
                after = rows[-1][0]
            final = {
                "events": events,
                "head": store.head_seq(account.id, FEATURE),
                "writers_done_at": done_at,
                "readers": scale.readers,
            }
            (folder / "final.json").write_text(json.dumps(final))
        finally:
            admin.close()
    finally:
        for p in procs.values():
            if p.is_alive():
                p.kill()
                p.join(10)
        if servers is not None:
            servers.stop()
        _drop_schema(schema)
    (folder / "seed.txt").write_text(f"{seed} {backend}\n")
    (folder / "faults.txt").write_text("\n".join(faults) + "\n")
    history = load(folder)
    violations = check(history)
    return Outcome(seed, backend, folder, violations, summary(history), faults)
