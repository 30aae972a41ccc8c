"""Retention policies, written once for both backends (the contract is in store/base.py). Reading
events by time and purging them differ per backend (sqlite/retention.py, postgres/retention.py)."""

from __future__ import annotations

import abc
from collections.abc import Iterator

from siemgate.model.features import Feature
from siemgate.store.records import RetentionPolicy, StoredEvent
from siemgate.store.shared.dialect import SharedSQL


class RetentionStore(SharedSQL):
    """An interface of the store (part of Store) and its one implementation, over the backend's
    primitives (store/shared/dialect.py)."""

    def retention_policies(self, account_id: int) -> dict[Feature, RetentionPolicy]:
        """The account's explicit policies by feature (streams without one use the server default)."""
        rows = self._select(
            "SELECT feature, days, archive, updated_at FROM retention_policies WHERE account_id = ?", (account_id,)
        )
        return {
            Feature.from_code(code): RetentionPolicy(account_id, Feature.from_code(code), days, archive, updated_at)
            for code, days, archive, updated_at in rows
        }

    def set_retention_policy(self, policy: RetentionPolicy) -> None:
        """Insert or replace the policy of (account, feature)."""
        with self._change("cannot save the retention policy") as conn:
            conn.execute(
                self._q(
                    "INSERT INTO retention_policies VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, feature)"
                    " DO UPDATE SET days = excluded.days, archive = excluded.archive, updated_at = excluded.updated_at"
                ),
                (policy.account_id, policy.feature.code, policy.days, policy.archive, policy.updated_at),
            )

    @abc.abstractmethod
    def iter_events(
        self, account_id: int, feature: Feature, start_ts: int, end_ts: int, batch: int = 5000
    ) -> Iterator[list[StoredEvent]]:
        """Every event of the stream with start_ts <= timestamp < end_ts, in (timestamp, uuid) order,
        as lists of at most `batch` (>= 1) rows (seq, timestamp, uuid, v2 JSON) read by keyset through
        the timestamp index: never a scan of the stream, never OFFSET. Events stored while iterating
        may or may not be included. Raises StoreError when the store fails."""

    @abc.abstractmethod
    def purge_events(self, account_id: int, feature: Feature, before_ts: int, *, max_seq: int | None = None) -> int:
        """Delete the stream's events with timestamp < before_ts (and seq <= max_seq when given, so
        that events stored after an archive was taken are never deleted); returns how many.
        Seqs are never reused: the stream's head stays where it was; a late event stored later for
        a purged day is stored and served as usual. Their facets go with them.

        SQLite deletes rows, at most 5,000 per write transaction (its one writer is never held for
        a whole purge). PostgreSQL drops the day's partition (feature, UTC day) when the day
        lies wholly before `before_ts` and holds nothing else (no other account's events, no seq
        after `max_seq`), else deletes rows: purging by whole UTC days (before_ts at midnight) is
        what lets it drop. Raises StoreError when the store fails."""
