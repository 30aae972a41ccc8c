"""The error tree. Every error a client or operator can see is one of these; adapters translate
third-party errors into them at the boundary, and `api.errors` maps them to HTTP in one place.

    SiemgateError                     message says what was wrong and how to fix it
    ├── ConfigError                   bad settings or config file (CLI exit code 2)
    ├── BadRequest                    400: malformed body, wrong types, bad values
    │   ├── InvalidCursor             400: forged, truncated, foreign or wrong-stream cursor
    │   └── InvalidEventBatch         400: events failed validation (issues listed)
    ├── Unauthorized                  401: missing, invalid, expired or revoked credential; missing feature
    ├── Forbidden                     403: authenticated but not allowed (role)
    ├── NotFound                      404: no such resource
    ├── Conflict                      409: would violate uniqueness or an invariant
    │   └── RetryLater                409: not available yet (retry_after seconds)
    ├── PayloadTooLarge               413: body or batch over the configured limit
    ├── RateLimited                   429: over the per-token rate limit (retry_after seconds)
    ├── ClientGone                    499: the client hung up before sending its whole request
    ├── StoreError                    500: the store failed (never carries secrets)
    └── Unavailable                   503: a service this needs is down (retry_after seconds)
"""

from __future__ import annotations

from typing import Any


class SiemgateError(Exception):
    """Base class; `message` is safe to show to the caller."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(SiemgateError):
    """Settings or a config file are invalid."""


class BadRequest(SiemgateError):
    status = 400


class InvalidCursor(BadRequest):
    """The cursor cannot be used: it was not issued by this server for this account and stream."""


class InvalidEventBatch(BadRequest):
    """Events failed validation; `details` lists each problem with its index and field path."""

    def __init__(self, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.details = details


class ClientGone(SiemgateError):
    """The client closed the connection before its request was received: nothing was done, and
    nobody reads the answer. 499 (nginx's "client closed request") in the access log and the
    request metrics, so a client that hangs up is not counted as a server error."""

    status = 499


class Unauthorized(SiemgateError):
    status = 401


class Forbidden(SiemgateError):
    status = 403


class NotFound(SiemgateError):
    status = 404


class Conflict(SiemgateError):
    status = 409


class RetryLater(Conflict):
    """What was asked for does not exist yet but will; `retry_after` seconds is when to ask again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(SiemgateError):
    status = 413


class RateLimited(SiemgateError):
    status = 429

    def __init__(self, message: str, retry_after: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = headers or {}


class StoreError(SiemgateError):
    status = 500


class Unavailable(SiemgateError):
    """A service this request needs is down or refuses; `retry_after` seconds is when to try again."""

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
