"""Deleting a large account does not hold the store (docs/setup.md, "Deleting an account"). It
was one transaction: on SQLite, which has one writer, every other account's ingest waited for the
whole deletion (~1.6 s per million events measured). Now the account is hidden and unusable from
the deletion's first transaction, its rows go at most DELETION_CHUNK per transaction with other
writers between them, and a deletion stopped part-way (killed, a store that refuses) is carried on
by running it again."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from siemgate.errors import NotFound, SiemgateError
from siemgate.model.encoding import encode_event
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import IngestKey, NewEvent, Store, TokenRecord
from siemgate.store.shared.deletion import _ALONE, _LEAVING, DELETION_CHUNK
from siemgate.store.sqlite import SQLiteStore
from support.plans import analyze, read_work
from support.stores import make_store

T0 = 1_700_000_000_000_000_000
SIGNIN = Feature.SIGNINATTEMPTS


def _batch(first: int, count: int) -> list[NewEvent]:
    events = []
    for i in range(first, first + count):
        event = {"uuid": new_id(), "timestamp": "2023-11-14T22:13:20Z", "category": "success", "type": "credentials_ok"}
        events.append(NewEvent(event["uuid"], T0 + i, encode_event(SIGNIN, event)[0], None))
    return events


def _fill(store: Store, account_id: int, count: int) -> None:
    for first in range(0, count, 1000):
        store.insert_events(account_id, SIGNIN, _batch(first, min(1000, count - first)))


def _left(store: Store, account_id: int) -> dict[str, int]:
    tables = ("events", "facets", "log_entries", "streams", "tokens", "ingest_keys", "memberships")
    return {
        t: int(store._select(f"SELECT count(*) FROM {t} WHERE account_id = ?", (account_id,))[0][0]) for t in tables
    }


def test_other_accounts_write_between_the_transactions_of_a_large_deletion(tmp_path: Path) -> None:
    """Each write transaction of the deletion changes at most DELETION_CHUNK rows, and another
    account's batch is stored after the first one commits, while the deleted account's events
    are still there (SQLite: the store's one writer)."""
    store = make_store("sqlite", tmp_path)
    assert isinstance(store, SQLiteStore)
    gone = store.create_account(new_id(), "Large", T0)
    other = store.create_account(new_id(), "Other", T0)
    _fill(store, gone.id, 3 * DELETION_CHUNK)
    write = store._write
    deleting = threading.current_thread()
    changed: list[int] = []
    while_deleting: list[int] = []  # the deleted account's events left when the other's batch was stored

    def other_ingests() -> None:
        store.insert_events(other.id, SIGNIN, _batch(0, 10))
        while_deleting.append(store.count_events(gone.id, SIGNIN))

    @contextmanager
    def counted() -> Iterator[sqlite3.Connection]:
        with write() as conn:
            before = conn.total_changes
            yield conn
            changes = conn.total_changes - before
        if threading.current_thread() is deleting:
            changed.append(changes)
            if len(changed) == 1:
                ingest = threading.Thread(target=other_ingests)
                ingest.start()
                ingest.join(30)

    store._write = counted  # type: ignore[method-assign]
    try:
        store.delete_account_rows(gone.id, gone.uuid, gone.name, "test", "{}", T0)
    finally:
        del store._write
    assert while_deleting and while_deleting[0] > 0, "the other account's batch waited for the whole deletion"
    assert max(changed) <= DELETION_CHUNK, f"a transaction of the deletion changed {max(changed)} rows"
    assert _left(store, gone.id) == dict.fromkeys(_left(store, gone.id), 0)
    assert store.count_events(other.id, SIGNIN) == 10
    store.close()


def _refuse_event_deletes(store: Store, refuse: bool) -> None:
    """A store that refuses to delete events (a fault part-way through a deletion), or no more."""
    with store._tx() as conn:
        if not refuse:
            conn.execute(
                "DROP TRIGGER refuse_deletes ON events"
                if store.dialect.name == "postgres"
                else "DROP TRIGGER refuse_deletes"
            )
        elif store.dialect.name == "postgres":
            conn.execute(
                "CREATE FUNCTION refuse_deletes() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_deletes BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION refuse_deletes()"
            )
        else:
            conn.execute(
                "CREATE TRIGGER refuse_deletes BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )


def test_a_stopped_deletion_leaves_the_account_unusable_and_is_carried_on(store: Store) -> None:
    account = store.create_account(new_id(), f"Stopped {new_id()[:6]}", T0)
    kept = store.create_account(new_id(), f"Kept {new_id()[:6]}", T0)
    person = store.create_user(new_id(), f"{new_id()[:8]}@stopped.example", "P", None, account.id, T0)
    store.add_member(account.id, person.id, "owner", T0)
    integration = store.create_integration(account.id, new_id(), "other", "SIEM", "", T0)
    token = TokenRecord(new_id(), account.id, integration.id, "t", (SIGNIN,), "kid", new_id() * 2, T0, None)
    store.create_token(token)
    key = IngestKey(new_id(), account.id, "k", (SIGNIN,), new_id() * 2, "sgi_", T0)
    store.create_ingest_key(key)
    _fill(store, account.id, 50)
    _refuse_event_deletes(store, True)
    with pytest.raises(SiemgateError):
        store.delete_account_rows(account.id, account.uuid, account.name, "first (test)", '{"events": 50}', T0)
    _refuse_event_deletes(store, False)
    # hidden and unusable from the deletion's first step
    with pytest.raises(NotFound):
        store.get_account(account.uuid)
    with pytest.raises(NotFound):
        store.get_account_by_id(account.id)
    assert [a.id for a in store.list_accounts()] == [kept.id]
    with pytest.raises(NotFound):
        store.insert_events(account.id, SIGNIN, _batch(100, 1))
    with pytest.raises(NotFound):
        store.token_revocation(token.id)
    with pytest.raises(NotFound):
        store.get_ingest_key_by_hash(key.key_sha256)
    assert store.list_members(account.id) == []
    # carried on by running it again
    [(pending, begun)] = store.pending_account_deletions()
    assert pending == account and begun.actor == "first (test)"
    store.delete_account_rows(account.id, account.uuid, account.name, "again (test)", "{}", T0 + 1)
    assert _left(store, account.id) == dict.fromkeys(_left(store, account.id), 0)
    assert store.pending_account_deletions() == []
    [done] = [op for op in store.list_operations() if op.account_uuid == account.uuid]
    assert (done.action, done.actor, done.detail) == ("delete account", "first (test)", '{"events": 50}')
    assert store.get_account(kept.uuid) == kept


def test_who_leaves_with_an_account_is_found_among_its_own_members(store: Store) -> None:
    """The deletion finds the people who leave with the account (home there, no other account) and
    those for whom it was the only account, in its first and last transactions, among the account's
    own members: the reads do the same work beside 20,000 other accounts' memberships as beside
    none (support/plans.py: SQLite virtual machine steps, PostgreSQL pages). Before (NOT IN), the
    second read every membership of every account, and on PostgreSQL the first too: with 500,000
    of them SQLite's first transaction held the writer 183 ms and PostgreSQL's last took 10.7 s
    (docs/benchmarks.md, "Deleting an account beside other accounts' members")."""
    raw: Any = store
    account = store.create_account(new_id(), "Leaving", T0)
    other = store.create_account(new_id(), "Staying", T0)
    leaving = store.create_user(new_id(), "leaving@example.com", "Leaving", None, account.id, T0)  # a member of none
    alone = store.create_user(new_id(), "alone@example.com", "Alone", None, account.id, T0)
    shared = store.create_user(new_id(), "shared@example.com", "Shared", None, account.id, T0)
    for user, accounts in ((alone, [account]), (shared, [account, other])):
        for member_of in accounts:
            store.add_member(member_of.id, user.id, "member", T0)
    reads = ((_LEAVING, (account.id,)), (_ALONE, (account.id, account.id)))
    assert [{row[0] for row in raw._rows(raw._q(sql), params)} for sql, params in reads] == [{leaving.id}, {alone.id}]
    alone_work = [read_work(store, raw._q(sql), params) for sql, params in reads]
    with raw._tx() as conn:
        count = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
        conn.execute(
            count + "INSERT INTO users (uuid, email, name, created_at) SELECT 'u' || i, 'u' || i, 'U', 0 FROM n"
        )
        conn.execute(
            raw._q(
                "INSERT INTO memberships (account_id, user_id, role, created_at)"
                " SELECT ?, id, 'member', 0 FROM users WHERE id > ?"
            ),
            (other.id, shared.id),
        )
    analyze(store, "users", "memberships")
    beside_others = [read_work(store, raw._q(sql), params) for sql, params in reads]
    assert all(b <= 3 * a + 10 for a, b in zip(alone_work, beside_others, strict=True)), (alone_work, beside_others)


# The reads as they were before NOT EXISTS (da1a282): the reference of the model test below.
_LEAVING_NOT_IN = "SELECT id FROM users WHERE home_account_id = ? AND id NOT IN (SELECT user_id FROM memberships)"
_ALONE_NOT_IN = (
    "SELECT user_id FROM memberships WHERE account_id = ?"
    " AND user_id NOT IN (SELECT user_id FROM memberships WHERE account_id <> ?)"
)


def test_who_leaves_is_who_left_before_on_random_memberships(store: Store) -> None:
    """On random people (home in one of 6 accounts or none) and memberships (each person in 0-6 of
    them), for every account the NOT EXISTS reads find exactly the people the NOT IN reads found,
    and what the model says: home here and in no account; a member here and of no other."""
    raw: Any = store
    rng = random.Random(20261208)
    accounts = [store.create_account(new_id(), f"model-{i}", T0).id for i in range(6)]
    members: dict[int, set[int]] = {}
    homes: dict[int, int | None] = {}
    for i in range(300):
        home = rng.choice([None, *accounts])
        user = store.create_user(new_id(), f"p{i}@example.com", "P", None, home, T0).id
        homes[user] = home
        members[user] = set(rng.sample(accounts, rng.choice([0, 0, 1, 1, 1, 2, 3, 6])))
        for account_id in members[user]:
            store.add_member(account_id, user, "member", T0)
    for account_id in accounts:
        leaving = {u for u, home in homes.items() if home == account_id and not members[u]}
        alone = {u for u, of in members.items() if of == {account_id}}
        found = [
            {int(row[0]) for row in raw._rows(raw._q(sql), params)}
            for sql, params in (
                (_LEAVING, (account_id,)),
                (_LEAVING_NOT_IN, (account_id,)),
                (_ALONE, (account_id, account_id)),
                (_ALONE_NOT_IN, (account_id, account_id)),
            )
        ]
        assert found == [leaving, leaving, alone, alone], account_id
        assert leaving and alone  # the random graph has both kinds in every account
