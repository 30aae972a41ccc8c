"""Live evaluation: rules run on every batch the EventWriter stores, and the state, the alerts and
the checkpoint (the last seq evaluated per stream) are committed together, so a restart resumes
exactly where the last commit left off: no event is evaluated twice and none is skipped.

- `on_stored` (an EventWriter listener) evaluates the batch it is given. When events might be
  missing between the checkpoint and the batch (another thread's batch not yet seen, duplicates
  that left seqs unused, another process writing), it reads them from the store by seq first.
- `catch_up` (server schedule) evaluates whatever the listener has not seen: events written by
  other processes (`siemgate ingest`), or a batch whose evaluation failed.
- A stream's first evaluation starts at its head: history stored before alerting was enabled
  does not fire.
- `check_tokens` (server schedule) evaluates `tokens` rules against every SIEM token of the account.
- Two evaluators (two server processes) never commit the same step: the commit checks the
  checkpoint it started from (Store.commit_alert_evaluation), and the loser reloads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from siemgate.accounts.lifecycle import token_status
from siemgate.alerts.actions.record import is_alert_event
from siemgate.alerts.engine import Evaluator, Firing, StateBook
from siemgate.alerts.model import action_json
from siemgate.alerts.rules import AlertRules
from siemgate.errors import Conflict, StoreError
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.store.base import Account, AlertCommit, AlertFailure, AlertRecord, DeliveryRecord, Store
from siemgate.store.ingest import StoredBatch

log = logging.getLogger("siemgate.alerts")
READ_BATCH = 2000


class AlertEvaluator:
    def __init__(self, store: Store, rules: AlertRules, clock: Callable[[], int], max_event_age_days: int = 7) -> None:
        """Events whose timestamp is more than `max_event_age_days` old when stored (archive
        replays, backfills) are not evaluated: history does not page anyone."""
        self.max_event_age_ns = max_event_age_days * 86400 * NS_PER_SECOND
        self.store = store
        self.rules = rules
        self.clock = clock
        self.kick = threading.Event()  # set when new deliveries are due
        self._guard = threading.Lock()
        self._locks: dict[int, threading.RLock] = {}  # one per account: accounts never wait for each other
        self._versions: dict[int, tuple[int, int]] = {}
        self._books: dict[int, StateBook] = {}
        self._checkpoints: dict[tuple[int, Feature], int | None] = {}
        self._accounts: dict[int, Account] = {}

    # state --------------------------------------------------------------------------------------
    def _lock(self, account_id: int) -> threading.RLock:
        with self._guard:
            lock = self._locks.get(account_id)
            if lock is None:
                lock = self._locks[account_id] = threading.RLock()
            return lock

    def _fresh(self, account_id: int) -> None:
        """Drop the account's cached state when its rules changed (their state may have been deleted)."""
        version = self.rules.version_of(account_id)
        if self._versions.get(account_id) != version:
            self._versions[account_id] = version
            self._books.pop(account_id, None)

    def _book(self, account_id: int) -> StateBook:
        book = self._books.get(account_id)
        if book is None:
            book = StateBook.load(self.store.load_alert_state(account_id), self.clock() - self.max_event_age_ns)
            self._books[account_id] = book
        return book

    def _forget(self, account_id: int) -> None:
        self._books.pop(account_id, None)
        for key in [k for k in self._checkpoints if k[0] == account_id]:
            del self._checkpoints[key]

    def _checkpoint(self, account_id: int, feature: Feature) -> int | None:
        key = (account_id, feature)
        if key not in self._checkpoints:
            self._checkpoints[key] = self.store.alert_checkpoint(account_id, feature)
        return self._checkpoints[key]

    def _account(self, account_id: int) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            account = self._accounts[account_id] = self.store.get_account_by_id(account_id)
        return account

    # streams ------------------------------------------------------------------------------------
    def on_stored(self, batch: StoredBatch) -> None:
        """EventWriter listener: never raises (the events are stored; catch_up retries)."""
        try:
            self._process(batch.account_id, batch.feature, batch.events)
        except Exception:
            log.exception("alert evaluation failed for a %s batch; it is retried by the next catch-up", batch.feature)

    def catch_up(self) -> int:
        """Evaluate every stream up to its head; returns the number of events evaluated."""
        done = 0
        for account in self.store.list_accounts():
            for feature in ALL_FEATURES:
                try:
                    done += self._process(account.id, feature, None)
                except Exception:
                    log.exception("alert catch-up failed for %s of account %s", feature, account.uuid)
        return done

    def _process(self, account_id: int, feature: Feature, events: Sequence[tuple[int, dict[str, Any]]] | None) -> int:
        with self._lock(account_id):
            self._fresh(account_id)
            try:
                return self._step(account_id, feature, events)
            except Conflict:
                self._forget(account_id)  # another process moved on: reload and catch up from there
                return self._step(account_id, feature, None)
            except Exception:
                self._forget(account_id)
                raise

    def _step(self, account_id: int, feature: Feature, events: Sequence[tuple[int, dict[str, Any]]] | None) -> int:
        checkpoint = self._checkpoint(account_id, feature)
        if checkpoint is None:
            if events is None:  # first look at this stream: start at its head
                head = self.store.head_seq(account_id, feature)
                self._commit(AlertCommit(account_id, feature, None, head))
                return 0
            return self._evaluate(account_id, feature, None, list(events))
        given = [(s, e) for s, e in events if s > checkpoint] if events is not None else []
        if events is not None and not given:
            return 0
        if given and given[0][0] == checkpoint + 1:
            return self._evaluate(account_id, feature, checkpoint, given)
        upto = given[-1][0] if given else None
        done = 0
        while True:
            chunk = self._read(account_id, feature, checkpoint, upto)
            if not chunk:
                return done
            done += self._evaluate(account_id, feature, checkpoint, chunk)
            checkpoint = chunk[-1][0]

    def _read(
        self, account_id: int, feature: Feature, after: int, upto: int | None
    ) -> list[tuple[int, dict[str, Any]]]:
        rows = self.store.read_events(account_id, feature, after, 0, None, READ_BATCH)
        return [(seq, orjson.loads(body)) for seq, body, _ in rows if upto is None or seq <= upto]

    def _evaluate(
        self, account_id: int, feature: Feature, checkpoint: int | None, events: list[tuple[int, dict[str, Any]]]
    ) -> int:
        rules = self.rules.enabled(account_id, feature.value)
        book = self._book(account_id)
        firings: list[Firing] = []
        if rules:
            relevant = events
            if feature == Feature.AUDITEVENTS:
                relevant = [(s, e) for s, e in events if not is_alert_event(e)]
            firings = Evaluator(rules, book).evaluate(relevant, oldest=self.clock() - self.max_event_age_ns)
        alerts, deliveries = self._records(account_id, feature.value, firings)
        state = book.changes()
        commit = AlertCommit(account_id, feature, checkpoint, events[-1][0], state, alerts, deliveries)
        try:
            self._commit(commit)
        except (StoreError, Conflict) as exc:
            if isinstance(exc, Conflict) and self.store.alert_checkpoint(account_id, feature) != checkpoint:
                raise  # another evaluator moved the stream on: reload (see _process)
            self._commit_failure(commit, firings, events, exc)
        return len(events)

    def _commit_failure(
        self,
        commit: AlertCommit,
        firings: list[Firing],
        events: list[tuple[int, dict[str, Any]]],
        exc: StoreError | Conflict,
    ) -> None:
        """The step could not be stored (an alert the store cannot hold, say): record it as a
        failure of the rules involved, keep their state if it can be stored, and move the stream on.
        Raises StoreError when not even that can be stored (the store is down: catch-up retries)."""
        rule_ids = sorted({f.rule.id for f in firings} or {s.rule_id for s in commit.state} or {"*"})
        now = self.clock()
        error = f"alerts of {len(events)} event(s) could not be stored: {exc.message}"[:1000]
        failures = [
            AlertFailure(new_id(), commit.account_id, rule_id, commit.feature, now, error, events[0][0], events[-1][0],
                         len(events))
            for rule_id in rule_ids
        ]  # fmt: skip
        log.error("alert evaluation of %s: %s", commit.feature, error)
        try:
            self._commit(replace(commit, alerts=(), deliveries=(), failures=failures))
        except (StoreError, Conflict):
            self._books.pop(commit.account_id, None)  # its state was not stored: reload it
            self._commit(replace(commit, state=(), alerts=(), deliveries=(), failures=failures))

    def _commit(self, commit: AlertCommit) -> None:
        self.store.commit_alert_evaluation(commit)
        if commit.feature is not None:
            self._checkpoints[(commit.account_id, commit.feature)] = commit.new_seq
        if commit.deliveries:
            self.kick.set()

    # scheduled: SIEM tokens ---------------------------------------------------------------------
    def check_tokens(self) -> int:
        """Evaluate `tokens` rules for every account; returns the number of alerts fired."""
        fired = 0
        now = self.clock()
        for account in self.store.list_accounts():
            rules = self.rules.enabled(account.id, "tokens")
            if not rules:
                continue
            records = token_records(self.store, account, now)
            with self._lock(account.id):
                self._fresh(account.id)
                try:
                    book = self._book(account.id)
                    firings = Evaluator(rules, book).evaluate(enumerate(records), now=now)
                    alerts, deliveries = self._records(account.id, "tokens", firings)
                    self._commit(AlertCommit(account.id, None, None, 0, book.changes(), alerts, deliveries))
                except Exception:
                    self._forget(account.id)
                    raise
            fired += len(alerts)
        return fired

    # alerts -------------------------------------------------------------------------------------
    def _records(
        self, account_id: int, source: str, firings: list[Firing]
    ) -> tuple[list[AlertRecord], list[DeliveryRecord]]:
        if not firings:
            return [], []
        account = self._account(account_id)
        now = self.clock()
        alerts, deliveries = [], []
        for firing in firings:
            payload = alert_payload(new_id(), account, source, firing, now)
            alert = AlertRecord(
                payload["id"],
                account_id,
                firing.rule.id,
                now,
                firing.event_ts,
                firing.rule.rule.severity,
                source,
                orjson.dumps(firing.group).decode(),
                firing.summary,
                orjson.dumps(payload).decode(),
            )
            alerts.append(alert)
            for action in firing.rule.rule.actions:
                deliveries.append(
                    DeliveryRecord(
                        new_id(), alert.id, account_id, firing.rule.id, action_json(action), action.type, "pending",
                        0, now, "", now,
                    )
                )  # fmt: skip
        return alerts, deliveries


def alert_payload(alert_id: str, account: Account, source: str, firing: Firing, now: int) -> dict[str, Any]:
    """The alert as actions send it (webhook `data`, syslog MSG, the `alerts` API)."""
    rule = firing.rule.rule
    return {
        "id": alert_id,
        "account": {"uuid": account.uuid, "name": account.name},
        "rule": {
            "id": rule.id,
            "name": rule.name,
            "severity": rule.severity,
            "kind": rule.kind,
            "description": rule.description,
        },
        "source": source,
        "summary": firing.summary,
        "fired_at": format_ns(now),
        "event_time": format_ns(firing.event_ts),
        "group": firing.group,
        "count": firing.count,
        "events": firing.events,
        "event": firing.event,
    }


def token_records(store: Store, account: Account, now: int) -> list[dict[str, Any]]:
    """One record per SIEM token of the account, as `tokens` rules see it (alerts.fields)."""
    integrations = {i.id: i for i in store.list_integrations(account.id)}
    records = []
    for token in store.list_tokens(account.id):
        integration = integrations.get(token.integration_id) or store.get_integration_by_id(token.integration_id)
        since = token.last_used_at or token.created_at
        records.append(
            {
                "id": token.id,
                "name": token.name,
                "timestamp": format_ns(now),
                "status": token_status(token, now),
                "features": [f.value for f in token.features],
                "created_at": format_ns(token.created_at),
                "last_used_at": format_ns(token.last_used_at) if token.last_used_at else None,
                "expires_at": format_ns(token.expires_at) if token.expires_at else None,
                "idle_seconds": max(0, (now - since) // NS_PER_SECOND),
                "integration": {"uuid": integration.uuid, "name": integration.name, "type": integration.type},
            }
        )
    return records
