"""The signer's core: the only holder of the log keys, with its own state (docs/integrity.md).

For each origin it keeps the last checkpoint it signed, in its own SQLite state file (0600), never
in siemgate's database. It signs a new tree only when given a consistency proof from exactly that
last signed tree, so whoever writes the database can neither get a rewritten history signed nor
roll a log back. Check and persist happen in one `BEGIN IMMEDIATE` transaction, so concurrent
requests, or two signer processes sharing a state file, cannot both extend the same state.

A heartbeat is a request for the same size and root (empty proof): it gets a fresh time. Times
strictly increase per origin. `recover` is the one way to replace a log's history (after a
legitimate restore from backup): it signs a recovery statement naming both trees, which
verifiers report as such.

It starts a new log (signs the first checkpoint of an origin it never signed) only for an origin
of the one form siemgate gives each account's stream, `<key name>/<account uuid>/<feature>`, so
whoever holds the signing secret cannot start a second history of a stream under a variant of its
origin; and it logs each new origin it starts.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from siemgate.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    Recovery,
    check_origin,
    check_reason,
    is_stream_origin,
    stream_origin_form,
)
from siemgate.tlog.keys import SignerKeyring, covers
from siemgate.tlog.merkle import EMPTY_ROOT, HASH_SIZE, ProofError
from siemgate.tlog.note import sign_note
from siemgate.tlog.proof import verify_consistency

MAX_PROOF = 64
# Seconds a checkpoint may be dated after this host's clock: times strictly increase per origin, so
# trees signed faster than one a second, or a clock set back, date them ahead; past this, signing
# pauses (503) until the clock catches up.
MAX_AHEAD = 60
log = logging.getLogger("siemgate.signer")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signed (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, time INTEGER NOT NULL, note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, origin TEXT NOT NULL, size INTEGER NOT NULL, time INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('checkpoint', 'recovery')), note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_origin ON history (origin, id);
"""


class SignerRefused(Exception):
    """The signer will not sign this; `status` is the HTTP status the API answers with."""

    status = 422

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadSignRequest(SignerRefused):
    status = 400


class ForeignOrigin(SignerRefused):
    status = 403


class StaleBase(SignerRefused):
    """The request extends a size the signer did not sign last; `size` is what it did sign."""

    status = 409

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class SignedState:
    """The last checkpoint the signer signed for an origin."""

    checkpoint: Checkpoint
    note: str


def open_state_file(path: Path, schema: str = _SCHEMA) -> sqlite3.Connection:
    """Open (creating with mode 0600) a state file of the signer (or, with its own `schema`, the
    witness); SignerRefused when others can read or write it."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SignerRefused(f"state file {path} has mode {mode:o}; run: chmod 600 {path}")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.executescript(schema)
    return conn


class Signer:
    """Signs checkpoints that extend what it signed before; one instance per state file."""

    def __init__(self, keyring: SignerKeyring, state_path: Path, clock: Callable[[], float] = time.time) -> None:
        self.keyring = keyring
        self._conn = open_state_file(state_path)
        self._clock = clock
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def health(self) -> None:
        """Returns: an in-process signer always answers (SignerClient.health asks a remote one)."""

    def state(self, origin: str) -> SignedState | None:
        """The last checkpoint signed for `origin`, or None."""
        with self._lock:
            row = self._conn.execute("SELECT note, size, root, time FROM signed WHERE origin = ?", (origin,)).fetchone()
        if row is None:
            return None
        return SignedState(Checkpoint(origin, row[1], row[2], row[3]), row[0])

    def history(self, origin: str, limit: int = 100) -> list[tuple[str, str]]:
        """(kind, note) of the newest `limit` notes signed for `origin`, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT kind, note FROM history WHERE origin = ? ORDER BY id DESC LIMIT ?", (origin, limit)
            ).fetchall()
        return [(r[0], r[1]) for r in reversed(rows)]

    def _check_request(self, origin: str, size: int, root: bytes, proof: Sequence[bytes]) -> None:
        try:
            check_origin(origin)
        except CheckpointError as exc:
            raise BadSignRequest(str(exc)) from None
        if not covers(self.keyring.name, origin):
            raise ForeignOrigin(f"origin {origin} is not under this signer's name {self.keyring.name}")
        if not 0 <= size < 2**63:
            raise BadSignRequest(f"tree size {size} is out of range")
        if len(root) != HASH_SIZE:
            raise BadSignRequest(f"the root must be {HASH_SIZE} bytes")
        if size == 0 and root != EMPTY_ROOT:
            raise BadSignRequest("the root of an empty tree is the SHA-256 of nothing")
        if len(proof) > MAX_PROOF:
            raise BadSignRequest(f"a consistency proof has at most {MAX_PROOF} hashes")

    def _next_time(self, origin: str, last: int | None) -> int:
        """The time of the next checkpoint of `origin`: now, and after `last`. SignerRefused(503), a
        pause and not a refusal of the tree, when that is more than MAX_AHEAD after this host's clock."""
        now = int(self._clock())
        if last is None:
            return now
        if last + 1 - now > MAX_AHEAD:
            raise SignerRefused(
                f"the last checkpoint of {origin} is dated {last - now} s after this host's clock, and the next"
                f" must be later (at most {MAX_AHEAD} s ahead): checkpoints were asked for faster than one a"
                " second, or the clock was set back (if it is wrong, fix it: NTP); signing resumes when the"
                " clock reaches it",
                status=503,
            )
        return max(now, last + 1)

    def sign(self, origin: str, size: int, root: bytes, old_size: int, proof: Sequence[bytes]) -> str:
        """Sign the tree (origin, size, root) given a consistency proof from `old_size`, which must be
        the size this signer signed last for `origin` (0 for a log it never signed).

        Raises StaleBase when `old_size` is not that size, SignerRefused when the tree is not an
        extension of it, ForeignOrigin or BadSignRequest for requests it cannot take."""
        self._check_request(origin, size, root, proof)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT size, root, time, note FROM signed WHERE origin = ?", (origin,)).fetchone()
                last_size, last_root, last_time, last_note = row if row is not None else (0, None, None, None)
                if row is None:
                    self._check_new_log(origin)
                if old_size != last_size:
                    raise StaleBase(f"the signer last signed size {last_size} of {origin}, not {old_size}", last_size)
                if size < last_size:
                    raise SignerRefused(f"size {size} is smaller than the signed size {last_size}: a log never shrinks")
                if last_root is not None:
                    try:
                        verify_consistency(last_size, size, last_root, root, proof)
                    except ProofError as exc:
                        raise SignerRefused(
                            f"the tree of size {size} is not an extension of the signed size {last_size}: {exc}"
                        ) from None
                elif proof:
                    raise BadSignRequest("the first checkpoint of a log takes no consistency proof")
                if (size, root) == (last_size, last_root) and last_time is not None and last_time >= int(self._clock()):
                    # A heartbeat of the tree signed last, whose time is not past yet: that checkpoint
                    # is as fresh as a new one (and a flood of heartbeats cannot date them ahead).
                    conn.execute("ROLLBACK")
                    return str(last_note)
                cp = Checkpoint(origin, size, root, self._next_time(origin, last_time))
                note = sign_note(cp.text(), self.keyring.signers_for(origin))
                conn.execute(
                    "INSERT INTO signed (origin, size, root, time, note) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
                    "time = excluded.time, note = excluded.note",
                    (origin, size, root, cp.time, note),
                )
                conn.execute(
                    "INSERT INTO history (origin, size, time, kind, note) VALUES (?, ?, ?, 'checkpoint', ?)",
                    (origin, size, cp.time, note),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if last_root is None:
            log.warning("started a new log: signed the first checkpoint of %s, at size %d", origin, size)
        return note

    def _check_new_log(self, origin: str) -> None:
        """ForeignOrigin when `origin`, which this signer never signed, is not of the form siemgate
        gives an account's stream: another text for a stream would start a second history of it."""
        if not is_stream_origin(self.keyring.name, origin):
            raise ForeignOrigin(
                f"this signer never signed {origin} and starts a new log only for an origin"
                f" {stream_origin_form(self.keyring.name)}, the one origin siemgate gives each account's stream"
            )

    def recover(self, origin: str, size: int, root: bytes, reason: str) -> tuple[str, str]:
        """Replace the signed state of `origin` with (size, root) after a restore from backup.

        Returns (recovery statement note, first checkpoint note of the restored tree), both
        signed; verifiers report the replacement. Refuses when nothing needs recovering."""
        self._check_request(origin, size, root, ())
        try:
            check_reason(reason)
        except CheckpointError as exc:
            raise BadSignRequest(str(exc)) from None
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT size, root, time FROM signed WHERE origin = ?", (origin,)).fetchone()
                if row is None:
                    raise SignerRefused(f"the signer never signed {origin}: there is nothing to recover")
                last_size, last_root, last_time = row
                if (size, root) == (last_size, last_root):
                    raise SignerRefused(f"{origin} is already at size {size} with that root: nothing to recover")
                when = self._next_time(origin, last_time)
                rec = Recovery(origin, last_size, last_root, size, root, when, reason)
                signers = self.keyring.signers_for(origin)
                rec_note = sign_note(rec.text(), signers)
                cp = Checkpoint(origin, size, root, when + 1)
                cp_note = sign_note(cp.text(), signers)
                conn.execute(
                    "UPDATE signed SET size = ?, root = ?, time = ?, note = ? WHERE origin = ?",
                    (size, root, cp.time, cp_note, origin),
                )
                conn.executemany(
                    "INSERT INTO history (origin, size, time, kind, note) VALUES (?, ?, ?, ?, ?)",
                    [(origin, size, when, "recovery", rec_note), (origin, size, cp.time, "checkpoint", cp_note)],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return rec_note, cp_note
