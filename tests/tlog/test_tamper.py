"""Tampering with the database, on both backends, is reported by `siemgate-verify bundle` with
the index it touched — run as its own process, with only the public key and exported files.

Each test builds a log of 600 events with checkpoints at 300, 500 and 600 through the real store,
integrator and signer, tampers with the database as someone with write access would (raw SQL),
exports again with `siemgate log export`'s code, and verifies."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siemgate.config import load_settings
from siemgate.integrity.keys import LogKeys
from siemgate.integrity.service import LogService
from siemgate.integrity.tree import StoredTree
from siemgate.model.features import Feature
from siemgate.store.base import Account, Store
from siemgate.store.sqlite import SQLiteStore
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.merkle import subtree_hash
from siemgate.tlog.note import sign_note

from .store_log_kit import SECOND, new_account, snapshot, sql, write_events
from .tlog_kit import Kit, make_kit

AUDIT = Feature.AUDITEVENTS


@dataclass
class Scene:
    store: Store
    account: Account
    service: LogService
    kit: Kit
    tmp: Path
    exports: int = 0

    def where(self, extra: str = "") -> tuple[Any, ...]:
        return (self.account.id, AUDIT.code)

    def export(self) -> Path:
        self.exports += 1
        out = self.tmp / f"export{self.exports}"
        cutoff = time.time_ns() - 30 * 86400 * SECOND
        self.service.export(self.account.id, AUDIT, out, cutoff)
        return out

    def newest_checkpoint_file(self, bundle: Path) -> Path:
        notes = sorted((bundle / "checkpoints").iterdir())
        newest = max(notes, key=lambda p: Checkpoint.parse(p.read_text().rsplit("\n\n", 1)[0] + "\n").time)
        saved = self.tmp / f"saved-{bundle.name}.checkpoint"
        saved.write_text(newest.read_text())
        return saved

    def verify(self, bundle: Path, *known: Path) -> tuple[int, str]:
        args = [
            sys.executable,
            "-m",
            "siemgate.tlog.verify_cli",
            "bundle",
            str(bundle),
            "--key",
            str(self.kit.public_key),
        ]
        for path in known:
            args += ["--checkpoint", str(path)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, done.stdout + done.stderr


def _scene(store: Store, tmp: Path, grow: Callable[[Scene, int], object] | None = None) -> Scene:
    kit = make_kit(tmp)
    settings = load_settings(data_dir=tmp / "data", integrity_public_key_file=kit.public_key)
    service = LogService(settings, store, time.time_ns, LogKeys(settings))
    service.signer = kit.signer  # type: ignore[assignment]  # the signer's own code, in process
    scene = Scene(store, new_account(store), service, kit, tmp)
    start = time.time_ns() - 3600 * SECOND
    done = 0
    for size in (300, 500, 600):
        write_events(store, scene.account, size - done, start=start + done * SECOND)
        done = size
        assert service.checkpoint(scene.account.id, AUDIT).size == size
        if grow is not None:
            grow(scene, size)
    return scene


def _invalid(result: tuple[int, str], index: int, words: str) -> None:
    code, out = result
    assert code == 1, out
    first = next(line for line in out.splitlines() if line.startswith("INVALID"))
    assert first.startswith((f"INVALID index {index} ", f"INVALID index {index}:")) and words in out, out
    assert f"first bad index {index})" in out, out


def test_an_untouched_log_verifies(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    bundle = scene.export()
    code, out = scene.verify(bundle)
    assert code == 0 and "VALID" in out, out
    again = scene.export()  # a later export is consistent with what an auditor saved from the first
    assert scene.verify(again, scene.newest_checkpoint_file(bundle))[0] == 0


def _body(scene: Scene, seq: int) -> bytes:
    return bytes(
        sql(
            scene.store,
            "SELECT body FROM events WHERE account_id = ? AND feature = ? AND seq = ?",
            (*scene.where(), seq),
        )[0][0]
    )


def _set_body(scene: Scene, seq: int, body: bytes) -> None:
    sql(
        scene.store,
        "UPDATE events SET body = ? WHERE account_id = ? AND feature = ? AND seq = ?",
        (body, *scene.where(), seq),
    )


def _row(scene: Scene, seq: int) -> list[Any]:
    row = sql(
        scene.store,
        "SELECT account_id, feature, seq, ts, max_ts, uuid, body, v1_cut FROM events"
        " WHERE account_id = ? AND feature = ? AND seq = ?",
        (*scene.where(), seq),
    )[0]
    return list(row)


def test_one_byte_of_one_stored_body_changed(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    body = _body(scene, 42)
    _set_body(scene, 42, body.replace(b'"suspend"', b'"suspenD"', 1))
    _invalid(scene.verify(scene.export()), 41, "does not hash to its log entry")


def test_one_event_row_deleted(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    sql(scene.store, "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq = ?", (*scene.where(), 100))
    _invalid(scene.verify(scene.export()), 99, "the event was deleted")


def test_a_row_inserted_with_a_taken_seq(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    row = _row(scene, 50)
    row[5] = "FORGED" + row[5][6:]
    row[6] = row[6].replace(row[6][row[6].index(b'"uuid":"') + 8 : row[6].index(b'"uuid":"') + 14], b"FORGED", 1)
    marks = ", ".join("?" * 8)
    # SQLite's key is (account, feature, seq): the forged row replaces the event; PostgreSQL takes both.
    verb = "INSERT OR REPLACE" if isinstance(store, SQLiteStore) else "INSERT"
    sql(
        scene.store,
        f"{verb} INTO events (account_id, feature, seq, ts, max_ts, uuid, body, v1_cut) VALUES ({marks})",
        tuple(row),
    )
    code, out = scene.verify(scene.export())
    _invalid((code, out), 49, "index 49")


def test_a_row_inserted_with_a_fresh_seq(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    row = _row(scene, 600)
    row[2] = 601
    row[5] = "FORGED" + row[5][6:]
    marks = ", ".join("?" * 8)
    sql(
        scene.store,
        f"INSERT INTO events (account_id, feature, seq, ts, max_ts, uuid, body, v1_cut) VALUES ({marks})",
        tuple(row),
    )
    _invalid(scene.verify(scene.export()), 600, "has no entry")


def test_two_events_swapped(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    a, b = _body(scene, 10), _body(scene, 20)
    _set_body(scene, 10, b)
    _set_body(scene, 20, a)
    _invalid(scene.verify(scene.export()), 9, "does not hash to its log entry")


def test_a_stored_tree_hash_edited(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    sql(
        scene.store,
        "UPDATE log_hashes SET hash = ? WHERE account_id = ? AND feature = ? AND level = 8 AND idx = 0",
        (hashlib.sha256(b"forged").digest(), *scene.where()),
    )
    _invalid(scene.verify(scene.export()), 0, "stored tree hash over indices 0..255 differs")
    # the signer refused to sign the rewritten tree: the log is stopped with that reason
    state = scene.store.log_state(scene.account.id, AUDIT)
    assert state is not None and state.error is not None and "refused" in state.error


def test_the_database_rolled_back_after_a_newer_checkpoint_was_exported(store: Store, tmp_path: Path) -> None:
    backups: dict[int, Callable[[], None]] = {}
    scene = _scene(store, tmp_path, lambda s, size: backups.setdefault(size, snapshot(s.store, s.account.id)))
    saved = scene.newest_checkpoint_file(scene.export())
    backups[300]()  # restore the backup taken at size 300
    _invalid(scene.verify(scene.export(), saved), 300, "indices 300..599 are missing")


def test_the_newest_events_truncated(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    saved = scene.newest_checkpoint_file(scene.export())
    where = scene.where()
    root = subtree_hash(0, 500, StoredTree(store, scene.account.id, AUDIT, 500))
    for statement in (
        "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq > 500",
        "DELETE FROM log_entries WHERE account_id = ? AND feature = ? AND idx >= 500",
        "DELETE FROM log_checkpoints WHERE account_id = ? AND feature = ? AND size > 500",
        "UPDATE streams SET head_seq = 500 WHERE account_id = ? AND feature = ?",
    ):
        sql(store, statement, where)
    sql(store, "UPDATE log_state SET size = 500, root = ? WHERE account_id = ? AND feature = ?", (root, *where))
    _invalid(scene.verify(scene.export(), saved), 500, "indices 500..599 are missing")


def test_two_different_checkpoints_of_the_same_size(store: Store, tmp_path: Path) -> None:
    scene = _scene(store, tmp_path)
    bundle = scene.export()
    honest = Checkpoint.parse(scene.newest_checkpoint_file(bundle).read_text().rsplit("\n\n", 1)[0] + "\n")
    forged = Checkpoint(honest.origin, 600, hashlib.sha256(b"another history").digest(), honest.time + 5)
    fork = tmp_path / "fork.checkpoint"
    fork.write_text(sign_note(forged.text(), scene.kit.keyring.signers_for(honest.origin)))
    _invalid(scene.verify(bundle, fork), 599, "the log forked")
