"""What every action has in common: the error it raises and how an alert is put into words."""

from __future__ import annotations

import math
import re
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from siemgate.outbound import MAX_REDIRECTS, OutboundPolicy, OutboundRefused
from siemgate.store.base import DeliveryRecord


class DeliveryError(Exception):
    """An action failed. `retryable`: a later attempt may succeed (network, 5xx, 429, SMTP 4xx);
    `retry_after`: seconds the receiver asked to wait, if it said."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class Sender(Protocol):
    def __call__(self, alert: dict[str, Any], action: dict[str, Any], delivery: DeliveryRecord) -> None:
        """Carry out `action` for `alert` (the alert payload); raise DeliveryError on failure."""


# Line breaks (CR, LF and every other character str.splitlines splits on) and other control characters.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` on one line: each run of line breaks and control characters becomes one space, so a
    rule name cannot start a header of its own (an email's Subject)."""
    return _BREAKS.sub(" ", text)


def title(alert: dict[str, Any]) -> str:
    return f"[siemgate] {alert['rule']['severity']}: {alert['rule']['name']}"


def text(alert: dict[str, Any]) -> str:
    """A plain-text description of the alert (email body), each line one line: text from events
    (the summary, the group, event uuids) or the rule cannot add lines that pass for siemgate's."""
    lines = [
        alert["summary"],
        "",
        f"Rule: {alert['rule']['name']} ({alert['rule']['id']}), severity {alert['rule']['severity']}",
        f"Account: {alert['account']['name']} ({alert['account']['uuid']})",
        f"Fired at: {alert['fired_at']} (event time {alert['event_time']})",
        f"Source: {alert['source']}; events: {alert['count']}",
    ]
    if alert.get("group"):
        lines.append("Group: " + ", ".join(f"{k}={v}" for k, v in alert["group"].items()))
    lines.append(f"Alert id: {alert['id']}")
    refs = alert.get("events", [])
    if refs:
        lines += ["", "Events:"] + [f"  {r['timestamp']}  {r['uuid']}" for r in refs[:20]]
    return "".join(one_line(line) + "\n" for line in lines)


def http_failure(status: int, retry_after: str | None) -> DeliveryError:
    """Classify an HTTP reply that is not 2xx: 408, 425, 429 and 5xx may pass later; other 4xx not.
    `retry_after` counts when it is a finite number of seconds (a destination sets it).
    The message is the status alone: what a destination replies is never shown to the account."""
    retryable = status >= 500 or status in (408, 425, 429)
    wait: float | None = None
    if retry_after is not None:
        try:
            wait = float(retry_after)
        except ValueError:
            wait = None
    if wait is not None and not math.isfinite(wait):  # "inf", "nan", "1e999": not a time
        wait = None
    return DeliveryError(f"HTTP {status}", retryable=retryable, retry_after=None if wait is None else max(0.0, wait))


MAX_REPLY_BYTES = 1024 * 1024  # what one connection to a destination may send: headers, redirects


def url_origin(url: str) -> str:
    """`url` without what may be a secret: scheme, host and port, then "/…" if it had more."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: not shown
        port = ""
    origin = f"{parts.scheme}://{f'[{host}]' if ':' in host else host}{port}"
    return origin + ("/…" if parts.path not in ("", "/") or parts.query or parts.username else "")


def post(policy: OutboundPolicy, url: str, timeout: float, what: str, **kwargs: Any) -> None:
    """POST to a destination a tenant set, through the outbound policy, all of it (redirects
    included) within `timeout` seconds; the reply's body is never read (only its status counts, and
    a destination could send without end), and no connection reads more than MAX_REPLY_BYTES (httpx
    reads a redirect's body). Raises DeliveryError (refused destinations and redirect loops are
    permanent; network errors and timeouts may pass)."""
    import httpx  # loads with the first delivery, not with the services (start-up time)

    from siemgate.outbound.http import guarded_http_client

    try:
        deadline = time.monotonic() + timeout
        with (
            guarded_http_client(policy, timeout, deadline=deadline, max_read=MAX_REPLY_BYTES) as client,
            client.stream("POST", url, **kwargs) as response,  # closed with its body unread
        ):
            status, retry_after = response.status_code, response.headers.get("retry-after")
    except OutboundRefused as exc:
        raise DeliveryError(exc.message, retryable=False) from None
    except httpx.InvalidURL as exc:  # a rule saved before URLs were parsed when saved
        raise DeliveryError(f"{what} is not a valid URL: {exc}", retryable=False) from None
    except httpx.TooManyRedirects:
        raise DeliveryError(f"{what} redirected more than {MAX_REDIRECTS} times", retryable=False) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"cannot reach {what}: {exc or type(exc).__name__}") from None
    if not 200 <= status < 300:
        raise http_failure(status, retry_after)
