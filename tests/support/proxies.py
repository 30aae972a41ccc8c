"""A reverse proxy on 127.0.0.1 in front of a real server, that refuses or rewrites what a test
says: a load balancer shedding load (429/503 with any Retry-After), a proxy answering an HTML 502
while the server restarts, or a buggy source rewriting the cursors of its pages."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import httpx

from .receivers import QuietHandler, serving


@dataclass(frozen=True)
class Answer:
    """A reply the proxy gives itself instead of asking the server."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Seen:
    """One request the proxy received: when (time.monotonic()), the path, and the status answered."""

    at: float
    path: str
    status: int


# plan(path, request body) -> an Answer, or None to pass the request to the server
Plan = Callable[[str, bytes], Answer | None]
# rewrite(path, request body, the server's reply body) -> the body to answer with
Rewrite = Callable[[str, bytes, bytes], bytes]


class Proxy:
    """Passes every request to `upstream` unless `plan` answers it; `rewrite` may change the
    server's 200 replies. `seen` lists every request, in order (thread-safe to read)."""

    def __init__(self, upstream: str) -> None:
        self.plan: Plan = lambda path, body: None
        self.rewrite: Rewrite | None = None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=60)
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                proxy._handle(self, b"")

            def do_POST(self) -> None:
                proxy._handle(self, self.rfile.read(int(self.headers.get("content-length", 0))))

        self._handler = Handler
        self._server: ThreadingHTTPServer | None = serving(Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        """Stop listening: connections are refused, as while a server restarts."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def up(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self._server = serving(self._handler, self.port)

    def refused(self, path_part: str = "") -> list[Seen]:
        """The requests answered with something else than 200 (whose path contains `path_part`)."""
        with self._lock:
            return [s for s in self.seen if s.status != 200 and path_part in s.path]

    def _handle(self, handler: Any, body: bytes) -> None:
        answer = self.plan(handler.path, body)
        if answer is None:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
            reply = self._http.request(handler.command, handler.path, content=body or None, headers=headers)
            content = reply.content
            if reply.status_code == 200 and self.rewrite is not None:
                content = self.rewrite(handler.path, body, content)
            keep = {k: v for k, v in reply.headers.items() if k.lower() in ("content-type", "retry-after", "link")}
            answer = Answer(reply.status_code, keep, content)
        with self._lock:
            self.seen.append(Seen(time.monotonic(), handler.path, answer.status))
        with contextlib.suppress(OSError):  # the client may have hung up
            handler.send_response(answer.status)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.send_header("content-length", str(len(answer.body)))
            handler.end_headers()
            handler.wfile.write(answer.body)

    def close(self) -> None:
        self.down()
        self._http.close()


@contextlib.contextmanager
def proxy_to(upstream: str) -> Iterator[Proxy]:
    """A Proxy in front of `upstream`, closed on exit."""
    proxy = Proxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()


HTML_502 = Answer(
    502,
    {"content-type": "text/html"},
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    b"<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n",
)
