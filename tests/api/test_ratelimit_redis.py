"""Rate limits shared through Redis (the machine's; .ci/run starts it): two limiters — as in two
server processes — count one token's requests together; an unreachable Redis is a clear error."""

from __future__ import annotations

import logging

import pytest

from siemgate.auth.ratelimit import RateLimiter
from siemgate.errors import Unavailable
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


def test_an_unreachable_redis_is_unavailable_logged_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    """The reply names no address (whoever signs in would learn it); the log names it, never the
    password."""
    limiter = RateLimiter(5, 100, "redis://:hunter2@127.0.0.1:1/0")
    with caplog.at_level(logging.ERROR, logger="siemgate.limits"), pytest.raises(Unavailable) as caught:
        limiter.hit(new_id())
    assert caught.value.retry_after >= 1 and "127.0.0.1" not in caught.value.message
    assert "Redis at 127.0.0.1:1/0 is not reachable" in caplog.text and "hunter2" not in caplog.text
