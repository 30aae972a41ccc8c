"""Shared by the retention tests: services on a fixed clock (midnight UTC, so test days are
calendar days), audit events, and filling streams with days of them through the EventWriter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

import siemgate
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.services import Services
from siemgate.store.base import Account
from siemgate.store.sqlite import SQLiteStore
from support.clocks import FixedClock

S = 1_000_000_000
DAY = 86400 * S
NOW = (1_900_000_000 // 86400) * DAY  # midnight UTC: the test days are calendar days
AUDIT, SIGNIN = Feature.AUDITEVENTS, Feature.SIGNINATTEMPTS


def open_services(data_dir: Path, **settings: Any) -> Services:
    store = SQLiteStore(data_dir / "siemgate.db")
    store.migrate()
    return build_services(load_settings(data_dir=data_dir, alerts_enabled=False, **settings), store, FixedClock(NOW))


def audit(ts: int, n: int) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(ts),
        "actor_uuid": "ACTOR22222222222222222222A",
        "action": "view",
        "object_type": "item",
        "object_uuid": f"item-{n}",
        "session": {"uuid": "SESSION2222222222222222222", "ip": "192.0.2.1"},
    }


def fill(services: Services, account: Account, days: int, per_day: int, feature: Feature = AUDIT) -> int:
    """per_day events on each of `days` days ending 200 days ago, written in batches of 5000."""
    first = NOW - 200 * DAY - days * DAY
    batch: list[dict[str, Any]] = []
    total = 0
    for day in range(days):
        for i in range(per_day):
            batch.append(audit(first + day * DAY + i * (DAY // per_day), i))
            if len(batch) == 5000:
                total += services.writer.write(account.id, feature, batch).stored
                batch = []
    if batch:
        total += services.writer.write(account.id, feature, batch).stored
    return total


PURGE_RECORD = b'\\"kind\\":\\"retention-purge\\"'  # in the aux_info of siemgate's record of a purge
REPLAY_RECORD = b'\\"kind\\":\\"archive-replay'  # ... and of a file replayed (also its start)


def stream_uuids(services: Services, account: Account, feature: Feature = AUDIT) -> set[tuple[int, str]]:
    """The stream's events, without siemgate's own records of its purges and replays
    (docs/retention.md, "Retention and the signed log")."""
    return {
        (ts, uuid)
        for batch in services.store.iter_events(account.id, feature, 0, 2**62)
        for _, ts, uuid, body in batch
        if PURGE_RECORD not in body and REPLAY_RECORD not in body
    }


def held(services: Services, account: Account, feature: Feature = AUDIT) -> int:
    """How many events the stream holds, not counting siemgate's records of its purges and replays."""
    return len(stream_uuids(services, account, feature))


def purge_records(services: Services, account: Account) -> list[dict[str, Any]]:
    """The aux_info of every purge siemgate recorded in the account's audit stream, oldest first."""
    found = []
    for batch in services.store.iter_events(account.id, AUDIT, 0, 2**62):
        for _, _, _, body in batch:
            if PURGE_RECORD in body:
                found.append(orjson.loads(orjson.loads(body)["aux_info"]))
    return found


def audit_result(results: list[Any]) -> Any:
    [result] = [r for r in results if r.feature == AUDIT]
    return result


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`siemgate ARGS` as a real process on `data_dir` (exit code and output are the test's)."""
    env = {**os.environ, "SIEMGATE_DATA_DIR": str(data_dir), "SIEMGATE_LOG_FORMAT": "text"}
    for name in ("SIEMGATE_CONFIG", "SIEMGATE_DATABASE_URL", "SIEMGATE_ARCHIVE_DIR"):
        env.pop(name, None)
    command = [sys.executable, "-m", "siemgate", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def peak_growth_mib(code: str, setup: str = "", *, traced: bool = False) -> float:
    """How much a fresh interpreter's peak resident memory grows, over what it holds when it starts
    (siemgate and pyarrow imported, `setup` run, the peak reset: /proc/self/clear_refs), while it
    runs `code`. With `traced`, the peak of the memory Python allocates instead (tracemalloc): what
    grows with the data, without the pages of a file the process maps (SQLite's mmap) or its caches
    of fixed size."""
    start, peak = "before = kib('VmRSS:')", "(kib('VmHWM:') - before) / 1024"
    if traced:
        start, peak = "import tracemalloc\ntracemalloc.start()", "tracemalloc.get_traced_memory()[1] / 2**20"
    script = (
        "from pathlib import Path\nimport orjson\n"
        "import pyarrow.parquet, siemgate.retention.archive as archive, siemgate.tlog.archive_verify\n"
        "from siemgate.model.features import Feature\n"
        f"{setup}\n"
        "def kib(key):\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key))\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        f"{start}\n"
        f"{code}\n"
        f"print('growth', {peak})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(siemgate.__file__).parents[1])}  # this siemgate
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    growth = float(done.stdout.strip().splitlines()[-1].split()[-1])
    return growth
