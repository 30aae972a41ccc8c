"""Carrying out alert actions: the deliveries evaluation committed (an outbox) are claimed,
sent, and recorded as delivered, to be retried, or failed.

A failed attempt that may pass later (network errors, HTTP 5xx/408/429, SMTP 4xx) is retried
after `retry` seconds, doubling per attempt up to an hour (longer when the receiver's
Retry-After says so), until `max_attempts`; then, or at once for a permanent failure (HTTP 4xx,
SMTP 5xx, bad configuration), the delivery is `failed` and stays visible with its last error
(admin API, `siemgate alerts deliveries`) until retried by hand. Claims are leased, so several
server processes never send one delivery twice at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import orjson

from siemgate.alerts.actions.base import DeliveryError, Sender
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.store.base import DeliveryRecord, Store

log = logging.getLogger("siemgate.alerts")
LEASE_NS = 5 * 60 * NS_PER_SECOND
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
    ) -> None:
        self.store = store
        self.senders = senders
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_ns = int(retry_seconds * NS_PER_SECOND)

    def backoff(self, attempts: int, retry_after: float | None) -> int:
        """Delay before the next attempt after `attempts` failed ones."""
        delay = min(self.retry_ns << (attempts - 1), MAX_DELAY_NS)
        if retry_after is not None:
            delay = max(delay, min(int(retry_after * NS_PER_SECOND), MAX_DELAY_NS))
        return delay

    def run_due(self, limit: int = 100) -> int:
        """Carry out the deliveries due now; returns how many were attempted."""
        now = self.clock()
        claimed = self.store.claim_deliveries(now, now + LEASE_NS, limit)
        for delivery in claimed:
            self.deliver(delivery)
        return len(claimed)

    def deliver(self, delivery: DeliveryRecord) -> str:
        """One attempt; records and returns the new status."""
        attempts = delivery.attempts + 1
        try:
            alert = orjson.loads(self.store.get_alert(delivery.alert_id).payload)
            action = orjson.loads(delivery.action)
            sender = self.senders.get(delivery.kind)
            if sender is None:
                raise DeliveryError(f"unknown action type {delivery.kind!r}", retryable=False)
            sender(alert, action, delivery)
        except DeliveryError as exc:
            return self._failed(delivery, attempts, exc.message, exc.retryable, exc.retry_after)
        except Exception as exc:  # a bug or an unexpected library error: keep it visible and retry
            log.exception("alert action %s of alert %s raised", delivery.kind, delivery.alert_id)
            return self._failed(delivery, attempts, f"unexpected error: {exc!r}", True, None)
        self.store.finish_delivery(delivery.id, "delivered", attempts, None, "", self.clock())
        return "delivered"

    def _failed(
        self, delivery: DeliveryRecord, attempts: int, message: str, retryable: bool, retry_after: float | None
    ) -> str:
        now = self.clock()
        if retryable and attempts < self.max_attempts:
            when = now + self.backoff(attempts, retry_after)
            self.store.finish_delivery(delivery.id, "pending", attempts, when, message, now)
            log.warning("alert action %s failed (attempt %d), will retry: %s", delivery.kind, attempts, message)
            return "pending"
        self.store.finish_delivery(delivery.id, "failed", attempts, None, message, now)
        log.error("alert action %s failed for good after %d attempt(s): %s", delivery.kind, attempts, message)
        return "failed"
