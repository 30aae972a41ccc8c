"""What one account's alert rules cost another account on the same server (docs/alerts.md,
"Bounded evaluation"): account A saves `--rules` expensive rules (each `--tests` case-insensitive
`contains` tests on `aux_info`, none of which matches, so every test runs) and ingests audit
events with a `--text`-character `aux_info` from `--a-connections` connections at full speed;
account B meanwhile ingests small batches and reads its Events API, one request at a time.

Printed: B's ingest and Events API latency (p50, p99, max) and request rate with A idle and with A
busy, A's events stored, and the server's CPU seconds per A event. A real server process
(`siemgate serve`) on SQLite; every request has a client timeout (`--timeout`), counted as such.
"""

from __future__ import annotations

import argparse
import http.client
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
from siemgate.accounts.actor import CLI
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.sqlite import SQLiteStore


def hostile_rules(rules: int, tests: int) -> str:
    """`rules` rules of `tests` nocase `contains` tests each on aux_info, as one YAML text."""
    documents = []
    for r in range(rules):
        tests_text = ", ".join(f"{{aux_info: {{contains: zq{r}x{t}, nocase: true}}}}" for t in range(tests))
        documents.append(f"id: hostile-{r}\nname: Hostile {r}\nsource: auditevents\nmatch: {{any: [{tests_text}]}}\n")
    return "---\n".join(documents)


def setup(data_dir: Path, rules: int, tests: int) -> dict[str, str]:
    """Accounts A (with the hostile rules) and B; their ingest keys and B's SIEM token."""
    store = SQLiteStore(data_dir / "siemgate.db")
    store.migrate()
    services = build_services(load_settings(data_dir=data_dir), store)
    a = store.create_account(new_id(), "Hostile A", time.time_ns())
    b = store.create_account(new_id(), "Victim B", time.time_ns())
    if rules:
        services.alerts.load_text(CLI, a, hostile_rules(rules, tests))
    keys = {
        "a": services.ingest_keys.create(a, "a", ALL_FEATURES)[0],
        "b": services.ingest_keys.create(b, "b", ALL_FEATURES)[0],
    }
    integration = store.create_integration(b.id, new_id(), "other", "siem", "", 0)
    keys["b_token"] = services.tokens.issue(b, integration, "siem", list(ALL_FEATURES), None)[0]
    services.close()
    return keys


def audit_event(text: int) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(time.time_ns()),
        "actor_uuid": "ACTORAAAAAAAAAAAAAAAAAAAAA",
        "action": "update",
        "object_type": "user",
        "object_uuid": "OBJECTAAAAAAAAAAAAAAAAAAAA",
        "aux_info": ("abcdefg " * (text // 8 + 1))[:text],
    }


def request(port: int, path: str, token: str, body: bytes, timeout: float) -> tuple[float, int]:
    """(seconds, status; 0 for a timeout or a connection error)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return time.monotonic() - started, response.status
    except (OSError, http.client.HTTPException):
        return time.monotonic() - started, 0
    finally:
        conn.close()


def victim(port: int, keys: dict[str, str], seconds: float, timeout: float) -> dict[str, Any]:
    """B's ingest (5 small events) and Events API reads (100 events), alternating, for `seconds`."""
    ingest: list[float] = []
    reads: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    read_body = orjson.dumps({"limit": 100, "start_time": "2020-01-01T00:00:00Z"})
    while time.monotonic() < deadline:
        body = orjson.dumps([audit_event(200) for _ in range(5)])
        took, status = request(port, "/api/ingest/v2/auditevents", keys["b"], body, timeout)
        ingest.append(took)
        failed += status != 200
        took, status = request(port, "/api/v2/auditevents", keys["b_token"], read_body, timeout)
        reads.append(took)
        failed += status != 200
    return {"ingest": summary(ingest, seconds), "reads": summary(reads, seconds), "failed": failed}


def summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "per_second": round(len(ordered) / seconds, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--tests", type=int, default=700, help="contains tests per rule (about 7 values each)")
    parser.add_argument("--text", type=int, default=60_000, help="characters of aux_info in A's events")
    parser.add_argument("--a-batch", type=int, default=1, help="events per A request")
    parser.add_argument("--a-connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        keys = setup(data_dir, args.rules, args.tests)
        extra = {"SIEMGATE_ALERTS_ENABLED": "true", **dict(e.split("=", 1) for e in args.env)}
        server = Server(data_dir, None, extra_env=extra)
        try:
            alone = victim(server.port, keys, args.seconds, args.timeout)
            print("B alone:", orjson.dumps(alone).decode(), flush=True)
            stop = threading.Event()
            stored = [0]

            def hostile() -> None:
                while not stop.is_set():
                    body = orjson.dumps([audit_event(args.text) for _ in range(args.a_batch)])
                    _, status = request(server.port, "/api/ingest/v2/auditevents", keys["a"], body, 600)
                    stored[0] += args.a_batch if status == 200 else 0

            threads = [threading.Thread(target=hostile, daemon=True) for _ in range(args.a_connections)]
            cpu = server.cpu_seconds()
            for thread in threads:
                thread.start()
            busy = victim(server.port, keys, args.seconds, args.timeout)
            used = server.cpu_seconds() - cpu
            stop.set()
            print("B with A busy:", orjson.dumps(busy).decode())
            print(f"A events stored meanwhile: {stored[0]}; server CPU {used:.1f} s", end="")
            print(f" ({used / stored[0]:.2f} s per A event)" if stored[0] else "")
        finally:
            server.proc.kill()
            server.proc.wait(30)


if __name__ == "__main__":
    main()
