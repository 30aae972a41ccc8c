"""Helpers for the forwarder tests: fill a live server with events, build configs, run in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

import orjson

from siemgate.forward.config import ForwardConfig, parse_config
from siemgate.forward.runner import Forwarder
from siemgate.model.features import Feature
from support.events import MAKERS

T = TypeVar("T")
SECOND = 1_000_000_000
FAST = {"retry_initial": 0.01, "retry_max": 0.05}


def fill(live: Any, key: str, feature: Feature, n: int, **extra: Any) -> list[str]:
    """Ingest n events of `feature` (timestamps within the last minutes); returns their uuids."""
    now = time.time_ns()
    events = [MAKERS[feature](now - (n - i) * 1_000_000, **extra) for i in range(n)]
    for start in range(0, n, 5000):
        response = live.ingest(key, feature, events[start : start + 5000])
        assert response.status_code == 200, response.text
    return [e["uuid"] for e in events]


def config(state: Path, url: str, sinks: dict[str, dict[str, Any]], **source: Any) -> ForwardConfig:
    """A one-source configuration; the token comes from $FORWARD_TEST_TOKEN."""
    src = {"url": url, "token": {"env": "FORWARD_TEST_TOKEN"}, "sinks": list(sinks), **source}
    return parse_config(
        {"forwarder": {"state_dir": str(state), "poll_interval": 0.05, **FAST}, "sources": {"src": src}, "sinks": sinks}
    )


class RunOnce(Forwarder):
    """A forwarder that has run once (`run(once=True)`), with the exit code it returned."""

    code = -1


def run_once(cfg: ForwardConfig, **kwargs: Any) -> RunOnce:
    forwarder = RunOnce(cfg, **kwargs)
    forwarder.code = forwarder.run(once=True)
    return forwarder


def run_in_thread(forwarder: Forwarder, *, once: bool = False) -> threading.Thread:
    thread = threading.Thread(target=forwarder.run, kwargs={"once": once}, daemon=True)
    thread.start()
    return thread


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    return [orjson.loads(line) for line in data.splitlines() if line]


def sample(forwarder: Forwarder, name: str, **labels: str) -> float:
    value = forwarder.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


LIMIT = 100  # events per page
BATCH = 100  # file sink batch


def write_config(
    path: Path,
    source_url: str,
    state: Path,
    out: Path,
    *,
    extra_sink: str = "",
    limit: int = LIMIT,
    start_time: str | None = None,
) -> Path:
    """A forward.toml at `path` (0.1.0's forwarder reads it too): signinattempts and itemusages of
    `source_url`, `limit` events a page from `start_time` (default now - 1 h), into files in `out`,
    and the sink `[sinks.extra]` when `extra_sink` is its TOML."""
    first = f'start_time = "{start_time}"' if start_time else ""
    path.write_text(
        f"""
[forwarder]
state_dir = "{state}"
poll_interval = 0.05
retry_initial = 0.01
retry_max = 0.05
log_format = "text"

[sources.src]
url = "{source_url}"
token = {{ env = "FORWARD_TEST_TOKEN" }}
features = ["signinattempts", "itemusages"]
limit = {limit}
{first}
sinks = ["out"{', "extra"' if extra_sink else ""}]

[sinks.out]
type = "file"
path = "{out}/{{feature}}.jsonl"
max_events = {BATCH}
linger = 0.05
{extra_sink}
"""
    )
    return path


def start(config: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`siemgate forward --config config *args` as a process, its stderr piped (or appended to
    `log`, for a long run that nothing reads while it runs)."""
    env = {**os.environ, "SIEMGATE_LOG_FORMAT": "text"}
    stderr: Any = subprocess.PIPE if log is None else log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "siemgate", "forward", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        env=env,
    )
