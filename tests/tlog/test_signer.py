"""The signer refuses every tree that is not an extension of what it signed, keeps its own state
(0600) and serialises check-and-persist, also across two signer instances on one state file."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from siemgate.model.features import Feature
from siemgate.tlog.checkpoint import Checkpoint, open_checkpoint, open_recovery
from siemgate.tlog.keys import PublicKeyring, SignerKeyring
from siemgate.tlog.note import sign_note
from siemgate.tlog.signer import BadSignRequest, ForeignOrigin, Signer, SignerRefused, StaleBase

from .tlog_kit import NAME, ORIGIN, MemLog, make_kit


def test_signs_extensions_and_heartbeats_with_increasing_times(tmp_path: Path) -> None:
    now = [float(int(time.time()))]
    kit = make_kit(tmp_path, clock=lambda: now[0])
    log = MemLog()
    log.append(5)
    first_note = kit.sign(log)
    first = Checkpoint.parse(open_checkpoint(first_note, kit.keyring.public()).checkpoint.text())
    assert (first.size, first.root) == (5, log.root())
    assert kit.sign(log) == first_note  # a heartbeat in the same second: the last checkpoint is as fresh
    now[0] += 1
    heartbeat = open_checkpoint(kit.sign(log), kit.keyring.public()).checkpoint
    assert (heartbeat.size, heartbeat.root) == (5, log.root()) and heartbeat.time > first.time
    log.append(6)
    third = open_checkpoint(kit.sign(log), kit.keyring.public()).checkpoint
    assert third.size == 11 and third.time > heartbeat.time  # a new tree in the same second: a second later
    assert os.stat(kit.state_file).st_mode & 0o777 == 0o600
    assert [kind for kind, _ in kit.signer.history(ORIGIN)] == ["checkpoint"] * 3


def test_refuses_rewrites_rollbacks_forks_and_foreign_origins(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(8)
    kit.sign(log)
    # A rewritten history (index 3 changed), with an honest-looking proof from the rewritten tree.
    forged = MemLog(bodies=list(log.bodies), entries=list(log.entries))
    forged.entries[3] = log.entries[4]
    forged.append(2)
    with pytest.raises(SignerRefused, match="not an extension"):
        kit.signer.sign(ORIGIN, forged.size, forged.root(), 8, forged.proof(8, forged.size))
    # The same size with another root (a fork), and a smaller tree (a rollback).
    with pytest.raises(SignerRefused, match=r"forked|not an extension"):
        kit.signer.sign(ORIGIN, 8, forged.root(8), 8, [])
    with pytest.raises(StaleBase) as stale:
        kit.signer.sign(ORIGIN, 5, log.root(5), 5, [])
    assert stale.value.size == 8
    with pytest.raises(SignerRefused, match="never shrinks"):
        kit.signer.sign(ORIGIN, 5, log.root(5), 8, [])
    with pytest.raises(ForeignOrigin):
        kit.signer.sign("other.example/siemgate/A/auditevents", 1, log.root(1), 0, [])
    with pytest.raises(BadSignRequest):
        kit.signer.sign(ORIGIN, 9, b"short", 8, [])
    with pytest.raises(BadSignRequest, match="empty tree"):
        kit.signer.sign(ORIGIN + "2", 0, log.root(), 0, [])
    # The signed state is unchanged by every refusal.
    state = kit.signer.state(ORIGIN)
    assert state is not None and (state.checkpoint.size, state.checkpoint.root) == (8, log.root())


def test_two_signers_on_one_state_file_cannot_both_extend_it(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    other = Signer(SignerKeyring.load(kit.key_file), kit.state_file)
    log = MemLog()
    log.append(4)
    kit.sign(log)
    log.append(4)
    results: list[object] = []
    barrier = threading.Barrier(2)

    def attempt(signer: Signer) -> None:
        barrier.wait()
        try:
            results.append(signer.sign(ORIGIN, log.size, log.root(), 4, log.proof(4, log.size)))
        except StaleBase as exc:
            results.append(exc)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in (kit.signer, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, StaleBase) and r.size == 8 for r in results) == 1


def test_state_file_open_to_others_is_refused(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    kit.signer.close()
    kit.state_file.chmod(0o664)
    with pytest.raises(SignerRefused, match="chmod 600"):
        Signer(kit.keyring, kit.state_file)


def test_rotation_signs_with_both_keys_and_old_checkpoints_keep_verifying(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(3)
    old_note = kit.sign(log)
    old_public = PublicKeyring.parse(kit.keyring.public().text())
    rotated = kit.keyring.rotated()
    rotated.save(kit.key_file)
    signer = Signer(SignerKeyring.load(kit.key_file), kit.state_file)
    log.append(2)
    both = signer.sign(ORIGIN, log.size, log.root(), 3, log.proof(3, log.size))
    assert both.count("\u2014 ") == 2
    open_checkpoint(both, old_public)  # verifiers that only know the old key still accept it
    retired = SignerKeyring.load(kit.key_file).retired_key(kit.keyring.keys[0].key_id)
    retired.save(kit.key_file)
    signer = Signer(SignerKeyring.load(kit.key_file), kit.state_file)
    log.append(1)
    new_only = signer.sign(ORIGIN, log.size, log.root(), 5, log.proof(5, log.size))
    assert new_only.count("\u2014 ") == 1
    public = retired.public()
    for note in (old_note, both, new_only):
        open_checkpoint(note, public)


def test_recovery_replaces_the_state_and_is_signed(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(10)
    kit.sign(log)
    # A restore from a backup taken at size 6, then other events.
    restored = MemLog(bodies=log.bodies[:6], entries=log.entries[:6])
    restored.append(2)
    with pytest.raises(SignerRefused):
        kit.signer.sign(ORIGIN, restored.size, restored.root(), 10, [])
    with pytest.raises(BadSignRequest, match="reason"):
        kit.signer.recover(ORIGIN, restored.size, restored.root(), "")
    rec_note, cp_note = kit.signer.recover(ORIGIN, restored.size, restored.root(), "restored the 02:00 backup")
    rec = open_recovery(rec_note, kit.keyring.public()).recovery
    assert (rec.previous_size, rec.previous_root, rec.restored_size) == (10, log.root(), 8)
    cp = open_checkpoint(cp_note, kit.keyring.public()).checkpoint
    assert (cp.size, cp.root) == (8, restored.root()) and cp.time > rec.time
    restored.append(1)
    kit.sign(restored)
    with pytest.raises(SignerRefused, match="nothing to recover"):
        kit.signer.recover(ORIGIN, restored.size, restored.root(), "again")
    assert [k for k, _ in kit.signer.history(ORIGIN)] == ["checkpoint", "recovery", "checkpoint", "checkpoint"]
    assert NAME in rec_note


def test_a_new_log_is_started_only_for_the_origin_siemgate_forms(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: any origin under the signer's name started a new log (measured: every variant below
    was signed as the first checkpoint of a fresh history), so whoever holds the signing secret
    could start a second history of a stream whose origin the signer already signs, under another
    text for it. Now a new log's origin must be `<name>/<account uuid>/<feature>` exactly, each new
    log is logged, and a log already signed goes on whatever its origin (a state file of before)."""
    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(3)
    caplog.set_level(logging.WARNING, "siemgate.signer")
    kit.sign(log)
    assert [r.getMessage() for r in caplog.records] == [
        f"started a new log: signed the first checkpoint of {ORIGIN}, at size 3"
    ]
    caplog.clear()
    account = ORIGIN.split("/")[-2]
    variants = [
        f"{NAME}/{account.lower()}/auditevents",
        f"{NAME}/{account}/AuditEvents",
        f"{NAME}/{account}/auditevents/",
        f"{NAME}/{account}/auditevents/2",
        f"{NAME}/{account}/x/auditevents",
        f"{NAME}//{account}/auditevents",
        f"{NAME}/{account}x/auditevents",
        f"{NAME}/{account}/events",
        f"{NAME}/{account}",
        NAME,
    ]
    for origin in variants:
        with pytest.raises(ForeignOrigin) as refused:
            kit.signer.sign(origin, log.size, log.root(), 0, [])
        assert f"never signed {origin} and starts a new log only for an origin {NAME}/<account uuid" in str(
            refused.value
        ), origin
        assert refused.value.status == 403 and kit.signer.state(origin) is None
    assert caplog.records == []
    other = f"{NAME}/{'B' * 26}/signinattempts"  # another account's stream: a new log
    kit.signer.sign(other, 1, log.root(1), 0, [])
    assert [r.getMessage() for r in caplog.records] == [
        f"started a new log: signed the first checkpoint of {other}, at size 1"
    ]
    # A log signed by an earlier release under another origin goes on (and is not logged again).
    legacy = f"{NAME}/A/auditevents"
    note = sign_note(Checkpoint(legacy, 3, log.root(), int(time.time()) - 10).text(), kit.keyring.signers_for(legacy))
    with sqlite3.connect(kit.state_file) as conn:
        conn.execute(
            "INSERT INTO signed (origin, size, root, time, note) VALUES (?, 3, ?, ?, ?)",
            (legacy, log.root(), int(time.time()) - 10, note),
        )
    conn.close()
    log.append(2)
    caplog.clear()
    extended = kit.signer.sign(legacy, log.size, log.root(), 3, log.proof(3, log.size))
    assert open_checkpoint(extended, kit.keyring.public()).checkpoint.size == 5
    assert caplog.records == []


def test_the_log_package_knows_every_stream() -> None:
    """The log package stays standalone, so it keeps its own list of the streams (the origins the
    signer starts and the witness starts cosigning)."""
    from siemgate.tlog.checkpoint import FEATURES

    assert tuple(f.value for f in Feature) == FEATURES
