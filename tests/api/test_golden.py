"""Golden events (tests/golden, copies of ../shared/golden): real-shaped items from public SIEM
fixtures are accepted unchanged and served back with the same values, nothing added or lost."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.store.ingest import parse_batch
from support.clocks import Clock
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

# The copies in this repository, so a clone alone can run the tests.
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
# The shared originals sit beside the project: ../shared/golden from its root.
SHARED_GOLDEN = Path(__file__).resolve().parents[2].parent / "shared" / "golden"
START = "2020-01-01T00:00:00Z"
V1_FILES = {
    "signinattempts-v1.jsonl": Feature.SIGNINATTEMPTS,
    "itemusages-v1.jsonl": Feature.ITEMUSAGES,
    "auditevents-v1.jsonl": Feature.AUDITEVENTS,
}
PAGE_FILE = "auditevents-v2-page.json"
VIAS = ["http", "writer"]  # the ingest API, and services.writer as `siemgate ingest` uses it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server whose retention reaches back to the golden events (2021-2024); each test uses its
    own account, so the tests stay independent."""
    data_dir = tmp_path_factory.mktemp("golden")
    settings = load_settings(data_dir=data_dir, retention_days=5000)
    live, uv, thread = start_server(settings, make_store("sqlite", data_dir), Clock())
    yield live
    stop_server(live, uv, thread)


def _jsonl(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (GOLDEN / name).read_bytes().splitlines() if line.strip()]


def _first_copies(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    result = []
    for event in events:
        if event["uuid"] not in seen:
            seen.add(event["uuid"])
            result.append(event)
    return result


def _ingest(server: LiveServer, via: str, account: Any, feature: Feature, raw: bytes) -> dict[str, int]:
    """Send the file's bytes unchanged through the chosen path; returns {received, stored, duplicates}."""
    if via == "http":
        response = server.ingest(server.ingest_key(account, [feature]), feature, raw)
        assert response.status_code == 200, response.text
        result: dict[str, int] = response.json()
        return result
    return server.services.writer.write(account.id, feature, parse_batch(raw)).as_dict()


def _served(server: LiveServer, token: str, feature: Feature, version: int) -> list[dict[str, Any]]:
    response = server.page(token, feature, {"start_time": START, "limit": 1000}, version=version)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["has_more"] is False
    items: list[dict[str, Any]] = page["items"]
    return items


def test_golden_copies_match_the_shared_originals() -> None:
    if not SHARED_GOLDEN.is_dir():
        message = f"{SHARED_GOLDEN} (../shared/golden from the project root) is not present"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must compare the copies with the originals")
        pytest.skip(message)
    originals = sorted(p.name for p in SHARED_GOLDEN.iterdir() if p.is_file())
    copies = sorted(p.name for p in GOLDEN.iterdir() if p.is_file())
    assert copies == originals
    for name in originals:
        assert (GOLDEN / name).read_bytes() == (SHARED_GOLDEN / name).read_bytes(), name


def test_every_golden_data_file_is_covered() -> None:
    data_files = {p.name for p in GOLDEN.iterdir() if p.suffix in (".json", ".jsonl")}
    assert data_files == {*V1_FILES, PAGE_FILE}


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("name", sorted(V1_FILES))
def test_v1_golden_file_is_accepted_and_served_back_unchanged(server: LiveServer, name: str, via: str) -> None:
    feature = V1_FILES[name]
    events = _jsonl(name)
    expected = _first_copies(events)
    account = server.account()
    token = server.token(account)
    result = _ingest(server, via, account, feature, (GOLDEN / name).read_bytes())
    assert result == {
        "received": len(events),
        "stored": len(expected),
        "duplicates": len(events) - len(expected),
    }
    for version in (1, 2):  # v1 events carry no v2-only fields, so both views are the input itself
        served = _served(server, token, feature, version)
        assert served == expected, f"v{version}"


@pytest.mark.parametrize("via", VIAS)
def test_the_duplicate_golden_audit_event_is_stored_once_with_its_first_copys_location(
    server: LiveServer, via: str
) -> None:
    first, second = _jsonl("auditevents-v1.jsonl")
    assert first["uuid"] == second["uuid"] and "location" in first and "location" not in second
    account = server.account()
    token = server.token(account)
    raw = (GOLDEN / "auditevents-v1.jsonl").read_bytes()
    assert _ingest(server, via, account, Feature.AUDITEVENTS, raw) == {"received": 2, "stored": 1, "duplicates": 1}
    (served,) = _served(server, token, Feature.AUDITEVENTS, 1)
    assert served == first
    assert served["location"] == first["location"]


@pytest.mark.parametrize("via", VIAS)
def test_the_golden_v2_page_is_accepted_through_its_items(server: LiveServer, via: str) -> None:
    page = orjson.loads((GOLDEN / PAGE_FILE).read_bytes())
    items = page["items"]
    account = server.account()
    token = server.token(account)
    result = _ingest(server, via, account, Feature.AUDITEVENTS, (GOLDEN / PAGE_FILE).read_bytes())
    assert result == {"received": len(items), "stored": len(items), "duplicates": 0}
    assert _served(server, token, Feature.AUDITEVENTS, 2) == items
    v1 = _served(server, token, Feature.AUDITEVENTS, 1)
    assert v1 == [{k: v for k, v in item.items() if k != "actor_type"} for item in items]
    assert all("actor_type" not in item for item in v1)


def test_redacted_identifiers_in_the_golden_page_stay_absent(server: LiveServer) -> None:
    account = server.account()
    token = server.token(account)
    _ingest(server, "http", account, Feature.AUDITEVENTS, (GOLDEN / PAGE_FILE).read_bytes())
    for version in (1, 2):
        for item in _served(server, token, Feature.AUDITEVENTS, version):
            assert "actor_uuid" not in item and "object_uuid" not in item
            assert set(item["session"]) == {"login_time", "ip"}
            assert set(item["actor_details"]) == {"name", "email"}
            assert "latitude" not in item["location"]


@pytest.mark.parametrize("name", sorted(V1_FILES))
def test_v1_golden_values_keep_their_json_types(server: LiveServer, name: str) -> None:
    # `details: null` stays null, numbers stay numbers, absent `location` stays absent.
    feature = V1_FILES[name]
    account = server.account()
    token = server.token(account)
    _ingest(server, "http", account, feature, (GOLDEN / name).read_bytes())
    served = {item["uuid"]: item for item in _served(server, token, feature, 1)}
    for event in _first_copies(_jsonl(name)):
        item = served[event["uuid"]]
        assert set(item) == set(event)
        for key, value in event.items():
            assert type(item[key]) is type(value), key
        if feature is Feature.SIGNINATTEMPTS:
            assert item["details"] is None
        if "location" in event and "latitude" in event["location"]:
            assert item["location"]["latitude"] == event["location"]["latitude"]


@pytest.mark.parametrize("name", [*sorted(V1_FILES), PAGE_FILE])
def test_a_golden_file_sent_twice_is_all_duplicates_the_second_time(server: LiveServer, name: str) -> None:
    feature = V1_FILES.get(name, Feature.AUDITEVENTS)
    raw = (GOLDEN / name).read_bytes()
    account = server.account()
    token = server.token(account)
    first = _ingest(server, "http", account, feature, raw)
    again = _ingest(server, "http", account, feature, raw)
    assert again == {"received": first["received"], "stored": 0, "duplicates": first["received"]}
    served = _served(server, token, feature, 2)
    assert len(served) == first["stored"]
    assert len({item["uuid"] for item in served}) == len(served)


@pytest.mark.parametrize("name", sorted(V1_FILES))
def test_v1_golden_events_are_served_through_the_cursor_chain_one_by_one(server: LiveServer, name: str) -> None:
    feature = V1_FILES[name]
    account = server.account()
    token = server.token(account)
    _ingest(server, "http", account, feature, (GOLDEN / name).read_bytes())
    response = server.page(token, feature, {"start_time": START, "limit": 1}, version=1)
    page = response.json()
    items = list(page["items"])
    if page["has_more"]:
        more, _ = server.drain(token, feature, page["cursor"], version=1)
        items += more
    assert items == _first_copies(_jsonl(name))
