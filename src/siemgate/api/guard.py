"""The checks every request passes before the app sees it (plain ASGI, outermost but for logging).

- The URL holds no NUL character (`%00`): no store can hold it (model.text).
- Nothing in the request reads two ways (docs/security.md, "Requests read one way"): no
  Authorization, Content-Length or X-CSRF-Token header twice, not both Content-Length and Transfer-Encoding, no
  session cookie twice, no query parameter twice. Readers differ on which of two they take
  (Starlette the first Authorization header but the last cookie or query value, a proxy in front
  perhaps the other), so each is a 400 saying what to send once, never a pick.
- The body is within the limit of its API (docs/security.md, "Bounds and operator settings"):
  refused from its Content-Length before anything is read, authenticated or parsed, else as
  soon as the bytes received pass the limit, so an oversized body is never held in memory.
- For everything but the Events, proof and ingest APIs (the admin API, the console, the rest), the
  body (at most admin_max_body_bytes) is received before the app runs, and a JSON or form body
  holding text no store can hold is a 400 naming the field, and so is a JSON body with a key
  twice in one object (parsers differ on which value they keep: docs/security.md, "Text and
  values"). Events are checked by the writer.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siemgate.api.errors import error_body
from siemgate.auth.sessions import COOKIE, HOST_COOKIE
from siemgate.config import Settings
from siemgate.errors import ClientGone, PayloadTooLarge
from siemgate.model.json_keys import find_repeated_key, may_repeat_keys
from siemgate.model.text import excerpt, excerpt_path, find_unstorable, may_hold_unstorable_json

INGEST_PREFIX = "/api/ingest/"
EVENTS_PREFIXES = ("/api/v1/", "/api/v2/", "/api/auth/", "/api/siemgate/")


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.ingest_limit = settings.ingest_max_body_bytes
        self.events_limit = settings.events_max_body_bytes
        self.other_limit = settings.admin_max_body_bytes

    def limit_for(self, path: str) -> tuple[int, str, bool]:
        """(body limit, its setting, whether the route reads the body itself as it streams)."""
        if path.startswith(INGEST_PREFIX):
            return self.ingest_limit, "ingest_max_body_bytes", True
        if path.startswith(EVENTS_PREFIXES):
            return self.events_limit, "events_max_body_bytes", True
        return self.other_limit, "admin_max_body_bytes", False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await _reply(send, 400, "Bad Request: the URL contains the NUL character (%00), which cannot be stored")
            return
        twice = _read_two_ways(scope)
        if twice is not None:
            await _reply(send, 400, f"Bad Request: {twice}")
            return
        limit, setting, streams = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reply(send, 413, _too_large(limit, setting, declared))
            return
        if streams:
            await self._run(scope, _counting(receive, limit, setting), send)
            return
        try:
            body = await _receive_all(receive, limit)
        except ClientGone as exc:  # a part of the body is never handed to the app
            await _reply(send, exc.status, exc.message)
            return
        if body is None:
            await _reply(send, 413, _too_large(limit, setting))
            return
        problem = _unstorable_field(scope, body) or _repeated_key(scope, body)
        if problem is not None:
            await _reply(send, 400, f"Bad Request: {problem}")
            return
        await self._run(scope, _replay(body, receive), send)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except PayloadTooLarge as exc:  # raised by _counting where no route turned it into a reply
            if started:
                raise
            await _reply(send, 413, f"Payload Too Large: {exc.message}")


def _too_large(limit: int, setting: str, declared: int | None = None) -> str:
    size = f"is {declared} bytes" if declared is not None else "is over the limit"
    return f"Payload Too Large: the body {size}; the limit here is {limit} bytes ({setting})"


ONCE_HEADERS = {b"authorization": "Authorization", b"content-length": "Content-Length", b"x-csrf-token": "X-CSRF-Token"}
SESSION_COOKIES = (COOKIE, HOST_COOKIE)
_DIFFER = "servers and proxies differ on which one they read"


def _read_two_ways(scope: Scope) -> str | None:
    """What in the request's head is sent twice or both ways (a sentence saying what to send), or
    None."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    names = [name for name, _ in headers]
    for name, header in ONCE_HEADERS.items():
        if names.count(name) > 1:
            return f"the {header} header is sent {names.count(name)} times: {_DIFFER}; send it once"
    if b"content-length" in names and b"transfer-encoding" in names:
        return "both Content-Length and Transfer-Encoding are sent: send one of them"
    cookies = [_cookie_name(chunk) for name, value in headers if name == b"cookie" for chunk in value.split(b";")]
    for cookie in SESSION_COOKIES:
        if cookies.count(cookie) > 1:
            return (
                f"the session cookie {cookie} is sent {cookies.count(cookie)} times: {_DIFFER};"
                " remove this site's cookies and sign in again"
            )
    return _repeated_parameter(scope.get("query_string", b""))


def _cookie_name(chunk: bytes) -> str:
    """The name of one `name=value` of a Cookie header, as Starlette reads it."""
    return chunk.partition(b"=")[0].strip().decode("latin-1") if b"=" in chunk else ""


def _repeated_parameter(query: bytes) -> str | None:
    """What says that a query parameter is given twice (as Starlette decodes names), or None."""
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return f"the query parameter {excerpt(name)} is given more than once: send it once"
        seen.add(name)
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _counting(receive: Receive, limit: int, setting: str) -> Receive:
    """`receive` that raises PayloadTooLarge as soon as the body received passes `limit`."""
    size = 0

    async def counting_receive() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise PayloadTooLarge(f"the body is over the limit of {limit} bytes ({setting}): send smaller batches")
        return message

    return counting_receive


async def _receive_all(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` (what was received is dropped);
    raises ClientGone when the client hangs up first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("Client Closed Request: the client closed the connection before sending the whole body")
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that hands out `body` once, then waits on the client (for its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _unstorable_field(scope: Scope, body: bytes) -> str | None:
    """What in a JSON or form body cannot be stored (field and problem), or None."""
    if not body:
        return None
    content_type = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"").lower()
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        return "a form field contains the NUL character (%00), which cannot be stored" if b"%00" in body else None
    if not may_hold_unstorable_json(body):
        return None
    try:
        data: Any = json.loads(body)  # as FastAPI reads it; invalid JSON is left to the route's 400
    except ValueError:
        return None
    found = find_unstorable(data)
    if found is None:
        return None
    field, problem = found
    return f"{excerpt_path(field)}: {problem}" if field else f"the body {problem}"


def _repeated_key(scope: Scope, body: bytes) -> str | None:
    """What says that a JSON body has an object with a key twice, or None (also for a form or a
    body that is not JSON, left to the route)."""
    if body.lstrip()[:1] not in (b"{", b"["):
        return None
    content_type = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"").lower()
    if content_type.startswith((b"application/x-www-form-urlencoded", b"multipart/form-data")):
        return None
    try:
        possible = may_repeat_keys(body, orjson.loads(body))
    except orjson.JSONDecodeError:  # what FastAPI's parser may still read (NaN, a lone surrogate): search
        possible = True
    found = find_repeated_key(body) if possible else None
    if found is None:
        return None
    return (
        f"the key {excerpt(found.key)} appears twice in one object (at {excerpt_path(found.field())}):"
        " JSON parsers differ on which value they keep; send it once"
    )


async def _reply(send: Send, status: int, message: str) -> None:
    """An error reply that also closes the connection (a body left unread is not drained)."""
    body = error_body(message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
