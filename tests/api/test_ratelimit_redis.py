"""Rate limits shared through Redis (the machine's; .ci/run starts it): two limiters — as in two
server processes — count one token's requests together; an unreachable Redis is a clear error."""

from __future__ import annotations

import logging

import pytest

from siemgate.auth.ratelimit import RateLimiter, check_redis
from siemgate.errors import ConfigError, Unavailable
from siemgate.model.ids import new_id


def test_two_limiters_on_one_redis_share_each_tokens_budget(redis_url: str) -> None:
    one, two = RateLimiter(5, 100, redis_url), RateLimiter(5, 100, redis_url)
    token = new_id()
    allowed = [(one if n % 2 else two).hit(token).allowed for n in range(7)]
    assert allowed == [True] * 5 + [False] * 2
    refused = one.hit(token)
    assert not refused.allowed and int(refused.headers()["Retry-After"]) >= 1
    assert two.hit(new_id()).allowed  # another token has its own budget


def test_without_redis_each_limiter_counts_alone() -> None:
    one, two = RateLimiter(2, 100), RateLimiter(2, 100)
    token = new_id()
    assert [one.hit(token).allowed for _ in range(3)] == [True, True, False]
    assert two.hit(token).allowed


@pytest.mark.parametrize(
    ("url", "location"),
    [("redis://:hunter2@127.0.0.1:1/0", "127.0.0.1:1/0"), ("redis://127.0.0.1:1/1?password=hunter2", "127.0.0.1:1/1")],
)
def test_an_unreachable_redis_is_unavailable_logged_without_the_password(
    caplog: pytest.LogCaptureFixture, url: str, location: str
) -> None:
    """The reply names no address (whoever signs in would learn it); the log names it, never the
    password, whether before the host or in the query string (redis-py reads `?password=`: that one
    was shown whole, to clients in the 500's body and at start in the error that Redis is down).
    A db of its own for each case: a process logs a Redis location once per outage."""
    limiter = RateLimiter(5, 100, url)
    with caplog.at_level(logging.ERROR, logger="siemgate.limits"), pytest.raises(Unavailable) as caught:
        limiter.hit(new_id())
    assert caught.value.retry_after >= 1 and "127.0.0.1" not in caught.value.message
    assert f"Redis at {location} is not reachable" in caplog.text and "hunter2" not in caplog.text, caplog.text
    with pytest.raises(ConfigError) as refused:
        check_redis(url, timeout=1)
    assert f"Redis at {location} is not reachable" in refused.value.message
    assert "hunter2" not in refused.value.message, refused.value.message
