"""Deleting an account while events are being ingested into it (docs/setup.md, "Deleting an
account"), on every backend: a batch stored after the deletion is refused (NotFound) rather than
left behind with no account, and nothing of the account remains: no events, streams or log
entries. No later account, person or integration is given a deleted one's id, so nothing that
still knows the old one by its id (a process's cache) can take the new one for it."""

from __future__ import annotations

import threading

import pytest

from siemgate.errors import Conflict, NotFound
from siemgate.model.encoding import encode_event
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import AlertCommit, AlertStateEntry, NewEvent, Store
from siemgate.store.shared.log import LogState, StoredCheckpoint

T0 = 1_700_000_000_000_000_000
SIGNIN = Feature.SIGNINATTEMPTS
BATCHES = 400  # the most an ingest may write; the deletion comes after the first


def _batch(n: int) -> list[NewEvent]:
    events = []
    for i in range(5):
        event = {"uuid": new_id(), "timestamp": "2023-11-14T22:13:20Z", "category": "success", "type": "credentials_ok"}
        events.append(NewEvent(event["uuid"], T0 + n * 10 + i, encode_event(SIGNIN, event)[0], None))
    return events


def _left(store: Store, account_id: int) -> dict[str, int]:
    counts = {}
    for table in ("events", "streams", "log_entries", "facets"):
        rows = store._select(f"SELECT count(*) FROM {table} WHERE account_id = ?", (account_id,))
        counts[table] = int(rows[0][0])
    return counts


def test_a_batch_after_the_deletion_is_refused_and_nothing_is_left(store: Store) -> None:
    account = store.create_account(new_id(), f"gone-{new_id()[:6]}", T0)
    store.insert_events(account.id, SIGNIN, _batch(0))
    store.delete_account_rows(account.id, account.uuid, account.name, "test", "{}", T0)
    with pytest.raises(NotFound):
        store.insert_events(account.id, SIGNIN, _batch(1))
    assert _left(store, account.id) == {"events": 0, "streams": 0, "log_entries": 0, "facets": 0}
    successor = store.create_account(new_id(), f"next-{new_id()[:6]}", T0)  # SQLite: the same id
    assert store.read_events(successor.id, SIGNIN, 0, 0, None, 100) == []
    assert store.head_seq(successor.id, SIGNIN) == 0


def test_ingest_racing_a_deletion_leaves_nothing_of_the_account(store: Store) -> None:
    account = store.create_account(new_id(), f"race-{new_id()[:6]}", T0)
    first_stored = threading.Event()
    outcome: list[str] = []

    def ingest() -> None:
        for n in range(BATCHES):
            try:
                store.insert_events(account.id, SIGNIN, _batch(n))
            except NotFound:
                outcome.append("refused")
                return
            first_stored.set()
        outcome.append("never refused")

    writer = threading.Thread(target=ingest)
    writer.start()
    assert first_stored.wait(10)
    store.delete_account_rows(account.id, account.uuid, account.name, "test", "{}", T0)
    writer.join(30)
    assert outcome == ["refused"]
    assert _left(store, account.id) == {"events": 0, "streams": 0, "log_entries": 0, "facets": 0}


def test_alert_state_saved_after_the_deletion_is_refused_and_not_inherited(store: Store) -> None:
    """The alert evaluator saves its checkpoint and state every few seconds: a save landing after
    the account's deletion is refused, or the next account given the same id (SQLite) would start
    evaluating after the old stream's seq (its first events never checked) with the old state."""
    account = store.create_account(new_id(), f"alerted-{new_id()[:6]}", T0)
    store.delete_account_rows(account.id, account.uuid, account.name, "test", "{}", T0)
    state = [AlertStateEntry("new-country", "seen", "ada", '["FR"]')]
    with pytest.raises(Conflict, match="deleted"):
        store.commit_alert_evaluation(AlertCommit(account.id, SIGNIN, None, 500, state))
    successor = store.create_account(new_id(), f"next-{new_id()[:6]}", T0)  # SQLite: the same id
    assert store.alert_checkpoint(successor.id, SIGNIN) is None
    assert store.load_alert_state(successor.id) == []


def test_log_integration_after_the_deletion_is_refused_and_not_inherited(store: Store) -> None:
    """The log worker integrates and signs streams in the background: its writes landing after the
    account's deletion store nothing, or the next account given the same id (SQLite) would carry a
    log state and a signed checkpoint of another account's tree."""
    account = store.create_account(new_id(), f"logged-{new_id()[:6]}", T0)
    store.delete_account_rows(account.id, account.uuid, account.name, "test", "{}", T0)
    assert not store.log_integrated(account.id, SIGNIN, 0, LogState(3, b"r" * 32, None, T0), [(0, 0, b"h" * 32)])
    store.add_log_entries(account.id, SIGNIN, [(0, b"e" * 41)])
    store.add_log_checkpoint(account.id, SIGNIN, StoredCheckpoint(1, 3, "signed note"))
    store.set_log_error(account.id, SIGNIN, "an error", T0)
    store.add_log_recovery(account.id, SIGNIN, 1, "statement")
    store.reset_log_state(account.id, SIGNIN, LogState(3, b"r" * 32, None, T0))
    successor = store.create_account(new_id(), f"next-{new_id()[:6]}", T0)  # SQLite: the same id
    assert store.log_state(successor.id, SIGNIN) is None
    assert store.log_checkpoints(successor.id, SIGNIN) == []
    assert store.log_recoveries(successor.id, SIGNIN) == []
    assert store.log_entry_rows(successor.id, SIGNIN, 0, 10) == []


def test_the_ids_of_a_deleted_account_its_people_and_integrations_are_never_given_again(store: Store) -> None:
    """SQLite gave a new row the largest id in use plus one: the newest account deleted, the next
    one got its id (and its people's and integrations' ids went to the next ones too)."""
    store.create_account(new_id(), f"Kept {new_id()[:8]}", 0)
    gone = store.create_account(new_id(), f"Gone {new_id()[:8]}", 0)
    person = store.create_user(new_id(), f"{new_id()[:8]}@gone.example", "Gone", None, gone.id, 0)
    store.add_member(gone.id, person.id, "owner", 0)
    integration = store.create_integration(gone.id, new_id(), "other", "SIEM", "", 0)
    store.delete_account_rows(gone.id, gone.uuid, gone.name, "test", "{}", 1)
    after = store.create_account(new_id(), f"After {new_id()[:8]}", 2)
    newcomer = store.create_user(new_id(), f"{new_id()[:8]}@after.example", "After", None, after.id, 2)
    siem = store.create_integration(after.id, new_id(), "other", "SIEM", "", 2)
    given_again = [
        what
        for what, new, old in (
            ("account", after, gone),
            ("person", newcomer, person),
            ("integration", siem, integration),
        )
        if new.id <= old.id
    ]
    assert not given_again, f"a deleted {given_again}'s id was given to a new one"
