"""Carrying out alert actions: the deliveries evaluation committed (an outbox) are claimed, sent
concurrently, and recorded as delivered, to be retried, or failed.

- Isolation: deliveries run in a pool of `workers` threads, each bounded by its action's own
  timeout; at most `per_destination` deliveries to one destination (one action of one rule) and
  `per_account` of one account are in flight at once, so a hung destination holds only its own
  deliveries, and one account's slow destinations never hold up another account's alerts.
- Retries: a failed attempt that may pass later (network errors, HTTP 5xx/408/425/429, SMTP 4xx)
  is retried after `retry` seconds, doubling per attempt up to an hour (longer when the
  receiver's Retry-After says so), until `max_attempts`; then, or at once for a permanent failure
  (HTTP 4xx, SMTP 5xx, bad configuration, a refused destination), the delivery is `failed` and
  stays visible with its last error (admin API, `siemgate alerts deliveries`) until retried by
  hand. Deliveries of a deleted rule or action are `cancelled` (store.put_alert_rule).
- Claims are leased for LEASE_NS, so several server processes never send one delivery at the
  same time; a delivery whose process stopped mid-attempt is due again when its lease ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import orjson

from siemgate.alerts.actions.base import DeliveryError, Sender
from siemgate.errors import NotFound
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.store.base import DeliveryRecord, Store

log = logging.getLogger("siemgate.alerts")
# Longer than any attempt (action timeouts are at most 60 s) plus margin; after a crash, what the
# stopped process had taken is sent again this long after it was taken.
LEASE_NS = 75 * NS_PER_SECOND
MAX_DELAY_NS = 3600 * NS_PER_SECOND


class Dispatcher:
    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        clock: Callable[[], int],
        *,
        max_attempts: int = 8,
        retry_seconds: float = 30.0,
        workers: int = 16,
        per_account: int = 4,
        per_destination: int = 2,
        wake: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.senders = senders
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_ns = int(retry_seconds * NS_PER_SECOND)
        self.workers = workers
        self.per_account = per_account
        self.per_destination = per_destination
        self.wake = wake or threading.Event()  # set when a slot frees up: the caller pumps again
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="siemgate-alert-action")
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}
        self._destinations: dict[str, int] = {}
        self._running = 0

    def backoff(self, attempts: int, retry_after: float | None) -> int:
        """Delay before the next attempt after `attempts` failed ones."""
        delay = min(self.retry_ns << (attempts - 1), MAX_DELAY_NS)
        if retry_after is not None:
            delay = max(delay, int(min(retry_after * NS_PER_SECOND, MAX_DELAY_NS)))
        return delay

    def pump(self) -> list[Future[str]]:
        """Claim the deliveries due now that fit (free workers; accounts and destinations under
        their budgets) and start them; returns at once with their futures."""
        with self._lock:
            free = self.workers - self._running
            full = [account for account, n in self._in_flight.items() if n >= self.per_account]
            busy_actions = [action for action, n in self._destinations.items() if n >= self.per_destination]
        if free <= 0:
            return []
        now = self.clock()
        claimed = self.store.claim_deliveries(now, now + LEASE_NS, free, self.per_account, full, busy_actions)
        started: list[Future[str]] = []
        for delivery in claimed:
            with self._lock:
                fits = (
                    self._in_flight.get(delivery.account_id, 0) < self.per_account
                    and self._destinations.get(delivery.action, 0) < self.per_destination
                )
                if fits:
                    self._in_flight[delivery.account_id] = self._in_flight.get(delivery.account_id, 0) + 1
                    self._destinations[delivery.action] = self._destinations.get(delivery.action, 0) + 1
                    self._running += 1
            if not fits:  # its account or destination filled up meanwhile: due again for a later pump
                self.store.finish_delivery(delivery.id, "pending", delivery.attempts, now, delivery.last_error, now)
                continue
            started.append(self._pool.submit(self._run, delivery))
        return started

    def _run(self, delivery: DeliveryRecord) -> str:
        try:
            return self.deliver(delivery)
        finally:
            with self._lock:
                _decrement(self._in_flight, delivery.account_id)
                _decrement(self._destinations, delivery.action)
                self._running -= 1
            self.wake.set()

    def run_due(self, limit: int = 1000) -> int:
        """Carry out the deliveries due now (concurrently, within the budgets), starting more as
        slots free up, and wait for them all; returns how many were attempted."""
        total = 0
        running: set[Future[str]] = set()
        while True:
            started = self.pump() if total < limit else []
            total += len(started)
            running |= set(started)
            if not running:
                return total
            if not started:
                _, running = wait(running, return_when=FIRST_COMPLETED)

    def close(self) -> None:
        """Start nothing more; attempts under way end by their own timeouts."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def deliver(self, delivery: DeliveryRecord) -> str:
        """One attempt; records and returns the new status: `cancelled`, nothing sent or recorded,
        when the alert was deleted meanwhile (by retention, or with its account)."""
        attempts = delivery.attempts + 1
        try:
            try:
                alert = orjson.loads(self.store.get_alert(delivery.alert_id).payload)
            except NotFound:
                return self._gone(delivery)
            action = orjson.loads(delivery.action)
            sender = self.senders.get(delivery.kind)
            if sender is None:
                raise DeliveryError(f"unknown action type {delivery.kind!r}", retryable=False)
            sender(alert, action, delivery)
        except DeliveryError as exc:
            return self._failed(delivery, attempts, exc.message, exc.retryable, exc.retry_after)
        except Exception as exc:  # a bug or an unexpected library error: keep it visible and retry
            log.exception("alert action %s of alert %s raised", delivery.kind, delivery.alert_id)
            return self._failed(delivery, attempts, f"unexpected error: {type(exc).__name__}", True, None)
        return self._record(delivery, "delivered", attempts, None, "", self.clock())

    def _failed(
        self, delivery: DeliveryRecord, attempts: int, message: str, retryable: bool, retry_after: float | None
    ) -> str:
        now = self.clock()
        if retryable and attempts < self.max_attempts:
            when = now + self.backoff(attempts, retry_after)
            if self._record(delivery, "pending", attempts, when, message, now) == "cancelled":
                return "cancelled"
            log.warning("alert action %s failed (attempt %d), will retry: %s", delivery.kind, attempts, message)
            return "pending"
        if self._record(delivery, "failed", attempts, None, message, now) == "cancelled":
            return "cancelled"
        log.error("alert action %s failed for good after %d attempt(s): %s", delivery.kind, attempts, message)
        return "failed"

    def _record(
        self, delivery: DeliveryRecord, status: str, attempts: int, next_attempt_at: int | None, error: str, now: int
    ) -> str:
        """Record the attempt's outcome (store.finish_delivery) and return `status`, or `cancelled`
        when the delivery was deleted during the attempt (with its alert: _gone)."""
        try:
            self.store.finish_delivery(delivery.id, status, attempts, next_attempt_at, error, now)
        except NotFound:
            return self._gone(delivery)
        return status

    def _gone(self, delivery: DeliveryRecord) -> str:
        """A delivery whose alert was deleted (retention, account deletion) while it was held: it
        ends there, as a cancelled one does."""
        log.info(
            "alert delivery %s ends: its alert %s was deleted (by retention, or with its account)",
            delivery.id,
            delivery.alert_id,
        )
        return "cancelled"


def _decrement(counts: dict[Any, int], key: Any) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
