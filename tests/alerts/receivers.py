"""Real local receivers for alert actions: an HTTP server (webhooks, Slack), aiosmtpd (email) and a
private rsyslogd (syslog over UDP, TCP and TLS), run as the forwarder's tests run it
(tests/forward/forward_fixtures.py)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll until check() returns something truthy (no fixed sleeps); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class HttpReceiver:
    """Records every POST (path, headers, body); answers with the next queued status (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"unavailable")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


RSYSLOG_CONF = """\
global(workDirectory="{d}/work" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{d}/ca.pem"
       defaultNetstreamDriverCertFile="{d}/server.pem"
       defaultNetstreamDriverKeyFile="{d}/server-key.pem")
module(load="imudp")
module(load="imtcp")
template(name="jsonl" type="list" option.jsonf="on") {{
  property(outname="app" name="app-name" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
}}
ruleset(name="capture") {{ action(type="omfile" file="{d}/messages.jsonl" template="jsonl") }}
input(type="imudp" name="udp" address="127.0.0.1" port="{udp}" ruleset="capture")
input(type="imtcp" name="tcp" address="127.0.0.1" port="{tcp}" ruleset="capture")
input(type="imtcp" name="tls" address="127.0.0.1" port="{tls}" ruleset="capture"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      gnutlsPriorityString="NORMAL")
"""


def _certs(d: Path) -> None:
    """A test CA and a server certificate for 127.0.0.1 and localhost."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server-key.pem",
        "-out",
        "server.csr",
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")  # fmt: skip


def _udp_bound(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in list(f)[1:])


class Rsyslog:
    """A private rsyslogd writing each message it receives as one JSON line."""

    def __init__(self, d: Path) -> None:
        if shutil.which("rsyslogd") is None:
            raise RuntimeError("rsyslogd is not installed: apt-get install rsyslog (.ci/run does)")
        self.dir = d
        (d / "work").mkdir()
        _certs(d)
        self.udp, self.tcp, self.tls = free_port(socket.SOCK_DGRAM), free_port(), free_port()
        conf = d / "rsyslog.conf"
        conf.write_text(RSYSLOG_CONF.format(d=d, udp=self.udp, tcp=self.tcp, tls=self.tls))
        self.err = open(d / "stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(conf), "-i", str(d / "pid")], stdout=self.err, stderr=subprocess.STDOUT
        )
        context = ssl.create_default_context(cafile=str(d / "ca.pem"))

        def ready() -> bool:
            assert self.proc.poll() is None, (d / "stderr").read_text()
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

        try:
            wait_for(ready, "rsyslogd to listen")
        except BaseException:
            self.close()  # never leave the process behind
            raise

    def messages(self) -> list[dict[str, Any]]:
        path = self.dir / "messages.jsonl"
        if not path.exists():
            return []
        data = path.read_bytes()
        data = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in data.decode().splitlines()]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
