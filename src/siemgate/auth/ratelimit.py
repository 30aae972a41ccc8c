"""Rate limits with the `limits` library: per SIEM token on the Events API (default 600/minute
and 30,000/hour), per person on the admin API (default 600/minute and 20,000/hour).

Storage is in memory for one process, or Redis (`redis_url`) so several processes share limits:
each window is one counter per token in Redis, so a token's requests count the same whichever
process answers them. A server checks that Redis answers before it serves (`check_redis`) and
does not start without it; if Redis goes away later, requests fail with a StoreError (500) naming
it, rather than going unlimited.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import limits
from limits import storage, strategies

from siemgate.errors import ConfigError, RateLimited, StoreError


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
        self._redis = redis_location(redis_url)
        self._limiter = strategies.SlidingWindowCounterRateLimiter(limit_storage(redis_url))
        self._windows = (limits.RateLimitItemPerMinute(per_minute), limits.RateLimitItemPerHour(per_hour))
        self._namespace = namespace

    def check(self, key: str, whose: str) -> RateLimitStatus:
        """Count one request for `key`; raises RateLimited (with Retry-After and the RateLimit-*
        headers) naming `whose` requests are over, or StoreError as `hit`."""
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
        Raises StoreError when the shared store (Redis) cannot be reached.
        """
        try:
            return self._hit(key)
        except Exception as exc:
            if self._redis is None:
                raise
            raise StoreError(f"rate limits: Redis at {self._redis} is not reachable ({type(exc).__name__})") from None

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


def limit_storage(redis_url: str | None) -> storage.Storage:
    """Counters shared through Redis when `redis_url` is given, else in this process's memory."""
    if not redis_url:
        return storage.MemoryStorage()
    shared = storage.storage_from_string(redis_url)
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
    """host:port/db of `redis_url` for messages (never its password)."""
    return redis_url.split("@")[-1] if redis_url else None
