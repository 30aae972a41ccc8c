"""The witness's core (c2sp.org/tlog-witness): it cosigns a log's checkpoint only when the
checkpoint is signed by a key it trusts for that origin and is consistent with the last checkpoint
it cosigned for the origin (docs/integrity.md, "Witnesses").

A submission is `old <size>\\n`, at most 63 base64 consistency-proof lines, a blank line and the
signed checkpoint. Answers, as the spec orders them:

- 400 malformed request or checkpoint, or `old` larger than the checkpoint's size;
- 404 an origin no trusted key covers, or an origin it never cosigned that is not of the one form
  siemgate gives an account's stream, `<key name>/<account uuid>/<feature>` (an unknown log: the
  witness starts cosigning only siemgate's streams, so whoever holds the log key cannot have a
  second history of a stream witnessed under a variant of its origin); each new origin it starts
  cosigning is one warning line in its output (this 404 is decided with the state, so after the 403);
- 403 no valid signature by a trusted key (or a trusted key's signature fails);
- 409 `old` is not the size the witness last cosigned for the origin (the body is that size);
- 422 a size-0 checkpoint without the empty root, a proof from size 0, a proof that does not
  verify, or the same size as the last cosigned with another root (a forked history); also (the
  spec leaves these to the witness) a checkpoint dated more than MAX_CLOCK_SKEW after the
  witness's clock, or dated before the checkpoint it cosigned last;
- 503 (not in the spec) its own clock more than MAX_AHEAD behind its last cosignature of the
  origin: it cosigns that origin again once the clock catches up;
- 200 the witness's cosignature line(s).

The witness keeps, in its own SQLite state file (0600), only the latest cosigned checkpoint per
origin, plus each distinct checkpoint it refused with a 422 although the log had signed it
(evidence of a misbehaving log), with the log's signatures only. A 409 is not evidence (a log
learns the witness's size from it), so replaying an old checkpoint cannot grow the file.
Check and persist run in one `BEGIN IMMEDIATE` transaction, so two submissions from the same old
size (or two witness processes on one state file) can never both advance it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from siemgate.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_not_backdated,
    check_not_future,
    is_stream_origin,
    stream_origin_form,
)
from siemgate.tlog.cosignature import cosign
from siemgate.tlog.keys import PublicKeyring, covers
from siemgate.tlog.merkle import EMPTY_ROOT, HASH_SIZE, ProofError
from siemgate.tlog.note import NoteError, NoteSigner, open_note, split_note
from siemgate.tlog.proof import verify_consistency
from siemgate.tlog.signer import SignerRefused, open_state_file

MAX_PROOF_LINES = 63
# Seconds a cosignature may be dated after this witness's clock. Its timestamps never go back per
# origin (a later cosignature dated earlier would say a smaller tree was the largest it had seen
# after it had cosigned a larger one), so after one cosignature made while its clock was ahead it
# dates cosignatures at that time; past this, it cosigns nothing of the origin (503) until its clock
# catches up, rather than date cosignatures ahead of its clock.
MAX_AHEAD = 60
log = logging.getLogger("siemgate.witness")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,
    cosigned_at INTEGER NOT NULL, note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY, origin TEXT NOT NULL, at INTEGER NOT NULL, status INTEGER NOT NULL,
    reason TEXT NOT NULL, request TEXT NOT NULL
);
"""


class WitnessRefused(Exception):
    """The witness will not cosign; `status` is the HTTP status the spec gives, `size` (409 only)
    the size it last cosigned for the origin."""

    def __init__(self, status: int, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.size = size


@dataclass(frozen=True)
class Submission:
    """A parsed add-checkpoint request."""

    old: int
    proof: list[bytes]
    note: str
    checkpoint: Checkpoint


def _size(text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) >= 2**63:
        raise WitnessRefused(400, f"the old size {text[:40]!r} is not a decimal without leading zeros")
    return int(text)


def parse_submission(body: bytes) -> Submission:
    """Parse an add-checkpoint body; WitnessRefused(400) says what is malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessRefused(400, "the request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefused(400, "the request has no blank line between the proof and the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise WitnessRefused(400, "the request's first line must be 'old <size>'")
    old = _size(lines[0][4:])
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefused(400, f"a request carries at most {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for n, line in enumerate(lines[1:], 1):
        try:
            h = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            h = b""
        if len(h) != HASH_SIZE:
            raise WitnessRefused(400, f"proof line {n} is not the base64 of a {HASH_SIZE}-byte hash")
        proof.append(h)
    try:
        cp_text, _ = split_note(note)
        checkpoint = Checkpoint.parse(cp_text)
    except (NoteError, CheckpointError) as exc:
        _refuse_unsigned(note)
        raise WitnessRefused(400, f"the checkpoint is malformed: {exc}") from None
    return Submission(old, proof, note, checkpoint)


def _refuse_unsigned(note: str) -> None:
    """WitnessRefused(403) when `note` is a checkpoint with no signature lines at all (the spec's
    answer when no signature of a trusted key is present)."""
    try:
        Checkpoint.parse(note.removesuffix("\n") if note.endswith("\n\n") else note)
    except CheckpointError:
        return
    raise WitnessRefused(403, "the checkpoint carries no signature: a witness cosigns only what the log signed")


def origin_hash(origin: str) -> str:
    """The lower-case hex SHA-256 of an origin (the witness's monitoring path)."""
    return hashlib.sha256(origin.encode()).hexdigest()


class Witness:
    """Cosigns checkpoints of the logs its `log_keys` cover; one instance per state file."""

    def __init__(
        self, key: NoteSigner, log_keys: PublicKeyring, state_path: Path, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = key
        self.log_keys = log_keys
        try:
            self._conn: sqlite3.Connection = open_state_file(state_path, _SCHEMA)
        except SignerRefused as exc:  # names the file and what to fix
            raise WitnessRefused(500, exc.message) from None
        self._clock = clock
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def latest(self, origin: str) -> tuple[int, bytes, str] | None:
        """(size, root, note with the log's signatures and this witness's cosignature) of the
        latest checkpoint cosigned for `origin`, or None."""
        with self._lock:
            row = self._conn.execute("SELECT size, root, note FROM latest WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def latest_by_hash(self, hex_hash: str) -> str | None:
        """The latest cosigned note of the origin whose SHA-256 is `hex_hash`, or None."""
        with self._lock:
            rows = self._conn.execute("SELECT origin, note FROM latest").fetchall()
        return next((note for origin, note in rows if origin_hash(origin) == hex_hash), None)

    def refusals(self, origin: str) -> list[tuple[int, int, str]]:
        """(time, status, reason) of the refused submissions of `origin` that the log had signed."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT at, status, reason FROM refused WHERE origin = ? ORDER BY id", (origin,)
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def forget(self, origin: str) -> bool:
        """Drop what was cosigned for `origin` (its refusals stay), so that the next submission
        starts from old size 0: the operator's acceptance of a log's recovery, after reading its
        signed recovery statement. Returns whether there was anything to forget."""
        with self._lock:
            done = self._conn.execute("DELETE FROM latest WHERE origin = ?", (origin,)).rowcount
        return bool(done)

    def add_checkpoint(self, body: bytes) -> str:
        """Check a submission and, if it passes, record the checkpoint and return this witness's
        cosignature line; WitnessRefused with the spec's status otherwise."""
        sub = parse_submission(body)
        cp = sub.checkpoint
        if not self.log_keys.verifiers_for(cp.origin):
            raise WitnessRefused(404, f"this witness knows no log key for origin {cp.origin}")
        try:
            opened = open_note(sub.note, self.log_keys.verifiers_for(cp.origin, cp.time))
        except NoteError as exc:
            raise WitnessRefused(403, f"the checkpoint is not signed by a trusted log key: {exc}") from None
        if sub.old > cp.size:
            raise WitnessRefused(400, f"the old size {sub.old} is larger than the checkpoint's size {cp.size}")
        try:
            check_not_future(cp, int(self._clock()))
            return self._check_and_cosign(sub, opened.text)
        except CheckpointError as exc:
            refused = WitnessRefused(422, f"not cosigned: {exc} (or this witness's own clock is wrong)")
            self._record_refusal(sub, opened.text, refused)
            raise refused from None
        except WitnessRefused as exc:
            if exc.status == 422:
                self._record_refusal(sub, opened.text, exc)
            raise

    def _check_and_cosign(self, sub: Submission, text: str) -> str:
        cp = sub.checkpoint
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT size, root, cosigned_at, note FROM latest WHERE origin = ?", (cp.origin,)
                ).fetchone()
                last_size, last_root, last_at, last_note = row if row is not None else (0, None, 0, None)
                if row is None:
                    self._check_new_log(cp.origin)
                if sub.old != last_size:
                    raise WitnessRefused(
                        409, f"this witness last cosigned size {last_size} of {cp.origin}, not {sub.old}", last_size
                    )
                _check_consistency(sub, last_root)
                if last_note is not None:
                    _check_not_backdated(cp, last_note)
                timestamp = _next_timestamp(cp.origin, int(self._clock()), last_at)
                line = cosign(self.key, text, timestamp)
                note = self._published(sub.note, text, line)
                conn.execute(
                    "INSERT INTO latest (origin, size, root, cosigned_at, note) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
                    "cosigned_at = excluded.cosigned_at, note = excluded.note",
                    (cp.origin, cp.size, cp.root, timestamp, note),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if row is None:
            log.warning(
                "started cosigning a new log: cosigned the first checkpoint of %s, at size %d", cp.origin, cp.size
            )
        return line

    def _check_new_log(self, origin: str) -> None:
        """WitnessRefused(404) when `origin`, which this witness never cosigned, is not of the form
        siemgate gives an account's stream under the name of a trusted log key covering it."""
        names = sorted({k.verifier.name for k in self.log_keys.keys if covers(k.verifier.name, origin)})
        if not any(is_stream_origin(name, origin) for name in names):
            forms = " or ".join(stream_origin_form(name) for name in names)
            raise WitnessRefused(
                404,
                f"this witness never cosigned {origin} and starts cosigning a log only for an origin {forms},"
                " the one origin siemgate gives each account's stream",
            )

    def _published(self, note: str, text: str, cosignature: str) -> str:
        """The checkpoint as the monitoring endpoint serves it: the log's verified signatures and
        this witness's cosignature (never other lines a client sent)."""
        return self._log_signed(note, text) + cosignature

    def _log_signed(self, note: str, text: str) -> str:
        """The checkpoint `text` with the signature lines of `note` by trusted log keys, each key
        once (a client may repeat a line or add others; only these are kept or served)."""
        cp = Checkpoint.parse(text)
        known = {(v.name, v.key_id) for v in self.log_keys.verifiers_for(cp.origin, cp.time)}
        lines: dict[tuple[str, int], str] = {}
        for sig in split_note(note)[1]:
            if (sig.name, sig.key_id) in known:
                lines.setdefault((sig.name, sig.key_id), sig.line())
        return text + "\n" + "".join(lines.values())

    def _record_refusal(self, sub: Submission, text: str, exc: WitnessRefused) -> None:
        """Keep a refused checkpoint the log signed as evidence, once per distinct signed note."""
        evidence = self._log_signed(sub.note, text)
        origin = sub.checkpoint.origin
        with self._lock:
            if self._conn.execute(
                "SELECT 1 FROM refused WHERE origin = ? AND request = ?", (origin, evidence)
            ).fetchone():
                return
            self._conn.execute(
                "INSERT INTO refused (origin, at, status, reason, request) VALUES (?, ?, ?, ?, ?)",
                (origin, int(self._clock()), exc.status, exc.message, evidence),
            )


def _next_timestamp(origin: str, now: int, last_at: int) -> int:
    """The timestamp of the next cosignature of `origin`: now, and not before the last one
    (`last_at`); WitnessRefused(503) when that is more than MAX_AHEAD after this witness's clock."""
    if last_at - now > MAX_AHEAD:
        raise WitnessRefused(
            503,
            f"this witness's clock reads {now}, {last_at - now} s before its last cosignature of {origin}"
            f" (time {last_at}): its clock was ahead then or is behind now. It cosigns nothing of this origin"
            f" until its clock reaches that time, rather than date a cosignature more than {MAX_AHEAD} s after"
            " its clock (if the clock is wrong now, fix it: NTP)",
        )
    return max(now, last_at)


def _check_not_backdated(cp: Checkpoint, last_note: str) -> None:
    """WitnessRefused(422) when `cp` is dated before the checkpoint cosigned last (`last_note`)."""
    try:
        check_not_backdated(cp, Checkpoint.parse(split_note(last_note)[0]), "this witness cosigned last")
    except CheckpointError as exc:
        raise WitnessRefused(422, str(exc)) from None


def _check_consistency(sub: Submission, last_root: bytes | None) -> None:
    """The spec's 422 checks of a submission whose old size matches the recorded one."""
    cp = sub.checkpoint
    if cp.size == 0 and cp.root != EMPTY_ROOT:
        raise WitnessRefused(422, "a checkpoint of size 0 must have the empty tree's root")
    if sub.old == 0:
        if sub.proof:
            raise WitnessRefused(422, "a submission from old size 0 takes no consistency proof")
        return
    assert last_root is not None
    if sub.old == cp.size and cp.root != last_root:
        raise WitnessRefused(
            422, f"this witness cosigned another root for size {cp.size} of {cp.origin}: the log forked"
        )
    try:
        verify_consistency(sub.old, cp.size, last_root, cp.root, sub.proof)
    except ProofError as exc:
        raise WitnessRefused(
            422, f"size {cp.size} is not consistent with the cosigned size {sub.old} of {cp.origin}: {exc}"
        ) from None
