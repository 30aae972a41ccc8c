"""Reads that run periodically or per request use an index, on both backends, with many ended rows
beside the live ones (the shape a store has after years: every account keeps up to KEEP_ENDED
revoked tokens and deleted integrations): the lifecycle job's due tokens, the signing keys still in
use, and forgetting an account's deleted integrations when one is created. Each read is the
store's own statement, recorded while the store method runs, then EXPLAINed with its parameters
(PostgreSQL after ANALYZE, as autovacuum would have). Figures: docs/benchmarks.md, "Indexes of
the periodic reads"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from siemgate.model.ids import new_id
from siemgate.store.base import Store
from support.plans import analyze, full_scans, plan, reads_of, statements
from support.stores import STORE_BACKENDS, make_store

ACCOUNTS, REVOKED, LIVE_PER_ACCOUNT, DELETED = 100, 40_000, 20, 10_000
NOW = 1_900_000_000 * 10**9
DAY = 86_400 * 10**9

# Written once for both backends (WITH RECURSIVE and || exist on both); ids come from the fresh
# store's own sequences, so an account's id is `first` + its number.
_ROWS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) "
_FIRST = "(SELECT min(id) FROM accounts)"
FILL = (
    _ROWS.format(count=ACCOUNTS)
    + "INSERT INTO accounts (uuid, name, created_at) SELECT 'a' || i, 'Account ' || i, 0 FROM n",
    _ROWS.format(count=DELETED) + "INSERT INTO integrations (uuid, account_id, type, name, created_at, deleted_at)"
    f" SELECT 'gone' || i, {_FIRST} + i % {ACCOUNTS}, 'splunk', 'gone ' || i, i, {NOW} - i FROM n",
    _ROWS.format(count=ACCOUNTS) + "INSERT INTO integrations (uuid, account_id, type, name, created_at)"
    f" SELECT 'live' || i, {_FIRST} + i - 1, 'splunk', 'live', {DELETED} + i FROM n",
    _ROWS.format(count=REVOKED)
    + "INSERT INTO tokens (id, account_id, integration_id, name, features, kid, token_sha256, created_at, revoked_at)"
    f" SELECT 'r' || i, {_FIRST} + i % {ACCOUNTS}, (SELECT min(id) FROM integrations), 't', 'signinattempts', 'k',"
    f" 'rh' || i, i, {NOW} - i FROM n",
    _ROWS.format(count=ACCOUNTS * LIVE_PER_ACCOUNT)
    + "INSERT INTO tokens (id, account_id, integration_id, name, features, kid, token_sha256, created_at, expires_at)"
    f" SELECT 'l' || i, {_FIRST} + i % {ACCOUNTS}, (SELECT max(id) FROM integrations), 't', 'signinattempts', 'k',"
    f" 'lh' || i, {REVOKED} + i, CASE WHEN i % 3 = 0 THEN NULL ELSE {NOW} + (i % 400) * {DAY} END FROM n",
)


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = make_store(request.param, tmp_path_factory.mktemp("plans"))
    store: Any = s
    with store._tx() as conn:
        for statement in FILL:
            conn.execute(statement)
    analyze(s, "accounts", "integrations", "tokens")
    yield s
    s.close()


def test_the_lifecycle_jobs_due_tokens_read_only_live_tokens(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every token of every account was read (SQLite through tokens_by_account for each
    live account, PostgreSQL a sequential scan), revoked ones included."""
    due: list[Any] = []
    seen = statements(store, lambda: due.extend(store.due_tokens(NOW, 7 * DAY)), monkeypatch)
    assert due, "the fill makes some tokens due"
    [(sql, params)] = reads_of(seen, "tokens")
    assert full_scans(store, sql, params, "tokens") == []
    assert "tokens_live" in "\n".join(plan(store, sql, params))


def test_the_signing_keys_in_use_are_read_from_live_tokens(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = statements(store, lambda: store.live_token_kids(NOW), monkeypatch)
    [(sql, params)] = reads_of(seen, "tokens")
    assert full_scans(store, sql, params, "tokens") == []


def test_creating_an_integration_finds_the_accounts_deleted_ones_by_index(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every integration of every account was read on each create (the only index on
    account_id held live integrations)."""
    account_id = store.list_accounts()[7].id
    create = lambda: store.create_integration(account_id, new_id(), "splunk", f"new {new_id()}", "", NOW)  # noqa: E731
    seen = statements(store, create, monkeypatch)
    reads = reads_of(seen, "integrations")
    assert any("deleted_at IS NOT NULL" in sql for sql, _ in reads), reads
    for sql, params in reads:
        assert full_scans(store, sql, params, "integrations") == [], sql


def test_the_fill_is_what_the_plans_are_checked_against(store: Any) -> None:
    """The shape the plans above hold for: many more ended rows than live ones."""
    counts = {
        table: store._rows(f"SELECT count(*) FROM {table}")[0][0] for table in ("tokens", "integrations", "accounts")
    }
    assert counts["tokens"] >= REVOKED + ACCOUNTS * LIVE_PER_ACCOUNT and counts["integrations"] >= DELETED, counts
