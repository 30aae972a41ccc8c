"""Differential test of the Events API over real HTTP: the same seeded sequence of ingests (odd
timestamps: 0 to 9 fractional digits, offsets, late events, duplicates in and across batches, the
same uuid at another time, non-ASCII text) and of cursor chains with random limits and start times,
against a server on SQLite and one on PostgreSQL, gives the same observable results: the same
items in the same order on the same pages, the same has_more, duplicates counted alike, every
event delivered once (docs/cursors.md)."""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

from siemgate.model.features import Feature
from support.servers import LiveServer, running_server

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
NAMES = ["Éve Ünïcödé", "ΣΑΣ σας", "Ada Lovelace", "  trailing  ", "日本語", "e\u0301ve", "😀 emoji"]
SIGNIN = Feature.SIGNINATTEMPTS


def _id(rng: random.Random) -> str:
    return "".join(rng.choice(B32) for _ in range(26))


def _timestamp(rng: random.Random, base_s: int) -> str:
    """A time within the last 40 minutes before `base_s`, written in one of the forms RFC 3339 allows."""
    seconds = base_s - rng.randrange(40 * 60)
    digits = rng.randrange(10)
    fraction = "" if digits == 0 else "." + "".join(rng.choice("0123456789") for _ in range(digits))
    hours = rng.choice([0, 0, 0, 5, -3])
    local = seconds + hours * 3600
    days, rest = divmod(local, 86400)
    date = dt.date(1970, 1, 1) + dt.timedelta(days=days)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    zone = "Z" if hours == 0 and rng.random() < 0.7 else f"{'+' if hours >= 0 else '-'}{abs(hours):02d}:00"
    return f"{date.isoformat()}T{clock}{fraction}{zone}"


def _event(rng: random.Random, base_s: int) -> dict[str, Any]:
    name = rng.choice(NAMES)
    return {
        "uuid": _id(rng),
        "session_uuid": _id(rng),
        "timestamp": _timestamp(rng, base_s),
        "category": rng.choice(["success", "credentials_failed", "mfa_failed"]),
        "type": "credentials_ok",
        "country": rng.choice(["CA", "FR", "JP"]),
        "target_user": {"uuid": _id(rng), "name": name, "email": f"{name.strip()[:3]}@example.com"},
        "client": {"app_name": name, "ip_address": "192.0.2.10"},
    }


def _scenario(live: LiveServer, seed: int, base_s: int) -> list[Any]:
    """Run the seeded scenario on one server; what a client observes, in order."""
    rng = random.Random(seed)
    account = live.account(f"diff-{seed}")
    key, token = live.ingest_key(account), live.token(account)
    sent: list[dict[str, Any]] = []
    seen: list[Any] = []
    cursors: list[str] = []

    def ingest() -> None:
        batch = []
        for _ in range(rng.randrange(1, 40)):
            roll = rng.random()
            if sent and roll < 0.1:
                batch.append(rng.choice(sent))  # a duplicate of an earlier event
            elif sent and roll < 0.15:
                batch.append({**rng.choice(sent), "timestamp": _timestamp(rng, base_s)})  # same uuid, another time
            else:
                batch.append(_event(rng, base_s))
            if batch and rng.random() < 0.05:
                batch.append(batch[-1])  # a duplicate within the batch
        response = live.ingest(key, SIGNIN, batch)
        assert response.status_code in (200, 201), response.text
        body = response.json()
        seen.append(("ingest", {k: v for k, v in body.items() if k in ("stored", "duplicates", "count")}))
        sent.extend(batch)

    def follow(cursor: str | None) -> None:
        if cursor is None:
            start = base_s - rng.randrange(50 * 60)
            body: dict[str, Any] = {"limit": rng.choice([1, 2, 3, 7, 50, 1000])}
            body["start_time"] = _timestamp(random.Random(start), start + 1)
        else:
            body = {"cursor": cursor}
        chain: set[tuple[str, str]] = set()
        for _ in range(2000):
            response = live.page(token, SIGNIN, body)
            assert response.status_code == 200, response.text
            page = response.json()
            delivered = {(i["uuid"], i["timestamp"]) for i in page["items"]}
            assert len(delivered) == len(page["items"]) and not delivered & chain, "an event delivered twice"
            chain |= delivered
            seen.append(("page", [(i["uuid"], i["timestamp"], i["target_user"]["name"]) for i in page["items"]]))
            seen.append(("has_more", page["has_more"]))
            if not page["has_more"]:
                cursors.append(page["cursor"])
                return
            body = {"cursor": page["cursor"]}
        raise AssertionError("a cursor chain did not end")

    for _ in range(12):
        step = rng.random()
        if step < 0.5:
            ingest()
        elif step < 0.75 or not cursors:
            follow(None)
        else:
            follow(rng.choice(cursors))
    return seen


def test_sqlite_and_postgresql_serve_the_same_sequence(tmp_path: Path) -> None:
    base_s = int(time.time()) - 60  # both servers see the same times, all in the past
    observed = {}
    for backend in ("sqlite", "postgres"):
        with running_server(tmp_path / backend, backend) as live:
            observed[backend] = [_scenario(live, seed, base_s) for seed in (11, 12, 13)]
    for seed, (mine, theirs) in enumerate(zip(observed["sqlite"], observed["postgres"], strict=True)):
        for step, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            assert a == b, f"scenario {seed} step {step}: SQLite {a} PostgreSQL {b}"
