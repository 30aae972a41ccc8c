"""What several accounts' dashboard counts cost another account's Events API and ingest on one
PostgreSQL-backed server (docs/security.md, "Heavy reads"): `--accounts` accounts each hold
`--events` audit events and run `--per-account` dashboard counts at once, in a loop (each within
its admin_queries_per_account); account B meanwhile ingests 5 small events and reads 100 through
the Events API, one request at a time. Printed: B's latencies (p50, p99, max) and request rate
with the others idle and busy, and how many counts the others got answered.

A real server process (`siemgate serve`) on a fresh schema of `--database-url`, dropped at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alerts_noisy_tenant import audit_event, victim
from run import Server
from siemgate.accounts.actor import CLI
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.postgres import PostgresStore


def setup(url: str, data_dir: Path, accounts: int, events: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """B's ingest key and SIEM token; each other account's (uuid, owner's API key), with `events`
    audit events of the last hour."""
    store = PostgresStore(url)
    store.migrate()
    services = build_services(load_settings(data_dir=data_dir, database_url=url), store)
    b = store.create_account(new_id(), "Victim B", time.time_ns())
    keys = {"b": services.ingest_keys.create(b, "b", ALL_FEATURES)[0]}
    integration = store.create_integration(b.id, new_id(), "other", "siem", "", 0)
    keys["b_token"] = services.tokens.issue(b, integration, "siem", list(ALL_FEATURES), None)[0]
    busy = []
    now = time.time_ns()
    for n in range(accounts):
        account, owner = services.people.create_account(CLI, f"Busy {n}", f"owner{n}@busy.example", "Owner", None)
        assert owner is not None
        busy.append((account.uuid, services.api_keys.create(owner, "bench")[0]))
        for first in range(0, events, 10_000):
            batch = []
            for i in range(first, min(events, first + 10_000)):
                event = audit_event(200)
                event["timestamp"] = format_ns(now - i * 100_000)  # 10,000 a second, back from now
                batch.append(event)
            services.writer.write(account.id, Feature.AUDITEVENTS, batch)
    services.close()
    return keys, busy


def counting(port: int, account: str, key: str, stop: threading.Event, answered: list[int], refused: list[int]) -> None:
    """Dashboard counts of `account` (by kind, per minute) until `stop`."""
    import http.client

    path = f"/api/admin/v1/accounts/{account}/stats/auditevents?group_by=kind&interval=minute"
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
            status = conn.getresponse().status
            (answered if status == 200 else refused).append(status)
        except (OSError, http.client.HTTPException):
            refused.append(0)
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--per-account", type=int, default=2)
    parser.add_argument("--events", type=int, default=50_000, help="audit events of each busy account")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = parser.parse_args()
    schema = f"bench_{new_id().lower()[:12]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{args.database_url}?options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            keys, busy = setup(url, Path(tmp), args.accounts, args.events)
            server = Server(Path(tmp), None, url, extra_env=dict(e.split("=", 1) for e in args.env))
            try:
                print("B alone:", orjson.dumps(victim(server.port, keys, args.seconds, args.timeout)).decode())
                stop, answered, refused = threading.Event(), [], []
                threads = [
                    threading.Thread(target=counting, args=(server.port, uuid, key, stop, answered, refused))
                    for uuid, key in busy
                    for _ in range(args.per_account)
                ]
                for thread in threads:
                    thread.start()
                print(
                    "B with the others counting:",
                    orjson.dumps(victim(server.port, keys, args.seconds, args.timeout)).decode(),
                )
                stop.set()
                for thread in threads:
                    thread.join(args.timeout)
                print(f"the others' counts: {len(answered)} answered, {len(refused)} refused or failed")
            finally:
                server.proc.kill()
                server.proc.wait(30)
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
