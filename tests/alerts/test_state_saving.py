"""Alert state is saved every few seconds, not with every batch (docs/alerts.md, "Evaluation,
state and restarts"): after a crash, the state is rebuilt from the events between the seq it
covers and the checkpoint, exactly, firing nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.accounts.actor import CLI
from siemgate.alerts import engine, evaluator
from siemgate.alerts.model import parse_rule
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from support.events import signin

from .test_alerts_live import SIGNIN, S, Site, now_failed


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", 3600.0)  # only what the test asks for is saved
    s = Site(tmp_path / "data")
    yield s
    s.services.close()


def covered(site: Site, feature: Feature = SIGNIN) -> int | None:
    """The seq up to which the stored state covers the stream."""
    for entry in site.services.store.load_alert_state(site.account.id):
        if (entry.rule_id, entry.kind, entry.key) == ("", "stream", feature.value):
            return int(orjson.loads(entry.value)["seq"])
    return None


def crash(site: Site) -> None:
    """New services on the same files; the old ones never save their state."""
    site.services.alerts.dispatcher.close()
    site.services = site._open()


def test_a_window_not_saved_before_a_crash_is_rebuilt_from_the_events(site: Site) -> None:
    site.write(SIGNIN, now_failed(site, 1))  # the stream's first evaluation saves the state
    first = covered(site)
    site.write(SIGNIN, now_failed(site, 5, offset=1))
    checkpoint = site.services.store.alert_checkpoint(site.account.id, SIGNIN)
    assert first is not None and checkpoint is not None and first < checkpoint  # 5 failures only in memory
    crash(site)
    site.write(SIGNIN, now_failed(site, 3, offset=10))
    assert site.alerts("brute-force-signin") == []  # 9
    site.write(SIGNIN, now_failed(site, 1, offset=20))
    assert len(site.alerts("brute-force-signin")) == 1  # the 10th within 5 minutes


def test_alerts_fired_before_a_crash_are_not_fired_again_and_what_they_learnt_is_kept(site: Site) -> None:
    user = signin(site.clock())["target_user"]

    def sign_in(country: str) -> None:
        site.write(SIGNIN, [signin(site.clock(), country=country, target_user=user)])
        site.clock.advance(1)

    sign_in("CA")  # learnt
    site.restart()  # a clean stop saves the state
    sign_in("FR")  # a new country: fires
    site.write(SIGNIN, now_failed(site, 10, offset=1))  # fires
    assert len(site.alerts()) == 2
    assert covered(site) < site.services.store.alert_checkpoint(site.account.id, SIGNIN)  # type: ignore[operator]
    crash(site)
    site.clock.advance(7200)  # past every suppression
    sign_in("FR")  # known since before the crash
    assert len(site.alerts()) == 2
    site.write(SIGNIN, now_failed(site, 9))  # a new window: the one that fired was emptied by its alert
    assert len(site.alerts()) == 2
    sign_in("DE")
    assert [a.rule_id for a in site.alerts()].count("signin-new-country") == 2


def test_state_is_saved_on_shutdown(site: Site) -> None:
    site.write(SIGNIN, now_failed(site, 1))
    site.write(SIGNIN, now_failed(site, 5, offset=1))
    site.restart()  # a clean stop saves
    assert covered(site) == site.services.store.alert_checkpoint(site.account.id, SIGNIN)


def test_two_processes_count_one_window_and_fire_once(site: Site) -> None:
    other = Site.__new__(Site)  # a second server process on the same store
    other.data_dir, other.settings, other.clock, other.account = site.data_dir, site.settings, site.clock, site.account
    other.services = other._open()
    try:
        site.write(SIGNIN, now_failed(site, 1))
        for n in range(4):  # 2 + 2 + 2 + 2 more failures, alternately in each process
            (site if n % 2 == 0 else other).write(SIGNIN, now_failed(site, 2, offset=1 + 2 * n))
        assert site.alerts("brute-force-signin") == []  # 9 within 5 minutes
        other.write(SIGNIN, now_failed(site, 1, offset=20))
        site.write(SIGNIN, now_failed(site, 1, offset=21))  # the 11th: the window was emptied by the alert
        assert len(site.alerts("brute-force-signin")) == 1
    finally:
        other.services.close()


def test_state_past_the_horizon_leaves_memory_and_the_store(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that runs for weeks keeps no window or suppression a restart would drop: windows
    and suppressions that expired before the oldest event time still evaluated, and windows their
    alert emptied, leave memory and the store at the next save."""
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", 0.0)  # every step saves
    monkeypatch.setattr(evaluator, "EXPIRE_SECONDS", 0.0)  # every save expires
    site.write(SIGNIN, now_failed(site, 3, email="old@example.com"))
    site.write(SIGNIN, now_failed(site, 10, email="fired@example.com", offset=5))  # fires: window emptied, suppressed
    assert len(site.alerts("brute-force-signin")) == 1
    book = site.services.alerts.evaluator._books[site.account.id]

    def state(kind: str) -> tuple[set[str], set[str]]:
        """The brute-force rule's keys of `kind` in memory, and in the store."""
        held = book.windows if kind == "window" else book.suppress
        stored = site.services.store.load_alert_state(site.account.id)
        return (
            {key for rule_id, key in held if rule_id == "brute-force-signin"},
            {e.key for e in stored if e.rule_id == "brute-force-signin" and e.kind == kind},
        )

    assert state("window") == ({'["old@example.com"]'}, {'["old@example.com"]'})  # the emptied one is gone
    assert state("suppress") == ({'["fired@example.com"]'}, {'["fired@example.com"]'})
    site.clock.advance(8 * 86400)  # past alerts_max_event_age_days (7)
    site.write(SIGNIN, now_failed(site, 1, email="new@example.com"))
    assert state("window") == ({'["new@example.com"]'}, {'["new@example.com"]'})
    assert state("suppress") == (set(), set())
    site.write(SIGNIN, now_failed(site, 9, email="new@example.com", offset=1))  # what fires is unchanged
    assert len(site.alerts("brute-force-signin")) == 2


def test_an_account_keeps_a_bounded_number_of_threshold_windows(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule grouped by a field with a value per event (a uuid) makes a window per event, kept for
    alerts_max_event_age_days: past MAX_WINDOWS per account, the windows whose newest event is
    oldest leave memory and the store at the next save (the operator is told which rule), and
    the other rules' windows, fresher, go on counting."""
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", 0.0)
    monkeypatch.setattr(engine, "MAX_WINDOWS", 20)
    site.rule(
        id="per-event",
        name="One window per event",
        source="signinattempts",
        match={"category": "sso_failed"},
        threshold={"count": 5, "window": "5m", "group_by": ["uuid"]},
    )
    sso = [signin(site.clock() + i * S, category="sso_failed") for i in range(30)]  # 30 windows
    with caplog.at_level("WARNING", logger="siemgate.alerts"):
        site.write(SIGNIN, sso + now_failed(site, 9, offset=40))  # + brute-force and one-address windows
    book = site.services.alerts.evaluator._books[site.account.id]
    per_event = {key for rule_id, key in book.windows if rule_id == "per-event"}
    assert len(book.windows) == 18  # 90 % of the limit: the two failure windows and the 16 newest
    assert per_event == {f'["{e["uuid"]}"]' for e in sso[-16:]}
    stored = {
        e.key
        for e in site.services.store.load_alert_state(site.account.id)
        if e.rule_id == "per-event" and e.kind == "window"
    }
    assert stored == per_event
    assert "more than 20 threshold windows" in caplog.text and "per-event 14" in caplog.text
    site.write(SIGNIN, now_failed(site, 1, offset=60))  # the brute-force window was kept: the 10th fires
    assert len(site.alerts("brute-force-signin")) == 1


def test_an_account_keeps_a_bounded_number_of_first_seen_values(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A first-seen rule keyed by a field with many values (an address) keeps a key per value:
    past MAX_SEEN_VALUES per account, the rules holding the most lose the keys that learnt a value
    least recently, from memory and the store, both when a rule learns the stored history and as
    it goes; the other rules keep theirs, and a dropped key's next value counts as its first. The
    bound is the account's: another tenant with the same rule, under it, loses nothing."""
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", 0.0)
    monkeypatch.setattr(engine, "MAX_SEEN_VALUES", 20)
    person = signin(site.clock())["target_user"]

    def from_addresses(first: int, count: int, offset: int, user: dict[str, str] = person) -> list[dict[str, Any]]:
        events = [signin(site.clock() + (offset + i) * S, target_user=user) for i in range(count)]
        for n, event in enumerate(events, start=first):
            event["client"]["ip_address"] = f"198.51.100.{n}"
        return events

    site.write(SIGNIN, from_addresses(0, 30, 0))  # history for the rule below: 30 addresses
    per_address = {
        "id": "per-address",
        "name": "Someone new from an address",
        "source": "signinattempts",
        "match": {"category": "success"},
        "first_seen": {"key": ["client.ip_address"], "value": ["target_user.uuid"]},
    }
    site.rule(**per_address)
    other = site.services.store.create_account(new_id(), "Other tenant", site.clock())
    site.services.alerts.rules.save(CLI, other, parse_rule(per_address), "api")
    site.services.writer.write(other.id, SIGNIN, from_addresses(100, 15, 0))  # 16 values: under 20
    book = site.services.alerts.evaluator._books[site.account.id]

    def held() -> tuple[set[str], set[str]]:
        """The per-address rule's keys in memory and in the store."""
        stored = site.services.store.load_alert_state(site.account.id)
        return (
            {engine._json_key(k) for k in book.seen.get("per-address", {})},
            {e.key for e in stored if e.rule_id == "per-address" and e.kind == "seen"},
        )

    def counted() -> int:
        return sum(len(values) for by_key in book.seen.values() for values in by_key.values())

    with caplog.at_level("WARNING", logger="siemgate.alerts"):
        site.write(SIGNIN, from_addresses(30, 1, 40))  # the rule learns the history, then this one
    book = site.services.alerts.evaluator._books[site.account.id]
    # the history trimmed to 90 % of 20: the new-country rule keeps its value, the per-address
    # rule the 17 newest addresses of the history; then this event's
    addresses = {f'["198.51.100.{n}"]' for n in range(13, 31)}
    assert held() == (addresses, addresses)
    assert counted() == book.values == 19 and len(book.seen["signin-new-country"]) == 1
    assert "more than 20 first-seen values" in caplog.text and "per-address 13" in caplog.text
    caplog.clear()
    stranger = signin(site.clock())["target_user"]
    with caplog.at_level("WARNING", logger="siemgate.alerts"):
        site.write(SIGNIN, from_addresses(20, 1, 50, stranger) + from_addresses(0, 1, 51, stranger))
    assert len(site.alerts("per-address")) == 1  # a kept address, someone new: fires
    assert len(site.alerts("signin-new-country")) == 0  # the same person and country throughout
    # the dropped address's next value counts as its first (quiet); 22 values: trimmed again, the
    # per-address rule down to 16 by its 4 keys that learnt least recently (20 learnt last: kept)
    addresses = {f'["198.51.100.{n}"]' for n in [0, *range(17, 31)]}
    assert held() == (addresses, addresses)
    assert counted() == book.values == 18 and "per-address 4" in caplog.text
    site.write(SIGNIN, [signin(site.clock() + 60 * S, country="FR", target_user=person)])
    assert len(site.alerts("signin-new-country")) == 1  # its state was never dropped
    theirs = site.services.alerts.evaluator._books[other.id]
    assert len(theirs.seen["per-address"]) == 15 and theirs.values == 16  # the other tenant's: all kept
    assert other.uuid not in caplog.text


def test_first_seen_keys_are_trimmed_by_how_recently_they_learnt_across_a_restart(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_SEEN_VALUES the keys that learnt a value least recently are dropped; after a
    restart they were dropped in the order the store returned them (by key text on SQLite), so
    the people who signed in last before the restart lost what they had learnt, and a new country
    of theirs counted as their first: never an alert."""
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", 0.0)
    monkeypatch.setattr(engine, "MAX_SEEN_VALUES", 10)
    person = signin(site.clock())["target_user"]
    uuids = [f"{'ABCDEFGHIJKL'[n]}" * 26 for n in range(12)]  # ids in the order of their text
    people = [{**person, "uuid": uuids[n], "email": f"u{n}@example.com"} for n in range(12)]

    def sign_in(who: dict[str, Any], country: str) -> None:
        site.write(SIGNIN, [signin(site.clock(), country=country, target_user=who)])
        site.clock.advance(1)

    for who in reversed(people[:10]):  # the 10th learns first, the 1st last
        sign_in(who, "CA")
    site.restart()
    sign_in(people[10], "CA")
    sign_in(people[11], "CA")  # 11 values at the 11th: trimmed to 9, the 2 that learnt least recently go
    kept = {key[0].upper() for key in site.services.alerts.evaluator._books[site.account.id].seen["signin-new-country"]}
    assert kept == {uuids[n] for n in [*range(8), 10, 11]}
    site.restart()
    sign_in(people[0], "FR")  # learnt CA just before the first restart: a new country
    assert [a.rule_id for a in site.alerts()] == ["signin-new-country"]
