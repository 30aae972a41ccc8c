"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures (type 0x01).

    <text ending in a newline>
    <blank line>
    — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature over the text)>

Key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]. Key strings are Go's
(golang.org/x/mod/sumdb/note): verifier `<name>+<key ID hex>+<base64(0x01 || public key)>`,
signer `PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>`.

`open_note` follows the spec: UTF-8, no control characters but newline, text separated from
signatures by the last blank line, signatures from unknown keys ignored, a known key whose
signature fails rejects the note, and at least one known key must verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ALG_ED25519 = 0x01
MAX_SIGNATURES = 64
MAX_NOTE_BYTES = 1 << 20
_DASH = "\u2014 "


class NoteError(ValueError):
    """A note, key or signature is malformed or does not verify; the message says which."""


def check_key_name(name: str) -> str:
    """Return `name` if it is a valid key name (non-empty, no spaces, no '+'); NoteError otherwise."""
    if not name or "+" in name or any(c.isspace() for c in name) or any(ord(c) < 0x20 for c in name):
        raise NoteError(f"key name {name!r} is invalid: it must be non-empty, without spaces or '+'")
    return name


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """The C2SP key ID of an Ed25519 key under `name`, for signature type `alg` (0x01 note
    signatures, 0x04 timestamped cosignatures: src/siemgate/tlog/cosignature.py)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise NoteError(f"{what} is not valid base64") from None


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 public key under a key name, for signatures of type `alg`."""

    name: str
    public_key: bytes
    alg: int = ALG_ED25519

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key, self.alg)

    @classmethod
    def parse(cls, vkey: str, alg: int = ALG_ED25519) -> NoteVerifier:
        """Parse a verifier key string `<name>+<hex key ID>+<base64(alg || key)>`."""
        name, sep, rest = vkey.strip().partition("+")
        hex_id, sep2, material = rest.partition("+")
        if not sep or not sep2:
            raise NoteError("a verifier key has the form <name>+<8 hex digits>+<base64 key>")
        check_key_name(name)
        raw = _b64decode(material, "the verifier key's key material")
        if len(raw) != 33 or raw[0] != alg:
            raise NoteError(f"the verifier key is not an Ed25519 key of type 0x{alg:02x} (32 bytes)")
        verifier = cls(name, raw[1:], alg)
        if len(hex_id) != 8 or hex_id != hex_id.lower() or f"{verifier.key_id:08x}" != hex_id:
            raise NoteError(f"the verifier key's ID {hex_id!r} does not match its name and key")
        try:
            Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError:
            raise NoteError("the verifier key is not a valid Ed25519 public key") from None
        return verifier

    def vkey(self) -> str:
        """The verifier key string."""
        material = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def renamed(self, name: str) -> NoteVerifier:
        """The same key under another name (its key ID changes with the name)."""
        return NoteVerifier(check_key_name(name), self.public_key, self.alg)

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 private key (its 32-byte seed) under a key name, for signatures of type `alg`."""

    name: str
    seed: bytes
    alg: int = ALG_ED25519

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> NoteSigner:
        key = Ed25519PrivateKey.generate()
        return cls(check_key_name(name), key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()), alg)

    @classmethod
    def parse(cls, skey: str, alg: int = ALG_ED25519) -> NoteSigner:
        """Parse a signer key string `PRIVATE+KEY+<name>+<hex key ID>+<base64(alg || seed)>`."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("a signer key has the form PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>")
        name, hex_id, material = parts[2], parts[3], parts[4]
        check_key_name(name)
        raw = _b64decode(material, "the signer key's key material")
        if len(raw) != 33 or raw[0] != alg:
            raise NoteError(f"the signer key is not an Ed25519 key of type 0x{alg:02x} (32-byte seed)")
        signer = cls(name, raw[1:], alg)
        if f"{signer.verifier().key_id:08x}" != hex_id:
            raise NoteError(f"the signer key's ID {hex_id!r} does not match its name and key")
        return signer

    def skey(self) -> str:
        """The signer key string (secret)."""
        material = base64.b64encode(bytes([self.alg]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier().key_id:08x}+{material}"

    def verifier(self) -> NoteVerifier:
        public = _raw_public(Ed25519PrivateKey.from_private_bytes(self.seed).public_key())
        return NoteVerifier(self.name, public, self.alg)

    def renamed(self, name: str) -> NoteSigner:
        """The same key under another name."""
        return NoteSigner(check_key_name(name), self.seed, self.alg)

    def signature_line(self, text: bytes, prefix: bytes = b"") -> str:
        """`— <name> <base64(key ID || prefix || Ed25519 signature over text)>` and a newline
        (`prefix`: a cosignature's timestamp, which is not itself signed as such)."""
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(text)
        blob = struct.pack(">I", self.verifier().key_id) + prefix + signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


def _check_text(text: str, what: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError(f"{what} contains a control character (only newlines are allowed)")


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    """The signed note of `text` (which must end in a newline) by every signer."""
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    _check_text(text, "the note text")
    lines = [s.signature_line(text.encode()) for s in signers]
    if not lines:
        raise NoteError("a note needs at least one signature")
    return text + "\n" + "".join(lines)


@dataclass(frozen=True)
class OpenedNote:
    """A verified note: its text and the verifiers whose signatures checked out."""

    text: str
    signed_by: tuple[NoteVerifier, ...]


@dataclass(frozen=True)
class SignatureLine:
    """One signature line of a note: key name, key ID and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """The line as it appears in a note, with its newline."""
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


def check_note_size(note: str | bytes) -> None:
    """NoteError when a note is longer than MAX_NOTE_BYTES (a str: characters, each at least a byte),
    before any work on it: a checkpoint with its cosignatures is a few kB, and a verifier must not
    spend minutes on, or keep, a note its server padded with megabytes of unknown signatures."""
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError(f"the note is larger than {MAX_NOTE_BYTES} bytes")


def split_note(note: str | bytes) -> tuple[str, list[SignatureLine]]:
    """The text of a note and its signature lines, checked for form but not verified.

    Raises NoteError for anything the spec calls malformed: not UTF-8, a control character, no
    blank line, a signature line that is not `— <name> <base64>`, more than MAX_SIGNATURES."""
    check_note_size(note)
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the note is not valid UTF-8") from None
    _check_text(note, "the note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    if not sig_block.endswith("\n"):
        raise NoteError("the note's signature block must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    return text, [parse_signature_line(line) for line in lines]


def parse_signature_line(line: str) -> SignatureLine:
    """One `— <name> <base64(key ID || signature)>` line (without its newline); NoteError if malformed."""
    if not line.startswith(_DASH):
        raise NoteError(f"signature line {line[:40]!r} does not start with an em dash and a space")
    name, sep, blob_text = line[len(_DASH) :].partition(" ")
    if not sep or " " in blob_text:
        raise NoteError(f"signature line {line[:40]!r} is not '— <name> <base64>'")
    check_key_name(name)
    blob = _b64decode(blob_text, f"the signature by {name}")
    if len(blob) < 5:
        raise NoteError(f"the signature by {name} is too short")
    return SignatureLine(name, int.from_bytes(blob[:4], "big"), blob[4:])


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Verify a signed note against trusted verifiers; NoteError says why it is refused."""
    text, lines = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[NoteVerifier] = []
    for line in lines:
        verifier = known.get((line.name, line.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text.encode(), line.signature):
            raise NoteError(
                f"the signature by {line.name} (key {verifier.key_id:08x}) does not verify: the note was altered"
            )
        verified.append(verifier)
    if not verified:
        raise NoteError(f"no signature by a trusted key (signed by: {', '.join(x.name for x in lines)})")
    return OpenedNote(text, tuple(verified))
