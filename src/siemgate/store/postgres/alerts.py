"""PostgresStore, part 4: the alert aggregate (its SQL is shared with SQLite: store/shared/alerts.py)
and retention policies (the contract is in store/base.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from siemgate.model.features import Feature
from siemgate.store.base import RetentionPolicy
from siemgate.store.postgres.connection import PgBase
from siemgate.store.shared.alerts import AlertSQL


class PgAlerts(PgBase, AlertSQL):
    _mark = "%s"
    _for_update = " FOR UPDATE"

    @contextmanager
    def _alert_tx(self, what: str) -> Iterator[Any]:
        with self._unique(f"{what}: it conflicts with what is stored"), self._write(what) as conn:
            yield conn

    # retention policies -----------------------------------------------------------------------------
    def retention_policies(self, account_id: int) -> dict[Feature, RetentionPolicy]:
        rows = self._rows(
            "SELECT feature, days, archive, updated_at FROM retention_policies WHERE account_id = %s", (account_id,)
        )
        return {
            Feature.from_code(code): RetentionPolicy(account_id, Feature.from_code(code), days, archive, updated_at)
            for code, days, archive, updated_at in rows
        }

    def set_retention_policy(self, policy: RetentionPolicy) -> None:
        with self._unique("cannot save the retention policy: it violates a constraint"), self._write() as conn:
            conn.execute(
                "INSERT INTO retention_policies VALUES (%s, %s, %s, %s, %s) ON CONFLICT (account_id, feature)"
                " DO UPDATE SET days = excluded.days, archive = excluded.archive, updated_at = excluded.updated_at",
                (policy.account_id, policy.feature.code, policy.days, policy.archive, policy.updated_at),
            )
