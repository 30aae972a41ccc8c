"""`siemgate log resume`: a stream's log stopped by an integrity error stays stopped until an
operator looks; after looking, the operator resumes it, and every check runs again at once, so a
log stopped for a reason that is gone (the old signer's "fix the clock" refusal) goes on, and a
log whose tree was really rewritten is stopped again."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.cli.main import main
from siemgate.model.features import Feature
from support.events import auditevent
from support.servers import LiveServer

from .store_log_kit import sql
from .tlog_kit import make_kit, secret_file, signer_process

AUDIT = Feature.AUDITEVENTS
SECOND = 1_000_000_000
OLD_REFUSAL = (
    "the signer refused to sign the stored tree of size 40: 422 the checkpoint would be dated 301 s ahead"
    " of the signer's clock: fix the clock"
)


def _ingest(server: LiveServer, key: str, count: int, start: int) -> None:
    response = server.ingest(key, AUDIT, [auditevent(start + n * SECOND) for n in range(count)])
    assert response.status_code == 200, response.text


def _until(what: str, check: Any) -> None:
    deadline = time.monotonic() + 40
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _resumes(server: LiveServer, account_id: int) -> list[dict[str, Any]]:
    found = []
    for _, body, _ in server.store.read_events(account_id, AUDIT, 0, -(2**63), None, 1000):
        if b"log-resume" in body:
            aux = orjson.loads(body)["aux_info"]
            found.append(orjson.loads(aux) if isinstance(aux, str) else aux)
    return found


Signed = tuple[LiveServer, Any, str, int]


@pytest.fixture
def signed(tmp_path: Path, make_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Signed]:
    """A server whose logs a real signer process signs every second: (server, account "acme", an
    ingest key of it, a start time an hour ago)."""
    kit = make_kit(tmp_path)
    secret = secret_file(tmp_path / "secret")
    with signer_process(kit, secret) as url:
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_URL", url)
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_SECRET_FILE", str(secret))
        server = make_server(
            integrity_signer_url=url, integrity_signer_secret_file=secret, integrity_checkpoint_seconds=1
        )
        account = server.account("acme")
        yield server, account, server.ingest_key(account), time.time_ns() - 3600 * SECOND


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["siemgate", "--data-dir", str(tmp_path / "server0"), "log", *args])
        with pytest.raises(SystemExit) as done:
            main()
        return int(done.value.code or 0)

    return run


def test_a_log_stopped_for_a_reason_now_gone_is_resumed_and_signed(
    signed: Signed, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server, account, key, start = signed
    stream = ["--account", "acme", "--feature", "auditevents"]
    assert cli("resume", *stream, "--reason", "nothing wrong") == 1
    assert "not stopped" in capsys.readouterr().err
    _ingest(server, key, 40, start)
    _until("size 40 signed", lambda: getattr(server.store.last_log_checkpoint(account.id, AUDIT), "size", 0) == 40)
    server.store.set_log_error(account.id, AUDIT, OLD_REFUSAL, server.clock())  # as an older release stopped it
    _ingest(server, key, 20, start + 100 * SECOND)
    state = server.store.log_state(account.id, AUDIT)
    assert state is not None and state.error == OLD_REFUSAL and state.size == 40  # stopped: nothing integrated
    reason = "the signer's clock was fixed; upgraded the signer"
    assert cli("resume", *stream, "--reason", reason) == 0
    assert "Resumed: 60 entries integrated; signed" in capsys.readouterr().err
    state = server.store.log_state(account.id, AUDIT)
    assert state is not None and state.error is None and state.size >= 60
    cp = server.store.last_log_checkpoint(account.id, AUDIT)
    assert cp is not None and cp.size >= 60
    [record] = _resumes(server, account.id)
    assert record == {
        "kind": "log-resume",
        "feature": "auditevents",
        "cleared": OLD_REFUSAL,
        "stopped_again": None,
        "reason": reason,
    }
    # the server's worker goes on signing the resumed log (the audit event above is a new leaf)
    _until("the resume's audit event signed", lambda: server.store.last_log_checkpoint(account.id, AUDIT).size > 60)  # type: ignore[union-attr]


def test_a_log_whose_tree_was_rewritten_is_stopped_again(
    signed: Signed, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server, account, key, start = signed
    _ingest(server, key, 300, start)
    _until("size 300 signed", lambda: getattr(server.store.last_log_checkpoint(account.id, AUDIT), "size", 0) == 300)
    where = (account.id, AUDIT.code)
    sql(
        server.store,
        "UPDATE log_hashes SET hash = ? WHERE account_id = ? AND feature = ? AND level = 8 AND idx = 0",
        (b"\x01" * 32, *where),
    )
    _ingest(server, key, 10, start + 400 * SECOND)

    def stopped() -> bool:
        state = server.store.log_state(account.id, AUDIT)
        return state is not None and bool(state.error)

    _until("the rewritten tree refused by the signer", stopped)
    capsys.readouterr()
    stream = ["--account", "acme", "--feature", "auditevents"]
    assert cli("resume", *stream, "--reason", "looked: the disk is fine") == 1
    assert "the log is stopped again: the signer refused" in capsys.readouterr().err
    state = server.store.log_state(account.id, AUDIT)
    assert state is not None and state.error and "refused" in state.error
    cp = server.store.last_log_checkpoint(account.id, AUDIT)
    assert cp is not None and cp.size == 300  # nothing of the rewritten tree signed
    [record] = _resumes(server, account.id)
    assert record["stopped_again"] == state.error and record["reason"] == "looked: the disk is fine"
