"""Checkpoints (c2sp.org/tlog-checkpoint) and recovery statements, as note texts.

A checkpoint's text is the origin, the tree size, the base64 root and one extension line,
`time <unix seconds>`, the moment the signer signed it:

    events.example.com/siemgate/<account uuid>/auditevents
    1048576
    <base64 of the 32-byte root>
    time 1767225600

A recovery statement is what the signer signs when an operator declares, after a restore from
backup, that a log's history was replaced (docs/integrity.md, "Recovery"). Its first line can never
be an origin, so it can never be mistaken for a checkpoint:

    siemgate-log-recovery/v1
    origin <origin>
    previous <size> <base64 root>
    restored <size> <base64 root>
    time <unix seconds>
    reason <operator's text>
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass

from siemgate.model.timestamps import format_ns
from siemgate.tlog.cosignature import MAX_CLOCK_SKEW, WitnessPolicy
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.merkle import HASH_SIZE
from siemgate.tlog.note import NoteError, check_note_size, open_note

RECOVERY_HEADER = "siemgate-log-recovery/v1"
MAX_ORIGIN = 512
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_U64 = 2**64
# The streams of an account (siemgate.model.features.Feature; the log package stays standalone).
FEATURES = ("signinattempts", "itemusages", "auditevents")
# What follows the key name in the origin siemgate gives an account's stream: an account uuid as
# siemgate makes them (26 upper-case base32 characters) and a stream.
_STREAM = re.compile(r"/[A-Z2-7]{26}/(" + "|".join(FEATURES) + ")")


class CheckpointError(ValueError):
    """A checkpoint or recovery statement text is malformed; the message says which line."""


def check_origin(origin: str) -> str:
    """Return `origin` if it can name a log: non-empty, printable, no spaces or '+', bounded."""
    if not origin or len(origin) > MAX_ORIGIN or "+" in origin or any(c.isspace() or ord(c) < 0x21 for c in origin):
        raise CheckpointError(
            f"origin {origin[:80]!r} is invalid: non-empty, at most {MAX_ORIGIN} characters, no spaces or '+'"
        )
    return origin


def is_stream_origin(name: str, origin: str) -> bool:
    """Whether `origin` is exactly `<name>/<account uuid>/<feature>`, the one origin siemgate gives
    an account's stream in the log of the key named `name` (the only logs the signer starts and the
    witness starts cosigning)."""
    return origin.startswith(name) and _STREAM.fullmatch(origin, len(name)) is not None


def stream_origin_form(name: str) -> str:
    """The form of `is_stream_origin`, for error messages."""
    return f"{name}/<account uuid: 26 upper-case base32 characters>/<{'|'.join(FEATURES)}>"


def _decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) >= _U64:
        raise CheckpointError(f"{what} {text[:40]!r} is not a decimal number without leading zeros")
    return int(text)


def _root(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not base64") from None
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"{what} is not the base64 of a {HASH_SIZE}-byte hash")
    return raw


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


@dataclass(frozen=True)
class Checkpoint:
    """A log's state: origin, tree size, root hash and the signing time (unix seconds)."""

    origin: str
    size: int
    root: bytes
    time: int

    def text(self) -> str:
        """The note text to sign."""
        return f"{self.origin}\n{self.size}\n{b64(self.root)}\ntime {self.time}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text (without signatures)."""
        if not text.endswith("\n"):
            raise CheckpointError("a checkpoint text ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("a checkpoint has an origin, a size and a root line")
        if len(lines) != 4 or not lines[3].startswith("time "):
            raise CheckpointError("a siemgate checkpoint has exactly one extension line, 'time <unix seconds>'")
        origin = check_origin(lines[0])
        size = _decimal(lines[1], "the tree size")
        root = _root(lines[2], "the root hash")
        time = _decimal(lines[3][5:], "the time")
        return cls(origin, size, root, time)

    def describe(self) -> str:
        return f"checkpoint {self.origin} size {self.size} time {self.time}"

    def supersedes(self, old: Checkpoint) -> bool:
        """Whether this checkpoint, consistent with `old` (the same log), is the newer one to keep:
        a larger tree, or the same tree signed later. Keeping an older signing time of the same tree
        would hide how fresh the log was known to be."""
        return self.size > old.size or (self.size == old.size and self.time > old.time)


def stream_problem(cp: Checkpoint, feature: str | None) -> str | None:
    """Why `cp` is not a checkpoint of a `feature` log (origins end with `/<feature>`), or None.
    Another stream's log, however well signed, proves nothing about this one's events."""
    if feature is None or cp.origin.endswith(f"/{feature}"):
        return None
    return f"{cp.describe()} is not of the {feature} stream: another stream's log was served"


@dataclass(frozen=True)
class Recovery:
    """A signed declaration that a log's history was replaced by an operator's restore."""

    origin: str
    previous_size: int
    previous_root: bytes
    restored_size: int
    restored_root: bytes
    time: int
    reason: str

    def text(self) -> str:
        return (
            f"{RECOVERY_HEADER}\norigin {self.origin}\n"
            f"previous {self.previous_size} {b64(self.previous_root)}\n"
            f"restored {self.restored_size} {b64(self.restored_root)}\n"
            f"time {self.time}\nreason {self.reason}\n"
        )

    @classmethod
    def parse(cls, text: str) -> Recovery:
        if not text.endswith("\n"):
            raise CheckpointError("a recovery statement ends with a newline")
        lines = text[:-1].split("\n")
        keys = ("origin ", "previous ", "restored ", "time ", "reason ")
        if (
            len(lines) != 6
            or lines[0] != RECOVERY_HEADER
            or any(not line.startswith(k) for line, k in zip(lines[1:], keys, strict=True))
        ):
            raise CheckpointError(
                f"a recovery statement starts with {RECOVERY_HEADER} and has origin, previous, "
                "restored, time and reason lines"
            )
        prev = lines[2][9:].split(" ")
        rest = lines[3][9:].split(" ")
        if len(prev) != 2 or len(rest) != 2:
            raise CheckpointError("the previous and restored lines are '<size> <base64 root>'")
        return cls(
            origin=check_origin(lines[1][7:]),
            previous_size=_decimal(prev[0], "the previous size"),
            previous_root=_root(prev[1], "the previous root"),
            restored_size=_decimal(rest[0], "the restored size"),
            restored_root=_root(rest[1], "the restored root"),
            time=_decimal(lines[4][5:], "the time"),
            reason=check_reason(lines[5][7:]),
        )


def check_reason(reason: str) -> str:
    """A recovery reason: one line of printable text, 1 to 200 characters."""
    if not reason.strip() or len(reason) > 200 or any(ord(c) < 0x20 for c in reason):
        raise CheckpointError("the recovery reason must be one line of 1 to 200 printable characters")
    return reason


def unverified_text(note: str) -> str:
    """The text part of a signed note, before verification (to choose keys); NoteError if none
    or if the note is too large."""
    check_note_size(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line before its signatures")
    return note[: split + 1]


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose note verified, with the note as signed."""

    checkpoint: Checkpoint
    note: str


@dataclass(frozen=True)
class SignedRecovery:
    recovery: Recovery
    note: str


def check_not_backdated(cp: Checkpoint, old: Checkpoint, what: str) -> None:
    """CheckpointError when `cp` is dated before `old`, a checkpoint of the same log `what` (e.g.
    "accepted before"). A log's signer dates each checkpoint after the one before, so an earlier
    time is a replay or a checkpoint signed with a false time: by whoever holds the log key, or a
    retired one, which stays trusted for what is dated within its lifetime."""
    if cp.time < old.time:
        raise CheckpointError(
            f"{cp.describe()} is dated before the {old.describe()} {what}: a log's checkpoint times never go"
            " back (an old checkpoint replayed, or one signed with a false time, e.g. by a stolen retired key)"
        )


def check_not_future(cp: Checkpoint, now: int) -> None:
    """CheckpointError when `cp` is dated more than MAX_CLOCK_SKEW after `now` (unix seconds).

    Freshness is judged on a checkpoint's `time`, so a checkpoint dated ahead would never look stale:
    only whoever holds the log key (or a signer whose clock is wrong) can make one, and no verifier
    or server may accept it."""
    if cp.time > now + MAX_CLOCK_SKEW:
        raise CheckpointError(
            f"{cp.describe()} is dated {cp.time - now} s after {format_ns(now * 1_000_000_000)}, the time it is"
            f" judged at (allowed clock skew {MAX_CLOCK_SKEW} s): a checkpoint from the future never looks stale;"
            " the log signer's clock or its key is not to be trusted"
        )


def open_checkpoint(
    note: str, keys: PublicKeyring, witnesses: WitnessPolicy | None = None, now: int | None = None
) -> SignedCheckpoint:
    """Parse and verify a signed checkpoint with the keys trusted for its origin and, given a
    witness policy, its quorum of witness cosignatures; it must not be dated in the future of `now`
    (unix seconds, default this host's clock; a verifier's `--as-of`), see `check_not_future`.

    Raises CheckpointError or NoteError naming what is wrong."""
    cp = Checkpoint.parse(unverified_text(note))
    verifiers = keys.verifiers_for(cp.origin, cp.time)
    if not verifiers:
        raise NoteError(f"no trusted key covers origin {cp.origin} at time {cp.time}")
    open_note(note, verifiers)
    check_not_future(cp, int(time.time()) if now is None else now)
    if witnesses is not None:
        witnesses.check(note, cp.time)
    return SignedCheckpoint(cp, note)


def open_recovery(note: str, keys: PublicKeyring) -> SignedRecovery:
    """Parse and verify a signed recovery statement."""
    rec = Recovery.parse(unverified_text(note))
    verifiers = keys.verifiers_for(rec.origin, rec.time)
    if not verifiers:
        raise NoteError(f"no trusted key covers origin {rec.origin} at time {rec.time}")
    open_note(note, verifiers)
    return SignedRecovery(rec, note)
