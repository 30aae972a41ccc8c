"""Errors of the forwarder and the Events API client, rooted in the siemgate error tree.

SiemgateError
├── ConfigError
│   └── ForwardConfigError        the forward.toml is invalid (names the key and the fix)
├── BadRequest
│   └── InvalidCursor
│       └── CursorRejected        the Events API refused a stored cursor (400): never reset silently
├── Unauthorized
│   └── SourceUnauthorized        the Events API refused the token (401): revoked, expired, or feature missing
└── ForwardError                  anything else that stops a stream or a sink
    ├── SourceError               the Events API failed in a way retrying cannot fix (4xx other than 401/429)
    ├── Stopped                   a stop was requested while waiting (shutdown; nothing is lost)
    └── SinkError                 raised by Sink.send; the delivery loop classifies it
        ├── SinkRetryable         try the same batch again after a backoff (429, 5xx, timeouts, network)
        │   └── SinkAuthError     401/403: retried with backoff, an ERROR once per outage (fix the credential)
        ├── SinkPoison            the destination refused the data: split the batch, dead-letter the bad event
        └── SinkPartial           some records were accepted, others must be retried or are poison
"""

from __future__ import annotations

from siemgate.errors import ConfigError, InvalidCursor, SiemgateError, Unauthorized


class ForwardConfigError(ConfigError):
    """The forwarder configuration is invalid; the message names the key and how to fix it."""


class CursorRejected(InvalidCursor):
    """The Events API answered 400 to a stored cursor. The stream stops; the checkpoint is kept."""


class SourceUnauthorized(Unauthorized):
    """The Events API answered 401: the token is revoked, expired, or lacks the feature."""


class ForwardError(SiemgateError):
    """A forwarder failure that is not a configuration or credential problem."""


class SourceError(ForwardError):
    """The Events API answered with an error that retrying will not fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = status


class Stopped(ForwardError):
    """A stop was requested (SIGTERM, Ctrl-C) while waiting; nothing unacknowledged was committed."""

    def __init__(self, message: str = "stopped") -> None:
        super().__init__(message)


class SinkError(ForwardError):
    """Raised by a sink's send(); `http_status` is the destination's HTTP status (or None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = status


class SinkRetryable(SinkError):
    """Send the same batch again later; `retry_after` (seconds) is the destination's hint, if any."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class SinkAuthError(SinkRetryable):
    """The destination refused the credential (401/403). Retried, since the data is fine."""


class SinkPoison(SinkError):
    """The destination refused the batch's data. A batch of one is dead-lettered; larger ones are split."""


class SinkPartial(SinkError):
    """Per-record outcome of a batch (Elasticsearch items, Splunk's invalid-event-number).

    `retry` are the batch indexes to send again, `poison` maps batch indexes to the reason they were
    refused; every other index was accepted. `credential` when the ones to retry were refused for
    the credential (reported as SinkAuthError is).
    """

    def __init__(
        self,
        message: str,
        retry: list[int],
        poison: dict[int, str],
        status: int | None = None,
        retry_after: float | None = None,
        *,
        credential: bool = False,
    ) -> None:
        super().__init__(message, status)
        self.retry = retry
        self.poison = poison
        self.retry_after = retry_after
        self.credential = credential
