"""What the small standard-library HTTP services of the log share (the signer's API,
src/siemgate/tlog/signer_http.py, and the witness, src/siemgate/tlog/witness_http.py): replies
with a length and no caching, a bounded request body, a bounded time per request and a bounded
number of connections, and one log line per request.

A client that goes away before its reply (a reset or closed connection) is logged in one line,
"client ... went away", and never prints a traceback: the server serves the next request as usual.

A request whose body is not read (refused for its size, its missing length, its path or its
credentials) closes the connection after the answer: otherwise the unread body would be parsed
as the next request on it."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_CONNECTIONS = 64  # served at once; more are closed unanswered


class BodyError(ValueError):
    """The request body is missing, too large or has no Content-Length."""


class BoundedServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most `max_connections` connections at once and
    closes the others at once (a flood of idle connections cannot exhaust threads or memory)."""

    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class Handler(BaseHTTPRequestHandler):
    timeout = 10  # seconds each read of the socket may wait
    request_seconds = 15.0  # seconds a whole request may take, however slowly it trickles in
    protocol_version = "HTTP/1.1"
    sys_version = ""
    log: logging.Logger = logging.getLogger("siemgate.tlog")
    _body_read = False

    def log_message(self, format: str, *args: Any) -> None:
        self.log.info("%s %s", self.command, self.path.split("?")[0])

    def handle_one_request(self) -> None:
        """One request, cut off (the socket shut down) when it takes over `request_seconds`; a client
        that goes away (ConnectionError reading the request or writing the reply) ends the connection
        with one log line."""
        self._body_read = False
        self.command, self.path = "", ""  # not those of the connection's previous request
        timer = threading.Timer(self.request_seconds, self._cut_off)
        timer.daemon = True
        timer.start()
        try:
            super().handle_one_request()
        except ConnectionError as exc:  # BrokenPipeError, ConnectionResetError, ConnectionAbortedError
            self.close_connection = True
            request = f"{self.command} {self.path.split('?')[0]}" if self.command else "no request read"
            host, port = self.client_address[:2]
            self.log.warning("client %s:%s went away (%s): %s", host, port, request, type(exc).__name__)
        finally:
            timer.cancel()

    def _cut_off(self) -> None:
        self.log.warning("cut off a request that took over %s s", self.request_seconds)
        self.close_connection = True
        with contextlib.suppress(OSError):  # already closed
            self.connection.shutdown(socket.SHUT_RDWR)

    def _body_unread(self) -> bool:
        """Whether the request came with a body this handler did not read in full."""
        headers = getattr(self, "headers", None)
        if headers is None or self._body_read:
            return False
        return "Transfer-Encoding" in headers or (headers.get("Content-Length") or "0").strip() != "0"

    def send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self._body_unread():
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, value: dict[str, Any]) -> None:
        self.send(status, json.dumps(value).encode(), "application/json")

    def send_text(self, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send(status, text.encode(), content_type)

    def read_body(self, limit: int) -> bytes:
        """The request body; BodyError when it has no Content-Length or is longer than `limit`."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > limit or "Transfer-Encoding" in self.headers:
            raise BodyError(f"a request body needs a Content-Length of at most {limit} bytes")
        body = self.rfile.read(int(length))
        self._body_read = len(body) == int(length)
        return body
