"""A client for the 1Password Events API, or any server compatible with it (siemgate).

The "build your own client" of the 1Password documentation, done properly:

- the cursor is the only checkpoint: a stream starts with a reset (`start_time`, default now - 1 h)
  and then follows the cursor forever; paging stops on `has_more: false`;
- 429 waits for `Retry-After`; 408, 5xx and network errors back off exponentially with jitter;
- 401 raises SourceUnauthorized (token revoked or expired, or the feature missing) and a 400 on a
  cursor raises CursorRejected: neither is retried, and a stored cursor is never silently reset;
- works with the real hosts (https://events.1password.com, .ca, .eu, events.ent.1password.com;
  taken from the token's audience when no URL is given) and with siemgate over http or https,
  on v1 or v2 of the API.

    from siemgate.client import EventsClient, CheckpointStore

    with EventsClient(token) as client, CheckpointStore("state.db") as checkpoints:
        stream = client.stream("signinattempts", checkpoints)
        for page in stream.pages():         # to the head of the stream, then stops
            deliver(page.items)              # the page's cursor is committed when you ask for the next
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson

from siemgate import __version__
from siemgate.forward.backoff import Backoff, parse_retry_after
from siemgate.forward.checkpoint import CheckpointStore
from siemgate.forward.errors import CursorRejected, SourceError, SourceUnauthorized, Stopped
from siemgate.forward.records import event_key
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import NS_PER_SECOND, TimestampError, format_ns, normalize, now_ns, parse_ns
from siemgate.outbound.http import BoundedClient
from siemgate.store.ingest import json_values

USER_AGENT = f"siemgate-forwarder/{__version__}"
log = logging.getLogger("siemgate.forward")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# A page proof answers 409 with Retry-After until a checkpoint covers the page (docs/integrity.md);
# 503 when no checkpoint can be signed (no signer, or it is down): the page goes without log fields.
PROOF_RETRY_STATUSES = (RETRY_STATUSES | {409}) - {503}
PROOF_PENDING_STATUSES = frozenset({409})  # "not yet": waited for quietly, not a failure
PROOF_ABSENT_STATUSES = frozenset({404, 503})
PROOF_HEADER = "Siemgate-Proof"
LOG_PREFIX = "/api/siemgate/v1/log"
DEFAULT_LOOKBACK_NS = 3600 * NS_PER_SECOND
LEGACY_AUDIENCE = "com.1password.streamingservice"
# A page holds at most 1000 events; siemgate stores at most 64 KiB of each by default, 1Password's
# are about a kilobyte. A reply over this is refused (and retried) rather than held in memory.
MAX_REPLY_BYTES = 128 * 1024 * 1024
# What bounds the memory a reply takes once parsed: its JSON values (store.ingest.json_values), at
# most 1024 per event of a 1000-event page (1Password's events hold about 30); about 100 MB.
MAX_REPLY_VALUES = 1000 * 1024
# The events (uuid and timestamp) a stream remembers to leave out those a source serves again (a
# cursor that repeats or goes back): ten pages of 1000, about 1 MB a stream.
RECENT_UUIDS = 10_000
# The longest a page waits for its proof (409 until a checkpoint covers it: at most the server's
# checkpoint interval, 10 s by default), as `siemgate-verify follow` waits; then it goes without
# log fields, so a server answering 409 for ever, or with a Retry-After of years, holds no stream.
PROOF_WAIT = 120.0

HTML_TITLE = re.compile(r"<title[^>]*>([^<]*)</title>", re.IGNORECASE)

RetryHook = Callable[[str, float], None]  # (reason, delay in seconds)
RecoveredHook = Callable[[str, int], None]  # (what was asked for, retries it took)


@dataclass(frozen=True, slots=True)
class Introspection:
    """What the token may read (`GET /api/v2/auth/introspect`, or the v1 PascalCase variant)."""

    uuid: str
    issued_at: str
    features: tuple[str, ...]
    account_uuid: str | None = None

    def known_features(self) -> tuple[Feature, ...]:
        """The features this client can poll, in the usual order (unknown names are left out)."""
        return tuple(f for f in ALL_FEATURES if f.value in self.features)


@dataclass(slots=True)
class Page:
    """One reply: `items` as received, the `cursor` to send next, and whether more is waiting.

    From a siemgate asked for log fields, `log` holds each item's (log index, hex SHA-256 of its
    stored v2 bytes), in item order (docs/forwarding.md, "Log fields")."""

    feature: Feature
    items: list[Any]
    cursor: str
    has_more: bool
    request_cursor: str | None = None  # the cursor this page was requested with (None for a reset)
    request: dict[str, Any] | None = None  # the body the page was requested with
    provable: bool = False  # the server offered a page proof (a siemgate with a signed log)
    log: list[tuple[int, str]] | None = None
    repeated: int = 0  # items left out: the stream had fetched them lately (EventStream.fetch)


def base_url_from_token(token: str) -> str:
    """https:// + the token's first audience, as 1Password's own clients do.

    Raises SourceError when the token carries no usable audience (give the URL explicitly then).
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise SourceError(
            "the token is not a JWT, so the Events API URL cannot be taken from it; set the url"
        ) from None
    aud = claims.get("aud")
    first = aud[0] if isinstance(aud, list) and aud else aud
    if not isinstance(first, str) or not first or first == LEGACY_AUDIENCE or "." not in first:
        raise SourceError(
            "the token does not name its Events API host (audience); set the url, e.g. https://events.1password.com"
        )
    return first if "://" in first else f"https://{first}"


def _tls(verify: bool | str | Path) -> bool | ssl.SSLContext:
    if isinstance(verify, bool):
        return verify
    return ssl.create_default_context(cafile=str(verify))


class EventsClient:
    """HTTP client for one token. Thread-safe for concurrent page requests (httpx.Client is).

    `url`: base URL (https://events.1password.com, http://127.0.0.1:8080); None takes it from the
    token. `version`: 1 or 2. `verify`: True, False, or a CA bundle path. `max_attempts`: attempts
    per request before giving up on retryable failures (None: keep trying until `stop` is set).
    `backoff` makes the delay sequence of one request (default: 1 s doubling to 30 s, full jitter).
    `stop`: an Event that interrupts every wait (raises Stopped). `on_retry(reason, delay)` is
    called before each wait (for logs and metrics; never sees the token), and
    `on_recovered(what, retries)` when a request that was retried is answered (a refusal too,
    and a page proof given up after PROOF_WAIT).
    """

    def __init__(
        self,
        token: str,
        url: str | None = None,
        *,
        version: int = 2,
        timeout: float = 30.0,
        verify: bool | str | Path = True,
        max_attempts: int | None = None,
        backoff: Callable[[], Backoff] = Backoff,
        stop: threading.Event | None = None,
        on_retry: RetryHook | None = None,
        on_recovered: RecoveredHook | None = None,
        transport: httpx.BaseTransport | None = None,
        log_fields: bool = False,
    ) -> None:
        if version not in (1, 2):
            raise ValueError("version must be 1 or 2")
        if not token:
            raise SourceUnauthorized("no token given: issue an Events API token and pass it in")
        self.base_url = (url or base_url_from_token(token)).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise SourceError(f"the url {self.base_url!r} must start with https:// (or http:// for a local siemgate)")
        self.version = version
        self.log_fields = log_fields
        self.log_unavailable = False  # the last page proof asked for could not be had
        self.max_attempts = max_attempts
        self.backoff_factory = backoff
        self.stop = stop or threading.Event()
        self.on_retry = on_retry
        self.on_recovered = on_recovered
        self._http = BoundedClient(
            total=timeout,
            max_reply=MAX_REPLY_BYTES,
            base_url=self.base_url,
            timeout=timeout,
            verify=_tls(verify),
            transport=transport,
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    def __repr__(self) -> str:  # never show the token
        return f"EventsClient({self.base_url!r}, version={self.version})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EventsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests --------------------------------------------------------------------------------

    def introspect(self) -> Introspection:
        """The token's integration, issue time and features. Raises SourceUnauthorized, SourceError."""
        path = "/api/v2/auth/introspect" if self.version == 2 else "/api/auth/introspect"
        data = self._request("GET", path, None, what="introspect")
        if not isinstance(data, dict):
            raise SourceError(f"introspect returned {type(data).__name__}, not a JSON object")
        if self.version == 2:
            features, uuid, issued = data.get("features"), data.get("uuid"), data.get("issued_at")
        else:
            features, uuid, issued = data.get("Features"), data.get("UUID"), data.get("IssuedAt")
        account = data.get("account_uuid")
        return Introspection(
            str(uuid or ""),
            str(issued or ""),
            tuple(str(f) for f in features) if isinstance(features, list) else (),
            account if isinstance(account, str) else None,
        )

    def reset_page(
        self, feature: Feature | str, *, start_time: str | None = None, end_time: str | None = None, limit: int = 1000
    ) -> Page:
        """The first page of a new stream. Raises SourceError for a refused reset (bad time or limit)."""
        feature = Feature(feature)
        body: dict[str, Any] = {"limit": limit}
        if start_time is not None:
            body["start_time"] = start_time
        if end_time is not None:
            body["end_time"] = end_time
        return self._page(feature, body, None)

    def next_page(self, feature: Feature | str, cursor: str) -> Page:
        """The page after `cursor`. Raises CursorRejected when the server refuses the cursor (400)."""
        return self._page(Feature(feature), {"cursor": cursor}, cursor)

    def _page(self, feature: Feature, body: dict[str, Any], cursor: str | None) -> Page:
        extra = {PROOF_HEADER: "1"} if self.log_fields else {}
        data, headers = self._request_with_headers(
            "POST", f"/api/v{self.version}/{feature.value}", body, what=feature.value, cursor=cursor, extra=extra
        )
        if not isinstance(data, dict):
            raise SourceError(f"{feature.value}: the reply is {type(data).__name__}, not an Events API page")
        items = data.get("items")
        if items is None:
            items = []
        next_cursor = data.get("cursor")
        if not isinstance(items, list) or not isinstance(next_cursor, str) or not next_cursor:
            raise SourceError(f"{feature.value}: the reply is not an Events API page (items, cursor, has_more)")
        provable = self.log_fields and 'rel="proof"' in headers.get("link", "")
        page = Page(feature, items, next_cursor, data.get("has_more") is True, cursor, body, provable)
        if provable and items:
            page.log = self.page_log(page)
        return page

    def page_log(self, page: Page) -> list[tuple[int, str]] | None:
        """(log index, hex body SHA-256) of each item of `page`, from the server's page proof
        (POST /api/siemgate/v1/log/{feature}/page-proof; waits, as its Retry-After says, until a
        checkpoint covers the page). None when the server cannot prove it now (503: no signer, or
        the signer is down; 404). SourceError when the proof does not match the page."""
        what = f"{page.feature.value} page proof"
        data, _ = self._request_with_headers(
            "POST",
            f"{LOG_PREFIX}/{page.feature.value}/page-proof",
            {"request": page.request, "response_cursor": page.cursor},
            what=what,
            retry=PROOF_RETRY_STATUSES,
            absent=PROOF_ABSENT_STATUSES,
            pending=PROOF_PENDING_STATUSES,
            proof=True,
            budget=PROOF_WAIT,
        )
        if data is None:
            if not self.log_unavailable:
                log.warning("%s: the server cannot prove pages now; events go without log fields until it can", what)
            self.log_unavailable = True
            return None
        self.log_unavailable = False
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(page.items):
            raise SourceError(f"{what}: it does not list the {len(page.items)} items of the page")
        out = []
        for item in items:
            idx, digest = (item.get("idx"), item.get("body_sha256")) if isinstance(item, dict) else (None, None)
            try:
                raw = base64.b64decode(digest, validate=True) if isinstance(digest, str) else b""
            except binascii.Error:
                raw = b""
            if isinstance(idx, bool) or not isinstance(idx, int) or len(raw) != 32:
                raise SourceError(f"{what}: an item is not {{idx, ts_ns, body_sha256}}")
            out.append((idx, raw.hex()))
        return out

    def _request(self, method: str, path: str, body: Any, **options: Any) -> Any:
        """The parsed JSON reply (see _request_with_headers)."""
        return self._request_with_headers(method, path, body, **options)[0]

    def _request_with_headers(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        what: str,
        cursor: str | None = None,
        retry: frozenset[int] = RETRY_STATUSES,
        extra: dict[str, str] | None = None,
        absent: frozenset[int] = frozenset(),
        pending: frozenset[int] = frozenset(),
        proof: bool = False,
        budget: float | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """The parsed JSON reply and its headers; retries `retry` statuses and transport errors
        (`pending` ones among them are "not yet", waited for without on_retry, at DEBUG);
        (None, headers) for an `absent` status, or once retries have waited `budget` seconds.
        `proof`: the request asks for a page's proof."""
        backoff = self.backoff_factory()
        started = time.monotonic()
        attempt = retried = 0
        content = None if body is None else orjson.dumps(body)
        headers = ({} if body is None else {"Content-Type": "application/json"}) | (extra or {})
        while True:
            if self.stop.is_set():
                raise Stopped()
            attempt += 1
            retry_after: float | None = None
            response_status: int | None = None  # None for a transport error
            try:
                response = self._http.request(method, path, content=content, headers=headers)
            except httpx.TransportError as exc:
                reason = f"{what}: cannot reach {self.base_url} ({type(exc).__name__}: {exc})"
            else:
                status = response_status = response.status_code
                if status == 200:
                    values = json_values(response.content)
                    try:
                        if values <= MAX_REPLY_VALUES:
                            data = orjson.loads(response.content)
                            self._recovered(what, retried)
                            return data, response.headers
                        reason = (
                            f"{what}: the reply holds about {values} JSON values, more than a page may"
                            f" ({MAX_REPLY_VALUES}); it is not parsed. If the source's events are that large,"
                            " lower the source's limit"
                        )
                    except orjson.JSONDecodeError:
                        reason = f"{what}: the reply is not JSON ({response.headers.get('content-type', '?')})"
                elif status in absent:
                    self._recovered(what, retried)
                    return None, response.headers
                elif status in retry:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    reason = f"{what}: HTTP {status} {_server_message(response)}".rstrip()
                else:
                    self._recovered(what, retried)
                    raise _refusal(status, response, what, cursor, self.base_url, proof)
            if self.max_attempts is not None and attempt >= self.max_attempts:
                raise SourceError(f"{reason}; gave up after {attempt} attempt(s)")
            delay = backoff.next_delay(retry_after)
            if budget is not None:
                remaining = budget - (time.monotonic() - started)
                if remaining <= 0:
                    self._recovered(what, retried)
                    return None, httpx.Headers()
                delay = min(delay, remaining)
            if response_status in pending:
                log.debug("%s; waiting %.1fs", reason, delay)
            else:
                retried += 1
                if self.on_retry is not None:
                    self.on_retry(reason, delay)
            if self.stop.wait(delay):
                raise Stopped()

    def _recovered(self, what: str, retried: int) -> None:
        """Tell on_recovered that a request which was retried has its answer (whatever it is)."""
        if retried and self.on_recovered is not None:
            self.on_recovered(what, retried)

    # --- streams -----------------------------------------------------------------------------------

    def stream(
        self,
        feature: Feature | str,
        checkpoint: CheckpointStore | None = None,
        *,
        name: str | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        limit: int = 1000,
    ) -> EventStream:
        """A stream of `feature`, resuming from `checkpoint` (under the key `name`, default the feature).

        Without a checkpoint the position lives in memory only. `start_time` (RFC 3339) is used for
        the first reset only; a stored cursor always wins.
        """
        feature = Feature(feature)
        return EventStream(self, feature, checkpoint, name or feature.value, start_time, end_time, limit)


def _server_message(response: httpx.Response) -> str:
    """What the server said, for a log line: its error message, or an HTML page's title, on one
    line of at most 200 printable characters (a source must not write lines of its own into the log)."""
    try:
        data = orjson.loads(response.content)
        message = data.get("Error", {}).get("Message") or data.get("message")
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    if not message:
        message = response.text[:4096]
        if "html" in response.headers.get("content-type", "") or message.lstrip()[:1] == "<":
            title = HTML_TITLE.search(message)
            message = title.group(1) if title else "(an HTML page)"
    printable = "".join(c if c.isprintable() else " " for c in str(message))
    return " ".join(printable.split())[:200]


def _refusal(
    status: int, response: httpx.Response, what: str, cursor: str | None, base_url: str, proof: bool = False
) -> Exception:
    said = _server_message(response)
    if status == 401:
        return SourceUnauthorized(
            f"{what}: the Events API at {base_url} refused the token (401 {said}). The token was revoked or has"
            " expired, was issued for another region or server, or does not include this event type; issue a new"
            " token with the features you need"
        )
    if status == 400 and proof:
        return SourceError(
            f"{what}: the server refused to prove the page it served (400 {said}): the page and the server's log"
            " disagree (a proxy between changed it, or the server is broken), so it is not delivered. Tell the"
            " server's operator; the source's log_fields = false forwards without proofs",
            400,
        )
    if status == 400 and cursor is not None:
        return CursorRejected(
            f"{what}: the Events API refused the stored cursor (400 {said}). It is kept as it is: resetting it"
            " silently could skip or repeat events. To start again from a chosen time, run"
            " `siemgate forward reset --config FILE --source NAME --feature FEATURE --start-time TIME`"
        )
    if status == 400:
        return SourceError(f"{what}: the Events API refused the reset request (400 {said}); check start_time and limit")
    if status == 404:
        return SourceError(f"{what}: {base_url} has no such endpoint (404); check the url and the API version", 404)
    return SourceError(f"{what}: the Events API answered HTTP {status} {said}".rstrip(), status)


@dataclass(slots=True)
class _Cursor:
    value: str | None = None
    reset_start: str | None = None


class EventStream:
    """One feature's stream with a durable position. Not thread-safe.

    `fetch()` gets the next page (a reset first, then cursors) without committing anything;
    `commit(page)` makes the page's cursor the durable position. `pages()` and `events()` do both:
    a page is committed when the caller asks for what comes after it, so a crash while handling a
    page re-delivers that page and never skips it.
    """

    def __init__(
        self,
        client: EventsClient,
        feature: Feature,
        checkpoint: CheckpointStore | None,
        name: str,
        start_time: str | None,
        end_time: str | None,
        limit: int,
    ) -> None:
        self.client = client
        self.feature = feature
        self.checkpoint = checkpoint
        self.name = name
        self.end_time = end_time
        self.limit = limit
        try:
            start = normalize(start_time) if start_time else format_ns(now_ns() - DEFAULT_LOOKBACK_NS)
        except TimestampError as exc:
            raise SourceError(f"start_time: {exc}") from None
        self._state = _Cursor()
        self._recent: deque[int] = deque()
        self._recent_set: set[int] = set()
        if checkpoint is not None:
            position = checkpoint.begin(name, start)
            self._state.value = position.cursor
            self._state.reset_start = position.start_time or start
        else:
            self._state.reset_start = start

    @property
    def cursor(self) -> str | None:
        """Where the next fetch continues from (None before the first page)."""
        return self._state.value

    def fetch(self) -> Page:
        """The next page. Raises SourceUnauthorized, CursorRejected, SourceError, Stopped."""
        if self._state.value is None:
            page = self.client.reset_page(
                self.feature, start_time=self._state.reset_start, end_time=self.end_time, limit=self.limit
            )
        else:
            page = self.client.next_page(self.feature, self._state.value)
        self._state.value = page.cursor
        self._leave_out_repeats(page)
        return page

    def _leave_out_repeats(self, page: Page) -> None:
        """Drop from `page` the items this stream fetched lately (the last RECENT_UUIDS), counted in
        `page.repeated`: a source whose cursor repeats or goes back serves them again. An item is
        the same by its uuid and timestamp, as siemgate's store tells duplicates (docs/events.md):
        a uuid stored again with another timestamp is another event, served as such (event_key)."""
        keep = []
        for n, item in enumerate(page.items):
            identity = event_key(item.get("uuid"), item.get("timestamp")) if type(item) is dict else None
            if identity is not None:
                # a hash keyed per process (a source cannot make two events collide): half the memory
                key = hash(identity)
                if key in self._recent_set:
                    continue
                self._recent_set.add(key)
                self._recent.append(key)
                if len(self._recent) > RECENT_UUIDS:
                    self._recent_set.discard(self._recent.popleft())
            keep.append(n)
        if len(keep) < len(page.items):
            page.repeated = len(page.items) - len(keep)
            page.items = [page.items[n] for n in keep]
            if page.log is not None:
                page.log = [page.log[n] for n in keep]

    def commit(self, page: Page) -> None:
        """Make `page`'s cursor the durable position (no-op without a checkpoint store)."""
        if self.checkpoint is not None:
            self.checkpoint.commit([(self.name, page.cursor, len(page.items))])

    def pages(self, *, follow: bool = False, poll_interval: float = 10.0) -> Iterator[Page]:
        """Pages up to the head of the stream (forever with `follow`, waiting `poll_interval` seconds
        between polls at the head). Each page is committed when the next one is requested. A page
        with no (new) events is the head, even if it says has_more.
        """
        while True:
            page = self.fetch()
            if page.items or page.cursor != page.request_cursor:
                yield page
                self.commit(page)
            if page.has_more and page.items:  # a page of nothing (new) is the head, whatever it says
                continue
            if not follow:
                return
            if self.client.stop.wait(poll_interval):
                return

    def events(self, *, follow: bool = False, poll_interval: float = 10.0) -> Iterator[dict[str, Any]]:
        """Each event of `pages()`; a page is committed once all its events were taken."""
        for page in self.pages(follow=follow, poll_interval=poll_interval):
            yield from page.items


def seconds_since(timestamp: object) -> float | None:
    """Seconds between an event's RFC 3339 timestamp and now (None when it cannot be read)."""
    try:
        return (now_ns() - parse_ns(timestamp)) / NS_PER_SECOND
    except TimestampError:
        return None
