"""What counts as a duplicate: the same event again (uuid and timestamp), however the timestamp is
written; an event sent without a timestamp, again by uuid (docs/events.md, "Duplicates")."""

from __future__ import annotations

from typing import Any

from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from support.events import SECOND, signin
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL

SIGNIN = Feature.SIGNINATTEMPTS


def _served(server: Any, token: str) -> list[dict[str, Any]]:
    start = format_ns(server.clock() - 3 * 3600 * SECOND)
    items: list[dict[str, Any]] = server.page(token, SIGNIN, {"limit": 1000, "start_time": start}).json()["items"]
    return items


def test_the_same_event_with_its_timestamp_written_differently_is_a_duplicate(server: Any) -> None:
    account = server.account()
    token, key = server.token(account), server.ingest_key(account)
    at = server.clock() - 60 * SECOND
    event = signin(at - at % SECOND)
    assert server.ingest(key, SIGNIN, [event]).json() == {"received": 1, "stored": 1, "duplicates": 0}
    utc = format_ns(at - at % SECOND)  # e.g. 2026-11-25T10:00:00Z
    shifted = {**event, "timestamp": utc.replace("Z", ".000+00:00")}
    assert server.ingest(key, SIGNIN, [shifted]).json() == {"received": 1, "stored": 0, "duplicates": 1}
    assert [e["uuid"] for e in _served(server, token)] == [event["uuid"]]


def test_an_event_sent_again_without_a_timestamp_is_a_duplicate(server: Any) -> None:
    account = server.account()
    token, key = server.token(account), server.ingest_key(account)
    event = signin(server.clock())
    del event["timestamp"]
    assert server.ingest(key, SIGNIN, [event]).json()["stored"] == 1
    server.clock.advance(3600)  # a retry much later gets another time of receipt
    assert server.ingest(key, SIGNIN, [event, event]).json() == {"received": 2, "stored": 0, "duplicates": 2}
    assert len([e for e in _served(server, token) if e["uuid"] == event["uuid"]]) == 1


def test_a_uuid_reused_with_another_timestamp_is_another_event(server: Any) -> None:
    account = server.account()
    token, key = server.token(account), server.ingest_key(account)
    now = server.clock()
    first = signin(now - 10 * SECOND)
    second = {**first, "timestamp": format_ns(now - 5 * SECOND)}
    assert server.ingest(key, SIGNIN, [first, second]).json() == {"received": 2, "stored": 2, "duplicates": 0}
    assert [e["timestamp"] for e in _served(server, token)] == [first["timestamp"], second["timestamp"]]
