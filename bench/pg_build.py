"""Build a large benchmark store in PostgreSQL quickly, with COPY (`bench/run.py --database-url`).

The events are the same item usages as bench/events.py, validated and encoded by siemgate's own
path once (1000 templates); each stored event is a template with a new uuid and timestamp of the
same length spliced in, so the bodies, their sizes and their v1 cuts are exactly what ingest
would store. Rows go in through `PostgresStore.import_events` (binary COPY, day partitions) in
seq order, like `siemgate db copy`. A store already holding the requested events is reused.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from events import event_batch
from siemgate.composition.wiring import build_services
from siemgate.config import Settings
from siemgate.model.encoding import encode_event
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.model.validation import validate_events
from siemgate.store.postgres import PostgresStore

CHUNK = 50_000
SPAN_NS = 100 * 86400 * 1_000_000_000


def _templates(feature: Feature, now: int) -> list[tuple[bytes, int | None, str, str]]:
    """(body, v1 cut, its uuid, its timestamp text) of 1000 encoded events."""
    out = []
    for ts, event in validate_events(feature, event_batch(1000, now, 1000), strict=True, now=now):
        event["timestamp"] = format_ns((ts // 10) * 10 + 7)  # 9 fraction digits, like every stamp below
        body, cut = encode_event(feature, event)
        out.append((body, cut, event["uuid"], event["timestamp"]))
    return out


def build_pg_store(url: str, settings: Settings, events: int, feature: Feature, meta: dict[str, Any]) -> dict[str, Any]:
    """Create (or reuse, when `meta` describes it) a store of `events` events; returns credentials."""
    store = PostgresStore(url)
    try:
        store.migrate()
        accounts = store.list_accounts()
        if meta.get("events") == events and accounts and store.head_seq(accounts[0].id, feature) >= events:
            return meta
        if accounts:
            raise SystemExit(f"{url} already holds another store; use an empty database for the benchmark")
        services = build_services(settings, store)
        account = store.create_account(new_id(), "Bench", time.time_ns())
        integration = store.create_integration(account.id, new_id(), "other", "bench", "", time.time_ns())
        token, _ = services.tokens.issue(account, integration, "bench", ALL_FEATURES, None)
        key, _ = services.ingest_keys.create(account, "bench", ALL_FEATURES)
        now = time.time_ns()
        templates = _templates(feature, now)
        start, step = now - SPAN_NS, SPAN_NS // events
        code = feature.code
        started = time.perf_counter()
        rows: list[tuple[Any, ...]] = []
        for i in range(events):
            body, cut, old_uuid, old_ts = templates[i % len(templates)]
            ts = ((start + i * step) // 10) * 10 + 7
            uuid = new_id()
            body = body.replace(old_uuid.encode(), uuid.encode(), 1).replace(old_ts.encode(), format_ns(ts).encode(), 1)
            rows.append((account.id, code, i + 1, ts, ts, uuid, body, cut))
            if len(rows) == CHUNK or i == events - 1:
                store.import_events(account.id, code, rows)
                rows = []
                if (i + 1) % 1_000_000 == 0 or i == events - 1:
                    print(f"  building store: {i + 1:,}/{events:,} events", file=sys.stderr, flush=True)
        with store._write("cannot finish the benchmark store") as conn:
            conn.execute(
                "INSERT INTO streams VALUES (%s, %s, %s, %s) ON CONFLICT (account_id, feature)"
                " DO UPDATE SET head_seq = excluded.head_seq, max_ts = excluded.max_ts",
                (account.id, code, events, ts),
            )
        with store._conn("cannot analyze") as conn:
            conn.execute("VACUUM (ANALYZE) events")
        elapsed = time.perf_counter() - started
        return {"events": events, "token": token, "ingest_key": key, "build_seconds": round(elapsed, 1)}
    finally:
        store.close()
