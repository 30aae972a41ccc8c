"""Witness cosignatures (c2sp.org/tlog-cosignature, Ed25519 type 0x04) and witness key files.

A cosignature is a note signature line on a checkpoint:

    — <witness name> base64(key ID || u64 big-endian timestamp || Ed25519 signature)

Key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4]; the signature covers

    cosignature/v1
    time <timestamp>
    <the checkpoint's note text, every line including extension lines>

and states that, as of `timestamp`, the largest consistent tree the witness has seen for the
origin has that root. Witness key strings are Go-style with type byte 0x04: private
`PRIVATE+KEY+<name>+<key ID>+<base64(0x04 || seed)>`, public `<name>+<key ID>+<base64(0x04 || key)>`.

`cosignatures` checks the cosignatures of a note against trusted witness keys; `WitnessPolicy`
asks for a quorum of distinct witnesses (what `siemgate-verify --witness-key/--quorum` and the
server's publishing policy apply).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from siemgate.tlog.keys import KeyFileError, write_private
from siemgate.tlog.note import NoteError, NoteSigner, NoteVerifier, check_key_name, split_note

ALG_COSIGNATURE = 0x04
HEADER = "cosignature/v1"
MAX_TIMESTAMP = 2**63 - 1
# How far a witness's clock may be from the log signer's and the verifier's (seconds).
MAX_CLOCK_SKEW = 600
PRIVATE_HEADER = "# siemgate witness key (docs/integrity.md). Secret: keep this file 0600.\n"
PUBLIC_HEADER = "# siemgate witness public keys (docs/integrity.md): siemgate-verify --witness-key FILE\n"


def cosigned_message(text: str, timestamp: int) -> bytes:
    """The bytes a v1 cosignature signs for a checkpoint note text at `timestamp`."""
    return f"{HEADER}\ntime {timestamp}\n{text}".encode()


def cosign(signer: NoteSigner, text: str, timestamp: int) -> str:
    """The cosignature line (with its newline) of `signer` on the checkpoint `text` at `timestamp`."""
    if signer.alg != ALG_COSIGNATURE:
        raise NoteError("a cosignature needs a witness key (type 0x04)")
    if not 0 < timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"a cosignature's timestamp must be in 1..{MAX_TIMESTAMP}")
    return signer.signature_line(cosigned_message(text, timestamp), struct.pack(">Q", timestamp))


@dataclass(frozen=True)
class Cosignature:
    """A cosignature that verified: the witness and the time it vouched for the checkpoint."""

    witness: NoteVerifier
    timestamp: int


def cosignatures(note: str, witnesses: Iterable[NoteVerifier]) -> list[Cosignature]:
    """The valid cosignatures on `note` by the trusted `witnesses` (others are ignored).

    Raises NoteError when the note is malformed or a signature by a trusted witness key does not
    verify (a known key that fails rejects the note, as for log signatures)."""
    text, lines = split_note(note)
    known = {(w.name, w.key_id): w for w in witnesses}
    found: list[Cosignature] = []
    for line in lines:
        witness = known.get((line.name, line.key_id))
        if witness is None:
            continue
        if len(line.signature) != 8 + 64:
            raise NoteError(f"the cosignature by {line.name} is not a timestamp and an Ed25519 signature")
        timestamp = int.from_bytes(line.signature[:8], "big")
        if not 0 < timestamp <= MAX_TIMESTAMP or not witness.verify(
            cosigned_message(text, timestamp), line.signature[8:]
        ):
            raise NoteError(f"the cosignature by witness {line.name} (key {witness.key_id:08x}) does not verify")
        found.append(Cosignature(witness, timestamp))
    return found


@dataclass(frozen=True)
class WitnessPolicy:
    """Trusted witness keys and how many distinct witnesses must have cosigned a checkpoint."""

    witnesses: tuple[NoteVerifier, ...]
    quorum: int
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not 0 <= self.quorum <= len({w.public_key for w in self.witnesses}):
            raise ValueError(
                f"a quorum of {self.quorum} needs at least that many distinct witness keys "
                f"(given {len({w.public_key for w in self.witnesses})})"
            )

    def check(self, note: str, checkpoint_time: int | None = None) -> list[Cosignature]:
        """The valid cosignatures on `note`; NoteError when fewer than `quorum` distinct witnesses
        cosigned it, or a trusted witness's cosignature fails or is timestamped more than
        MAX_CLOCK_SKEW in the future or before `checkpoint_time` (the checkpoint's signing time):
        a witness cannot have seen a checkpoint before it was signed, so one of the two clocks lies
        (and the log's `time` is what freshness is judged on)."""
        found = cosignatures(note, self.witnesses)
        now = int(self.clock())
        for c in found:
            if c.timestamp > now + MAX_CLOCK_SKEW:
                raise NoteError(
                    f"the cosignature by witness {c.witness.name} is timestamped {c.timestamp}, {c.timestamp - now} s"
                    f" in the future (allowed clock skew {MAX_CLOCK_SKEW} s): its clock or its key is not to be trusted"
                )
            if checkpoint_time is not None and c.timestamp < checkpoint_time - MAX_CLOCK_SKEW:
                raise NoteError(
                    f"the cosignature by witness {c.witness.name} is timestamped {c.timestamp},"
                    f" {checkpoint_time - c.timestamp} s before the checkpoint's time {checkpoint_time} (allowed clock"
                    f" skew {MAX_CLOCK_SKEW} s): the checkpoint's time is later than when it was witnessed"
                )
        distinct = {c.witness.public_key: c for c in found}
        if len(distinct) < self.quorum:
            names = ", ".join(sorted({c.witness.name for c in distinct.values()})) or "none"
            raise NoteError(
                f"the checkpoint has valid cosignatures from {len(distinct)} trusted witness(es) ({names}); "
                f"the quorum is {self.quorum}"
            )
        return list(distinct.values())


def load_witness_key(path: Path) -> NoteSigner:
    """The witness's private key from its key file (0600); KeyFileError says what to fix."""
    try:
        mode = path.stat().st_mode & 0o077
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"witness key file {path} does not exist; create it with: siemgate witness init") from None
    if mode:
        raise KeyFileError(f"{path} is readable by others; run: chmod 600 {path}")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1:
        raise KeyFileError(f"{path} must hold exactly one witness key line")
    try:
        return NoteSigner.parse(lines[0], ALG_COSIGNATURE)
    except NoteError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def create_witness_key(path: Path, name: str) -> NoteSigner:
    """A new witness key written to `path` (0600); refuses to overwrite a file."""
    check_key_name(name)
    if path.exists():
        raise KeyFileError(f"{path} already exists; a witness keeps its key (choose another path)")
    signer = NoteSigner.generate(name, ALG_COSIGNATURE)
    write_private(path, PRIVATE_HEADER + signer.skey() + "\n")
    return signer


def public_key_text(verifiers: Sequence[NoteVerifier]) -> str:
    """A witness public key file: a header and one verifier key per line."""
    return PUBLIC_HEADER + "".join(v.vkey() + "\n" for v in verifiers)


def parse_witness_keys(text: str, where: str) -> list[NoteVerifier]:
    """The witness verifier keys (type 0x04) in a public key file; KeyFileError names a bad line."""
    keys: list[NoteVerifier] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(NoteVerifier.parse(line, ALG_COSIGNATURE))
        except NoteError as exc:
            raise KeyFileError(f"{where} line {n}: {exc} (a witness key: siemgate witness keys --out FILE)") from None
    if not keys:
        raise KeyFileError(f"{where} holds no witness key; get one with: siemgate witness keys --out FILE")
    return keys


def load_witness_keys(path: Path) -> list[NoteVerifier]:
    """The witness verifier keys in the public key file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read witness key file {path}: {exc}") from None
    return parse_witness_keys(text, str(path))
