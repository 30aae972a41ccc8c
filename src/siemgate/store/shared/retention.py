"""Retention policies, written once for both backends (the contract is in store/base.py). Reading
events by time and purging them differ per backend (sqlite/retention.py, postgres/retention.py)."""

from __future__ import annotations

from siemgate.model.features import Feature
from siemgate.store.interfaces import RetentionStore
from siemgate.store.records import RetentionPolicy
from siemgate.store.shared.dialect import SharedSQL


class RetentionSQL(RetentionStore, SharedSQL):
    """Mixed into both backends' stores (see store/shared/dialect.py for what they provide)."""

    def retention_policies(self, account_id: int) -> dict[Feature, RetentionPolicy]:
        rows = self._select(
            "SELECT feature, days, archive, updated_at FROM retention_policies WHERE account_id = ?", (account_id,)
        )
        return {
            Feature.from_code(code): RetentionPolicy(account_id, Feature.from_code(code), days, archive, updated_at)
            for code, days, archive, updated_at in rows
        }

    def set_retention_policy(self, policy: RetentionPolicy) -> None:
        with self._change("cannot save the retention policy") as conn:
            conn.execute(
                self._q(
                    "INSERT INTO retention_policies VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, feature)"
                    " DO UPDATE SET days = excluded.days, archive = excluded.archive, updated_at = excluded.updated_at"
                ),
                (policy.account_id, policy.feature.code, policy.days, policy.archive, policy.updated_at),
            )
