"""`siemgate signer serve` as a real process: the loopback HTTP API, its secrets, and its refusals."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.request
from pathlib import Path

import pytest

from siemgate.tlog.checkpoint import open_checkpoint, open_recovery
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.signer import SignerRefused, StaleBase
from siemgate.tlog.signer_client import MAX_ANSWER_BYTES, SignerClient, SignerUnavailable
from support.ports import free_port
from support.receivers import QuietHandler, serving

from .tlog_kit import ORIGIN, MemLog, make_kit, run_cli, signer_process


def _secret(path: Path) -> str:
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def test_sign_conflict_refusal_recovery_over_http(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    sign_secret, recover_secret = _secret(tmp_path / "s"), _secret(tmp_path / "r")
    log = MemLog()
    with signer_process(kit, tmp_path / "s", tmp_path / "r") as url:
        client = SignerClient(url, sign_secret)
        public = PublicKeyring.parse(client.keys())
        log.append(6)
        note = client.sign(ORIGIN, log.size, log.root(), 0, [])
        assert open_checkpoint(note, public).checkpoint.size == 6
        assert client.checkpoint(ORIGIN) == note
        assert client.checkpoint(ORIGIN + "x") is None
        log.append(3)
        with pytest.raises(StaleBase) as conflict:  # the server believes nothing was signed yet
            client.sign(ORIGIN, log.size, log.root(), 0, [])
        assert conflict.value.size == 6
        client.sign(ORIGIN, log.size, log.root(), 6, log.proof(6, 9))
        with pytest.raises(SignerRefused, match="not an extension") as refused:
            client.sign(ORIGIN, 10, bytes(32), 9, log.proof(6, 9)[:1])
        assert refused.value.status == 422
        with pytest.raises(SignerRefused) as foreign:
            client.sign("elsewhere.example/siemgate/A/auditevents", 1, bytes(32), 0, [])
        assert foreign.value.status == 403
        with pytest.raises(SignerRefused, match="starts a new log only for an origin") as variant:
            client.sign(ORIGIN + "/2", 1, log.root(1), 0, [])  # a second history of the stream
        assert variant.value.status == 403
        with pytest.raises(SignerRefused) as wrong:
            SignerClient(url, "x" * 40).sign(ORIGIN, 9, log.root(), 9, [])
        assert wrong.value.status == 401
        # Recovery needs the recovery secret; the signing secret is not enough.
        with pytest.raises(SignerRefused) as no_recovery:
            client.recover(ORIGIN, 5, log.root(5), "restore")
        assert no_recovery.value.status == 401
        assert "wrong recovery secret" in str(no_recovery.value), no_recovery.value
        rec, cp = SignerClient(url, recover_secret).recover(ORIGIN, 5, log.root(5), "restored backup")
        assert open_recovery(rec, public).recovery.previous_size == 9
        assert open_checkpoint(cp, public).checkpoint.size == 5
        # Bad bodies are 400 with a message, never a crash.
        request = urllib.request.Request(
            url + "/v1/sign",
            data=b"[1]",
            method="POST",
            headers={"Authorization": f"Bearer {sign_secret}", "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(request, timeout=10)
        assert bad.value.code == 400 and "JSON object" in json.loads(bad.value.read())["error"]
    with pytest.raises(SignerUnavailable, match="unreachable"):
        client.sign(ORIGIN, log.size, log.root(), 5, [])
    output = (tmp_path / "signer.log").read_text()  # each new log is in the signer's output, once
    assert output.count("started a new log") == 1, output
    assert f"started a new log: signed the first checkpoint of {ORIGIN}, at size 6" in output, output


def test_signer_state_survives_restarts(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    secret = _secret(tmp_path / "s")
    log = MemLog()
    log.append(4)
    with signer_process(kit, tmp_path / "s") as url:
        SignerClient(url, secret).sign(ORIGIN, 4, log.root(), 0, [])
    with signer_process(kit, tmp_path / "s") as url:
        with pytest.raises(StaleBase) as conflict:
            SignerClient(url, secret).sign(ORIGIN, 4, log.root(), 0, [])
        assert conflict.value.size == 4
        with pytest.raises(SignerRefused) as no_recover:  # no recovery secret configured: no recovery
            SignerClient(url, secret).recover(ORIGIN, 2, log.root(2), "x")
        assert no_recover.value.status == 401
        # ... and says so, naming the option: "missing or wrong bearer secret" sent the operator
        # checking a secret that was right
        assert "no recovery secret" in str(no_recover.value) and "--recovery-secret-file" in str(no_recover.value)


def test_serve_refuses_non_loopback_short_secret_and_open_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = make_kit(tmp_path)
    kit.signer.close()
    _secret(tmp_path / "s")
    (tmp_path / "short").write_text("tooshort")
    base = ["serve", "--key-file", str(kit.key_file), "--state-file", str(kit.state_file)]
    cases = [
        (["--secret-file", str(tmp_path / "s"), "--listen", f"0.0.0.0:{free_port()}"], "loopback"),
        (["--secret-file", str(tmp_path / "short"), "--listen", f"127.0.0.1:{free_port()}"], "at least 32"),
        (["--secret-file", str(tmp_path / "missing"), "--listen", f"127.0.0.1:{free_port()}"], "cannot read"),
        (["--secret-file", str(tmp_path / "s"), "--listen", "nonsense"], "host:port"),
    ]
    for extra, message in cases:
        assert message in run_cli(capsys, "signer", *base, *extra, ok=False)[1]
    kit.key_file.chmod(0o640)
    assert "chmod 600" in run_cli(capsys, "signer", *base, *cases[0][0], ok=False)[1]


def test_cli_init_keys_rotate_retire_recover(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = str(tmp_path / "k")
    out, _ = run_cli(
        capsys, "signer", "init", "--key-file", keys, "--name", "ex.test/siemgate", "--secret-file", str(tmp_path / "s")
    )
    assert "SHA256:" in out and "ex.test/siemgate+" in out
    assert (tmp_path / "s").stat().st_mode & 0o777 == 0o600
    assert (
        "already exists"
        in run_cli(capsys, "signer", "init", "--key-file", keys, "--name", "ex.test/siemgate", ok=False)[1]
    )
    run_cli(capsys, "signer", "rotate", "--key-file", keys)
    first = out.split("key ")[1].split()[0]
    listed, _ = run_cli(capsys, "signer", "retire", first, "--key-file", keys)
    assert f"key {first}" in listed and "retired" in listed
    run_cli(capsys, "signer", "keys", "--key-file", keys, "--out", str(tmp_path / "pub"))
    assert len(PublicKeyring.load(tmp_path / "pub").keys) == 2
    state = str(tmp_path / "state")
    (tmp_path / "state").touch(0o600)  # an empty state, as `signer init --state-file` makes
    origin = "ex.test/siemgate/A/x"
    assert (
        "never signed"
        in run_cli(capsys, "signer", "state", "--origin", origin, "--key-file", keys, "--state-file", state, ok=False)[
            1
        ]
    )
    root = base64.b64encode(bytes(32)).decode()
    files = ["--key-file", keys, "--state-file", state, "--reason", "r", "--origin", origin, "--size", "1"]
    assert "nothing to recover" in run_cli(capsys, "signer", "recover", *files, "--root", root, ok=False)[1]
    assert "base64" in run_cli(capsys, "signer", "recover", *files, "--root", "!!", ok=False)[1]


class _Hostile(QuietHandler):
    """A signer URL that answers what no signer does: per path, too much, no HTTP at all, bytes that
    are not UTF-8, a conflict without JSON, a recovery without its notes, fewer bytes than announced."""

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        if path == "/v1/keys":  # more than any key file
            self._send(200, b"k" * (2 << 20))
        elif path == "/v1/checkpoint":  # not UTF-8
            self._send(200, b"\xff\xfe origin\n")
        elif path == "/v1/sign":  # a conflict without the size
            self._send(409, b"<html>stale</html>")
        elif path == "/v1/recover":
            self._send(200, b'{"recovery": "r"}')
        elif path == "/v1/health":  # broken off
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"ok")
        else:
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")

    do_GET = do_POST = _answer

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_signer_answer_out_of_its_api_is_unavailable_not_a_crash() -> None:
    """Whatever the signer URL answers, the client reads at most MAX_ANSWER_BYTES of it and raises
    SignerUnavailable naming what was wrong (the integration loop catches that and goes on), never
    an HTTP parser's, a decoder's or a JSON error, and never holds an unbounded answer in memory."""
    server = serving(_Hostile)
    client = SignerClient(f"http://127.0.0.1:{server.server_address[1]}", "s" * 32, timeout=5)
    try:
        with pytest.raises(SignerUnavailable, match=f"more than {MAX_ANSWER_BYTES} bytes"):
            client.keys()
        with pytest.raises(SignerUnavailable, match="not UTF-8"):
            client.checkpoint(ORIGIN)
        with pytest.raises(SignerUnavailable, match="JSON its API does not have"):
            client.sign(ORIGIN, 2, b"\0" * 32, 1, [])
        with pytest.raises(SignerUnavailable, match="JSON its API does not have"):
            client.recover(ORIGIN, 2, b"\0" * 32, "test")
        with pytest.raises(SignerUnavailable, match="broke off"):
            client.health()
        with pytest.raises(SignerUnavailable, match="unreachable"):
            client._request("GET", "/other")
    finally:
        server.shutdown()
        server.server_close()


def test_serve_refuses_a_missing_state_file_unless_told_it_is_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signer started without its state (a volume not mounted, a wrong path) would sign any tree
    as a log's first checkpoint, a history rewritten in the database included: it refuses to start,
    saying what to do. `signer init --state-file` creates it for a new signer."""
    kit = make_kit(tmp_path)
    kit.signer.close()
    _secret(tmp_path / "s")
    missing = tmp_path / "elsewhere" / "signer.state"
    args = [
        "serve",
        "--key-file",
        str(kit.key_file),
        "--state-file",
        str(missing),
        "--secret-file",
        str(tmp_path / "s"),
    ]
    _, err = run_cli(capsys, "signer", *args, "--listen", f"127.0.0.1:{free_port()}", ok=False)
    assert f"the state file {missing} does not exist" in " ".join(err.split()) and "--new-state" in err, err
    assert not missing.exists()
    # nor do state and recover make one: the next serve would then start without its state
    lost = tmp_path / "lost.state"
    on = ["--origin", "o", "--key-file", str(kit.key_file), "--state-file", str(lost)]
    for command in (["state", *on], ["recover", *on, "--size", "1", "--root", "AAAA", "--reason", "r"]):
        _, err = run_cli(capsys, "signer", *command, ok=False)
        assert f"the state file {lost} does not exist" in " ".join(err.split()), err
        assert not lost.exists()
        out, _ = run_cli(capsys, "signer", command[0], "--help")
        assert "created if absent" not in out and "--new-state" in out, out
    state = tmp_path / "new.state"
    keys = str(tmp_path / "k2")
    run_cli(capsys, "signer", "init", "--key-file", keys, "--name", "ex.test/siemgate", "--state-file", str(state))
    assert state.stat().st_mode & 0o777 == 0o600
