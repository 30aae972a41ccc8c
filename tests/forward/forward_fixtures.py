"""Fixtures of the forwarder tests: a source server with a token, local vendor intakes, rsyslog.

Not a conftest.py: the test folders have no __init__.py, so a second module named `conftest` would
shadow tests/conftest.py for the tests that import from it. Test modules import what they use.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fake_intakes import Intake, build_app
from forward_support import free_port

from siemgate.model.features import ALL_FEATURES

__all__ = ["Source", "intakes", "rsyslog", "source", "tls_intakes"]


@dataclass
class Source:
    live: Any
    token: str
    key: str
    url: str


@pytest.fixture
def source(server: Any, monkeypatch: pytest.MonkeyPatch) -> Source:
    """The real siemgate server, an account, a read token (in $FORWARD_TEST_TOKEN) and an ingest key."""
    account = server.account()
    token = server.token(account, ALL_FEATURES)
    monkeypatch.setenv("FORWARD_TEST_TOKEN", token)
    return Source(server, token, server.ingest_key(account), server.base_url)


class IntakeServer:
    """The fake intakes on 127.0.0.1; `stop()` and `start()` take them down and up on the same port."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        self.intake = Intake()
        self.port = free_port()
        self.tls_dir = tls_dir
        self.url = f"{'https' if tls_dir else 'http'}://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        tls: dict[str, Any] = {}
        if self.tls_dir is not None:
            tls = {
                "ssl_certfile": str(self.tls_dir / "server.pem"),
                "ssl_keyfile": str(self.tls_dir / "server-key.pem"),
            }
        app = build_app(self.intake)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, **tls)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "fake intake did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None


@pytest.fixture
def intakes() -> Iterator[IntakeServer]:
    server = IntakeServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tls_intakes(tmp_path: Path) -> Iterator[IntakeServer]:
    """The fake intakes over HTTPS with a test CA (`tls_dir / "ca.pem"`)."""
    _make_certs(tmp_path)
    server = IntakeServer(tmp_path)
    server.start()
    yield server
    server.stop()


# --- rsyslog (a private rsyslogd) ----------------------------------------------------------------------

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


def _udp_bound(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in list(f)[1:])


def _make_certs(d: Path) -> None:
    subprocess.run(  # noqa: S602 - a fixed script, a fixed rsyslogd set-up
        f"""set -e; cd '{d}'
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca-key.pem -out ca.pem
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server-key.pem -out server.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile ext.cnf -out server.pem
""",
        shell=True,
        check=True,
        capture_output=True,
    )


class Rsyslog:
    def __init__(self, d: Path) -> None:
        self.dir, self.out = d, d / "messages.jsonl"
        self.udp, self.tcp, self.tls = free_port(), free_port(), free_port()
        self.ca = d / "ca.pem"

    def offset(self) -> int:
        return self.out.stat().st_size if self.out.exists() else 0

    def messages(self, since: int = 0) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        with open(self.out, "rb") as f:
            f.seek(since)
            data = f.read()
        data = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in data.decode().splitlines()]


@pytest.fixture(scope="session")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    d = tmp_path_factory.mktemp("rsyslog")
    (d / "work").mkdir()
    _make_certs(d)
    rx = Rsyslog(d)
    conf, err = d / "rsyslog.conf", d / "rsyslogd.stderr"
    conf.write_text(RSYSLOG_CONF.format(d=d, udp=rx.udp, tcp=rx.tcp, tls=rx.tls))
    subprocess.run(["rsyslogd", "-N1", "-f", str(conf)], check=True, capture_output=True)
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(conf), "-i", str(d / "rsyslogd.pid")], stdout=log, stderr=subprocess.STDOUT
        )
    ctx = ssl.create_default_context(cafile=str(rx.ca))

    def ready() -> bool:
        try:
            socket.create_connection(("127.0.0.1", rx.tcp), timeout=0.5).close()
            with socket.create_connection(("127.0.0.1", rx.tls), timeout=0.5) as raw:
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                with contextlib.suppress(OSError):  # rsyslog answers close_notify with a bare EOF
                    s.unwrap()
        except OSError:
            return False
        return _udp_bound(rx.udp)

    try:
        deadline = time.monotonic() + 10
        while not ready():
            assert proc.poll() is None, f"rsyslogd exited: {err.read_text()}"
            assert time.monotonic() < deadline, f"rsyslogd not ready: {err.read_text()}"
            time.sleep(0.05)
        assert "Could not create" not in err.read_text()
        yield rx
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
