"""The alert aggregate of both store backends, written once: rules, evaluation checkpoints and
state, fired alerts with their state, deliveries (the outbox) and evaluation failures (contract
in store/base.py). `AlertStore` runs on the primitives a backend supplies (store/shared/dialect.py).

The two backends run the same statements. What differs is spelled by the dialect's `for_update`:
PostgreSQL locks the rows a checkpoint move or a claim reads (several processes write at once), SQLite has
one writer and needs no lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from siemgate.errors import Conflict, NotFound
from siemgate.model.features import Feature, alert_sources
from siemgate.store.errors import RoomExhausted, RuleExists
from siemgate.store.records import (
    AlertCommit,
    AlertFailure,
    AlertRecord,
    AlertRuleRecord,
    AlertRuleStats,
    AlertStateEntry,
    DeliveryRecord,
    RuleRoom,
    scheduled_check_code,
)
from siemgate.store.shared.dialect import SharedSQL

_RULE = "account_id, rule_id, definition, origin, enabled, created_at, updated_at, version"
_ALERT = (
    "id, account_id, rule_id, fired_at, event_ts, severity, source, group_key, summary, payload, rule_version,"
    " state, state_by, state_at"
)
_DELIVERY = (
    "id, alert_id, account_id, rule_id, action, kind, status, attempts, next_attempt_at, last_error,"
    " created_at, delivered_at"
)
_FAILURE = "id, account_id, rule_id, feature, at, error, first_seq, last_seq, events"
PURGE_CHUNK = 5000  # alerts deleted per transaction by retention (purge_alerts)

# What saving a rule does when it is stored already (AlertStore._put_rule)
_REPLACE = (
    "DO UPDATE SET definition = excluded.definition, origin = excluded.origin, enabled = excluded.enabled,"
    " updated_at = excluded.updated_at, version = alert_rules.version + 1"
)
_KEEP = "DO NOTHING"  # RuleExists
_FLAG = "DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at, version = alert_rules.version + 1"


def _alert(row: Sequence[Any]) -> AlertRecord:
    return AlertRecord(*row)


def _delivery(row: Sequence[Any]) -> DeliveryRecord:
    return DeliveryRecord(*row)


def _failure(row: Sequence[Any]) -> AlertFailure:
    feature = None if row[3] is None else Feature.from_code(int(row[3]))
    return AlertFailure(row[0], row[1], row[2], feature, row[4], row[5], row[6], row[7], row[8])


class AlertStore(SharedSQL):
    """An interface of the store (part of Store) and its one implementation, over the backend's
    primitives (store/shared/dialect.py)."""

    # rules ----------------------------------------------------------------------------------------
    def list_alert_rules(self, account_id: int | None = None) -> list[AlertRuleRecord]:
        """Stored rules (and starter-rule overrides), of one account or all, ordered by account and id."""
        sql = f"SELECT {_RULE} FROM alert_rules"
        params: tuple[Any, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = ?"
            params = (account_id,)
        rows = self._rows(self._q(sql + " ORDER BY account_id, rule_id"), params)
        return [AlertRuleRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], int(r[7])) for r in rows]

    def put_alert_rule(self, record: AlertRuleRecord, keep_actions: Sequence[str] | None = None) -> int:
        """put_alert_rules of one rule, without a bound; returns its new version."""
        return self.put_alert_rules([(record, keep_actions)])[0]

    def put_alert_rules(
        self,
        records: Sequence[tuple[AlertRuleRecord, Sequence[str] | None]],
        room: RuleRoom | None = None,
        *,
        only_new: bool = False,
    ) -> list[int]:
        """Insert or replace rules of one account in one transaction: for each (record,
        keep_actions), the rule (account_id, rule_id) with `created_at` of an existing row kept and
        its version up by one; with `keep_actions` (action JSON texts), its pending deliveries whose
        action is not among them cancelled. Returns the rules' new versions.

        With `room`, the account's rules whose ids are not in `room.uncounted` may not number more
        than `room.limit` afterwards when some are new: RoomExhausted, nothing written. The
        account's row is locked first, so concurrent saves (other threads or processes) cannot all
        pass the bound. With `only_new`, a rule that exists is RuleExists, nothing written."""
        if not records:
            return []
        ids = [record.rule_id for record, _ in records]
        accounts = {record.account_id for record, _ in records}
        if len(accounts) != 1:
            raise ValueError("put_alert_rules saves the rules of one account")
        [account_id] = accounts
        with self._change(f"cannot save alert rules {ids}") as conn:
            if room is not None:
                self._make_room(conn, account_id, ids, room)
            on_conflict = _KEEP if only_new else _REPLACE
            return [self._put_rule(conn, record, keep, on_conflict) for record, keep in records]

    def _make_room(self, conn: Any, account_id: int, rule_ids: Sequence[str], room: RuleRoom) -> None:
        self._lock(conn, "accounts", account_id)
        rows = conn.execute(self._q("SELECT rule_id FROM alert_rules WHERE account_id = ?"), (account_id,)).fetchall()
        stored = {row[0] for row in rows}
        held = len(stored - room.uncounted)
        adding = len(set(rule_ids) - stored - room.uncounted)
        if adding and held + adding > room.limit:
            raise RoomExhausted(held, adding, room.limit)

    def _put_rule(
        self, conn: Any, record: AlertRuleRecord, keep_actions: Sequence[str] | None, on_conflict: str
    ) -> int:
        """Insert the rule, or do `on_conflict` (_REPLACE, _KEEP: RuleExists, _FLAG) when it is
        stored; cancel its deliveries of actions not in `keep_actions`; returns its version."""
        inserted = conn.execute(
            self._q(
                "INSERT INTO alert_rules (account_id, rule_id, definition, origin, enabled, created_at,"
                f" updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (account_id, rule_id) {on_conflict}"
            ),
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
        if on_conflict == _KEEP and inserted.rowcount == 0:
            raise RuleExists(record.rule_id)
        if keep_actions is not None:
            self._cancel(conn, record.account_id, record.rule_id, keep_actions, record.updated_at)
        return self._version(conn, record)

    def _version(self, conn: Any, record: AlertRuleRecord) -> int:
        row = conn.execute(
            self._q("SELECT version FROM alert_rules WHERE account_id = ? AND rule_id = ?"),
            (record.account_id, record.rule_id),
        ).fetchone()
        return int(row[0])

    def set_alert_rule_enabled(self, record: AlertRuleRecord, *, insert: bool) -> int:
        """Enable or disable the stored rule (account_id, rule_id) as `record.enabled` says, its
        definition left as stored (a rule's `enabled` column overrides its definition's), with
        `updated_at` set and the version up by one; returns the new version. With `insert` (a
        starter rule, which exists unstored), a rule not stored is inserted as `record`; without,
        it is NotFound (deleted meanwhile: never brought back)."""
        with self._change(f"cannot change alert rule {record.rule_id!r}") as conn:
            if insert:
                return self._put_rule(conn, record, None, _FLAG)
            changed = conn.execute(
                self._q(
                    "UPDATE alert_rules SET enabled = ?, updated_at = ?, version = version + 1"
                    " WHERE account_id = ? AND rule_id = ?"
                ),
                (int(record.enabled), record.updated_at, record.account_id, record.rule_id),
            )
            if changed.rowcount == 0:
                raise NotFound(f"alert rule {record.rule_id!r} not found")
            return self._version(conn, record)

    def _cancel(self, conn: Any, account_id: int, rule_id: str, keep: Sequence[str], now: int) -> None:
        sql = (
            "UPDATE alert_deliveries SET status = 'cancelled', next_attempt_at = NULL,"
            " last_error = ? WHERE account_id = ? AND rule_id = ? AND status = 'pending'"
        )
        params: list[Any] = ["cancelled: the rule or this action was deleted", account_id, rule_id]
        if keep:
            sql += f" AND action NOT IN ({self._marks(len(keep))})"
            params += list(keep)
        conn.execute(self._q(sql), params)

    def delete_alert_rule(self, account_id: int, rule_id: str) -> None:
        """Delete the rule and its evaluation state, cancelling its pending deliveries; raises
        NotFound when there is no such rule."""
        with self._change(f"cannot delete alert rule {rule_id!r}") as conn:
            cur = conn.execute(
                self._q("DELETE FROM alert_rules WHERE account_id = ? AND rule_id = ?"), (account_id, rule_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"alert rule {rule_id!r} not found")
            conn.execute(self._q("DELETE FROM alert_state WHERE account_id = ? AND rule_id = ?"), (account_id, rule_id))
            self._cancel(conn, account_id, rule_id, (), 0)

    # evaluation -------------------------------------------------------------------------------------
    def alert_checkpoint(self, account_id: int, feature: Feature) -> int | None:
        """The last seq of the stream that rule evaluation committed; None before the first commit."""
        rows = self._rows(
            self._q("SELECT seq FROM alert_checkpoints WHERE account_id = ? AND feature = ?"),
            (account_id, feature.code),
        )
        return None if not rows or rows[0][0] == -1 else int(rows[0][0])

    def scheduled_check_generation(self, account_id: int, source: str) -> int | None:
        """How many times the account's scheduled check of `source` (one of SCHEDULED_CHECKS) was
        committed, by any process (None before the first): the next commit is made against it."""
        rows = self._rows(
            self._q("SELECT seq FROM alert_checkpoints WHERE account_id = ? AND feature = ?"),
            (account_id, scheduled_check_code(source)),
        )
        return None if not rows or rows[0][0] == -1 else int(rows[0][0])

    def load_alert_state(self, account_id: int, rule_ids: Sequence[str] | None = None) -> list[AlertStateEntry]:
        """Every state entry of the account's rules, or of the rules `rule_ids` only."""
        sql = "SELECT rule_id, kind, key, value, expires_at FROM alert_state WHERE account_id = ?"
        params: list[Any] = [account_id]
        if rule_ids is not None:
            if not rule_ids:
                return []
            sql += f" AND rule_id IN ({self._marks(len(rule_ids))})"
            params += sorted(rule_ids)
        return [AlertStateEntry(r[0], r[1], r[2], r[3], r[4]) for r in self._rows(self._q(sql), tuple(params))]

    def commit_alert_evaluation(self, commit: AlertCommit) -> None:
        """Atomically: move the checkpoint of (account, feature) from `expected_seq` to `new_seq`,
        write the state entries (an empty value deletes), and insert the alerts, deliveries and
        failures.

        With `feature` None there is no checkpoint, unless `scheduled` names a scheduled check,
        whose generation moves instead. Raises Conflict, writing nothing, when the checkpoint (or
        generation) is not `expected_seq` (another evaluator moved it first);
        StoreError when the store cannot hold what is written; Conflict, writing nothing, when the
        account was deleted (its state saved now would pass to the next account given its id)."""
        with self._change("cannot record the alert evaluation") as conn:
            if not self._account_exists(conn, commit.account_id):
                raise Conflict(f"account #{commit.account_id} was deleted: its alert evaluation is not recorded")
            if commit.feature is not None or commit.scheduled is not None:
                self._move_checkpoint(conn, commit)
            cur = conn.cursor()
            removed = [(commit.account_id, s.rule_id, s.kind, s.key) for s in commit.state if not s.value]
            kept = [
                (commit.account_id, s.rule_id, s.kind, s.key, s.value, s.expires_at) for s in commit.state if s.value
            ]
            if removed:
                cur.executemany(
                    self._q("DELETE FROM alert_state WHERE account_id = ? AND rule_id = ? AND kind = ? AND key = ?"),
                    removed,
                )
            if kept:
                cur.executemany(
                    self._q(
                        "INSERT INTO alert_state VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, rule_id, kind, key)"
                        " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
                    ),
                    kept,
                )
            if commit.alerts:
                cur.executemany(
                    self._q(f"INSERT INTO alerts ({_ALERT}) VALUES ({self._marks(14)})"),
                    [
                        (a.id, a.account_id, a.rule_id, a.fired_at, a.event_ts, a.severity, a.source, a.group_key,
                         a.summary, a.payload, a.rule_version, a.state, a.state_by, a.state_at)
                        for a in commit.alerts
                    ],
                )  # fmt: skip
            if commit.deliveries:
                cur.executemany(
                    self._q(f"INSERT INTO alert_deliveries ({_DELIVERY}) VALUES ({self._marks(12)})"),
                    [
                        (d.id, d.alert_id, d.account_id, d.rule_id, d.action, d.kind, d.status, d.attempts,
                         d.next_attempt_at, d.last_error, d.created_at, d.delivered_at)
                        for d in commit.deliveries
                    ],
                )  # fmt: skip
            if commit.failures:
                cur.executemany(
                    self._q(f"INSERT INTO alert_failures ({_FAILURE}) VALUES ({self._marks(9)})"),
                    [
                        (f.id, f.account_id, f.rule_id, None if f.feature is None else f.feature.code, f.at, f.error,
                         f.first_seq, f.last_seq, f.events)
                        for f in commit.failures
                    ],
                )  # fmt: skip

    def _move_checkpoint(self, conn: Any, commit: AlertCommit) -> None:
        if commit.feature is not None:
            key, what = (commit.account_id, commit.feature.code), f"alert checkpoint of {commit.feature.value}"
        else:
            assert commit.scheduled is not None
            key, what = (commit.account_id, scheduled_check_code(commit.scheduled)), f"{commit.scheduled} check"
        if commit.expected_seq is not None:  # the usual step: one compare-and-set
            moved = conn.execute(
                self._q("UPDATE alert_checkpoints SET seq = ? WHERE account_id = ? AND feature = ? AND seq = ?"),
                (commit.new_seq, *key, commit.expected_seq),
            )
            if moved.rowcount == 1:
                return
        # The row exists (-1: none yet) before it is read, so the read can lock it.
        conn.execute(self._q("INSERT INTO alert_checkpoints VALUES (?, ?, -1) ON CONFLICT DO NOTHING"), key)
        row = conn.execute(
            self._q(f"SELECT seq FROM alert_checkpoints WHERE account_id = ? AND feature = ?{self.dialect.for_update}"),
            key,
        ).fetchone()
        current = None if row is None or row[0] == -1 else int(row[0])
        if current != commit.expected_seq:
            raise Conflict(f"{what} moved from {commit.expected_seq} to {current}")
        conn.execute(
            self._q("UPDATE alert_checkpoints SET seq = ? WHERE account_id = ? AND feature = ?"),
            (commit.new_seq, *key),
        )

    # alerts -----------------------------------------------------------------------------------------
    def list_alerts(
        self,
        account_id: int,
        rule_id: str | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 100,
        *,
        state: str | None = None,
        severity: str | None = None,
    ) -> list[AlertRecord]:
        """Alerts newest first (by detection time); `before` = (fired_at, id) of the last alert of
        the previous page; optionally of one state or severity."""
        where = ["account_id = ?"]
        params: list[Any] = [account_id]
        for column, value in (("rule_id", rule_id), ("state", state), ("severity", severity)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None:
            # `fired_at <= ?` on its own bounds the index range: with only the OR, SQLite read every
            # newer alert of the account up to the page
            where.append("fired_at <= ? AND (fired_at < ? OR id < ?)")
            params.extend([before[0], before[0], before[1]])
        rows = self._rows(
            self._q(f"SELECT {_ALERT} FROM alerts WHERE {' AND '.join(where)} ORDER BY fired_at DESC, id DESC LIMIT ?"),
            (*params, limit),
        )
        return [_alert(r) for r in rows]

    def get_alert(self, alert_id: str) -> AlertRecord:
        """Raises NotFound."""
        return _alert(self._first(f"SELECT {_ALERT} FROM alerts WHERE id = ?", (alert_id,), f"alert {alert_id!r}"))

    def set_alert_state(self, alert_id: str, state: str, by: str, at: int) -> AlertRecord:
        """Set an alert's state (open, acknowledged, resolved) with who and when; raises NotFound."""
        with self._change(f"cannot change alert {alert_id!r}") as conn:
            cur = conn.execute(
                self._q("UPDATE alerts SET state = ?, state_by = ?, state_at = ? WHERE id = ?"),
                (state, by, at, alert_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"alert {alert_id!r} not found")
        return self.get_alert(alert_id)

    def alert_rule_stats(self, account_id: int, rule_id: str | None = None) -> dict[str, AlertRuleStats]:
        """Per rule id that ever fired or failed (of the account, or `rule_id` only: a rule's page
        counts its own rows, by the indexes led by account and rule): alerts fired, the last
        firing, deliveries by status, and evaluation failures."""
        where, params = "account_id = ?", [account_id]
        if rule_id is not None:
            where += " AND rule_id = ?"
            params.append(rule_id)  # type: ignore[arg-type]
        fired = {
            r[0]: (int(r[1]), r[2])
            for r in self._rows(
                self._q(f"SELECT rule_id, count(*), max(fired_at) FROM alerts WHERE {where} GROUP BY rule_id"), params
            )
        }
        by_status: dict[str, dict[str, int]] = {}
        for rule, status, count in self._rows(
            self._q(f"SELECT rule_id, status, count(*) FROM alert_deliveries WHERE {where} GROUP BY rule_id, status"),
            params,
        ):
            by_status.setdefault(rule, {})[status] = int(count)
        failures = {
            r[0]: (int(r[1]), r[2])
            for r in self._rows(
                self._q(f"SELECT rule_id, count(*), max(at) FROM alert_failures WHERE {where} GROUP BY rule_id"), params
            )
        }
        result = {}
        for rule_id in set(fired) | set(by_status) | set(failures):
            count, last = fired.get(rule_id, (0, None))
            statuses = by_status.get(rule_id, {})
            failed_steps, last_failure = failures.get(rule_id, (0, None))
            result[rule_id] = AlertRuleStats(
                count,
                last,
                statuses.get("pending", 0),
                statuses.get("delivered", 0),
                statuses.get("failed", 0),
                statuses.get("cancelled", 0),
                failed_steps,
                last_failure,
            )
        return result

    def list_alert_failures(self, account_id: int, rule_id: str | None = None, limit: int = 50) -> list[AlertFailure]:
        """Evaluation failures (alerts that could not be stored), newest first."""
        where, params = "account_id = ?", [account_id]
        if rule_id is not None:
            where += " AND rule_id = ?"
            params.append(rule_id)  # type: ignore[arg-type]
        rows = self._rows(
            self._q(f"SELECT {_FAILURE} FROM alert_failures WHERE {where} ORDER BY at DESC, id DESC LIMIT ?"),
            (*params, limit),
        )
        return [_failure(r) for r in rows]

    # retention --------------------------------------------------------------------------------------
    def purge_alerts(self, account_id: int, feature: Feature, before: int) -> int:
        """Delete the account's alerts kept as long as `feature`'s stream keeps events
        (model.features.alert_sources) whose activity (`event_ts`) is before `before`, with their
        deliveries, and its evaluation failures of that stream (for auditevents, also those of no
        stream) recorded before it: at most PURGE_CHUNK rows per transaction, the alerts' ids read
        first outside it, so that one account's many alerts never hold every account's writes.
        Returns how many alerts were deleted."""
        sources = alert_sources(feature)
        pick = (
            f"SELECT id FROM alerts WHERE account_id = ? AND source IN ({self._marks(len(sources))})"
            f" AND event_ts < ? LIMIT {PURGE_CHUNK}"
        )
        deleted = 0
        while ids := [row[0] for row in self._rows(self._q(pick), (account_id, *sources, before))]:
            marks = self._marks(len(ids))
            with self._change("cannot delete old alerts") as conn:
                conn.execute(self._q(f"DELETE FROM alert_deliveries WHERE alert_id IN ({marks})"), ids)
                cur = conn.execute(
                    self._q(f"DELETE FROM alerts WHERE id IN ({marks}) AND account_id = ? AND event_ts < ?"),
                    (*ids, account_id, before),
                )
                deleted += int(cur.rowcount or 0)
            if len(ids) < PURGE_CHUNK:
                break
        streams = "feature = ? OR feature IS NULL" if feature is Feature.AUDITEVENTS else "feature = ?"
        old_failures = (
            "DELETE FROM alert_failures WHERE id IN (SELECT id FROM alert_failures WHERE account_id = ? AND at < ?"
            f" AND ({streams}) LIMIT {PURGE_CHUNK})"
        )
        while True:
            with self._change("cannot delete old alert failures") as conn:
                gone = int(conn.execute(self._q(old_failures), (account_id, before, feature.code)).rowcount or 0)
            if gone < PURGE_CHUNK:
                return deleted

    # deliveries -------------------------------------------------------------------------------------
    def claim_deliveries(
        self,
        now: int,
        lease_until: int,
        limit: int,
        per_account: int = 1_000_000,
        skip_accounts: Sequence[int] = (),
        skip_actions: Sequence[str] = (),
    ) -> list[DeliveryRecord]:
        """Pending deliveries due at `now` (next_attempt_at <= now), oldest first, at most
        `per_account` of each account, none of `skip_accounts` and none whose action (its JSON
        text: the destination) is in `skip_actions`; each is leased
        (next_attempt_at = lease_until) in the same transaction, so two dispatchers never claim one.
        The due deliveries are chosen by a read before that transaction (a flood of one account's
        deliveries makes it long: it must not hold every account's writes), and checked again in it."""
        skip = f" AND account_id NOT IN ({self._marks(len(skip_accounts))})" if skip_accounts else ""
        if skip_actions:
            skip += f" AND action NOT IN ({self._marks(len(skip_actions))})"
        due = "SELECT 1 FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= ? LIMIT 1"
        if not self._rows(self._q(due), (now,)):  # nothing due (most checks): no write transaction
            return []
        candidates = self._rows(
            self._q(
                "SELECT id FROM (SELECT id, next_attempt_at, created_at, row_number() OVER (PARTITION BY"
                " account_id ORDER BY next_attempt_at, created_at, id) AS n FROM alert_deliveries"
                f" WHERE status = 'pending' AND next_attempt_at <= ?{skip}) due"
                " WHERE n <= ? ORDER BY next_attempt_at, created_at, id LIMIT ?"
            ),
            (now, *skip_accounts, *skip_actions, per_account, limit),
        )
        if not candidates:
            return []
        with self._change("cannot claim alert deliveries") as conn:
            ids = [r[0] for r in candidates]
            lock = self.dialect.for_update + self.dialect.skip_locked
            # found by id (the planner would take the index of due deliveries, and scan them all), the
            # rows as they are now, locked; those another claim took meanwhile are left
            found = conn.execute(
                self._q(f"SELECT {_DELIVERY} FROM alert_deliveries WHERE id IN ({self._marks(len(ids))}){lock}"),
                ids,
            ).fetchall()
            claimed = [
                d
                for d in map(_delivery, found)
                if d.status == "pending" and d.next_attempt_at is not None and d.next_attempt_at <= now
            ]
            conn.cursor().executemany(
                self._q("UPDATE alert_deliveries SET next_attempt_at = ? WHERE id = ?"),
                [(lease_until, d.id) for d in claimed],
            )
        claimed.sort(key=lambda d: (d.next_attempt_at or 0, d.created_at, d.id))
        return claimed

    def finish_delivery(
        self, delivery_id: str, status: str, attempts: int, next_attempt_at: int | None, last_error: str, now: int
    ) -> None:
        """Record an attempt's outcome: `delivered` (delivered_at = now), `pending` (retry at
        next_attempt_at) or `failed` (gave up). A delivery cancelled meanwhile stays cancelled
        unless it was delivered. Raises NotFound."""
        with self._change(f"cannot record delivery {delivery_id!r}") as conn:
            cur = conn.execute(
                self._q(
                    "UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
                    " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END"
                    " WHERE id = ? AND (status <> 'cancelled' OR ? = 'delivered')"
                ),
                (status, attempts, next_attempt_at, last_error, status, now, delivery_id, status),
            )
            if cur.rowcount == 0:
                found = conn.execute(self._q("SELECT 1 FROM alert_deliveries WHERE id = ?"), (delivery_id,)).fetchone()
                if found is None:
                    raise NotFound(f"delivery {delivery_id!r} not found")

    def mark_delivered(self, delivery_ids: Sequence[str], now: int) -> None:
        """Record one successful attempt of each of these pending deliveries (delivered_at = now);
        a delivery no longer pending (cancelled, delivered) is left as it is."""
        if not delivery_ids:
            return
        with self._change("cannot record the deliveries") as conn:
            conn.cursor().executemany(
                self._q(
                    "UPDATE alert_deliveries SET status = 'delivered', attempts = attempts + 1, next_attempt_at = NULL,"
                    " last_error = '', delivered_at = ? WHERE id = ? AND status = 'pending'"
                ),
                [(now, delivery_id) for delivery_id in delivery_ids],
            )

    def list_deliveries(
        self,
        account_id: int,
        status: str | None = None,
        alert_id: str | None = None,
        limit: int = 200,
        before: tuple[int, str] | None = None,
    ) -> list[DeliveryRecord]:
        """Deliveries newest first, optionally of one status or one alert; `before` = (created_at,
        id) of the last delivery of the previous page."""
        where = ["account_id = ?"]
        params: list[Any] = [account_id]
        for column, value in (("status", status), ("alert_id", alert_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None:  # bounded by `created_at <= ?` on its own, as list_alerts' `before`
            where.append("created_at <= ? AND (created_at < ? OR id < ?)")
            params.extend([before[0], before[0], before[1]])
        rows = self._rows(
            self._q(
                f"SELECT {_DELIVERY} FROM alert_deliveries WHERE {' AND '.join(where)}"
                " ORDER BY created_at DESC, id DESC LIMIT ?"
            ),
            (*params, limit),
        )
        return [_delivery(r) for r in rows]

    def get_delivery(self, delivery_id: str) -> DeliveryRecord:
        """Raises NotFound."""
        sql = f"SELECT {_DELIVERY} FROM alert_deliveries WHERE id = ?"
        return _delivery(self._first(sql, (delivery_id,), f"delivery {delivery_id!r}"))

    def retry_delivery(self, delivery_id: str, now: int) -> DeliveryRecord:
        """Make a failed delivery pending again, due now (attempts kept), in one statement, so a
        delivery delivered, cancelled or taken meanwhile is never sent again. Raises NotFound, or
        Conflict naming its status when it is not failed."""
        with self._change(f"cannot retry delivery {delivery_id!r}") as conn:
            cur = conn.execute(
                self._q(
                    "UPDATE alert_deliveries SET status = 'pending', next_attempt_at = ?"
                    " WHERE id = ? AND status = 'failed'"
                ),
                (now, delivery_id),
            )
            retried = cur.rowcount == 1
        delivery = self.get_delivery(delivery_id)
        if not retried:
            raise Conflict(f"delivery {delivery_id} is {delivery.status}: only a failed delivery can be retried")
        return delivery
