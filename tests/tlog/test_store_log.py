"""The log in the store, on both backends: entries written in the event's transaction, the
integrator's tree (dense, never rewritten), purges that keep entries, backfill of events stored
before the log existed."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from siemgate.cli.main import main
from siemgate.errors import SiemgateError
from siemgate.integrity.tree import HOLE_ENTRY, StoredTree, integrate
from siemgate.model.features import Feature
from siemgate.store.base import Store
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore
from siemgate.tlog.entry import body_timestamp_ns, entry_bytes
from siemgate.tlog.merkle import tree_reader
from siemgate.tlog.proof import consistency_proof, inclusion_proof
from support.events import auditevent

from .store_log_kit import T0, bodies, expected_root, new_account, sql, write_events

AUDIT = Feature.AUDITEVENTS


def test_each_stored_event_has_its_entry_written_with_it(store: Store) -> None:
    account = new_account(store)
    write_events(store, account, 40, batch=15)
    stored = bodies(store, account)
    entries = dict(store.log_entry_rows(account.id, AUDIT, 0, 1000))
    assert sorted(entries) == [seq - 1 for seq, _ in stored] == list(range(40))
    for seq, body in stored:
        assert entries[seq - 1] == entry_bytes(body_timestamp_ns(body), body)
    other = new_account(store)
    assert store.log_entry_rows(other.id, AUDIT, 0, 1000) == []


def test_integration_builds_the_tree_of_the_stored_events_in_batches(store: Store) -> None:
    account = new_account(store)
    write_events(store, account, 600)
    result = integrate(store, account.id, AUDIT, T0, batch=100)
    assert (result.size, result.added, result.error) == (600, 600, None)
    state = store.log_state(account.id, AUDIT)
    assert state is not None and state.size == 600 and state.root == expected_root(store, account)
    # level-8 hashes of the two full 256-leaf subtrees, nothing else
    assert [idx for idx, _ in store.log_hash_rows(account.id, AUDIT, 8, 0, 10)] == [0, 1]
    write_events(store, account, 70, start=T0 + 10_000 * 10**9)
    assert integrate(store, account.id, AUDIT, T0).added == 70
    state = store.log_state(account.id, AUDIT)
    assert state is not None and state.size == 670 and state.root == expected_root(store, account)
    assert integrate(store, account.id, AUDIT, T0).added == 0


def test_proofs_from_the_stored_tree_are_those_of_the_tree(store: Store) -> None:
    account = new_account(store)
    write_events(store, account, 700)
    integrate(store, account.id, AUDIT, T0, batch=300)
    leaves = [StoredTree(store, account.id, AUDIT, 700)(0, i) for i in range(700)]
    memory = tree_reader(leaves)
    stored = StoredTree(store, account.id, AUDIT, 700)
    for size1 in (1, 255, 256, 300, 513, 699):
        assert consistency_proof(size1, 700, stored) == consistency_proof(size1, 700, memory)
    for index in (0, 255, 256, 699):
        assert inclusion_proof(index, 700, stored) == inclusion_proof(index, 700, memory)


def test_a_purge_deletes_bodies_and_keeps_the_tree(store: Store) -> None:
    account = new_account(store)
    write_events(store, account, 300)
    integrate(store, account.id, AUDIT, T0)
    state = store.log_state(account.id, AUDIT)
    assert store.purge_events(account.id, AUDIT, T0 + 100 * 10**9) == 100
    assert len(store.log_entry_rows(account.id, AUDIT, 0, 1000)) == 300
    write_events(store, account, 10, start=T0 + 5000 * 10**9)
    assert integrate(store, account.id, AUDIT, T0).error is None
    after = store.log_state(account.id, AUDIT)
    assert after is not None and state is not None and after.size == 310
    assert consistency_proof(300, 310, StoredTree(store, account.id, AUDIT, 310))  # nodes still all there


def test_a_missing_entry_is_an_integrity_error_naming_its_index_and_stops_the_log(store: Store) -> None:
    account = new_account(store)
    write_events(store, account, 50)
    integrate(store, account.id, AUDIT, T0)
    write_events(store, account, 30, start=T0 + 1000 * 10**9)
    # the second batch's row of entries (indices 50..79) deleted
    sql(store, "DELETE FROM log_entries WHERE account_id = ? AND feature = ? AND idx = ?", (account.id, AUDIT.code, 50))
    result = integrate(store, account.id, AUDIT, T0)
    assert result.size == 50 and result.error is not None and "index 50 has no log entry" in result.error
    state = store.log_state(account.id, AUDIT)
    assert state is not None and state.size == 50 and state.error == result.error
    write_events(store, account, 5, start=T0 + 2000 * 10**9)
    assert integrate(store, account.id, AUDIT, T0).added == 0  # stopped until an operator looks


def test_events_stored_before_the_log_are_backfilled_with_holes_for_what_is_gone(store: Store) -> None:
    account = new_account(store)
    assert isinstance(store, SQLiteStore | PostgresStore)
    store.log_entries_on = False  # as a store written by a release without the log
    try:
        write_events(store, account, 120)
    finally:
        store.log_entries_on = True
    sql(store, "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq = ?", (account.id, AUDIT.code, 7))
    assert store.log_entry_rows(account.id, AUDIT, 0, 1000) == []
    result = integrate(store, account.id, AUDIT, T0)
    assert (result.size, result.backfilled, result.error) == (120, 120, None)
    entries = dict(store.log_entry_rows(account.id, AUDIT, 0, 1000))
    assert entries[6] == HOLE_ENTRY
    for seq, body in bodies(store, account):
        assert entries[seq - 1] == entry_bytes(body_timestamp_ns(body), body)
    write_events(store, account, 5, start=T0 + 1000 * 10**9)  # new events come with their entries
    assert integrate(store, account.id, AUDIT, T0).added == 5


def test_an_entry_that_cannot_be_written_stores_no_event(store: Store) -> None:
    account = new_account(store)
    write_events(store, account, 3)
    sql(store, "INSERT INTO log_entries VALUES (?, ?, ?, ?)", (account.id, AUDIT.code, 3, HOLE_ENTRY))
    with pytest.raises(SiemgateError):
        write_events(store, account, 2, start=T0 + 100 * 10**9)
    assert [seq for seq, _ in bodies(store, account)] == [1, 2, 3]
    assert store.head_seq(account.id, AUDIT) == 3


def test_the_server_integrates_in_the_background(make_server: Any) -> None:
    server = make_server()
    account = server.account()
    key = server.ingest_key(account)
    start = server.clock() - 86400 * 10**9  # within retention: the ingest API refuses older events
    for i in range(3):
        response = server.ingest(key, AUDIT, [auditevent(start + (i * 100 + n) * 10**9) for n in range(100)])
        assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while (state := server.store.log_state(account.id, AUDIT)) is None or state.size < 300:
        assert time.monotonic() < deadline, "the log was not integrated"
        time.sleep(0.05)
    assert state.root == expected_root(server.store, account) and state.error is None


def test_siemgate_log_integrate_backfills_after_an_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "siemgate.db")
    store.migrate()
    account = new_account(store)
    store.log_entries_on = False  # written by a release without the log
    write_events(store, account, 50)
    store.close()
    monkeypatch.setattr(sys, "argv", ["siemgate", "--data-dir", str(tmp_path), "log", "integrate"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    # the stream named as operators know it (the account uuid), not by the row id ("account #1")
    assert f"{account.uuid}/auditevents: 50 entries, backfilled 50, integrated 50" in capsys.readouterr().out
    store = SQLiteStore(tmp_path / "siemgate.db")
    try:
        state = store.log_state(account.id, AUDIT)
        assert state is not None and state.root == expected_root(store, account)
    finally:
        store.close()
    with pytest.raises(SystemExit):
        main()
    assert "50 entries, up to date" in capsys.readouterr().out


def test_overlapping_rows_of_entries_are_an_integrity_error(store: Store) -> None:
    account = new_account(store)
    write_events(store, account, 80, batch=50)
    sql(store, "INSERT INTO log_entries VALUES (?, ?, ?, ?)", (account.id, AUDIT.code, 45, HOLE_ENTRY * 3))
    result = integrate(store, account.id, AUDIT, T0)
    assert result.size == 0 and result.error is not None and "index 45 has two log entries" in result.error
