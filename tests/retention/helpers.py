"""Shared by the retention tests: services on a fixed clock (midnight UTC, so test days are
calendar days), audit events, and filling streams with days of them through the EventWriter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.services import Services
from siemgate.store.base import Account
from siemgate.store.sqlite import SQLiteStore

S = 1_000_000_000
DAY = 86400 * S
NOW = (1_900_000_000 // 86400) * DAY  # midnight UTC: the test days are calendar days
AUDIT, SIGNIN = Feature.AUDITEVENTS, Feature.SIGNINATTEMPTS


class Clock:
    now = NOW

    def __call__(self) -> int:
        return self.now


def open_services(data_dir: Path, **settings: Any) -> Services:
    store = SQLiteStore(data_dir / "siemgate.db")
    store.migrate()
    return build_services(load_settings(data_dir=data_dir, alerts_enabled=False, **settings), store, Clock())


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


def stream_uuids(services: Services, account: Account, feature: Feature = AUDIT) -> set[tuple[int, str]]:
    return {
        (ts, uuid) for batch in services.store.iter_events(account.id, feature, 0, 2**62) for _, ts, uuid, _ in batch
    }


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
