"""Inclusion proofs of one event as `c2sp.org/tlog-proof@v1` text (docs/integrity.md, "Event proof"):

    c2sp.org/tlog-proof@v1
    extra <base64 of JSON {"idx", "ts_ns", "body_sha256"}>
    index <leaf index>
    <base64 hash>            one per line, the leaf's sibling first
    (blank line)
    <the signed checkpoint, verbatim>

`extra` is unauthenticated application data (what the server says the entry is); the verifier
recomputes the entry from the event's bytes and checks it against the signed root.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from siemgate.tlog.bundle import BundleError, format_hashes, parse_hashes
from siemgate.tlog.checkpoint import CheckpointError, SignedCheckpoint, open_checkpoint, stream_problem
from siemgate.tlog.cosignature import WitnessPolicy
from siemgate.tlog.entry import Entry, EntryError, body_timestamp_ns, entry_for
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.merkle import ProofError
from siemgate.tlog.note import NoteError
from siemgate.tlog.proof import verify_inclusion

HEADER = "c2sp.org/tlog-proof@v1"
MAX_EXTRA = 4096


class TlogProofError(ValueError):
    """A proof text is malformed or does not verify; the message says what."""


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: list[bytes]
    checkpoint: str  # the signed note, verbatim
    extra: dict[str, Any] | None = None

    def text(self) -> str:
        extra = ""
        if self.extra is not None:
            raw = json.dumps(self.extra, separators=(",", ":"), sort_keys=True).encode()
            extra = f"extra {base64.b64encode(raw).decode()}\n"
        return f"{HEADER}\n{extra}index {self.index}\n{format_hashes(self.hashes)}\n{self.checkpoint}"


def entry_extra(index: int, entry: Entry) -> dict[str, Any]:
    """The `extra` a siemgate server puts in an event's proof."""
    return {"idx": index, "ts_ns": entry.ts_ns, "body_sha256": base64.b64encode(entry.body_sha256).decode()}


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a proof text; TlogProofError naming the line that is wrong."""
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise TlogProofError("a tlog-proof has a blank line between the proof and the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"the first line must be {HEADER!r}")
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        extra = _extra(lines[pos][6:])
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise TlogProofError("the line after the header (and extra) must be 'index <n>'")
    digits = lines[pos][6:]
    if not digits.isdigit() or (len(digits) > 1 and digits[0] == "0") or len(digits) > 20:
        raise TlogProofError(f"index {digits[:40]!r} is not a decimal number without leading zeros")
    try:
        hashes = parse_hashes("\n".join(lines[pos + 1 :]), "the proof hashes")
    except BundleError as exc:
        raise TlogProofError(str(exc)) from None
    return TlogProof(int(digits), hashes, note, extra)


def _extra(text: str) -> dict[str, Any]:
    if len(text) > MAX_EXTRA:
        raise TlogProofError(f"the extra line is longer than {MAX_EXTRA} characters")
    try:
        data = json.loads(base64.b64decode(text.encode("ascii"), validate=True))
    except (binascii.Error, UnicodeError, json.JSONDecodeError):
        raise TlogProofError("the extra line is not the base64 of a JSON object") from None
    if not isinstance(data, dict):
        raise TlogProofError("the extra line is not the base64 of a JSON object")
    return data


@dataclass(frozen=True)
class EventVerified:
    index: int
    entry: Entry
    checkpoint: SignedCheckpoint
    notices: Sequence[str]


def verify_event(
    event: bytes,
    proof_text: str,
    keys: PublicKeyring,
    witnesses: WitnessPolicy | None = None,
    feature: str | None = None,
) -> EventVerified:
    """Check that `event` (the item's v2 bytes, exactly as served) is the leaf the proof names
    in a checkpoint signed by a trusted key (and cosigned by a quorum of `witnesses`), of the
    `feature` stream's log when given (`stream_problem`). Raises TlogProofError saying what failed."""
    proof = parse_tlog_proof(proof_text)
    try:
        signed = open_checkpoint(proof.checkpoint, keys, witnesses)
    except (NoteError, CheckpointError) as exc:
        raise TlogProofError(f"the proof's checkpoint does not verify: {exc}") from None
    cp = signed.checkpoint
    wrong = stream_problem(cp, feature)
    if wrong:
        raise TlogProofError(wrong)
    try:
        entry = entry_for(body_timestamp_ns(event), event)
    except EntryError as exc:
        raise TlogProofError(f"the event is not a stored siemgate event: {exc}") from None
    try:
        verify_inclusion(proof.index, cp.size, entry.leaf(), proof.hashes, cp.root)
    except ProofError as exc:
        raise TlogProofError(
            f"index {proof.index} [{cp.describe()}]: the event is not this leaf of the signed tree: {exc} "
            "(the event bytes were altered, or are not the v2 bytes as served)"
        ) from None
    notices = []
    if proof.extra is not None and proof.extra.get("ts_ns") not in (None, entry.ts_ns):
        notices.append("the proof's extra data names another timestamp than the event's (extra is not signed)")
    return EventVerified(proof.index, entry, signed, notices)
