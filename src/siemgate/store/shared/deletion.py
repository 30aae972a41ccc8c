"""Deleting a whole account, and the server's log of operations on accounts, written once for both
backends (docs/setup.md, "Deleting an account"). `DeletionStore` runs on the primitives a backend
supplies (store/shared/dialect.py).

Everything of the account goes in one transaction: its events and their facets, duplicate-check
uuids and streams, its tamper-evident log (entries, hashes, state, checkpoints, recovery
statements), integrations, SIEM tokens and their usage, ingest keys, alert rules with their state,
alerts, deliveries and failures, retention policies, invitations, sign-in policy and memberships.
People whose home it is and who belong to no other account are deleted with their API keys,
sessions and two-factor enrolment; people whose home it is who belong elsewhere stay, with no home
account. The operation is then recorded in `operations`, which belongs to no account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from siemgate.store.shared.dialect import SharedSQL

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
# People who leave with the account: home here, and a member of no other account.
_LEAVING = "SELECT id FROM users WHERE home_account_id = ? AND id NOT IN (SELECT user_id FROM memberships)"
_PEOPLE_ROWS = ("api_keys", "sessions", "two_factor", "recovery_codes")


@dataclass(frozen=True, slots=True)
class Operation:
    """One entry of the server's log of operations on accounts."""

    id: int
    at: int  # ns
    action: str  # "delete account"
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
        """Delete everything of the account and record it in `operations`, in one transaction;
        returns the rows deleted per table (people as "users"). `detail` (JSON) is stored with the
        record. The caller checks that the account exists; StoreError/Conflict if the store refuses."""
        removed: dict[str, int] = {}
        with self._change("cannot delete the account") as conn:
            # Locked first: a batch of events being stored into the account (which shares this
            # lock) is committed before the deletion reads what to delete, and later ones are
            # refused (PostgreSQL; SQLite has one writer).
            conn.execute(self._q(f"SELECT 1 FROM accounts WHERE id = ?{self.dialect.for_update}"), (account_id,))

            def run(sql: str, params: Sequence[Any]) -> int:
                return int(conn.execute(self._q(sql), params).rowcount or 0)

            tables = [*_ACCOUNT_ROWS, *((t, "account_id = ?") for t in self._account_extra_tables)]
            for table, condition in tables:
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
                "INSERT INTO operations (at, action, actor, account_uuid, account_name, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now, "delete account", actor, account_uuid, account_name, detail),
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
