"""The witness's HTTP API (c2sp.org/tlog-witness), served by `siemgate witness serve`. Standard
library only. No authentication: the spec's only check is the log's signature on the checkpoint.

    POST /add-checkpoint           old size, proof lines, blank line, checkpoint (text)
                                   200 cosignature line(s); 409 text/x.tlog.size with the size the
                                   witness last cosigned; 400, 403, 404, 422 text/plain reason
    GET  /<sha256 hex of origin>/checkpoint   200 the latest cosigned checkpoint, 404 none
    GET  /health                   200 {"status": "ok"}
"""

from __future__ import annotations

import logging
import re
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from siemgate.tlog.httpd import BodyError, BoundedServer, Handler
from siemgate.tlog.witness import Witness, WitnessRefused

MAX_BODY = 64 * 1024
SIZE_TYPE = "text/x.tlog.size"
_MONITOR = re.compile(r"/([0-9a-f]{64})/checkpoint")
log = logging.getLogger("siemgate.witness")


class _Server(BoundedServer):
    witness: Witness


class _Handler(Handler):
    server: _Server
    server_version = "siemgate-witness"
    log = log

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self.send_json(200, {"status": "ok"})
            return
        match = _MONITOR.fullmatch(path)
        note = self.server.witness.latest_by_hash(match.group(1)) if match else None
        if note is None:
            self.send_text("not found: this witness cosigned no checkpoint of that origin\n", 404)
        else:
            self.send_text(note)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/add-checkpoint":
            self.send_text("not found: the witness takes POST /add-checkpoint\n", 404)
            return
        try:
            body = self.read_body(MAX_BODY)
        except BodyError as exc:
            self.send_text(f"{exc}\n", 400)
            return
        try:
            line = self.server.witness.add_checkpoint(body)
        except WitnessRefused as exc:
            if exc.status == 409:
                self.send_text(f"{exc.size}\n", 409, SIZE_TYPE)
            else:
                self.send_text(f"{exc.message}\n", exc.status)
            log.warning("refused a checkpoint (%d): %s", exc.status, exc.message)
            return
        self.send_text(line)


def make_server(witness: Witness, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for `witness` (any address: a witness runs on another host than the log)."""
    server = _Server((host, port), _Handler)
    server.witness = witness
    return server
