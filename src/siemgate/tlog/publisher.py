"""When and how the server asks the signer for checkpoints (docs/integrity.md, "Cadence").

A log is signed *on change* (its integrated size grew) at most once per `min_interval`, re-signed
as a *heartbeat* when nothing changed for `heartbeat` seconds, and signed once after each UTC
midnight (the *day-close* checkpoint, which covers every event committed that day). `publish`
sends the signer a consistency proof from the size it signed last; when the signer answers that it
signed another size (the server's copy of the last checkpoint is older, e.g. lost with a crash
between the signer's answer and the database commit), it retries once from the signer's size. A
signer ahead of the tree (the database was rolled back) is not papered over: it needs
`siemgate log recover`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.merkle import NodeReader, subtree_hash
from siemgate.tlog.proof import consistency_proof
from siemgate.tlog.signer import StaleBase

DAY = 86400
RECOVER = "if the database was restored from a backup, run siemgate log recover"


class SignerAPI(Protocol):
    def sign(self, origin: str, size: int, root: bytes, old_size: int, proof: Sequence[bytes]) -> str: ...


class SignerAhead(Exception):
    """The signer signed a larger tree than the log holds: the log was rolled back or truncated."""


@dataclass(frozen=True)
class Cadence:
    """Seconds between checkpoints of a changing log, and between heartbeats of an idle one."""

    min_interval: int = 10
    heartbeat: int = 3600

    def __post_init__(self) -> None:
        if not 1 <= self.min_interval <= self.heartbeat:
            raise ValueError("the checkpoint interval must be at least 1 s and at most the heartbeat interval")


def due(cadence: Cadence, size: int, last: Checkpoint | None, now: int) -> str | None:
    """Why the log of `size` entries needs a checkpoint now ("first", "change", "day-close",
    "heartbeat"), or None."""
    if last is None:
        return "first" if size > 0 else None
    if now // DAY > last.time // DAY:
        return "day-close"
    if size != last.size and now - last.time >= cadence.min_interval:
        return "change"
    if now - last.time >= cadence.heartbeat:
        return "heartbeat"
    return None


def ahead_message(origin: str, signed: int, size: int) -> str:
    """What is wrong, and what to do, when the signer signed `signed` entries of a log of `size`."""
    return f"{origin}: the signer signed size {signed} but the log holds {size} entries; {RECOVER}"


def publish(signer: SignerAPI, origin: str, size: int, read: NodeReader, last: Checkpoint | None) -> str:
    """Have the signer sign the tree of `size` leaves (nodes from `read`), extending `last`.

    Returns the signed note. Raises SignerAhead when the signer holds a larger tree; passes on
    SignerUnavailable and SignerRefused (a tree the signer will not sign: an alarm)."""
    root = subtree_hash(0, size, read)
    old = last.size if last is not None else 0
    if old > size:
        raise SignerAhead(f"{origin}: the last checkpoint has size {old} but the log holds {size} entries; {RECOVER}")
    try:
        return signer.sign(origin, size, root, old, consistency_proof(old, size, read) if old else [])
    except StaleBase as conflict:
        if conflict.size > size:
            raise SignerAhead(ahead_message(origin, conflict.size, size)) from None
        base = conflict.size
        return signer.sign(origin, size, root, base, consistency_proof(base, size, read) if base else [])
