"""Request ids, one structured log line per request, request metrics, the admin API's
`Cache-Control: no-store`, and headers a dependency leaves for the reply (plain ASGI)."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siemgate.api.metrics import Metrics

log = logging.getLogger("siemgate.access")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or secrets.token_hex(8)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": round(elapsed * 1000, 2),
            }
            log.info("%s %s %s", scope["method"], scope["path"], status, extra=fields)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every reply under `prefix` (the admin API): they hold an
    account's events, members and credentials, which a browser must not keep once the session
    that read them has ended (docs/console.md, "Security")."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message["headers"] = [*headers, (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, send_no_store)


REPLY_HEADERS = "reply_headers"


class ReplyHeadersMiddleware:
    """The headers a dependency put in `request.state.reply_headers` (name -> value) on the reply,
    whatever the route returned: FastAPI copies the headers a dependency sets on its `response`
    only onto replies it builds itself, not onto a Response, a stream or a 204 a route builds. A
    header the reply already has is left as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            extra: dict[str, str] = scope.get("state", {}).get(REPLY_HEADERS, {})
            if message["type"] == "http.response.start" and extra:
                headers = message.get("headers", [])
                have = {name.lower() for name, _ in headers}
                added = [(k.lower().encode(), v.encode()) for k, v in extra.items() if k.lower().encode() not in have]
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if 0 < len(text) <= 64 and text.replace("-", "").isalnum():
                return text
    return None
