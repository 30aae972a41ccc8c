"""The server publishes the log's public keys at /.well-known/siemgate-log-keys and through
`siemgate log keys`: from a configured public key file, or from the signer (kept when it is down)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from siemgate.cli.main import main
from siemgate.tlog.checkpoint import open_checkpoint
from siemgate.tlog.keys import PublicKeyring

from .tlog_kit import MemLog, make_kit, secret_file, signer_process

KEYS = "/.well-known/siemgate-log-keys"


def test_keys_from_the_signer_and_kept_while_it_is_down(tmp_path: Path, make_server: Any) -> None:
    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(3)
    note = kit.sign(log)
    secret = secret_file(tmp_path / "secret")
    with signer_process(kit, secret) as url:
        server = make_server(integrity_signer_url=url, integrity_signer_secret_file=secret)
        reply = server.http.get(KEYS)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
        assert reply.text == kit.keyring.public().text()
        open_checkpoint(note, PublicKeyring.parse(reply.text))
    # The signer is down: the keys it gave are still published.
    again = server.http.get(KEYS)
    assert again.status_code == 200 and again.text == reply.text


def test_keys_from_a_public_key_file_and_none_without_a_signer(tmp_path: Path, make_server: Any) -> None:
    kit = make_kit(tmp_path)
    plain = make_server()
    missing = plain.http.get(KEYS)
    assert missing.status_code == 404
    assert "integrity_signer_url" in missing.json()["Error"]["Message"]
    with_file = make_server(integrity_public_key_file=kit.public_key)
    assert with_file.http.get(KEYS).text == kit.public_key.read_text()
    # A signer that was never reachable: a clear 404, not a hang or a 500.
    secret = secret_file(tmp_path / "secret")
    down = make_server(integrity_signer_url="http://127.0.0.1:9", integrity_signer_secret_file=secret)
    reply = down.http.get(KEYS)
    assert reply.status_code == 404 and "unreachable" in reply.json()["Error"]["Message"]


def test_siemgate_log_keys_prints_fingerprints_and_writes_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = make_kit(tmp_path)
    monkeypatch.setenv("SIEMGATE_INTEGRITY_PUBLIC_KEY_FILE", str(kit.public_key))
    monkeypatch.setattr(
        sys, "argv", ["siemgate", "--data-dir", str(tmp_path / "d"), "log", "keys", "--out", str(tmp_path / "out.pub")]
    )
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "SHA256:" in out and kit.keyring.keys[0].key_id in out
    assert PublicKeyring.load(tmp_path / "out.pub") == kit.keyring.public()
    monkeypatch.delenv("SIEMGATE_INTEGRITY_PUBLIC_KEY_FILE")
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1
    assert "no log signer" in capsys.readouterr().err
