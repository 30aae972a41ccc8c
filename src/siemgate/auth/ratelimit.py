"""Rate limits with the `limits` library: per SIEM token on the Events API (default 600/minute
and 30,000/hour), per person on the admin API (default 600/minute and 20,000/hour).

Storage is in memory for one process, or Redis (`redis_url`) so several processes share limits:
each window is one counter per token in Redis, so a token's requests count the same whichever
process answers them. A server checks that Redis answers before it serves (`check_redis`) and
does not start without it. If Redis goes away later, every request a shared limit counts is
refused with Unavailable (503, Retry-After), rather than going unlimited: the limits fail closed.
The reply does not name Redis's address (an outsider signing in would learn it); the process logs
it, at ERROR, once when Redis stops answering and at WARNING once it answers again, and serves
again by itself (`SharedLimits`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import limits
from limits import storage, strategies

from siemgate.errors import ConfigError, RateLimited, Unavailable

log = logging.getLogger("siemgate.limits")
T = TypeVar("T")
REDIS_RETRY_SECONDS = 5  # the Retry-After of a request refused while Redis does not answer
REDIS_TIMEOUT_SECONDS = 2.0  # the longest a request waits for Redis (its calls take well under 1 ms)


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The tighter of the two windows after this request, for the RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        result = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            result["Retry-After"] = str(max(1, self.reset_seconds))
        return result


class RateLimiter:
    """A per-minute and a per-hour window for each key; `namespace` keeps one API's keys apart
    from another's in a shared Redis."""

    def __init__(self, per_minute: int, per_hour: int, redis_url: str | None = None, namespace: str = "events") -> None:
        self._shared = SharedLimits(redis_url, "rate limits")
        self._limiter = strategies.SlidingWindowCounterRateLimiter(limit_storage(redis_url))
        self._windows = (limits.RateLimitItemPerMinute(per_minute), limits.RateLimitItemPerHour(per_hour))
        self._namespace = namespace

    def check(self, key: str, whose: str) -> RateLimitStatus:
        """Count one request for `key`; raises RateLimited (with Retry-After and the RateLimit-*
        headers) naming `whose` requests are over, or Unavailable as `hit`."""
        status = self.hit(key)
        if not status.allowed:
            raise RateLimited(
                f"Too Many Requests: over {status.limit} requests for {whose}; retry in {status.reset_seconds}s",
                max(1, status.reset_seconds),
                status.headers(),
            )
        return status

    def hit(self, key: str) -> RateLimitStatus:
        """Count one request for `key`; `allowed` is False when a window is exhausted.

        Reports the window that refused the request, else the one with the fewest requests left.
        Raises Unavailable when the shared store (Redis) cannot be reached (`SharedLimits.call`).
        """
        return self._shared.call(lambda: self._hit(key))

    def _hit(self, key: str) -> RateLimitStatus:
        now = time.time()
        blocked: limits.RateLimitItem | None = None
        stats = []
        for window in self._windows:
            if blocked is None and not self._limiter.hit(window, self._namespace, key):
                blocked = window
            stats.append((window, self._limiter.get_window_stats(window, self._namespace, key)))
        if blocked is not None:
            window, current = next(item for item in stats if item[0] is blocked)
        else:
            window, current = min(stats, key=lambda item: item[1].remaining)
        reset = max(0, math.ceil(current.reset_time - now))
        return RateLimitStatus(blocked is None, window.amount, max(0, current.remaining), reset)


class SharedLimits:
    """Calls to the counters of limits shared through Redis (or kept in this process without one).
    `what` names the limits in the log ("sign-in limits")."""

    _down: set[str] = set()  # the Redis locations this process found not answering, for every limiter
    _lock = threading.Lock()

    def __init__(self, redis_url: str | None, what: str) -> None:
        self.redis = redis_location(redis_url)
        self.what = what

    def call(self, job: Callable[[], T]) -> T:
        """`job`'s result. Without Redis its errors pass as they are. With Redis, any error is
        Unavailable (503, Retry-After REDIS_RETRY_SECONDS) that names no address, and is logged
        at ERROR with Redis's address and the error the first time in this process since Redis
        last answered; the first answer after that is logged at WARNING."""
        try:
            result = job()
        except Exception as exc:
            if self.redis is None:
                raise
            self._went_down(exc)
            raise Unavailable(
                f"Service Unavailable: the {self.what} this server shares with the others cannot be counted now;"
                f" try again in {REDIS_RETRY_SECONDS}s",
                REDIS_RETRY_SECONDS,
            ) from None
        if self.redis is not None and self.redis in SharedLimits._down:
            self._came_back()
        return result

    def _went_down(self, exc: Exception) -> None:
        assert self.redis is not None
        with SharedLimits._lock:
            first = self.redis not in SharedLimits._down
            SharedLimits._down.add(self.redis)
        if first:
            log.error(
                "%s: Redis at %s is not reachable (%s: %s); requests they count are refused (503) until it answers",
                self.what,
                self.redis,
                type(exc).__name__,
                exc,
            )

    def _came_back(self) -> None:
        assert self.redis is not None
        with SharedLimits._lock:
            was_down = self.redis in SharedLimits._down
            SharedLimits._down.discard(self.redis)
        if was_down:
            log.warning("%s: Redis at %s answers again; requests are counted and served", self.what, self.redis)


def limit_storage(redis_url: str | None) -> storage.Storage:
    """Counters shared through Redis when `redis_url` is given, else in this process's memory.
    Each Redis call gives up after REDIS_TIMEOUT_SECONDS: without a timeout, a Redis that stopped
    answering (paused, or cut off by a network that drops packets) held every request counted in
    it, and with them the server's threads, for as long as it lasted."""
    if not redis_url:
        return storage.MemoryStorage()
    shared = storage.storage_from_string(
        redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
    assert isinstance(shared, storage.Storage)  # a redis:// URL gives the synchronous storage
    return shared


def check_redis(redis_url: str | None, timeout: float = 5.0) -> None:
    """Make sure the configured Redis answers (a server checks it before it serves); raises
    ConfigError naming it (never its password) and what to do. Nothing to check without one."""
    if not redis_url:
        return
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise ConfigError(
            f"redis_url: Redis at {redis_location(redis_url)} is not reachable ({type(exc).__name__}: {exc})."
            " Start it or fix SIEMGATE_REDIS_URL; without redis_url each process keeps its own limits"
        ) from None


def redis_location(redis_url: str | None) -> str | None:
    """host:port/db of `redis_url` (a Unix socket's `unix://path`) for messages and logs: never its
    user or password, given before the host or in the query (`?password=`, which redis-py reads)."""
    if not redis_url:
        return None
    parts = urlsplit(redis_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{host}{parts.path}" if host else f"{parts.scheme}://{parts.path}"
