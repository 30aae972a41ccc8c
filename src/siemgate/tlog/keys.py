"""Key files of the log: the signer's private keyring and the public key file verifiers use.

A key has a *name*, the deployment's log name (e.g. `events.example.com/siemgate`). It signs every
log whose origin is that name or starts with it and a slash; in each checkpoint the signature's key
name is the origin itself (c2sp.org/tlog-checkpoint: key name = origin), so each log has its own
C2SP key ID while an auditor needs one public key for the deployment.

Private keyring (0600, the signer's only):

    # siemgate log signing keys
    PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || seed)> created=<unix> [retired=<unix>]

Public key file (what `siemgate-verify --key` reads):

    # siemgate log public keys
    <name>+<key ID>+<base64(0x01 || public key)> [retired=<unix>]

A retired key no longer signs; its old checkpoints keep verifying, and a checkpoint it signed with
a time after its retirement is not accepted on its signature. Fingerprint: `SHA256:` and the
unpadded base64 of SHA-256 over the 32-byte public key.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import time
from dataclasses import dataclass, replace
from pathlib import Path

from siemgate.tlog.durable import write_durably
from siemgate.tlog.note import NoteError, NoteSigner, NoteVerifier, check_key_name

PRIVATE_HEADER = "# siemgate log signing keys (docs/integrity.md). Secret: keep this file 0600.\n"
PUBLIC_HEADER = "# siemgate log public keys (docs/integrity.md): siemgate-verify --key FILE\n"


class KeyFileError(ValueError):
    """A key file is missing, malformed or too open; the message says what to fix."""


def fingerprint(public_key: bytes) -> str:
    """`SHA256:<unpadded base64>` of the 32-byte public key."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("=")


def covers(name: str, origin: str) -> bool:
    """Whether a key named `name` signs the log `origin`."""
    return origin == name or origin.startswith(name + "/")


def _attrs(fields: list[str], where: str, allowed: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for field in fields:
        key, sep, value = field.partition("=")
        if not sep or key not in allowed or not value.isdigit():
            raise KeyFileError(
                f"{where}: unknown field {field!r}; expected {', '.join(k + '=<unix>' for k in allowed)}"
            )
        out[key] = int(value)
    return out


@dataclass(frozen=True)
class SigningKey:
    signer: NoteSigner
    created: int
    retired: int | None = None

    @property
    def key_id(self) -> str:
        return f"{self.signer.verifier().key_id:08x}"

    def line(self) -> str:
        tail = f" retired={self.retired}" if self.retired is not None else ""
        return f"{self.signer.skey()} created={self.created}{tail}\n"


@dataclass(frozen=True)
class PublicKey:
    verifier: NoteVerifier
    retired: int | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.verifier.public_key)

    def line(self) -> str:
        tail = f" retired={self.retired}" if self.retired is not None else ""
        return f"{self.verifier.vkey()}{tail}\n"


def _check_private_mode(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically and durably with mode 0600."""
    write_durably(path, text.encode("utf-8"), 0o600)


@dataclass(frozen=True)
class SignerKeyring:
    """The signer's keys, all under one name; active keys sign, retired ones are only published."""

    keys: tuple[SigningKey, ...]

    @property
    def name(self) -> str:
        return self.keys[0].signer.name

    @classmethod
    def parse(cls, text: str, where: str = "key file") -> SignerKeyring:
        keys: list[SigningKey] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            skey, *fields = line.split()
            try:
                signer = NoteSigner.parse(skey)
            except NoteError as exc:
                raise KeyFileError(f"{where} line {n}: {exc}") from None
            attrs = _attrs(fields, f"{where} line {n}", ("created", "retired"))
            keys.append(SigningKey(signer, attrs.get("created", 0), attrs.get("retired")))
        if not keys:
            raise KeyFileError(f"{where} holds no key; create one with: siemgate signer init")
        if len({k.signer.name for k in keys}) != 1:
            raise KeyFileError(f"{where}: all keys must have the same name")
        if not any(k.retired is None for k in keys):
            raise KeyFileError(f"{where}: no active key (every key is retired); add one with: siemgate signer rotate")
        return cls(tuple(keys))

    @classmethod
    def load(cls, path: Path) -> SignerKeyring:
        try:
            _check_private_mode(path)
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyFileError(f"key file {path} does not exist; create it with: siemgate signer init") from None
        return cls.parse(text, str(path))

    @classmethod
    def create(cls, path: Path, name: str) -> SignerKeyring:
        """A new key file holding one fresh key; refuses to overwrite an existing file."""
        check_key_name(name)
        if path.exists():
            raise KeyFileError(f"{path} already exists; rotate keys with: siemgate signer rotate")
        ring = cls((SigningKey(NoteSigner.generate(name), int(time.time())),))
        ring.save(path)
        return ring

    def save(self, path: Path) -> None:
        write_private(path, PRIVATE_HEADER + "".join(k.line() for k in self.keys))

    def rotated(self) -> SignerKeyring:
        """This keyring plus a new active key (the old ones stay active until retired)."""
        return SignerKeyring((*self.keys, SigningKey(NoteSigner.generate(self.name), int(time.time()))))

    def retired_key(self, key_id: str) -> SignerKeyring:
        """This keyring with `key_id` retired now; refuses to retire the last active key."""
        if key_id not in {k.key_id for k in self.keys}:
            raise KeyFileError(f"no key with ID {key_id}; list them with: siemgate signer keys")
        now = int(time.time())
        keys = tuple(replace(k, retired=now) if k.key_id == key_id and k.retired is None else k for k in self.keys)
        if not any(k.retired is None for k in keys):
            raise KeyFileError("that is the last active key; add a new one first with: siemgate signer rotate")
        return SignerKeyring(keys)

    def signers_for(self, origin: str) -> list[NoteSigner]:
        """The active keys, named for `origin`."""
        return [k.signer.renamed(origin) for k in self.keys if k.retired is None]

    def public(self) -> PublicKeyring:
        return PublicKeyring(tuple(PublicKey(k.signer.verifier(), k.retired) for k in self.keys))


@dataclass(frozen=True)
class PublicKeyring:
    """Trusted public keys, each for the logs under its name."""

    keys: tuple[PublicKey, ...]

    @classmethod
    def parse(cls, text: str, where: str = "public key file") -> PublicKeyring:
        keys: list[PublicKey] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            vkey, *fields = line.split()
            try:
                verifier = NoteVerifier.parse(vkey)
            except NoteError as exc:
                raise KeyFileError(f"{where} line {n}: {exc}") from None
            keys.append(PublicKey(verifier, _attrs(fields, f"{where} line {n}", ("retired",)).get("retired")))
        if not keys:
            raise KeyFileError(f"{where} holds no public key; get one with: siemgate log keys --out FILE")
        return cls(tuple(keys))

    @classmethod
    def load(cls, path: Path) -> PublicKeyring:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyFileError(f"public key file {path} does not exist") from None
        except UnicodeDecodeError:
            raise KeyFileError(f"public key file {path} is not UTF-8 text") from None
        except OSError as exc:  # a directory, no permission
            raise KeyFileError(f"public key file {path} cannot be read: {exc.strerror or exc}") from None
        return cls.parse(text, str(path))

    def text(self) -> str:
        return PUBLIC_HEADER + "".join(k.line() for k in self.keys)

    def verifiers_for(self, origin: str, at: int | None = None) -> list[NoteVerifier]:
        """The keys trusted for `origin` (named for it), leaving out keys retired before time `at`."""
        return [
            k.verifier.renamed(origin)
            for k in self.keys
            if covers(k.verifier.name, origin) and (at is None or k.retired is None or at <= k.retired)
        ]
