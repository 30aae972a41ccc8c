"""Per-account ingest quotas, so that one account's producers cannot take the whole server.

Two operator settings (docs/configuration.md), each 0 for no limit:

- `ingest_quota_per_minute`: events one account may send through the ingest API per minute, a
  sliding window counted in Redis when `redis_url` is set (so every server process shares it),
  else in this process. Every event of an admitted batch counts, stored or duplicate.
- `stored_events_quota`: events one account may hold in the store. The store's count is read at
  most every RECOUNT_SECONDS per account and process and kept up to date with what this process
  stores in between; with several processes an account may pass its quota by what the others
  stored since their last count.

Over either quota a batch is refused whole with RateLimited (429 and Retry-After). The CLI, the
simulator, the mirror sink and archive replay are operator actions and are not counted.
"""

from __future__ import annotations

import math
import threading
import time

import limits
from limits import strategies

from siemgate.auth.ratelimit import SharedLimits, limit_storage
from siemgate.errors import PayloadTooLarge, RateLimited
from siemgate.model.features import ALL_FEATURES
from siemgate.store.base import Account, EventStore

RECOUNT_SECONDS = 60.0


class IngestQuotas:
    def __init__(
        self,
        store: EventStore,
        *,
        per_minute: int,
        max_stored: int,
        redis_url: str | None,
        stored_retry_seconds: float,
    ) -> None:
        """`stored_retry_seconds`: the Retry-After of a refusal for the stored quota (when
        retention next removes events)."""
        self.store = store
        self.per_minute = per_minute
        self.max_stored = max_stored
        self.stored_retry_seconds = max(1, math.ceil(stored_retry_seconds))
        self._shared = SharedLimits(redis_url, "ingest quotas")
        self._window = limits.RateLimitItemPerMinute(max(1, per_minute))
        self._limiter = strategies.SlidingWindowCounterRateLimiter(limit_storage(redis_url)) if per_minute else None
        self._held: dict[int, tuple[int, float]] = {}  # account id -> (events held, when counted)
        self._lock = threading.Lock()

    def admit(self, account: Account, count: int) -> None:
        """Count a batch of `count` events against the account's quotas. Raises RateLimited when
        it would pass one (nothing is counted then), PayloadTooLarge when the batch alone is over
        the per-minute quota, Unavailable (503) when Redis cannot be reached."""
        if self.max_stored:
            held = self._events_held(account.id)
            if held + count > self.max_stored:
                raise RateLimited(
                    f"Too Many Requests: this account holds {held} events and may hold at most {self.max_stored};"
                    " retry when retention has removed old events, or ask the operator to raise"
                    " stored_events_quota",
                    self.stored_retry_seconds,
                )
        if self._limiter is not None:
            self._charge_minute(account, count)

    def stored(self, account: Account, count: int) -> None:
        """Note `count` events this process has just stored for the account."""
        if self.max_stored and count:
            with self._lock:
                held = self._held.get(account.id)
                if held is not None:
                    self._held[account.id] = (held[0] + count, held[1])

    def _charge_minute(self, account: Account, count: int) -> None:
        assert self._limiter is not None
        if count > self.per_minute:
            raise PayloadTooLarge(
                f"the batch has {count} events; an account may send at most {self.per_minute} per minute: split it"
            )
        limiter = self._limiter
        admitted = self._shared.call(lambda: limiter.hit(self._window, "ingest", account.uuid, cost=count))
        if not admitted:
            # The window refills at per_minute / 60 events a second: the batch fits again after about this.
            retry = max(1, math.ceil(count * 60 / self.per_minute))
            raise RateLimited(
                f"Too Many Requests: this account may send {self.per_minute} events per minute through the"
                f" ingest API and has sent them; retry in {retry}s",
                retry,
            )

    def _events_held(self, account_id: int) -> int:
        now = time.monotonic()
        with self._lock:
            held = self._held.get(account_id)
        if held is not None and now - held[1] < RECOUNT_SECONDS:
            return held[0]
        total = sum(self.store.count_events(account_id, feature) for feature in ALL_FEATURES)
        with self._lock:
            self._held[account_id] = (total, now)
            if len(self._held) > 100_000:
                self._held.clear()
        return total
