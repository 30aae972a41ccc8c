"""What only the PostgreSQL backend does, beyond the shared contract: day partitions created on
demand and dropped by purges, errors that name the problem without SQL or secrets, the URL
scheme in the composition root; and, on both backends, signing keys of an older deployment
imported from its data directory."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from siemgate.auth.keys import KeyRing, thumbprint
from siemgate.composition.stores import open_store
from siemgate.config import load_settings
from siemgate.errors import ConfigError, Conflict, StoreError
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import (
    AlertRuleRecord,
    ApiKey,
    IngestKey,
    MadeWith,
    NewEvent,
    Session,
    SignInProof,
    Store,
    TokenRecord,
)
from siemgate.store.errors import LimitReached
from siemgate.store.postgres import PostgresStore
from siemgate.store.postgres.events import DAY, partition_name
from siemgate.store.postgres.retention import DROP_LOCK_WAIT
from siemgate.store.shared.identity import Invitation, Withdrawal
from support.pg_waits import in_thread, waiting_for
from support.stores import drop_pg_schema, make_store, new_pg_schema, pg_schema_url
from support.waiting import wait_for

T0 = 20_000 * DAY  # a UTC midnight


def _exists(store: PostgresStore, name: str) -> bool:
    return bool(store._value("SELECT to_regclass(%s) IS NOT NULL", (name,)))


def _events(*stamps: int) -> list[NewEvent]:
    return [NewEvent(new_id(), ts, b'{"x":1}', None) for ts in stamps]


def test_day_partitions_are_created_on_demand_and_dropped_by_purges(pg: PostgresStore) -> None:
    a = pg.create_account(new_id(), "A", T0)
    b = pg.create_account(new_id(), "B", T0)
    code = Feature.SIGNINATTEMPTS.code
    pg.insert_events(a.id, Feature.SIGNINATTEMPTS, _events(T0 + 1, T0 + DAY + 1, T0 + 2 * DAY + 1))
    pg.insert_events(b.id, Feature.SIGNINATTEMPTS, _events(T0 + DAY + 2))
    days = [partition_name(code, T0 + n * DAY) for n in range(3)]
    assert all(_exists(pg, name) for name in days)
    assert not _exists(pg, partition_name(code, T0 + 3 * DAY))
    # Day 0 holds only A's events: dropped. Day 1 is shared with B: A's rows are deleted instead.
    assert pg.purge_events(a.id, Feature.SIGNINATTEMPTS, T0 + 2 * DAY) == 2
    assert not _exists(pg, days[0]) and not _exists(pg, partition_name(code, T0, "facets"))
    assert _exists(pg, days[1]) and _exists(pg, days[2])
    assert pg.count_events(b.id, Feature.SIGNINATTEMPTS) == 1
    assert pg.purge_events(b.id, Feature.SIGNINATTEMPTS, T0 + 2 * DAY) == 1  # now B's alone: dropped
    assert not _exists(pg, days[1])
    # Another process still believing day 0 exists inserts into it: the partition comes back.
    other = PostgresStore(pg.url, max_size=1)
    try:
        other._partitions.add((code, T0))
        assert other.insert_events(a.id, Feature.SIGNINATTEMPTS, _events(T0 + 5)).stored == 1
    finally:
        other.close()
    assert _exists(pg, days[0])


def test_connection_errors_name_the_server_without_the_password() -> None:
    url = "postgresql://postgres:sekrit-pw@127.0.0.1:1/test?connect_timeout=1"
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, connect_timeout=1)
    assert "127.0.0.1:1" in caught.value.message and "sekrit-pw" not in caught.value.message
    assert "***" in caught.value.message


def test_failures_are_store_errors_without_sql(pg: PostgresStore) -> None:
    a = pg.create_account(new_id(), "A", T0)
    with pytest.raises(StoreError) as caught:
        pg.insert_events(a.id, Feature.SIGNINATTEMPTS, [NewEvent(new_id(), T0, object(), None)])  # type: ignore[arg-type]
    assert "SELECT" not in caught.value.message and "INSERT" not in caught.value.message


def test_open_store_chooses_the_backend_by_scheme(tmp_path: Path, pg_url: str) -> None:
    store = open_store(load_settings(data_dir=tmp_path, database_url=pg_url), migrate=False)
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()
    with pytest.raises(ConfigError, match="postgresql://"):
        open_store(load_settings(data_dir=tmp_path, database_url="mysql://x/y"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_keys_of_an_older_deployment_are_imported_from_its_data_dir(kind: str, tmp_path: Path) -> None:
    keys = tmp_path / "site" / "keys"
    keys.mkdir(parents=True)
    made = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]
    kids = [thumbprint(k.public_key()) for k in made]
    for kid, key in zip(kids, made, strict=True):
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (keys / f"{kid}.pem").write_bytes(pem)
    (keys / "active").write_text(kids[0])
    cursor = secrets.token_bytes(32)
    (keys / "cursor.key").write_bytes(cursor)
    store: Store = make_store(kind, tmp_path)
    try:
        ring = KeyRing(store, tmp_path / "site")
        assert ring.active()[0] == kids[0] and set(ring.kids()) == set(kids)
        assert ring.cursor_key == cursor
        # Another process opening the same store gets the same keys, without the files.
        again = KeyRing(store, None)
        assert again.active()[0] == kids[0] and again.cursor_key == cursor
        new_kid, retired = again.rotate(keep={kids[0]})
        assert retired == [kids[1]] and ring.active()[0] == new_kid  # the first ring sees the rotation
        assert ring.public_key(new_kid) is not None and ring.public_key(kids[1]) is None
    finally:
        store.close()


def test_a_long_chain_reads_only_the_days_ahead_of_it(pg: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader following its cursor across many days reads the day(s) its page comes from and the
    next one, not every day the chain has passed (which made each page of a long chain slower)."""
    account = pg.create_account(new_id(), "A", T0)
    feature = Feature.ITEMUSAGES
    for day in range(12):
        pg.insert_events(account.id, feature, _events(*(T0 + day * DAY + n for n in range(1, 6))))
    read: list[list[int]] = []
    union = pg._union

    def recorded(code: int, buckets: list[int], columns: str, plan: str, start: int, end: int) -> str:
        read.append(list(buckets))
        return union(code, buckets, columns, plan, start, end)

    monkeypatch.setattr(pg, "_union", recorded)
    seqs, after = [], 0
    while True:
        rows = pg.read_events(account.id, feature, after, T0, None, 3)
        if not rows:
            break
        seqs += [seq for seq, _, _ in rows]
        after = rows[-1][0]
    assert seqs == list(range(1, 61))  # every event once, in order
    assert max(len(days) for days in read) <= 3, read


@pytest.mark.parametrize("prepared", [True, False])
def test_the_serving_statements_are_prepared_unless_turned_off(prepared: bool, tmp_path: Path) -> None:
    """SIEMGATE_DATABASE_PREPARED_STATEMENTS: on, the token check and page statements are prepared
    on their connection; off (a pooler that does not track them), nothing is."""
    schema = new_pg_schema()
    settings = load_settings(
        data_dir=tmp_path,
        database_url=pg_schema_url(schema),
        database_pool_size=1,  # one connection: the session whose prepared statements are counted
        database_prepared_statements=prepared,
    )
    store = open_store(settings)
    try:
        account = store.create_account(new_id(), "A", T0)
        store.insert_events(account.id, Feature.ITEMUSAGES, _events(T0 + 1, T0 + DAY + 1))
        integration = store.create_integration(account.id, new_id(), "other", "siem", "", T0)
        token = TokenRecord(new_id(), account.id, integration.id, "t", (Feature.ITEMUSAGES,), "k", "0" * 64, T0, None)
        store.create_token(token)
        for _ in range(6):  # as every request does: prepared once run often enough on the connection
            assert store.token_revocation(token.id) == (None, None)
        first = store.start_position(account.id, Feature.ITEMUSAGES, T0)
        page = store.read_page(account.id, Feature.ITEMUSAGES, first, T0, None, 10, v1=False)
        assert page.count == 2
        assert isinstance(store, PostgresStore)
        statements = {str(s) for (s,) in store._rows("SELECT statement FROM pg_prepared_statements")}
        if prepared:
            assert any("FROM tokens" in s for s in statements) and any("event_buckets" in s for s in statements)
        else:
            assert statements == set()
    finally:
        store.close()
        drop_pg_schema(schema)


def test_a_prepared_page_statement_survives_the_purge_of_its_day(pg: PostgresStore) -> None:
    """A page statement prepared while naming a day's partition is read again without that day once
    a purge has dropped it (the reader looks again), never an error."""
    account = pg.create_account(new_id(), "A", T0)
    feature = Feature.ITEMUSAGES
    pg.insert_events(account.id, feature, _events(T0 + 1, T0 + 2, T0 + DAY + 1, T0 + DAY + 2))
    after = pg.read_events(account.id, feature, 0, 0, None, 1)[0][0]
    for _ in range(3):  # the same page, with its remembered days, from a prepared statement
        assert [seq for seq, _, _ in pg.read_events(account.id, feature, after, 0, None, 2)] == [2, 3]
    assert pg.purge_events(account.id, feature, T0 + DAY) == 2
    assert not _exists(pg, partition_name(feature.code, T0))
    assert [seq for seq, _, _ in pg.read_events(account.id, feature, after, 0, None, 2)] == [3, 4]


def test_a_starter_rule_enabled_while_its_override_is_being_saved_changes_only_that_flag(
    pg: PostgresStore,
) -> None:
    """Several processes: a starter rule disabled while another transaction is inserting an
    override of it (not committed yet) waits for that transaction and then changes only the
    flag of the override it saved, instead of failing or replacing its definition."""
    a = pg.create_account(new_id(), "A", T0)
    outcome: list[object] = []

    def disable() -> None:
        record = AlertRuleRecord(a.id, "mfa-disabled", '{"x":"shipped"}', "starter", False, T0, T0 + 1)
        try:
            outcome.append(pg.set_alert_rule_enabled(record, insert=True))
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)

    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute(
            "INSERT INTO alert_rules (account_id, rule_id, definition, origin, enabled, created_at, updated_at,"
            " version) VALUES (%s, 'mfa-disabled', '{\"x\":\"override\"}', 'starter', 1, %s, %s, 1)",
            (a.id, T0, T0),
        )
        job = threading.Thread(target=disable)
        job.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )

        def blocked() -> bool:
            row = watch.execute(waiting).fetchone()
            return row is not None and row[0] >= 1

        wait_for("the disabling to wait for the override being inserted", blocked, 30)
        other.commit()
    job.join(30)
    assert outcome == [2]
    [rule] = pg.list_alert_rules(a.id)
    assert (rule.definition, rule.enabled, rule.version) == ('{"x":"override"}', False, 2)


# Each bounded create (limit 2), with one row of its kind already held: the other process's row
# (inserted in the test's own transaction, which has locked the owner's row as a create does),
# and the store call that must then be refused.
_BOUNDED: dict[str, tuple[str, str]] = {
    "invitation": (
        "INSERT INTO invitations (id, account_id, email, role, code_sha256, created_at, expires_at)"
        " VALUES (%(id)s, %(account)s, 'other@example.com', 'member', %(id)s, %(t)s, %(t)s + 1000000000000)",
        "accounts",
    ),
    "integration": (
        "INSERT INTO integrations (uuid, account_id, type, name, created_at)"
        " VALUES (%(id)s, %(account)s, 'splunk', 'other', %(t)s)",
        "accounts",
    ),
    "token": (
        "INSERT INTO tokens (id, account_id, integration_id, name, features, kid, token_sha256, created_at)"
        " VALUES (%(id)s, %(account)s, %(integration)s, 'other', 'auditevents', 'k', %(id)s, %(t)s)",
        "accounts",
    ),
    "ingest key": (
        "INSERT INTO ingest_keys (id, account_id, name, features, key_sha256, prefix, created_at)"
        " VALUES (%(id)s, %(account)s, 'other', 'auditevents', %(id)s, 'sgi_x', %(t)s)",
        "accounts",
    ),
    "API key": (
        "INSERT INTO api_keys (id, user_id, name, key_sha256, prefix, created_at)"
        " VALUES (%(id)s, %(user)s, 'other', %(id)s, 'sgp_x', %(t)s)",
        "users",
    ),
}


@pytest.mark.parametrize("kind", list(_BOUNDED))
def test_a_bounded_create_waits_for_another_process_creating_the_last_allowed(pg: PostgresStore, kind: str) -> None:
    """Several processes: a create into an account (or person) one short of its bound, while
    another connection's transaction is creating the last allowed row (not committed yet), waits for it and is
    then refused, instead of counting without that row and passing the bound."""
    account = pg.create_account(new_id(), "A", T0)
    user = pg.create_user(new_id(), "ada@example.com", "Ada", None, account.id, T0)
    integration = pg.create_integration(account.id, new_id(), "splunk", "first", "", T0)

    def token() -> TokenRecord:
        return TokenRecord(new_id(), account.id, integration.id, "t", (Feature.AUDITEVENTS,), "k", new_id(), T0, None)

    def create() -> None:
        if kind == "invitation":
            invitation = Invitation(
                new_id(), account.id, f"{new_id()}@example.com", "member", new_id(), None, T0, T0 + DAY
            )
            pg.create_invitation(invitation, max_pending=2, now=T0)
        elif kind == "integration":
            pg.create_integration(account.id, new_id(), "splunk", new_id(), "", T0, limit=3)  # "first" counts too
        elif kind == "token":
            pg.create_token(token(), limit=2)
        elif kind == "ingest key":
            pg.create_ingest_key(
                IngestKey(new_id(), account.id, "k", (Feature.AUDITEVENTS,), new_id(), "sgi_x", T0), limit=2
            )
        else:
            pg.create_api_key(ApiKey(new_id(), user.id, "k", new_id(), "sgp_x", T0), limit=2)

    create()  # the one held already
    outcome: list[object] = []

    def attempt() -> None:
        try:
            create()
            outcome.append("created")
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)

    insert, owner = _BOUNDED[kind]
    params = {"id": new_id(), "account": account.id, "user": user.id, "integration": integration.id, "t": T0}
    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        owner_id = user.id if owner == "users" else account.id
        other.execute(f"SELECT 1 FROM {owner} WHERE id = %s FOR NO KEY UPDATE", (owner_id,))  # as a create locks it
        other.execute(insert, params)
        job = threading.Thread(target=attempt)
        job.start()
        wait_for(
            "the create to wait for the other transaction, or to end",
            lambda: waiting_for(watch, other) >= 1 or not job.is_alive(),
            30,
        )
        other.commit()
    job.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome
    expected = "pending invitations, the most allowed" if kind == "invitation" else "the most allowed is"
    assert expected in str(outcome[0])
    assert kind == "invitation" or isinstance(outcome[0], LimitReached)


def test_a_bounded_create_and_a_write_that_only_references_the_account_do_not_wait_for_each_other(
    pg: PostgresStore,
) -> None:
    """Multi-tenant by default, within an account too: the owner's row a bounded create locks is
    locked only against other such creates (FOR NO KEY UPDATE), not against the account's other
    writes. A membership being added (or an alert being stored, on the ingest path) references
    the account's row; under FOR UPDATE, the create waited for it, and it for the create."""
    account = pg.create_account(new_id(), "A", T0)
    user = pg.create_user(new_id(), "ada@example.com", "Ada", None, account.id, T0)
    outcome: list[object] = []

    def create() -> None:
        try:
            outcome.append(pg.create_integration(account.id, new_id(), "splunk", "bounded", "", T0, limit=3))
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)

    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute(
            "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES (%s, %s, 'member', %s)",
            (account.id, user.id, T0),
        )  # not committed: holds the account's row FOR KEY SHARE, as every insert referencing it does
        job = threading.Thread(target=create)
        job.start()
        wait_for(
            "the create to end, or to wait for the other transaction",
            lambda: not job.is_alive() or waiting_for(watch, other) >= 1,
            30,
        )
        waited = job.is_alive()
        other.rollback()
    job.join(30)
    assert not waited, "the bounded create waited for an insert that only references the account"
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert [i.name for i in pg.list_integrations(account.id)] == ["bounded"]


def test_removing_an_inviter_does_not_overwrite_an_invitation_accepted_at_the_same_moment(pg: PostgresStore) -> None:
    """The invitations a removal withdraws are locked as they are read: one being accepted in
    another transaction is waited for, and then left accepted (it was overwritten with 'revoked',
    its acceptance and membership standing, and a revoke recorded after the join)."""
    account = pg.create_account(new_id(), "A", T0)
    owner = pg.create_user(new_id(), "owner@example.com", "Owner", None, account.id, T0)
    inviter = pg.create_user(new_id(), "adam@example.com", "Adam", None, account.id, T0)
    guest = pg.create_user(new_id(), "sock@example.com", "Sock", None, account.id, T0)
    pg.add_member(account.id, owner.id, "owner", T0)
    pg.add_member(account.id, inviter.id, "administrator", T0)
    invitation = Invitation(new_id(), account.id, guest.email, "administrator", new_id(), inviter.id, T0, T0 + DAY)
    pg.create_invitation(invitation, max_pending=10, now=T0)
    outcome: list[object] = []

    def remove() -> None:
        try:
            outcome.append(
                pg.remove_member(
                    account.id, inviter.id, Withdrawal(("member", "administrator", "owner"), T0 + 2, owner.id)
                )[0]
            )
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)

    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute(
            "UPDATE invitations SET status = 'accepted', decided_at = %s, decided_by = %s WHERE id = %s",
            (T0 + 1, guest.id, invitation.id),
        )  # an acceptance not committed yet
        job = threading.Thread(target=remove)
        job.start()
        wait_for(
            "the removal to wait for the acceptance", lambda: waiting_for(watch, other) >= 1 or not job.is_alive(), 30
        )
        other.commit()
    job.join(30)
    assert outcome == [[]], outcome  # nothing withdrawn: it was no longer pending
    [row] = pg._select("SELECT status, decided_by FROM invitations WHERE id = ?", (invitation.id,))
    assert tuple(row) == ("accepted", guest.id)


def test_a_sign_in_recording_its_session_waits_for_a_password_change_and_then_sees_it(pg: PostgresStore) -> None:
    """Several processes: a sign-in checked the old password while another process changes it
    (password updated, sessions being ended, not committed). Recording its session waits for that
    change and then refuses, rather than inserting a session the change's DELETE did not see."""
    user = pg.create_user(new_id(), "ada@example.com", "Ada", "old-hash", None, T0)
    session = Session(new_id(), user.id, new_id(), "csrf", T0, T0 + DAY, T0)
    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute("UPDATE users SET password_hash = 'new-hash' WHERE id = %s", (user.id,))
        other.execute("DELETE FROM sessions WHERE user_id = %s", (user.id,))
        job, outcome = in_thread(lambda: pg.create_session(session, proof=SignInProof("old-hash", False)))
        wait_for(
            "the session to wait for the change, or to end",
            lambda: waiting_for(watch, other) >= 1 or not job.is_alive(),
            30,
        )
        other.commit()
    job.join(30)
    assert outcome == [False]
    assert pg._select("SELECT count(*) FROM sessions WHERE user_id = ?", (user.id,)) == [(0,)]


def test_turning_two_factor_on_waits_for_a_sign_in_recording_its_session_and_ends_it(pg: PostgresStore) -> None:
    """The other order: a password-only sign-in is recording its session (person's row locked,
    session inserted, not committed) when two-factor goes on. Ending the other sessions waits for
    it, then ends that session too, rather than deleting before it is visible and leaving it."""
    user = pg.create_user(new_id(), "ada@example.com", "Ada", "hash", None, T0)
    pg.begin_two_factor(user.id, "sealed", T0)
    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (user.id,))  # as create_session
        other.execute(
            "INSERT INTO sessions (id, user_id, token_sha256, csrf_token, created_at, expires_at, last_seen_at)"
            " VALUES (%s, %s, %s, 'csrf', %s, %s, %s)",
            (new_id(), user.id, new_id(), T0, T0 + DAY, T0),
        )
        job, outcome = in_thread(lambda: pg.enable_two_factor(user.id, "sealed", 1, T0, ["digest"]))
        wait_for(
            "turning two-factor on to wait for the sign-in, or to end",
            lambda: waiting_for(watch, other) >= 1 or not job.is_alive(),
            30,
        )
        other.commit()
    job.join(30)
    assert outcome == [1]
    assert pg._select("SELECT count(*) FROM sessions WHERE user_id = ?", (user.id,)) == [(0,)]


def test_a_key_being_made_waits_for_the_removal_revoking_its_makers_key_and_is_refused(pg: PostgresStore) -> None:
    """Several processes: a person's key is making another while a removal from their last
    account is revoking their keys (person's row locked, keys revoked, not committed). Recording
    the new key waits for the removal and is then refused, rather than landing after its revocation."""
    user = pg.create_user(new_id(), "ada@example.com", "Ada", "hash", None, T0)
    maker = ApiKey(new_id(), user.id, "script", new_id(), "sgp_x", T0)
    pg.create_api_key(maker)
    made = ApiKey(new_id(), user.id, "spare", new_id(), "sgp_y", T0)
    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (user.id,))  # as end_credentials
        other.execute("UPDATE api_keys SET revoked_at = %s WHERE user_id = %s", (T0, user.id))
        job, outcome = in_thread(lambda: pg.create_api_key(made, limit=50, made_with=MadeWith("api_key", maker.id)))
        wait_for(
            "the key to wait for the removal, or to end",
            lambda: waiting_for(watch, other) >= 1 or not job.is_alive(),
            30,
        )
        other.commit()
    job.join(30)
    assert outcome == [False]
    assert [k.id for k in pg.list_api_keys(user.id) if k.revoked_at is None] == []


def test_two_owners_demoting_each_other_at_once_leave_one_owner(pg: PostgresStore) -> None:
    """Several processes: one owner's demotion is under way (account row locked, role updated, not
    committed) when the other owner is demoted. The second waits, then counts no owner left and is
    refused, rather than each seeing the other still owner and leaving the account with none."""
    account = pg.create_account(new_id(), "A", T0)
    ada, bob = (pg.create_user(new_id(), f"{n}@example.com", n, None, account.id, T0) for n in ("ada", "bob"))
    for person in (ada, bob):
        pg.add_member(account.id, person.id, "owner", T0)
    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute("SELECT 1 FROM accounts WHERE id = %s FOR NO KEY UPDATE", (account.id,))  # as a change does
        other.execute(
            "UPDATE memberships SET role = 'member' WHERE account_id = %s AND user_id = %s", (account.id, ada.id)
        )
        job, outcome = in_thread(lambda: pg.set_role(account.id, bob.id, "member", Withdrawal((), T0, None)))
        wait_for(
            "the demotion to wait for the other, or to end",
            lambda: waiting_for(watch, other) >= 1 or not job.is_alive(),
            30,
        )
        other.commit()
    job.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict) and "at least one owner" in str(outcome[0])
    assert [m.role for m in pg.list_members(account.id)] == ["member", "owner"]


def test_a_partition_drop_waiting_behind_a_long_read_stalls_no_other_account_for_long(pg: PostgresStore) -> None:
    """A drop needs the events tables exclusively; waiting for it behind a long read (an Events
    API page, a console query), it made every statement that came meanwhile, any account's, queue
    behind it for up to its lock timeout (30 s). It now waits at most DROP_LOCK_WAIT and deletes
    the day's rows instead; the next purge drops the emptied partition."""
    a = pg.create_account(new_id(), "A", T0)
    b = pg.create_account(new_id(), "B", T0)
    signin = Feature.SIGNINATTEMPTS
    pg.insert_events(a.id, signin, _events(T0 + 1, T0 + 2))
    pg.insert_events(b.id, signin, _events(T0 + 5 * DAY))  # B's day partition exists already
    day0 = partition_name(signin.code, T0)
    purged: list[int] = []
    with psycopg.connect(pg.url) as reader:
        reader.execute("SELECT count(*) FROM events").fetchone()  # a read whose transaction stays open
        purge = threading.Thread(target=lambda: purged.append(pg.purge_events(a.id, signin, T0 + DAY)))
        purge.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'"
        wait_for("the purge waiting for its lock", lambda: bool(pg._value(waiting)), timeout=10)
        began = time.monotonic()
        assert pg.insert_events(b.id, signin, _events(T0 + 5 * DAY + 1)).stored == 1
        stalled = time.monotonic() - began
        purge.join(30)
        reader.rollback()
    assert stalled <= DROP_LOCK_WAIT + 1.0, f"another account's insert waited {stalled:.1f} s behind the drop"
    assert purged == [2] and pg.count_events(a.id, signin) == 0 and pg.count_events(b.id, signin) == 2
    assert _exists(pg, day0)  # emptied, not dropped: the read held it
    assert pg.purge_events(a.id, signin, T0 + DAY) == 0
    assert not _exists(pg, day0)  # the next purge drops it
