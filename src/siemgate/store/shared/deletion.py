"""Deleting a whole account, and the server's log of operations on accounts, written once for both
backends (docs/setup.md, "Deleting an account"). `DeletionStore` runs on the primitives a backend
supplies (store/shared/dialect.py).

Everything of the account goes: its events and their facets, duplicate-check uuids and streams,
its tamper-evident log (entries, hashes, state, checkpoints, recovery statements), integrations,
SIEM tokens and their usage, ingest keys, alert rules with their state, alerts, deliveries and
failures, retention policies, invitations, sign-in policy and memberships. People whose home it is
and who belong to no other account are deleted with their API keys, sessions and two-factor
enrolment; people whose home it is who belong elsewhere stay, with no home account. People who
belonged to it alone but whose home is elsewhere stay too, with their console sessions ended and
their personal API keys revoked, as when removed from their last account (accounts.people). The
operation is recorded in `operations`, which belongs to no account.

It goes in steps, so that no transaction holds the store for long (SQLite has one writer: a
deletion of millions of events in one transaction held every account's writes for seconds):
first the account is marked as being deleted (`accounts.deleting_at`: from then on it is not found
and nothing is stored into it) and what gives access to it is removed; then its bulk rows, at most
DELETION_CHUNK per transaction; then the rest and the account. Stopped between steps (killed), the
deletion is carried on by running it again (`pending_account_deletions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from siemgate.store.errors import LIVE
from siemgate.store.records import Account
from siemgate.store.shared.dialect import SharedSQL

DELETION_CHUNK = 5000  # rows of one table deleted per transaction

# (table, condition on `?` = the account id), deleted in this order (references first).
_ACCOUNT_ROWS: tuple[tuple[str, str], ...] = (
    ("token_usage", "token_id IN (SELECT id FROM tokens WHERE account_id = ?)"),
    ("tokens", "account_id = ?"),
    ("integrations", "account_id = ?"),
    ("ingest_keys", "account_id = ?"),
    ("alert_deliveries", "account_id = ?"),
    ("alerts", "account_id = ?"),
    ("alert_failures", "account_id = ?"),
    ("alert_state", "account_id = ?"),
    ("alert_checkpoints", "account_id = ?"),
    ("alert_rules", "account_id = ?"),
    ("retention_policies", "account_id = ?"),
    ("invitations", "account_id = ?"),
    ("account_policies", "account_id = ?"),
    ("facets", "account_id = ?"),
    ("stamped_uuids", "account_id = ?"),
    ("events", "account_id = ?"),
    ("streams", "account_id = ?"),
    ("log_entries", "account_id = ?"),
    ("log_hashes", "account_id = ?"),
    ("log_state", "account_id = ?"),
    ("log_checkpoints", "account_id = ?"),
    ("log_recoveries", "account_id = ?"),
)
# What gives access to the account, removed in the deletion's first transaction with its memberships.
_ACCESS = ("token_usage", "tokens", "ingest_keys", "invitations")
# The tables in which an account may hold many rows, with the columns that pick a row among the
# account's (its key after account_id): deleted DELETION_CHUNK rows per transaction.
_BULK = {
    "alert_deliveries": "id",
    "alerts": "id",
    "alert_failures": "id",
    "alert_state": "rule_id, kind, key",
    "facets": "feature, ts, seq",
    "stamped_uuids": "feature, uuid",
    "events": "feature, seq",
    "log_entries": "feature, idx",
    "log_hashes": "feature, level, idx",
}
# People who leave with the account: home here, and a member of no other account. NOT EXISTS, not
# NOT IN: each person's memberships are looked up by memberships_by_user, where NOT IN read every
# membership of every account (PostgreSQL, 500,000 of them: 10.7 s for the deletion's last step).
_LEAVING = (
    "SELECT u.id FROM users u WHERE u.home_account_id = ?"
    " AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id)"
)
_PEOPLE_ROWS = ("api_keys", "sessions", "two_factor", "recovery_codes")
# People whose only account it is (home here or not): their credentials stop reaching anything.
_ALONE = (
    "SELECT user_id FROM memberships mine WHERE account_id = ?"
    " AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = mine.user_id AND m.account_id <> ?)"
)
# The actions of `operations` that record a deletion begun and done.
_BEGUN = "deleting account"
_DONE = "delete account"


@dataclass(frozen=True, slots=True)
class Operation:
    """One entry of the server's log of operations on accounts."""

    id: int
    at: int  # ns
    action: str  # "delete account" ("deleting account" while it is under way, or when it was stopped)
    actor: str  # who: "command line (user)" or a person's email
    account_uuid: str
    account_name: str
    detail: str  # JSON: what was removed


class DeletionStore(SharedSQL):
    """An interface of the store (part of Store) and its one implementation, over the backend's
    primitives (store/shared/dialect.py)."""

    _account_extra_tables: tuple[str, ...] = ()  # a backend's own per-account tables (PostgreSQL: event_buckets)

    def delete_account_rows(
        self, account_id: int, account_uuid: str, account_name: str, actor: str, detail: str, now: int
    ) -> dict[str, int]:
        """Delete everything of the account and record it in `operations` (with `actor` and
        `detail`, JSON), in steps (the module's docstring); returns the rows deleted per table
        (people as "users"). Run again for an account whose deletion was stopped, it carries on
        (the record keeps the first run's actor and detail). The caller checks that the account
        exists (or is being deleted); StoreError/Conflict if the store refuses."""
        removed = self._begin_deletion(account_id, account_uuid, account_name, actor, detail, now)
        for table, _ in self._account_tables():
            key = _BULK.get(table)
            while key is not None:
                count = self._delete_chunk(account_id, table, key)
                removed[table] = removed.get(table, 0) + count
                if count < DELETION_CHUNK:
                    break
        for table, count in self._end_deletion(account_id, account_uuid, now).items():
            removed[table] = removed.get(table, 0) + count
        return removed

    def pending_account_deletions(self) -> list[tuple[Account, Operation]]:
        """The accounts whose deletion was begun and not finished (stopped: killed, the store
        refused), each with the record of its beginning."""
        rows = self._rows(
            self._q(
                "SELECT a.id, a.uuid, a.name, a.created_at, o.id, o.at, o.action, o.actor, o.account_uuid,"
                " o.account_name, o.detail FROM accounts a JOIN operations o ON o.account_uuid = a.uuid"
                f" WHERE NOT a.{LIVE} AND o.action = ? ORDER BY a.id"
            ),
            (_BEGUN,),
        )
        return [(Account(*r[:4]), Operation(*r[4:])) for r in rows]

    def _account_tables(self) -> list[tuple[str, str]]:
        return [*_ACCOUNT_ROWS, *((t, "account_id = ?") for t in self._account_extra_tables)]

    def _begin_deletion(
        self, account_id: int, account_uuid: str, account_name: str, actor: str, detail: str, now: int
    ) -> dict[str, int]:
        """Mark the account as being deleted, remove what gives access to it, record the deletion
        as begun (once), in one transaction; the rows deleted per table."""
        removed: dict[str, int] = {}
        with self._change("cannot delete the account") as conn:
            # Locked first: a batch of events being stored into the account (which shares this
            # lock) is committed before the deletion reads what to delete, and later ones are
            # refused (PostgreSQL; SQLite has one writer).
            conn.execute(self._q(f"SELECT 1 FROM accounts WHERE id = ?{self.dialect.for_update}"), (account_id,))
            marked = conn.execute(
                self._q(f"UPDATE accounts SET deleting_at = ? WHERE id = ? AND {LIVE}"), (now, account_id)
            )
            if marked.rowcount:
                conn.execute(
                    self._q(
                        "INSERT INTO operations (at, action, actor, account_uuid, account_name, detail)"
                        " VALUES (?, ?, ?, ?, ?, ?)"
                    ),
                    (now, _BEGUN, actor, account_uuid, account_name, detail),
                )
            for table, condition in _ACCOUNT_ROWS:
                if table in _ACCESS:
                    removed[table] = int(
                        conn.execute(self._q(f"DELETE FROM {table} WHERE {condition}"), (account_id,)).rowcount or 0
                    )
            alone = (account_id, account_id)
            sql = f"DELETE FROM sessions WHERE user_id IN ({_ALONE})"
            removed["sessions"] = int(conn.execute(self._q(sql), alone).rowcount or 0)
            sql = f"UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL AND user_id IN ({_ALONE})"
            removed["api_keys_revoked"] = int(conn.execute(self._q(sql), (now, *alone)).rowcount or 0)
            sql = "DELETE FROM memberships WHERE account_id = ?"
            removed["memberships"] = int(conn.execute(self._q(sql), (account_id,)).rowcount or 0)
        return removed

    def _delete_chunk(self, account_id: int, table: str, key: str) -> int:
        """Delete at most DELETION_CHUNK of the account's rows of `table` in one transaction; how many."""
        sql = (
            f"DELETE FROM {table} WHERE account_id = ? AND ({key}) IN"
            f" (SELECT {key} FROM {table} WHERE account_id = ? LIMIT {DELETION_CHUNK})"
        )
        with self._change("cannot delete the account") as conn:
            return int(conn.execute(self._q(sql), (account_id, account_id)).rowcount or 0)

    def _end_deletion(self, account_id: int, account_uuid: str, now: int) -> dict[str, int]:
        """Delete what is left of the account, the account, and the people who leave with it, and
        record the deletion as done, in one transaction; the rows deleted per table."""
        removed: dict[str, int] = {}
        with self._change("cannot delete the account") as conn:
            conn.execute(self._q(f"SELECT 1 FROM accounts WHERE id = ?{self.dialect.for_update}"), (account_id,))

            def run(sql: str, params: Sequence[Any]) -> int:
                return int(conn.execute(self._q(sql), params).rowcount or 0)

            for table, condition in self._account_tables():
                removed[table] = run(f"DELETE FROM {table} WHERE {condition}", (account_id,))
            removed["memberships"] = run("DELETE FROM memberships WHERE account_id = ?", (account_id,))
            leaving = f"({_LEAVING})"
            for table in _PEOPLE_ROWS:
                removed[table] = run(f"DELETE FROM {table} WHERE user_id IN {leaving}", (account_id,))
            # What leaving people did in other accounts stays, no longer linked to them; the
            # invitations they sent that are pending are revoked (unlinked, they would read as the
            # operator's, which stay valid).
            run(
                "UPDATE invitations SET status = 'revoked', decided_at = ? WHERE status = 'pending'"
                f" AND invited_by IN {leaving}",
                (now, account_id),
            )
            run(f"UPDATE tokens SET created_by = NULL WHERE created_by IN {leaving}", (account_id,))
            run(f"UPDATE invitations SET invited_by = NULL WHERE invited_by IN {leaving}", (account_id,))
            run(f"UPDATE invitations SET decided_by = NULL WHERE decided_by IN {leaving}", (account_id,))
            removed["users"] = run(f"DELETE FROM users WHERE id IN {leaving}", (account_id,))
            removed["users_rehomed"] = run(
                "UPDATE users SET home_account_id = NULL WHERE home_account_id = ?", (account_id,)
            )
            removed["accounts"] = run("DELETE FROM accounts WHERE id = ?", (account_id,))
            run(
                "UPDATE operations SET action = ?, at = ? WHERE action = ? AND account_uuid = ?",
                (_DONE, now, _BEGUN, account_uuid),
            )
        return removed

    def list_operations(self, limit: int = 100) -> list[Operation]:
        """The newest operations first."""
        rows = self._rows(
            self._q(
                "SELECT id, at, action, actor, account_uuid, account_name, detail FROM operations"
                " ORDER BY id DESC LIMIT ?"
            ),
            (limit,),
        )
        return [Operation(int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6])) for r in rows]
