"""The server waits for a quorum of witnesses before publishing a checkpoint: a real signer
process, real witness processes and a real server. While a witness is down or refuses, the
signer signs but nothing is published; when it is back, publishing resumes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from siemgate.config import load_settings
from siemgate.errors import ConfigError
from siemgate.integrity.keys import LogKeys
from siemgate.integrity.service import LogService, LogUnavailable
from siemgate.model.features import Feature
from siemgate.tlog.checkpoint import Checkpoint, open_checkpoint
from siemgate.tlog.cosignature import WitnessPolicy, create_witness_key, public_key_text
from siemgate.tlog.keys import SignerKeyring
from siemgate.tlog.note import NoteSigner, sign_note
from siemgate.tlog.signer_client import SignerClient
from siemgate.tlog.witness import Witness
from support.events import auditevent
from support.ports import free_port
from support.servers import LiveServer

from .tlog_kit import make_kit, new_witness, run_cli, secret_file, signer_process, witness_process

DAY_NS = 86400 * 10**9
# 30 days ago, 00:00 UTC: within retention (the ingest API refuses older events), past the alert
# rules' evaluation horizon (7 days), as the fixed 2026-01-01 these tests used was
T0 = (time.time_ns() // DAY_NS - 30) * DAY_NS

AUDIT = Feature.AUDITEVENTS


def _wait(test: Callable[[], Any], what: str, seconds: float = 40) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := test()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _published(server: LiveServer, account_id: int) -> list[str]:
    return [c.note for c in server.store.log_checkpoints(account_id, AUDIT)]


def _ingest(server: LiveServer, key: str, count: int, start: int) -> None:
    response = server.ingest(key, AUDIT, [auditevent(start + n * 10**9) for n in range(count)])
    assert response.status_code == 200, response.text


def test_checkpoints_wait_for_a_quorum_of_witnesses(
    tmp_path: Path, make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kit = make_kit(tmp_path)
    keys = kit.keyring.public()
    secret = secret_file(tmp_path / "secret")
    wkeys = [create_witness_key(tmp_path / f"w{i}.key", f"witness{i}.test.example/w") for i in range(2)]
    wpub = tmp_path / "witnesses.pub"
    wpub.write_text(public_key_text([k.verifier() for k in wkeys]))
    both = WitnessPolicy(tuple(k.verifier() for k in wkeys), 2)
    ports = [free_port(), free_port()]
    with (
        signer_process(kit, secret) as signer_url,
        witness_process(tmp_path / "w0.key", tmp_path / "w0.state", kit.public_key, ports[0]) as w0,
    ):
        w1_url = f"http://127.0.0.1:{ports[1]}"
        with witness_process(tmp_path / "w1.key", tmp_path / "w1.state", kit.public_key, ports[1], "w1.log"):
            server = make_server(
                integrity_signer_url=signer_url,
                integrity_signer_secret_file=secret,
                integrity_checkpoint_seconds=1,
                integrity_witness_urls=[w0, w1_url],
                integrity_witness_key_file=wpub,
            )
            account = server.account()
            key = server.ingest_key(account)
            _ingest(server, key, 30, T0)
            notes = _wait(lambda: _published(server, account.id), "a witnessed checkpoint")
            assert open_checkpoint(notes[-1], keys, both).checkpoint.size == 30
        # Witness 1 is down: the signer goes on signing, nothing more is published.
        _ingest(server, key, 20, T0 + 100 * 10**9)
        tlog = server.services.tlog
        origin = Checkpoint.parse(notes[-1][: notes[-1].index("\n\n") + 1]).origin
        signer = SignerClient(signer_url, secret.read_text())
        _wait(lambda: _size(signer.checkpoint(origin)) == 50, "the signer to sign size 50")
        _wait(lambda: (account.id, AUDIT) in tlog.unwitnessed, "the stream to be marked unwitnessed")
        assert "unreachable" in tlog.unwitnessed[(account.id, AUDIT)][1]
        # each attempt (every second here) is refused for the same reason: it is logged once, not
        # at every attempt (each checkpoint has its own time, which made each message new)
        retry = tlog.unwitnessed[(account.id, AUDIT)][0]
        _wait(lambda: tlog.unwitnessed[(account.id, AUDIT)][0] >= retry + 2, "two more attempts")
        said = [r for r in caplog.records if "was signed but not witnessed" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in said]
        # named as operators know the stream (the metrics' labels), not by the account's row id
        assert f"log of {account.uuid}/auditevents: " in said[0].getMessage(), said[0].getMessage()
        [h0, h1] = tlog.witnessing.health()
        assert h1.failures >= 1 and h1.last_error and "unreachable" in h1.last_error and h0.last_error is None
        assert [open_checkpoint(n, keys).checkpoint.size for n in _published(server, account.id)] == [30]
        # `siemgate log checkpoint` says why, instead of printing an unwitnessed checkpoint.
        with pytest.raises(LogUnavailable, match="not witnessed"):
            tlog.checkpoint(account.id, AUDIT)
        # Back: the next checkpoint covers everything, with both cosignatures.
        with witness_process(tmp_path / "w1.key", tmp_path / "w1.state", kit.public_key, ports[1], "w1b.log"):
            notes = _wait(lambda: [n for n in _published(server, account.id) if "\n50\n" in n], "size 50 published")
            assert len(both.check(notes[-1])) == 2
            _wait(lambda: (account.id, AUDIT) not in tlog.unwitnessed, "the stream to be witnessed again")


def _size(note: str | None) -> int | None:
    return None if note is None else Checkpoint.parse(note[: note.index("\n\n") + 1]).size


def test_a_witness_that_saw_a_fork_refuses_and_nothing_is_published(
    tmp_path: Path, make_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The witness holds a larger checkpoint of this origin (a fork signed with the log's key, or a
    history the database was rolled back from): it answers 409 with its larger size, and the
    server never publishes a checkpoint it did not cosign."""
    kit = make_kit(tmp_path)
    secret = secret_file(tmp_path / "secret")
    wkey, wpub = new_witness(tmp_path)
    with (
        signer_process(kit, secret) as signer_url,
        witness_process(tmp_path / "w.key", tmp_path / "w.state", kit.public_key) as w,
    ):
        server = make_server(
            integrity_signer_url=signer_url,
            integrity_signer_secret_file=secret,
            integrity_witness_urls=[w],
            integrity_witness_key_file=wpub,
        )
        account = server.account()
        origin = f"{kit.keyring.name}/{account.uuid}/auditevents"
        _seed_fork(SignerKeyring.load(kit.key_file), wkey, tmp_path / "w.state", origin)
        _ingest(server, server.ingest_key(account), 10, T0)
        with pytest.raises(LogUnavailable, match=r"cosigned size 1000 .* rolled back or forked"):
            server.services.tlog.checkpoint(account.id, AUDIT)
        assert _published(server, account.id) == []
        assert server.services.tlog.witnessing.health()[0].failures >= 1
        # The witness's operator accepts the log's history as it is now (after reading a recovery
        # statement): the witness forgets the origin, and the next checkpoint is cosigned.
        args = ["--origin", origin, "--key-file", str(tmp_path / "w.key"), "--state-file", str(tmp_path / "w.state")]
        args += ["--log-key", str(kit.public_key)]
        _, err = run_cli(capsys, "witness", "forget", *args)
        assert "Forgot size 1000" in err
        assert "cosigned nothing" in run_cli(capsys, "witness", "forget", *args, ok=False)[1]
        cp = server.services.tlog.checkpoint(account.id, AUDIT)
        [note] = _published(server, account.id)
        assert cp.size == 10 and len(WitnessPolicy((wkey.verifier(),), 1).check(note)) == 1


def _seed_fork(ring: SignerKeyring, wkey: NoteSigner, state: Path, origin: str) -> None:
    """The witness cosigns a checkpoint of size 1000 signed with the log's key (in its own state
    file, as its process would)."""
    witness = Witness(wkey, ring.public(), state)
    try:
        note = sign_note(Checkpoint(origin, 1000, bytes(32), 1_767_225_600).text(), ring.signers_for(origin))
        witness.add_checkpoint(f"old 0\n\n{note}".encode())
    finally:
        witness.close()


def test_witness_configuration_errors(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    kit.signer.close()
    _, wpub = new_witness(tmp_path)
    base = {"data_dir": tmp_path}
    cases = [
        ({"integrity_witness_urls": "http://127.0.0.1:1"}, "integrity_witness_key_file is not"),
        ({"integrity_witness_key_file": str(wpub)}, "need integrity_witness_urls"),
        ({"integrity_witness_urls": "http://a:1", "integrity_witness_key_file": str(kit.public_key)}, "type 0x04"),
        (
            {
                "integrity_witness_urls": "http://a:1",
                "integrity_witness_key_file": str(wpub),
                "integrity_witness_quorum": 2,
            },
            "cannot be met with 1 witness URL(s) and 1 witness key(s)",
        ),
        ({"integrity_witness_urls": "ftp://a", "integrity_witness_key_file": str(wpub)}, "must look like https://"),
    ]
    for extra, message in cases:
        settings = load_settings(**base, **extra)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            LogService(settings, None, lambda: 0, LogKeys(settings))  # type: ignore[arg-type]
    # Comma-separated in the environment, like the other lists.
    settings = load_settings(**base, integrity_witness_urls="http://a:1, http://b:2")
    assert settings.integrity_witness_urls == ["http://a:1", "http://b:2"]
