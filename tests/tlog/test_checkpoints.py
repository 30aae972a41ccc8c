"""Checkpoints driven by the server: signed by a real signer process on change, as heartbeats when
idle, and on demand (`siemgate log checkpoint`); ingest goes on while the signer is down and
checkpoints catch up when it is back."""

from __future__ import annotations

import itertools
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from siemgate.cli.main import main
from siemgate.config import load_settings
from siemgate.errors import ConfigError
from siemgate.integrity.keys import LogKeys
from siemgate.integrity.service import LogService, LogUnavailable
from siemgate.integrity.tree import StoredTree
from siemgate.model.features import Feature
from siemgate.store.sqlite import SQLiteStore
from siemgate.tlog.checkpoint import Checkpoint, open_checkpoint
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.proof import consistency_proof, verify_consistency
from siemgate.tlog.signer import Signer
from support.events import auditevent
from support.ports import free_port
from support.servers import LiveServer

from .store_log_kit import expected_root, new_account, write_events
from .tlog_kit import NAME, make_kit, secret_file, signer_process

DAY_NS = 86400 * 10**9
# 30 days ago, 00:00 UTC: within retention (the ingest API refuses older events), past the alert
# rules' evaluation horizon (7 days), as the fixed 2026-01-01 these tests used was
T0 = (time.time_ns() // DAY_NS - 30) * DAY_NS

AUDIT = Feature.AUDITEVENTS


def _ingest(server: LiveServer, key: str, count: int, start: int) -> None:
    response = server.ingest(key, AUDIT, [auditevent(start + n * 10**9) for n in range(count)])
    assert response.status_code == 200, response.text


def _checkpoints(server: LiveServer, account_id: int, keys: PublicKeyring) -> list[Checkpoint]:
    return [open_checkpoint(c.note, keys).checkpoint for c in server.store.log_checkpoints(account_id, AUDIT)]


def _wait_for(server: LiveServer, account_id: int, keys: PublicKeyring, test: Any, what: str) -> list[Checkpoint]:
    deadline = time.monotonic() + 40
    while not test(cps := _checkpoints(server, account_id, keys)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; have {[c.describe() for c in cps]}"
        time.sleep(0.1)
    return cps


def test_checkpoints_on_change_and_heartbeats_signed_by_the_signer(tmp_path: Path, make_server: Any) -> None:
    kit = make_kit(tmp_path)
    keys = kit.keyring.public()
    secret = secret_file(tmp_path / "secret")
    with signer_process(kit, secret) as url:
        server = make_server(
            integrity_signer_url=url,
            integrity_signer_secret_file=secret,
            integrity_checkpoint_seconds=1,
            integrity_heartbeat_seconds=3,
        )
        account, other = server.account(), server.account()
        key = server.ingest_key(account)
        _ingest(server, key, 300, T0)
        first = _wait_for(server, account.id, keys, lambda cps: cps and cps[-1].size == 300, "size 300")[-1]
        assert first.origin == f"{NAME}/{account.uuid}/auditevents"
        assert first.root == expected_root(server.store, account)
        _ingest(server, key, 40, T0 + 1000 * 10**9)
        cps = _wait_for(server, account.id, keys, lambda cps: cps[-1].size == 340, "size 340")
        assert all(a.time < b.time and a.size <= b.size for a, b in itertools.pairwise(cps))
        # idle: a heartbeat re-signs the same tree with a later time
        beat = _wait_for(server, account.id, keys, lambda cps: len(cps) > len(cps_before(cps)), "a heartbeat")
        assert beat[-1].size == 340 and beat[-1].root == cps[-1].root and beat[-1].time > cps[-1].time
        assert server.store.log_checkpoints(other.id, AUDIT) == []  # nothing for a stream never written


def cps_before(cps: list[Checkpoint]) -> list[Checkpoint]:
    """The checkpoints before the first of the last size (what a heartbeat adds to)."""
    first = next(i for i, c in enumerate(cps) if c.size == cps[-1].size)
    return cps[: first + 1]


def test_ingest_goes_on_while_the_signer_is_down_and_checkpoints_catch_up(tmp_path: Path, make_server: Any) -> None:
    kit = make_kit(tmp_path)
    keys = kit.keyring.public()
    secret = secret_file(tmp_path / "secret")
    port = free_port()
    with signer_process(kit, secret, port=port) as url:
        server = make_server(
            integrity_signer_url=url, integrity_signer_secret_file=secret, integrity_checkpoint_seconds=1
        )
        account = server.account()
        key = server.ingest_key(account)
        _ingest(server, key, 100, T0)
        _wait_for(server, account.id, keys, lambda cps: cps and cps[-1].size == 100, "size 100")
    # The signer is down: events are stored, the log is integrated, nothing is signed.
    for i in range(3):
        _ingest(server, key, 50, T0 + (1000 + 100 * i) * 10**9)
    deadline = time.monotonic() + 30
    while (state := server.store.log_state(account.id, AUDIT)) is None or state.size < 250:
        assert time.monotonic() < deadline, "the log was not integrated while the signer was down"
        time.sleep(0.05)
    assert _checkpoints(server, account.id, keys)[-1].size == 100
    with signer_process(kit, secret, port=port):
        cps = _wait_for(server, account.id, keys, lambda cps: cps[-1].size == 250, "the catch-up checkpoint")
    old, new = next(c for c in cps if c.size == 100), cps[-1]
    proof = consistency_proof(100, 250, StoredTree(server.store, account.id, AUDIT, 250))
    verify_consistency(100, 250, old.root, new.root, proof)
    assert new.root == expected_root(server.store, account)


def test_siemgate_log_checkpoint(
    tmp_path: Path, make_server: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = make_kit(tmp_path)
    secret = secret_file(tmp_path / "secret")
    server = make_server()  # no signer: the worker integrates only
    account = server.account("acme")
    _ingest(server, server.ingest_key(account), 20, T0)
    data_dir = str(tmp_path / "server0")

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["siemgate", "--data-dir", data_dir, "log", *args])
        with pytest.raises(SystemExit) as done:
            main()
        return int(done.value.code or 0)

    assert run("checkpoint", "--account", "acme", "--feature", "auditevents") == 1
    assert "no log signer" in capsys.readouterr().err
    assert run("checkpoint", "--account", "acme", "--feature", "audits") == 1
    assert "not a stream" in capsys.readouterr().err
    with signer_process(kit, secret) as url:
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_URL", url)
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_SECRET_FILE", str(secret))
        assert run("checkpoint", "--account", "acme", "--feature", "auditevents") == 0
        note = capsys.readouterr().out
        cp = open_checkpoint(note, kit.keyring.public()).checkpoint
        assert cp.size == 20 and cp.root == expected_root(server.store, account)
        assert server.store.last_log_checkpoint(account.id, AUDIT).note == note
        assert run("checkpoint", "--account", "acme", "--feature", "itemusages") == 1
        assert "no events yet" in capsys.readouterr().err
        out = tmp_path / "bundle"
        assert run("export", "--account", "acme", "--feature", "auditevents", "--out", str(out)) == 0
        assert "20 entries, 20 event bodies" in capsys.readouterr().err
        verified = subprocess.run(
            [sys.executable, "-m", "siemgate.tlog.verify_cli", "bundle", str(out), "--key", str(kit.public_key)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verified.returncode == 0 and "VALID" in verified.stdout, verified.stdout + verified.stderr
        assert run("export", "--account", "acme", "--feature", "auditevents", "--out", str(out)) == 1
        assert "not an empty directory" in capsys.readouterr().err
    # the signer is down: the export ends at the newest stored checkpoint, and says so
    assert run("export", "--account", "acme", "--feature", "auditevents", "--out", str(tmp_path / "b2")) == 0
    assert "no fresh checkpoint" in capsys.readouterr().err


def test_the_worker_signs_the_day_close_and_changes_at_most_once_per_interval(tmp_path: Path) -> None:
    now = [1_767_311_990.0]  # 2026-01-01T23:59:50Z
    kit = make_kit(tmp_path)
    kit.signer.close()
    signer = Signer(kit.keyring, kit.state_file, lambda: now[0])
    settings = load_settings(
        data_dir=tmp_path, integrity_public_key_file=kit.public_key, integrity_heartbeat_seconds=86400
    )
    store = SQLiteStore(tmp_path / "siemgate.db")
    store.migrate()
    try:
        service = LogService(settings, store, lambda: int(now[0] * 10**9), LogKeys(settings))
        service.signer = signer  # type: ignore[assignment]
        account = new_account(store)
        write_events(store, account, 10, start=int(now[0] * 10**9) - 100 * 10**9)

        def step(seconds: float) -> list[tuple[int, int]]:
            now[0] += seconds
            service.run()
            return [(c.size, c.time) for c in store.log_checkpoints(account.id, AUDIT)]

        assert step(0) == [(10, 1_767_311_990)]  # the first
        assert len(step(5)) == 1  # nothing changed, no heartbeat due
        assert step(10)[-1] == (10, 1_767_312_005)  # 00:00:05, the tree unchanged: the day-close checkpoint
        write_events(store, account, 5, start=int(now[0] * 10**9) - 50 * 10**9)
        assert len(step(3)) == 2  # changed, but within the 10 s interval
        assert step(7)[-1] == (15, 1_767_312_015)  # on change
        assert len(step(3600)) == 3  # idle, the heartbeat (a day) not due
    finally:
        store.close()
        signer.close()


def test_a_signer_that_turns_the_server_away_is_retried_not_an_integrity_error(
    tmp_path: Path, make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(tmp_path)
    secret, wrong = tmp_path / "secret", tmp_path / "wrong"
    secret.write_text(secrets.token_urlsafe(32))
    wrong.write_text(secrets.token_urlsafe(32))
    with signer_process(kit, secret) as url:
        server = make_server(integrity_signer_url=url, integrity_signer_secret_file=wrong)
        account = server.account()
        _ingest(server, server.ingest_key(account), 20, T0)
        service = server.services.tlog
        with pytest.raises(LogUnavailable, match="wrong bearer secret"):
            service.checkpoint(account.id, AUDIT)
        assert service.sign_due() == 0
        state = server.store.log_state(account.id, AUDIT)
        assert state is not None and state.size == 20 and state.error is None  # not an alarm
        assert server.store.log_checkpoints(account.id, AUDIT) == []
        assert "cannot sign" in caplog.text


def test_a_heartbeat_shorter_than_the_checkpoint_interval_is_refused(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, integrity_checkpoint_seconds=100, integrity_heartbeat_seconds=50)
    store = SQLiteStore(tmp_path / "siemgate.db")
    try:
        with pytest.raises(ConfigError, match="integrity_heartbeat_seconds must be at least"):
            LogService(settings, store, time.time_ns, LogKeys(settings))
    finally:
        store.close()
