"""`siemgate log recover`: after the database is restored from a backup the signer refuses the
shorter tree until an operator declares it, with the recovery secret; the declaration is a signed
statement the verifier prints, and an event in the account's audit stream."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from siemgate.cli.main import main
from siemgate.model.features import Feature
from siemgate.tlog.checkpoint import open_checkpoint, open_recovery
from support.events import auditevent
from support.servers import LiveServer

from .store_log_kit import snapshot
from .tlog_kit import make_kit, secret_file, signer_process

AUDIT = Feature.AUDITEVENTS
SECOND = 1_000_000_000


def _ingest(server: LiveServer, key: str, count: int, start: int) -> None:
    response = server.ingest(key, AUDIT, [auditevent(start + n * SECOND) for n in range(count)])
    assert response.status_code == 200, response.text


def _signed_size(server: LiveServer, account_id: int, size: int) -> None:
    deadline = time.monotonic() + 40
    while (cp := server.store.last_log_checkpoint(account_id, AUDIT)) is None or cp.size != size:
        assert time.monotonic() < deadline, f"no checkpoint of size {size}"
        time.sleep(0.1)


def test_a_restore_from_backup_is_recovered_by_the_operator_and_reported_by_the_verifier(
    tmp_path: Path, make_server: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = make_kit(tmp_path)
    secret, recovery = tmp_path / "secret", tmp_path / "recovery"
    secret.write_text(secrets.token_urlsafe(32))
    recovery.write_text(secrets.token_urlsafe(32))
    data_dir = str(tmp_path / "server0")

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["siemgate", "--data-dir", data_dir, "log", *args])
        with pytest.raises(SystemExit) as done:
            main()
        return int(done.value.code or 0)

    def verify(bundle: Path, *known: Path) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-m", "siemgate.tlog.verify_cli", "bundle", str(bundle), "--key", str(kit.public_key)]
        for path in known:
            args += ["--checkpoint", str(path)]
        return subprocess.run(args, capture_output=True, text=True, check=False)

    with signer_process(kit, secret, recovery) as url:
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_URL", url)
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_SECRET_FILE", str(secret))
        server = make_server(
            integrity_signer_url=url, integrity_signer_secret_file=secret, integrity_checkpoint_seconds=1
        )
        account = server.account("acme")
        key = server.ingest_key(account)
        start = time.time_ns() - 3600 * SECOND
        _ingest(server, key, 300, start)
        _signed_size(server, account.id, 300)
        backup = snapshot(server.store, account.id)
        _ingest(server, key, 100, start + 300 * SECOND)
        _signed_size(server, account.id, 400)
        stream = ["--account", "acme", "--feature", "auditevents"]
        assert run("export", *stream, "--out", str(tmp_path / "before")) == 0
        capsys.readouterr()
        saved = tmp_path / "saved.checkpoint"
        shutil.copy(max((tmp_path / "before" / "checkpoints").iterdir()), saved)
        backup()  # the database is restored from the backup taken at size 300
        assert run("checkpoint", *stream) == 1
        assert "siemgate log recover" in capsys.readouterr().err
        wrong = secret_file(tmp_path / "wrong")
        assert run("recover", *stream, "--reason", "restored", "--recovery-secret-file", str(wrong)) == 1
        assert "not signed" in capsys.readouterr().err
        reason = "restored from the backup of 2026-12-05 after a disk failure"
        assert run("recover", *stream, "--reason", reason, "--recovery-secret-file", str(recovery)) == 0
        out, err = capsys.readouterr()
        assert "size 400 is replaced by the stored tree of size 300" in err
        # stdout: the signed recovery statement and checkpoint as stored (to keep; the witnesses read the first)
        [statement] = server.store.log_recoveries(account.id, AUDIT)
        stored = server.store.last_log_checkpoint(account.id, AUDIT)
        assert stored is not None and out == statement + "\n" + stored.note
        assert open_checkpoint(stored.note, kit.keyring.public()).checkpoint.size == 300
        signed = open_recovery(statement, kit.keyring.public()).recovery
        assert (signed.previous_size, signed.restored_size, signed.reason) == (400, 300, reason)
        # recorded in the account's audit stream, then covered by the next checkpoint
        audit = [
            e
            for _, body, _ in server.store.read_events(account.id, AUDIT, 300, -(2**63), None, 100)
            if b"log-recovery" in body
            for e in [body]
        ]
        assert len(audit) == 1 and reason.encode() in audit[0]
        _ingest(server, key, 10, start + 500 * SECOND)
        _signed_size(server, account.id, 311)
        assert run("export", *stream, "--out", str(tmp_path / "after")) == 0
    result = verify(tmp_path / "after", saved)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RECOVERY" in result.stdout and reason in result.stdout and "replaced" in result.stdout
    shutil.rmtree(tmp_path / "after" / "recoveries")  # without the signed statement: invalid
    invalid = verify(tmp_path / "after", saved)
    assert invalid.returncode == 1 and "INVALID index 311" in invalid.stdout and "rolled back" in invalid.stdout
    for cp in (tmp_path / "before" / "checkpoints").iterdir():
        open_checkpoint(cp.read_text(), kit.keyring.public())
