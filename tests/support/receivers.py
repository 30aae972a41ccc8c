"""Real local receivers: an HTTP server recording what it is sent (webhooks, Slack) and a private
rsyslogd (syslog over UDP, TCP and TLS), for the alert actions and the forwarder's syslog sink."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .ports import free_port
from .waiting import wait_for


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """Nothing on stderr for each request."""


def serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """A server on `port` (default a free one) of 127.0.0.1, answering with `handler` in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class HttpReceiver:
    """Records every POST (path, headers, body); answers with the next queued status (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"unavailable")

        self.server = serving(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def misbehaving(answer: Any) -> Any:
    """An HTTP server on 127.0.0.1 whose every POST is answered by `answer(handler)` (the request
    body already read), for peers that answer badly on purpose; yields its URL."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            with contextlib.suppress(OSError):  # the client may stop reading
                answer(self)

    server = serving(Handler)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def trickle(handler: Any) -> None:
    """For `misbehaving`: a reply that never ends: the status line, then one header byte every
    0.1 s until the client hangs up (the write then fails and the handler ends)."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for _ in range(300):
        handler.wfile.write(b"X")
        handler.wfile.flush()
        time.sleep(0.1)


RSYSLOG_CONF = """\
global(workDirectory="{d}/work" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{d}/ca.pem"
       defaultNetstreamDriverCertFile="{d}/server.pem"
       defaultNetstreamDriverKeyFile="{d}/server-key.pem")
module(load="imudp")
module(load="imtcp")
template(name="jsonl" type="list" option.jsonf="on") {{
  property(outname="ts" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")  property(outname="msg" name="msg" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
}}
ruleset(name="capture") {{ action(type="omfile" file="{d}/messages.jsonl" template="jsonl") }}
input(type="imudp" name="udp" address="127.0.0.1" port="{udp}" ruleset="capture")
input(type="imtcp" name="tcp" address="127.0.0.1" port="{tcp}" ruleset="capture")
input(type="imtcp" name="tls" address="127.0.0.1" port="{tls}" ruleset="capture"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      gnutlsPriorityString="NORMAL")
"""


def make_certs(d: Path) -> None:
    """In `d`: a test CA (ca.pem) and a server certificate for 127.0.0.1 and localhost
    (server.pem, server-key.pem)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server-key.pem",
            "-out", "server.csr")  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")  # fmt: skip


def _udp_bound(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in list(f)[1:])


class Rsyslog:
    """A private rsyslogd listening on UDP, TCP and TLS (with the test CA `ca`), writing each message
    it receives as one JSON line; ready once all three listen. `close()` stops it."""

    def __init__(self, d: Path) -> None:
        self.dir, self.out, self.ca = d, d / "messages.jsonl", d / "ca.pem"
        (d / "work").mkdir()
        make_certs(d)
        self.udp, self.tcp, self.tls = free_port(socket.SOCK_DGRAM), free_port(), free_port()
        conf, self.stderr = d / "rsyslog.conf", d / "rsyslogd.stderr"
        conf.write_text(RSYSLOG_CONF.format(d=d, udp=self.udp, tcp=self.tcp, tls=self.tls))
        subprocess.run(["rsyslogd", "-N1", "-f", str(conf)], check=True, capture_output=True)
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                ["rsyslogd", "-n", "-f", str(conf), "-i", str(d / "pid")], stdout=err, stderr=subprocess.STDOUT
            )
        try:
            wait_for("rsyslogd to listen", self._ready)
            assert "Could not create" not in self.stderr.read_text()
        except BaseException:
            self.close()  # never leave the process behind
            raise

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"rsyslogd exited: {self.stderr.read_text()}"
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            socket.create_connection(("127.0.0.1", self.tcp), timeout=0.5).close()
            with (
                socket.create_connection(("127.0.0.1", self.tls), timeout=0.5) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as s,
                contextlib.suppress(OSError),
            ):
                s.unwrap()  # rsyslog answers close_notify with a bare EOF
        except OSError:
            return False
        return _udp_bound(self.udp)

    def offset(self) -> int:
        """Where the messages received from now on start (for `messages(since=...)`)."""
        return self.out.stat().st_size if self.out.exists() else 0

    def messages(self, since: int = 0) -> list[dict[str, Any]]:
        """The messages received (after `since`), complete lines only."""
        if not self.out.exists():
            return []
        with self.out.open("rb") as f:
            f.seek(since)
            data = f.read()
        data = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in data.decode().splitlines()]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
