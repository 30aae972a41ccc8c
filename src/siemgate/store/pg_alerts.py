"""PostgresStore, part 4: alert rules, evaluation state, alerts and their deliveries, and retention
policies (the contract is in store/base.py)."""

from __future__ import annotations

from typing import Any

from siemgate.errors import Conflict, NotFound
from siemgate.model.features import Feature
from siemgate.store.base import (
    AlertCommit,
    AlertRecord,
    AlertRuleRecord,
    AlertRuleStats,
    AlertStateEntry,
    DeliveryRecord,
    RetentionPolicy,
)
from siemgate.store.pg_base import PgBase

_ALERT = "id, account_id, rule_id, fired_at, event_ts, severity, source, group_key, summary, payload"
_DELIVERY = (
    "id, alert_id, account_id, rule_id, action, kind, status, attempts, next_attempt_at, last_error,"
    " created_at, delivered_at"
)


def _alert_row(a: AlertRecord) -> tuple[Any, ...]:
    return (
        a.id,
        a.account_id,
        a.rule_id,
        a.fired_at,
        a.event_ts,
        a.severity,
        a.source,
        a.group_key,
        a.summary,
        a.payload,
    )


def _delivery_row(d: DeliveryRecord) -> tuple[Any, ...]:
    return (
        d.id,
        d.alert_id,
        d.account_id,
        d.rule_id,
        d.action,
        d.kind,
        d.status,
        d.attempts,
        d.next_attempt_at,
        d.last_error,
        d.created_at,
        d.delivered_at,
    )


class PgAlerts(PgBase):
    # alert rules and evaluation -------------------------------------------------------------------
    def list_alert_rules(self, account_id: int | None = None) -> list[AlertRuleRecord]:
        sql = "SELECT account_id, rule_id, definition, origin, enabled, created_at, updated_at FROM alert_rules"
        params: tuple[Any, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = %s"
            params = (account_id,)
        rows = self._rows(sql + " ORDER BY account_id, rule_id", params)
        return [AlertRuleRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows]

    def put_alert_rule(self, record: AlertRuleRecord) -> None:
        problem = f"cannot save alert rule {record.rule_id!r}: its account does not exist"
        with self._unique(problem), self._write() as conn:
            conn.execute(
                "INSERT INTO alert_rules VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id, rule_id)"
                " DO UPDATE SET definition = excluded.definition, origin = excluded.origin,"
                " enabled = excluded.enabled, updated_at = excluded.updated_at",
                (
                    record.account_id,
                    record.rule_id,
                    record.definition,
                    record.origin,
                    int(record.enabled),
                    record.created_at,
                    record.updated_at,
                ),
            )

    def delete_alert_rule(self, account_id: int, rule_id: str) -> None:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM alert_rules WHERE account_id = %s AND rule_id = %s", (account_id, rule_id))
            if cur.rowcount == 0:
                raise NotFound(f"alert rule {rule_id!r} not found")
            conn.execute("DELETE FROM alert_state WHERE account_id = %s AND rule_id = %s", (account_id, rule_id))

    def alert_checkpoint(self, account_id: int, feature: Feature) -> int | None:
        value = self._value(
            "SELECT seq FROM alert_checkpoints WHERE account_id = %s AND feature = %s", (account_id, feature.code)
        )
        return None if value is None else int(value)

    def load_alert_state(self, account_id: int) -> list[AlertStateEntry]:
        rows = self._rows(
            "SELECT rule_id, kind, key, value, expires_at FROM alert_state WHERE account_id = %s", (account_id,)
        )
        return [AlertStateEntry(*r) for r in rows]

    def commit_alert_evaluation(self, commit: AlertCommit) -> None:
        with self._unique("cannot record the alerts: one already exists"), self._write() as conn:
            if commit.feature is not None:
                code = commit.feature.code
                # Lock the checkpoint row (or the gap where it will be) for the check-and-move.
                conn.execute(
                    "INSERT INTO alert_checkpoints VALUES (%s, %s, -1) ON CONFLICT DO NOTHING",
                    (commit.account_id, code),
                )
                row = conn.execute(
                    "SELECT seq FROM alert_checkpoints WHERE account_id = %s AND feature = %s FOR UPDATE",
                    (commit.account_id, code),
                ).fetchone()
                current = None if row is None or row[0] == -1 else int(row[0])
                if current != commit.expected_seq:
                    raise Conflict(
                        f"alert checkpoint of {commit.feature.value} moved from {commit.expected_seq} to {current}"
                    )
                conn.execute(
                    "UPDATE alert_checkpoints SET seq = %s WHERE account_id = %s AND feature = %s",
                    (commit.new_seq, commit.account_id, code),
                )
            with conn.cursor() as cur:
                removed = [(commit.account_id, s.rule_id, s.kind, s.key) for s in commit.state if not s.value]
                kept = [
                    (commit.account_id, s.rule_id, s.kind, s.key, s.value, s.expires_at)
                    for s in commit.state
                    if s.value
                ]
                if removed:
                    cur.executemany(
                        "DELETE FROM alert_state WHERE account_id = %s AND rule_id = %s AND kind = %s AND key = %s",
                        removed,
                    )
                if kept:
                    cur.executemany(
                        "INSERT INTO alert_state VALUES (%s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (account_id, rule_id, kind, key) DO UPDATE SET value = excluded.value,"
                        " expires_at = excluded.expires_at",
                        kept,
                    )
                if commit.alerts:
                    cur.executemany(
                        f"INSERT INTO alerts ({_ALERT}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [_alert_row(a) for a in commit.alerts],
                    )
                if commit.deliveries:
                    cur.executemany(
                        f"INSERT INTO alert_deliveries ({_DELIVERY})"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [_delivery_row(d) for d in commit.deliveries],
                    )

    def list_alerts(
        self, account_id: int, rule_id: str | None = None, before: tuple[int, str] | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        where = ["account_id = %s"]
        params: list[Any] = [account_id]
        if rule_id is not None:
            where.append("rule_id = %s")
            params.append(rule_id)
        if before is not None:
            where.append("(fired_at < %s OR (fired_at = %s AND id < %s))")
            params.extend([before[0], before[0], before[1]])
        rows = self._rows(
            f"SELECT {_ALERT} FROM alerts WHERE {' AND '.join(where)} ORDER BY fired_at DESC, id DESC LIMIT %s",
            (*params, limit),
        )
        return [AlertRecord(*r) for r in rows]

    def get_alert(self, alert_id: str) -> AlertRecord:
        return AlertRecord(*self._one(f"SELECT {_ALERT} FROM alerts WHERE id = %s", (alert_id,), f"alert {alert_id!r}"))

    def alert_rule_stats(self, account_id: int) -> dict[str, AlertRuleStats]:
        fired = {
            r[0]: (int(r[1]), r[2])
            for r in self._rows(
                "SELECT rule_id, count(*), max(fired_at) FROM alerts WHERE account_id = %s GROUP BY rule_id",
                (account_id,),
            )
        }
        by_status: dict[str, dict[str, int]] = {}
        for rule_id, status, count in self._rows(
            "SELECT rule_id, status, count(*) FROM alert_deliveries WHERE account_id = %s GROUP BY rule_id, status",
            (account_id,),
        ):
            by_status.setdefault(rule_id, {})[status] = int(count)
        result = {}
        for rule_id in set(fired) | set(by_status):
            count, last = fired.get(rule_id, (0, None))
            statuses = by_status.get(rule_id, {})
            result[rule_id] = AlertRuleStats(
                count, last, statuses.get("pending", 0), statuses.get("delivered", 0), statuses.get("failed", 0)
            )
        return result

    def claim_deliveries(self, now: int, lease_until: int, limit: int) -> list[DeliveryRecord]:
        with self._write() as conn:
            # SKIP LOCKED: dispatchers in other processes take other rows instead of waiting.
            rows = conn.execute(
                f"SELECT {_DELIVERY} FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= %s"
                " ORDER BY next_attempt_at, created_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
                (now, limit),
            ).fetchall()
            if rows:
                conn.execute(
                    "UPDATE alert_deliveries SET next_attempt_at = %s WHERE id = ANY(%s)",
                    (lease_until, [r[0] for r in rows]),
                )
        return [DeliveryRecord(*r) for r in rows]

    def finish_delivery(
        self, delivery_id: str, status: str, attempts: int, next_attempt_at: int | None, last_error: str, now: int
    ) -> None:
        with self._unique(f"unknown delivery status {status!r}"), self._write() as conn:
            cur = conn.execute(
                "UPDATE alert_deliveries SET status = %s, attempts = %s, next_attempt_at = %s, last_error = %s,"
                " delivered_at = CASE WHEN %s = 'delivered' THEN %s ELSE delivered_at END WHERE id = %s",
                (status, attempts, next_attempt_at, last_error, status, now, delivery_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"delivery {delivery_id!r} not found")

    def list_deliveries(
        self, account_id: int, status: str | None = None, alert_id: str | None = None, limit: int = 200
    ) -> list[DeliveryRecord]:
        where = ["account_id = %s"]
        params: list[Any] = [account_id]
        if status is not None:
            where.append("status = %s")
            params.append(status)
        if alert_id is not None:
            where.append("alert_id = %s")
            params.append(alert_id)
        rows = self._rows(
            f"SELECT {_DELIVERY} FROM alert_deliveries WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (*params, limit),
        )
        return [DeliveryRecord(*r) for r in rows]

    def get_delivery(self, delivery_id: str) -> DeliveryRecord:
        return DeliveryRecord(
            *self._one(
                f"SELECT {_DELIVERY} FROM alert_deliveries WHERE id = %s", (delivery_id,), f"delivery {delivery_id!r}"
            )
        )

    def retry_delivery(self, delivery_id: str, now: int) -> DeliveryRecord:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE alert_deliveries SET status = 'pending', next_attempt_at = %s WHERE id = %s", (now, delivery_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"delivery {delivery_id!r} not found")
        return self.get_delivery(delivery_id)

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
