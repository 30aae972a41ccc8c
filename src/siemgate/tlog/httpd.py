"""What the small standard-library HTTP services of the log share (the signer's API,
src/siemgate/tlog/signer_http.py, and the witness, src/siemgate/tlog/witness_http.py): replies
with a length and no caching, a bounded request body, and one log line per request."""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import Any


class BodyError(ValueError):
    """The request body is missing, too large or has no Content-Length."""


class Handler(BaseHTTPRequestHandler):
    timeout = 10
    protocol_version = "HTTP/1.1"
    sys_version = ""
    log: logging.Logger = logging.getLogger("siemgate.tlog")

    def log_message(self, format: str, *args: Any) -> None:
        self.log.info("%s %s", self.command, self.path.split("?")[0])

    def send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, value: dict[str, Any]) -> None:
        self.send(status, json.dumps(value).encode(), "application/json")

    def send_text(self, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send(status, text.encode(), content_type)

    def read_body(self, limit: int) -> bytes:
        """The request body; BodyError when it has no Content-Length or is longer than `limit`."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > limit:
            raise BodyError(f"a request body needs a Content-Length of at most {limit} bytes")
        return self.rfile.read(int(length))
