"""siemgate watches its own log: metrics on /metrics and the built-in `log-integrity` alert when the
signer process is stopped, when checkpoints go stale, and when a witness refuses to cosign — with a
real signer process, a real witness process and a real server."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.alerts.actions.record import is_alert_event
from siemgate.config import load_settings
from siemgate.integrity.health import integrity_records
from siemgate.integrity.service import WORKER_SECONDS
from siemgate.model.features import Feature
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.entry import ENTRY_SIZE, entry_bytes
from siemgate.tlog.keys import SignerKeyring
from siemgate.tlog.note import sign_note
from siemgate.tlog.signer_http import make_server as make_signer_server
from siemgate.tlog.signer_http import serve_in_thread
from siemgate.tlog.witness import Witness
from support.clocks import Clock
from support.events import auditevent
from support.ports import free_port
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

from .store_log_kit import snapshot
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


def _metric(server: LiveServer, name: str, **labels: str) -> float | None:
    text = server.http.get("/metrics").text
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _alerts(server: LiveServer, account_id: int, status: str) -> list[dict[str, Any]]:
    found = []
    for alert in server.store.list_alerts(account_id, "log-integrity"):
        payload = orjson.loads(alert.payload)
        if payload["event"]["status"] == status:
            found.append(payload)
    return found


def _alert_events(server: LiveServer, account_id: int) -> list[str]:
    """The alert ids recorded as events in the account's audit stream."""
    rows = server.store.read_events(account_id, AUDIT, 0, 0, None, 1000)
    return [e["object_uuid"] for e in (orjson.loads(body) for _, body, _ in rows) if is_alert_event(e)]


def _watching(make_server: Any, url: str, secret: Path, **settings: Any) -> LiveServer:
    """A server signing with the signer at `url`, checkpoints each second, alerts checked twice a second."""
    server: LiveServer = make_server(
        integrity_signer_url=url,
        integrity_signer_secret_file=secret,
        integrity_checkpoint_seconds=1,
        alerts_enabled=True,
        alerts_check_seconds=0.5,
        **settings,
    )
    return server


def _signed_size(server: LiveServer, account_id: int) -> int | None:
    stored = server.store.last_log_checkpoint(account_id, AUDIT)
    return stored.size if stored is not None else None


def _ingest(server: LiveServer, account: Any, count: int) -> None:
    key = server.ingest_key(account)
    response = server.ingest(key, AUDIT, [auditevent(T0 + n * 10**9) for n in range(count)])
    assert response.status_code == 200, response.text


def test_signer_stopped_and_stale_checkpoints_are_measured_and_alerted(tmp_path: Path, make_server: Any) -> None:
    kit = make_kit(tmp_path)
    secret = secret_file(tmp_path / "secret")
    with signer_process(kit, secret) as url:
        server = _watching(make_server, url, secret)
        account = server.account()
        _ingest(server, account, 20)
        labels = {"account": account.uuid, "feature": "auditevents"}
        _wait(lambda: _metric(server, "siemgate_log_checkpoint_age_seconds", **labels) is not None, "a checkpoint")
        assert _metric(server, "siemgate_log_status", **labels, status="ok") == 1
        assert _metric(server, "siemgate_log_signer_up") == 1, (tmp_path / "signer.log").read_text()
        age = _metric(server, "siemgate_log_checkpoint_age_seconds", **labels)
        assert age is not None and 0 <= age < 60
        assert _metric(server, "siemgate_log_unpublished_entries", **labels) == 0
        assert _alerts(server, account.id, "signer-down") == []
    # The signer process is stopped: the health check fails, the metric drops, the alert fires.
    _wait(lambda: _metric(server, "siemgate_log_signer_up") == 0, "signer_up 0")
    assert _metric(server, "siemgate_log_status", **labels, status="signer-down") == 1
    [alert] = _wait(lambda: _alerts(server, account.id, "signer-down"), "a signer-down alert")
    assert alert["rule"]["id"] == "log-integrity" and alert["source"] == "integrity"
    assert "unreachable" in alert["summary"] and alert["event"]["feature"] == "auditevents"
    # the alert is recorded as an audit event within about a second (the dispatch tick), in this stream
    _wait(lambda: _alert_events(server, account.id) == [alert["id"]], "the alert recorded as an event")
    _ingest(server, account, 5)  # ingest goes on; what it adds waits for the signer, as the alert's event does
    _wait(lambda: _metric(server, "siemgate_log_unpublished_entries", **labels) == 6, "6 unpublished entries")
    # One alert per status while it lasts (suppressed for an hour of checks), not one per check.
    checks = server.services.alerts.evaluator.check_integrity
    assert [checks() for _ in range(3)] == [0, 0, 0]
    assert len(_alerts(server, account.id, "signer-down")) == 1
    # The signer is back and the newest checkpoint is three hours old by the server's clock: stale.
    with signer_process(kit, secret, port=int(url.rsplit(":", 1)[1])):
        _wait(lambda: _metric(server, "siemgate_log_signer_up") == 1, "signer_up 1")
        server.clock.advance(3 * 3600)
        _wait(lambda: _metric(server, "siemgate_log_status", **labels, status="stale") == 1, "a stale status")
        [stale] = _wait(lambda: _alerts(server, account.id, "stale"), "a stale alert")
        assert "checkpoint is" in stale["summary"] and stale["event"]["checkpoint_age_seconds"] > 7200


@contextlib.contextmanager
def _witnessed(tmp_path: Path, make_server: Any) -> Iterator[tuple[LiveServer, Callable[[str], None], str]]:
    """A watching server whose checkpoints a real witness process must cosign; yields it, a
    function that makes the witness refuse an account's auditevents log (by its uuid), and the
    witness's URL."""
    kit = make_kit(tmp_path)
    secret = secret_file(tmp_path / "secret")
    wkey, wpub = new_witness(tmp_path)

    def saw_a_fork(account_uuid: str) -> None:
        """The witness saw a fork of this log (size 1000, signed with the log's key): it refuses."""
        ring = SignerKeyring.load(kit.key_file)
        origin = f"{ring.name}/{account_uuid}/auditevents"
        witness = Witness(wkey, ring.public(), tmp_path / "w.state")
        note = sign_note(Checkpoint(origin, 1000, bytes(32), 1_767_225_600).text(), ring.signers_for(origin))
        witness.add_checkpoint(f"old 0\n\n{note}".encode())
        witness.close()

    with (
        signer_process(kit, secret) as url,
        witness_process(tmp_path / "w.key", tmp_path / "w.state", kit.public_key) as w,
    ):
        server = _watching(make_server, url, secret, integrity_witness_urls=[w], integrity_witness_key_file=wpub)
        yield server, saw_a_fork, w


def test_a_refusing_witness_is_measured_and_alerted(tmp_path: Path, make_server: Any) -> None:
    with _witnessed(tmp_path, make_server) as (server, saw_a_fork, w):
        account = server.account()
        saw_a_fork(account.uuid)
        _ingest(server, account, 10)
        labels = {"account": account.uuid, "feature": "auditevents"}
        _wait(lambda: _metric(server, "siemgate_log_status", **labels, status="unwitnessed") == 1, "unwitnessed")
        assert (_metric(server, "siemgate_log_witness_cosign_failures_total", witness=w) or 0) >= 1
        assert _metric(server, "siemgate_log_witness_cosigned_total", witness=w) == 0
        assert _metric(server, "siemgate_log_unpublished_entries", **labels) == 10
        assert _metric(server, "siemgate_log_signer_up") == 1
        [alert] = _wait(lambda: _alerts(server, account.id, "unwitnessed"), "an unwitnessed alert")
        assert "rolled back or forked" in alert["summary"] and alert["event"]["witness_failures"] >= 1
        assert server.store.log_checkpoints(account.id, AUDIT) == []


def test_a_signer_ahead_of_a_rolled_back_store_is_measured_and_alerted_at_once(
    tmp_path: Path, make_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = make_kit(tmp_path)
    secret, recovery = secret_file(tmp_path / "secret"), secret_file(tmp_path / "recovery")
    with signer_process(kit, secret, recovery) as url:
        server = _watching(make_server, url, secret)
        account = server.account()
        labels = {"account": account.uuid, "feature": "auditevents"}
        _ingest(server, account, 20)
        _wait(lambda: _signed_size(server, account.id) == 20, "20 entries signed")
        backup = snapshot(server.store, account.id)
        _ingest(server, account, 5)
        _wait(lambda: _signed_size(server, account.id) == 25, "25 entries signed")
        backup()  # the database is restored from the backup taken at size 20: the signer signed 25
        response = server.ingest(
            server.ingest_key(account), AUDIT, [auditevent(T0 + (100 + n) * 10**9) for n in range(3)]
        )
        assert response.status_code == 200, (
            response.text
        )  # a change: the worker asks, the signer refuses the smaller tree
        _wait(lambda: _metric(server, "siemgate_log_status", **labels, status="signer-ahead") == 1, "signer-ahead")
        assert _metric(server, "siemgate_log_status", **labels, status="ok") == 0
        assert _metric(server, "siemgate_log_signer_up") == 1  # the signer answers: it refuses this stream
        [alert] = _wait(lambda: _alerts(server, account.id, "signer-ahead"), "a signer-ahead alert")
        assert "signed size 25 but the log holds 23 entries" in alert["summary"]
        assert "siemgate log recover" in alert["summary"]
        # the operator recovers (another process): the stream is ok again, without a heartbeat's wait
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_URL", url)
        monkeypatch.setenv("SIEMGATE_INTEGRITY_SIGNER_SECRET_FILE", str(secret))
        stream = ["--account", account.uuid, "--feature", "auditevents", "--reason", "restored"]
        run_cli(
            capsys,
            "--data-dir",
            str(tmp_path / "server0"),
            "log",
            "recover",
            *stream,
            "--recovery-secret-file",
            str(recovery),
        )
        _wait(lambda: _metric(server, "siemgate_log_status", **labels, status="ok") == 1, "ok after the recovery")


@contextlib.contextmanager
def _server_on(data_dir: Path, url: str, secret: Path, alerts_enabled: bool = True) -> Iterator[LiveServer]:
    """A watching server on the SQLite store in `data_dir`, kept across restarts (make_server's
    stores are new each time)."""
    settings = load_settings(
        data_dir=data_dir,
        integrity_signer_url=url,
        integrity_signer_secret_file=secret,
        integrity_checkpoint_seconds=1,
        alerts_enabled=alerts_enabled,
        alerts_check_seconds=0.5,
    )
    live, server, thread = start_server(settings, make_store("sqlite", data_dir), Clock())
    try:
        yield live
    finally:
        stop_server(live, server, thread)


def _signatures(kit: Any) -> int:
    """How many notes the signer process has signed (its state file's history)."""
    with contextlib.closing(sqlite3.connect(f"file:{kit.state_file}?mode=ro", uri=True)) as conn:
        count: int = conn.execute("SELECT count(*) FROM history").fetchone()[0]
    return count


def _signed_account(server: LiveServer, count: int, labels: dict[str, str]) -> Any:
    """A new account with `count` audit events ingested and signed; its uuid goes into `labels`."""
    account = server.account()
    labels["account"] = account.uuid
    _ingest(server, account, count)
    _wait(lambda: _signed_size(server, account.id) == count, f"{count} entries signed")
    return account


def _plain_restart_signs_nothing(kit: Any, data: Path, url: str, secret: Path, labels: dict[str, str]) -> int:
    """Restart the server on `data` with nothing changed: the start check asks the signer (and
    rebuilds the stored root at its size), the stream stays ok, nothing is signed. Returns how many
    notes the signer has signed."""
    signed = _signatures(kit)
    with _server_on(data, url, secret) as server:
        _wait(lambda: server.services.tlog.unchecked == [], "the start check")
        assert _metric(server, "siemgate_log_status", **labels, status="ok") == 1
        assert _signatures(kit) == signed
    return signed


def _restart_setting(tmp_path: Path) -> tuple[Any, Path, Path, Path, dict[str, str]]:
    """What the restart tests share: the log kit, the signer's secret, the data folder and its
    SQLite file, and the metric labels of the audit stream."""
    data = tmp_path / "data"
    return make_kit(tmp_path), secret_file(tmp_path / "secret"), data, data / "siemgate.db", {"feature": "auditevents"}


def test_a_store_restored_while_the_server_was_down_is_signer_ahead_at_the_first_cycle(tmp_path: Path) -> None:
    kit, secret, data, db, labels = _restart_setting(tmp_path)
    with signer_process(kit, secret) as url:
        with _server_on(data, url, secret) as server:
            account = _signed_account(server, 20, labels)
            with (
                contextlib.closing(sqlite3.connect(db)) as live,
                contextlib.closing(sqlite3.connect(tmp_path / "backup.db")) as copy,
            ):
                live.backup(copy)  # the backup, taken at size 20
            _ingest(server, account, 5)
            _wait(lambda: _signed_size(server, account.id) == 25, "25 entries signed")
        signed = _plain_restart_signs_nothing(kit, data, url, secret, labels)
    # The store is restored from the backup while the server is stopped (the signer signed 25).
    for leftover in (db, db.with_name("siemgate.db-wal"), db.with_name("siemgate.db-shm")):
        leftover.unlink(missing_ok=True)
    (tmp_path / "backup.db").rename(db)
    stream = (account.id, AUDIT)
    # Started while the signer is down (alerts off: an alert is an event of this stream, a change the
    # worker would ask the signer about anyway): the start check waits for the signer, then tells.
    with _server_on(data, url, secret, alerts_enabled=False) as server:
        _wait(lambda: _metric(server, "siemgate_log_status", **labels, status="signer-down") == 1, "signer-down")
        with signer_process(kit, secret, port=int(url.rsplit(":", 1)[1])):
            _wait(lambda: _metric(server, "siemgate_log_status", **labels, status="signer-ahead") == 1, "signer-ahead")
            ahead = server.services.tlog.signer_ahead(stream, server.store.last_log_checkpoint(*stream))
            assert ahead is not None and "signed size 25 but the log holds 20 entries" in ahead
            assert server.services.tlog.unchecked == []
            # Another start (the stopped server's store; the one above still runs, as a second process
            # may), with the signer up and no new events: signer-ahead at the first worker round.
            with _server_on(data, url, secret) as server:
                status = lambda: _metric(server, "siemgate_log_status", **labels, status="signer-ahead") == 1  # noqa: E731
                _wait(status, "signer-ahead at the first worker round", seconds=3 * WORKER_SECONDS)
                [alert] = _wait(lambda: _alerts(server, account.id, "signer-ahead"), "a signer-ahead alert")
                assert "signed size 25 but the log holds 20 entries" in alert["summary"]
                assert "siemgate log recover" in alert["summary"]
                assert _signatures(kit) == signed


def test_a_history_rewritten_while_the_server_was_down_is_stopped_at_the_first_cycle(tmp_path: Path) -> None:
    kit, secret, data, db, labels = _restart_setting(tmp_path)
    with signer_process(kit, secret) as url:
        with _server_on(data, url, secret) as server:
            account = _signed_account(server, 25, labels)
        signed = _plain_restart_signs_nothing(kit, data, url, secret, labels)
        # While the server is stopped an entry is rewritten: the size stays 25, the stored checkpoint
        # too, so nothing is due until the heartbeat, an hour later.
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            # one row of 25 packed entries (one ingest batch): the fourth is replaced by another event's
            [(packed,)] = conn.execute("SELECT entries FROM log_entries WHERE account_id = ?", (account.id,))
            other = entry_bytes(T0, b"another event")
            packed = packed[: 3 * ENTRY_SIZE] + other + packed[4 * ENTRY_SIZE :]
            conn.execute("UPDATE log_entries SET entries = ? WHERE account_id = ?", (packed, account.id))
        with _server_on(data, url, secret) as server:
            stopped = lambda: _metric(server, "siemgate_log_status", **labels, status="stopped") == 1  # noqa: E731
            _wait(stopped, "stopped at the first worker round", seconds=3 * WORKER_SECONDS)
            state = server.store.log_state(account.id, AUDIT)
            assert state is not None and state.error is not None
            assert "the stored tree of size 25 does not have the root the signer signed" in state.error
            [alert] = _wait(lambda: _alerts(server, account.id, "stopped"), "a stopped alert")
            assert "does not have the root the signer signed" in alert["summary"]
            assert _signatures(kit) == signed


def test_a_signer_pause_of_one_account_tells_the_others_nothing_of_it(tmp_path: Path, make_server: Any) -> None:
    """A signer that cannot sign one stream (its clock set back: 503, "the last checkpoint of
    <origin> is dated ... ahead") is signer-down for every account, as it is; but the reason every
    account's `log-integrity` alert carries named the stream it was asked for, so tenant A's alert,
    recorded in A's audit stream and sent to A's actions, told A tenant B's account uuid and when B's
    log grew. Now the account is left out of that reason (the operator's log line keeps it)."""
    now = [time.time()]
    kit = make_kit(tmp_path, clock=lambda: now[0])
    secret = secret_file(tmp_path / "secret")
    signer = make_signer_server(kit.signer, "127.0.0.1", free_port(), secret.read_text().strip())
    serve_in_thread(signer)
    try:
        url = f"http://127.0.0.1:{signer.server_address[1]}"
        server = _watching(make_server, url, secret)
        a, b = server.account(), server.account()
        for account in (a, b):
            _ingest(server, account, 3)
        _wait(lambda: _signed_size(server, a.id) == _signed_size(server, b.id) == 3, "first checkpoints")
        now[0] -= 3600  # the signer's clock set back: B's next checkpoint must wait for it
        _ingest(server, b, 2)
        [alert] = _wait(lambda: _alerts(server, a.id, "signer-down"), "a signer-down alert in A")
        assert "after this host's clock" in alert["summary"], alert["summary"]
        assert b.uuid not in orjson.dumps(alert).decode(), alert["summary"]
    finally:
        signer.shutdown()
        signer.server_close()


def test_an_accounts_integrity_records_count_only_its_own_witness_failures(tmp_path: Path, make_server: Any) -> None:
    """`witness_failures` in the records `integrity` rules read was every failure since the start,
    all streams together: while a witness refused or was down, tenant A's rule could count how many
    checkpoints of other accounts' streams were asked for, that is how many changed and when. Now
    each stream's record counts its own."""
    with _witnessed(tmp_path, make_server) as (server, saw_a_fork, _):
        a, b = server.account(), server.account()
        saw_a_fork(b.uuid)  # it refuses each of B's checkpoints, and cosigns A's
        _ingest(server, a, 3)
        _ingest(server, b, 3)
        _wait(lambda: _signed_size(server, a.id) == 3, "A's checkpoint")
        tlog, now = server.services.tlog, server.clock()
        [b_record] = _wait(
            lambda: [r for r in integrity_records(tlog, b.id, now) if r["witness_failures"]], "B's failure"
        )
        assert b_record["status"] == "unwitnessed"
        [a_record] = integrity_records(tlog, a.id, now)
        assert (a_record["status"], a_record["witness_failures"]) == ("ok", 0), a_record
