"""The activity simulator: a believable organisation, deterministic events that pass strict
validation, the failure mix, bursts, late item usages, and the live mode's pacing and stop."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from siemgate.model import enums
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import is_id
from siemgate.model.timestamps import parse_ns
from siemgate.simulate import build_world, history, live_events, run_live, simulate_history
from siemgate.simulate.generator import DAY, HOUR, MINUTE, SECOND, history_rhythm
from siemgate.simulate.geo import CITIES
from siemgate.simulate.world import World
from siemgate.store.base import Account
from siemgate.store.ingest import EventWriter
from siemgate.store.sqlite import SQLiteStore

END = 1_727_276_400 * SECOND  # a fixed "now": Wednesday 2024-09-25 15:00 UTC
ACCOUNT_UUID = "ACMEACCOUNTUUID2345ACMEAAA"

Events = list[tuple[Feature, dict[str, Any]]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "siemgate.db")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def account(store: SQLiteStore) -> Account:
    return store.create_account(
        ACCOUNT_UUID, "Acme", time.time_ns()
    )  # the world's account, as `siemgate simulate` makes it


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(ACCOUNT_UUID, "Acme Corp", 120, seed=7)


@pytest.fixture(scope="module")
def small() -> World:
    return build_world(ACCOUNT_UUID, "Acme Corp", 30, seed=3)


@pytest.fixture(scope="module")
def week(world: World) -> Events:
    """A week of history for 120 people (about 14,000 events)."""
    return list(history(world, END - 7 * DAY, END, seed=7))


def stored_events(store: SQLiteStore, account: Account, feature: Feature) -> list[dict[str, Any]]:
    rows = store.read_events(account.id, feature, 0, 0, None, 1_000_000)
    return [orjson.loads(body) for _, body, _ in rows]


def ts(event: dict[str, Any]) -> int:
    return parse_ns(event["timestamp"])


def bursts(signins: list[dict[str, Any]], category: str) -> list[list[dict[str, Any]]]:
    """Runs of at least 10 attempts of `category` at one user from one IP within 15 minutes."""
    by_source: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in signins:
        if e["category"] == category:
            by_source[(e["target_user"]["uuid"], e["client"]["ip_address"])].append(e)
    found = []
    for attempts in by_source.values():
        attempts.sort(key=ts)
        for i in range(len(attempts) - 9):
            if ts(attempts[i + 9]) - ts(attempts[i]) <= 15 * MINUTE:
                found.append(attempts)
                break
    return found


# --- the world -----------------------------------------------------------------------------------


def test_world_is_a_plausible_organisation() -> None:
    world = build_world(ACCOUNT_UUID, "Acme Corp", 200, seed=1)
    assert world == build_world(ACCOUNT_UUID, "Acme Corp", 200, seed=1)
    assert (
        build_world(ACCOUNT_UUID, "Acme Corp", 30, seed=1).users
        != build_world(ACCOUNT_UUID, "Acme Corp", 30, seed=2).users
    )
    humans = world.humans
    assert len(humans) == 200
    roles = Counter(u.role for u in world.users)
    assert 1 <= roles["owner"] <= 3 and roles["admin"] >= 2 and roles["guest"] >= 5 and roles["service"] >= 1
    emails = [u.email for u in world.users]
    assert len(set(emails)) == len(emails) and all(e.endswith("@acme-corp.example") for e in emails)
    assert all(" " in u.name for u in humans)
    assert all(is_id(u.uuid) and u.uuid.isupper() for u in world.users)
    assert all(1 <= len(u.devices) <= 3 for u in world.users)
    for u in world.users:
        for d in u.devices:
            assert is_id(d.uuid) and d.uuid.islower()
            assert d.app_name in enums.CLIENT_APP_NAMES and d.app_version.isdigit()
            os_for_app = {"1Password for Mac": "macOS", "1Password for Windows": "Windows", "1Password for iOS": "iOS",
                          "1Password for Android": "Android", "1Password for Linux": "Linux"}  # fmt: skip
            assert os_for_app.get(d.app_name, d.os_name) == d.os_name
    assert 2 <= len(world.offices) <= 4
    in_office = sum(u.office is not None for u in humans)
    assert 0.7 * len(humans) <= in_office < len(humans)  # most in offices, a few remote
    names = {v.name for v in world.vaults}
    assert {"Engineering", "Finance", "Marketing", "Shared"} <= names
    assert all(is_id(i.uuid) and i.uuid.islower() for v in world.vaults for i in v.items)
    assert len({c.continent for c in CITIES}) == 6 and len(CITIES) >= 60


def test_build_world_refuses_a_bad_size() -> None:
    with pytest.raises(ValueError, match="users must be between"):
        build_world(ACCOUNT_UUID, "Acme", 0, seed=1)


# --- history ---------------------------------------------------------------------------------------


def test_history_is_deterministic(small: World) -> None:
    start = END - DAY
    first = list(history(small, start, END, seed=7))
    assert first == list(history(small, start, END, seed=7))
    other = list(history(small, start, END, seed=8))
    assert {e["uuid"] for _, e in other}.isdisjoint({e["uuid"] for _, e in first})
    # The world's ids are stable too, so a rebuilt world gives the same events.
    rebuilt = build_world(ACCOUNT_UUID, "Acme Corp", 30, seed=3)
    assert list(history(rebuilt, start, END, seed=7)) == first
    assert all(start <= ts(e) <= END for _, e in first)


def test_history_has_all_features_and_a_believable_sign_in_mix(world: World, week: Events) -> None:
    by_feature = Counter(f for f, _ in week)
    assert set(by_feature) == set(ALL_FEATURES)
    assert by_feature[Feature.ITEMUSAGES] > by_feature[Feature.SIGNINATTEMPTS] > 10 * by_feature[Feature.AUDITEVENTS]
    signins = [e for f, e in week if f is Feature.SIGNINATTEMPTS]
    in_bursts = {e["uuid"] for c in ("credentials_failed", "firewall_failed") for b in bursts(signins, c) for e in b}
    organic = [e for e in signins if e["uuid"] not in in_bursts]
    share = {c: n / len(organic) for c, n in Counter(e["category"] for e in organic).items()}
    assert 0.88 <= share["success"] + share.get("firewall_reported_success", 0) <= 0.95
    assert 0.025 <= share["credentials_failed"] <= 0.06
    assert 0.008 <= share["mfa_failed"] <= 0.035
    assert 0.003 <= share["firewall_failed"] <= 0.025
    assert 0 < share["sso_failed"] < 0.01 and 0 < share["modern_version_failed"] < 0.01
    for e in signins:
        firewall = e["category"].startswith("firewall")
        assert (e["details"] is not None) == firewall
        if firewall:
            assert e["type"] in ("country_blocked", "ip_blocked", "anonymous_blocked") and e["details"]["value"]
        if "location" in e:
            assert e["location"]["country"] == e["country"]
        assert e["account_uuid"] == ACCOUNT_UUID and e["target_user"]["user_account_uuid"] == ACCOUNT_UUID
        assert len(e["client"]) == 7
    types = Counter(e["type"] for e in signins)
    assert types["password_secret_bad"] and types["totp_bad"] and types["credentials_ok"] and types["mfa_ok"]


def test_history_has_bursts(week: Events) -> None:
    signins = [e for f, e in week if f is Feature.SIGNINATTEMPTS]
    brute = bursts(signins, "credentials_failed")
    assert brute
    for attempts in brute:
        assert 10 <= len(attempts) <= 40
        homes = {e["location"]["country"] for e in signins if e["category"] == "success" and "location" in e}
        assert attempts[0]["location"]["country"] not in homes or len(homes) > 10  # a foreign source
    assert bursts(signins, "firewall_failed")


def test_some_item_usages_arrive_late(week: Events) -> None:
    usages = [e for f, e in week if f is Feature.ITEMUSAGES]
    newest, late = 0, 0
    for e in usages:  # insertion order: a late one follows events with newer timestamps
        t = ts(e)
        if t < newest - HOUR:
            late += 1
        newest = max(newest, t)
    assert 0.015 <= late / len(usages) <= 0.05
    # Everything else is in timestamp order, per feature.
    audits = [ts(e) for f, e in week if f is Feature.AUDITEVENTS]
    assert audits == sorted(audits)


def test_history_follows_working_hours_and_weekends(world: World, week: Events) -> None:
    people = {u.uuid: u for u in world.humans}
    per_day: Counter[int] = Counter()
    hours: Counter[bool] = Counter()
    for f, e in week:
        if f is not Feature.ITEMUSAGES or e["user"]["uuid"] not in people:
            continue
        local = ts(e) + people[e["user"]["uuid"]].home.utc_offset_hours * HOUR
        per_day[(local // DAY + 3) % 7] += 1
        hours[6 <= local % DAY // HOUR < 20] += 1
    assert hours[True] > 8 * hours[False]
    weekday_mean = sum(per_day[d] for d in range(5)) / 5
    assert per_day[5] < 0.3 * weekday_mean and per_day[6] < 0.3 * weekday_mean


def test_item_usage_and_audit_shapes(world: World, week: Events) -> None:
    shared = {v.uuid: {i.uuid for i in v.items} for v in world.vaults}
    private = {u.private_vault_uuid for u in world.users}
    actions: Counter[str] = Counter()
    for f, e in week:
        if f is Feature.ITEMUSAGES:
            assert e["item_uuid"] in shared[e["vault_uuid"]] and e["vault_uuid"] not in private
            assert e["user"]["user_type"] == "user" and isinstance(e["used_version"], int)
            actions[e["action"]] += 1
        elif f is Feature.AUDITEVENTS:
            assert e["actor_type"] == "user" and e["actor_uuid"] == e["actor_details"]["uuid"]
            assert set(e["session"]) == {"uuid", "login_time", "device_uuid", "ip"}
            assert parse_ns(e["session"]["login_time"]) <= ts(e)
            if e["object_type"] == "user":
                assert e["object_details"]["uuid"] == e["object_uuid"]
    top = [a for a, _ in actions.most_common(2)]
    assert "fill" in top and actions["reveal"] > actions["share"] > 0 and actions["server-fetch"] > 0
    audit = Counter((e["action"], e["object_type"]) for f, e in week if f is Feature.AUDITEVENTS)
    assert audit[("create", "item")] and audit[("grant", "uva")] and audit[("join", "gm")]


def test_nobody_is_active_while_suspended(week: Events) -> None:
    audits = [e for f, e in week if f is Feature.AUDITEVENTS]
    away: dict[str, tuple[int, int]] = {}
    for e in audits:
        if e["object_type"] == "user" and e["action"] == "suspend":
            away[e["object_uuid"]] = (ts(e), END)
        elif e["object_type"] == "user" and e["action"] in ("reactive", "delete") and e["object_uuid"] in away:
            away[e["object_uuid"]] = (away[e["object_uuid"]][0], ts(e))
    assert away
    for f, e in week:
        user = {Feature.SIGNINATTEMPTS: "target_user", Feature.ITEMUSAGES: "user", Feature.AUDITEVENTS: "actor_details"}
        if f is Feature.SIGNINATTEMPTS and e["category"] != "success":
            continue  # attackers may still try a suspended user's password
        uuid = e[user[f]]["uuid"]
        if uuid in away:
            start, end = away[uuid]
            assert not start < ts(e) < end, (f, e)


def test_simulate_history_stores_every_event_strictly(store: SQLiteStore, account: Account, small: World) -> None:
    writer = EventWriter(store, time.time_ns)
    out = io.StringIO()
    console = Console(file=out, width=100)  # not a terminal: plain progress lines
    results = simulate_history(writer, account.id, small, days=1, end_ns=END, seed=3, console=console, batch_size=500)
    expected = list(history(small, END - DAY, END, seed=3))
    for feature in ALL_FEATURES:
        generated = [e for f, e in expected if f is feature]
        assert results[feature].received == results[feature].stored == len(generated) > 0
        assert stored_events(store, account, feature) == generated  # unchanged, in insertion order
    assert "simulating: 100%" in out.getvalue()
    again = simulate_history(writer, account.id, small, days=1, end_ns=END, seed=3, progress=False)
    assert all(r.stored == 0 and r.duplicates == r.received for r in again.values())


# --- live ------------------------------------------------------------------------------------------


def test_live_stream_has_rate_bursts_and_late_usages(world: World) -> None:
    start = END
    seen: list[tuple[int, Feature, dict[str, Any]]] = []
    for due, feature, event in live_events(world, seed=5, start_ns=start, rate=5.0):
        if due > start + 25 * MINUTE:
            break
        seen.append((due, feature, event))
    dues = [d for d, _, _ in seen]
    assert dues == sorted(dues) and all(ts(e) <= d for d, _, e in seen)
    assert 0.85 * 5 * 1500 <= len(seen) <= 1.35 * 5 * 1500
    signins = [e for _, f, e in seen if f is Feature.SIGNINATTEMPTS]
    assert bursts(signins, "credentials_failed")
    assert any(d - ts(e) >= 2 * MINUTE for d, f, e in seen if f is Feature.ITEMUSAGES)
    assert {f for _, f, _ in seen} == set(ALL_FEATURES)
    with pytest.raises(ValueError, match="rate"):
        next(live_events(world, seed=5, start_ns=start, rate=0))


def test_run_live_writes_current_events_and_stops_promptly(store: SQLiteStore, account: Account, small: World) -> None:
    writer = EventWriter(store, time.time_ns)
    stop = threading.Event()
    result: list[int] = []
    started = time.time_ns()
    thread = threading.Thread(
        target=lambda: result.append(
            run_live(writer, account.id, small, seed=9, rate=300.0, stop=stop, flush_interval=0.05)
        )
    )
    thread.start()
    deadline = time.monotonic() + 10
    while sum(store.count_events(account.id, f) for f in ALL_FEATURES) < 100:
        assert thread.is_alive() and time.monotonic() < deadline, "live mode wrote too little"
        time.sleep(0.02)
    stop.set()
    asked = time.monotonic()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - asked < 3.0  # a loaded machine's margin
    stopped = time.time_ns()
    events = [e for f in ALL_FEATURES for e in stored_events(store, account, f)]
    assert result == [len(events)] and len(events) >= 100
    assert all(started - SECOND <= ts(e) <= stopped for e in events)


def test_live_activity_keeps_to_the_historys_events_per_hour(world: World) -> None:
    """By default (as `siemgate demo` runs it) the live stream brings, hour by hour over two virtual
    days, about as many events as the history has at that hour of the week: quiet nights, busy days,
    never many times more (which made every 24-hour chart a flat line with one giant bar)."""
    start = END
    expected = history_rhythm(world, 5, start)
    per_hour: Counter[int] = Counter()
    for due, _, _ in live_events(world, seed=5, start_ns=start):
        if due >= start + 2 * DAY:
            break
        per_hour[(due - start) // HOUR] += 1
    hours = range(48)
    want = [expected.at(start + h * HOUR) for h in hours]
    got = [per_hour[h] for h in hours]
    assert 0.8 * sum(want) <= sum(got) <= 1.2 * sum(want), (sum(got), sum(want))
    for h in hours:  # each hour within the noise of a Poisson count (plus a burst of up to 70 events)
        assert abs(got[h] - want[h]) <= 0.35 * want[h] + 4 * want[h] ** 0.5 + 70, (h, got[h], want[h])
    busiest, quietest = max(got), min(got)
    assert busiest > 5 * max(1, quietest), got

    # The rhythm is the history's own: the mean of the same hour of the week over the weeks measured.
    weeks = list(history(world, start - 2 * 7 * DAY, start, seed=5))
    same_hour = [ts(e) for _, e in weeks if (ts(e) // HOUR) % (7 * 24) == (start // HOUR) % (7 * 24)]
    assert expected.at(start) == max(0.05, len(same_hour) / 2)
