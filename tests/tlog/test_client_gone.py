"""A client of the signer's or the witness's HTTP server (src/siemgate/tlog/httpd.py) that goes
away before its reply: one log line, no traceback, and the server goes on serving. Before, the
handler's BrokenPipeError or ConnectionResetError reached socketserver, which printed "Exception
occurred during processing of request" and a traceback to stderr (seen once in the suite's output).

The client resets its connection (SO_LINGER 0) while the handler is held by a hook before its
reply, so the reply is always written to a reset connection: no timing involved."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support.procs import _code_path

from .test_witness import _setup
from .tlog_kit import witness_process

SCRIPT = """
import sys
from siemgate.cli.listen import serve_until_stopped
from siemgate.tlog.httpd import BoundedServer, Handler

class Held(Handler):
    def do_GET(self):
        if self.path == "/held":
            print("held", flush=True)
            sys.stdin.readline()  # the test resets the connection, then lets the reply go
        self.send_text("ok\\n")

server = BoundedServer(("127.0.0.1", 0), Held)
print(server.server_address[1], flush=True)
serve_until_stopped(server, "serving", lambda: None)
"""


def _reset(sock: socket.socket) -> None:
    """Close `sock` with a TCP reset (SO_LINGER 0) rather than an orderly close."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _gone_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "went away" in line]


def _told(lines: str) -> bool:
    """Whether `lines` of the server's output say what became of the connection (the line the
    server logs for it, or, before, the traceback socketserver prints)."""
    return any(word in lines for word in ("went away", "Traceback", "Exception occurred"))


def test_a_client_that_resets_before_its_reply_is_one_log_line() -> None:
    env = {**os.environ, "PYTHONPATH": _code_path()}  # this checkout's code
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline())
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client_port = client.getsockname()[1]
        client.sendall(b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        said = ""
        while said != "held":  # the banner comes first
            line = proc.stdout.readline()
            assert line, "the server ended before its handler was held"
            said = line.strip()
        _reset(client)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stderr is not None
        err = ""
        while not _told(err):  # the handler's thread has dealt with the reset connection
            line = proc.stderr.readline()
            assert line, err
            err += line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.read() == b"ok\n"
        proc.terminate()
        err += proc.communicate(timeout=15)[1]
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert "Traceback" not in err and "Exception occurred" not in err, err
    gone = _gone_lines(err)
    assert len(gone) == 1, err
    assert f"client 127.0.0.1:{client_port} went away (GET /held)" in gone[0], gone


def test_the_witness_goes_on_after_a_client_resets_mid_body(tmp_path: Path) -> None:
    """The real `siemgate witness serve`: a submission whose body never arrives in full, reset by
    its client, is one line in the witness's output; the witness answers the next request."""
    _, log_pub, _, _ = _setup(tmp_path)
    with witness_process(tmp_path / "witness.key", tmp_path / "witness.state", log_pub) as url:
        port = int(url.rsplit(":", 1)[1])
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nold 0\n")
        _reset(client)
        output_file = tmp_path / "witness.log"
        deadline = time.monotonic() + 10
        while not _told(output_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the witness's output until its thread has dealt with the reset
        with urllib.request.urlopen(f"{url}/health", timeout=10) as reply:
            assert reply.status == 200
    output = output_file.read_text()
    assert "Traceback" not in output, output
    gone = _gone_lines(output)
    assert len(gone) == 1 and "(POST /add-checkpoint)" in gone[0], output
