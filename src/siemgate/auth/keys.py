"""ES256 signing keys for SIEM tokens and the secret that authenticates cursors.

Kept in `<data_dir>/keys/` (directory 0700, files 0600): one `<kid>.pem` per signing key, `active`
naming the key new tokens are signed with, and `cursor.key`. Created on first use. Several
processes sharing the data dir see each other's rotations: an unknown kid triggers a reload, and
issuing re-reads `active`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from siemgate.errors import ConfigError

_PEM = ".pem"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The JWK members of a P-256 public key."""
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint, used as the kid."""
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":")).encode()
    return _b64(hashlib.sha256(canonical).digest())


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class KeyRing:
    """The signing keys and cursor secret of one deployment."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "keys"
        self._lock = threading.Lock()
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._active: str | None = None
        self._ensure()
        self.reload()
        self.cursor_key = self._cursor_key()

    def _ensure(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create the key directory {self.dir}: {exc}") from None
        with self._lock:
            if not any(self.dir.glob("*" + _PEM)):
                self._create_key_locked()

    def _create_key_locked(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        kid = thumbprint(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(self.dir / f"{kid}{_PEM}", pem)
        _write_private(self.dir / "active", kid.encode())
        return kid

    def _cursor_key(self) -> bytes:
        path = self.dir / "cursor.key"
        with self._lock:
            if not path.exists():
                _write_private(path, secrets.token_bytes(32))
        data = path.read_bytes()
        if len(data) != 32:
            raise ConfigError(f"{path} is damaged (expected 32 bytes); restore it from backup")
        return data

    def reload(self) -> None:
        """Re-read the key directory (after another process rotated)."""
        keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        for path in sorted(self.dir.glob("*" + _PEM)):
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, OSError) as exc:
                raise ConfigError(f"cannot read signing key {path}: {exc}") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigError(f"{path} is not an EC P-256 private key")
            keys[path.name.removesuffix(_PEM)] = key
        active_path = self.dir / "active"
        active = active_path.read_text().strip() if active_path.exists() else None
        if active not in keys:
            active = next(iter(keys), None)
        with self._lock:
            self._keys, self._active = keys, active

    def active(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """The kid and key new tokens are signed with (re-read so other processes' rotations apply)."""
        active_path = self.dir / "active"
        if active_path.exists() and active_path.read_text().strip() != self._active:
            self.reload()
        assert self._active is not None
        return self._active, self._keys[self._active]

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key for kid, reloading once if it is unknown; None when there is none."""
        key = self._keys.get(kid)
        if key is None:
            self.reload()
            key = self._keys.get(kid)
        return key.public_key() if key is not None else None

    def kids(self) -> list[str]:
        return list(self._keys)

    def rotate(self, keep: set[str]) -> tuple[str, list[str]]:
        """Make a new active key; delete old keys not in `keep` (kids of live tokens).

        Returns (new kid, retired kids).
        """
        with self._lock:
            new_kid = self._create_key_locked()
        retired = []
        for kid in self.kids():
            if kid != new_kid and kid not in keep:
                (self.dir / f"{kid}{_PEM}").unlink(missing_ok=True)
                retired.append(kid)
        self.reload()
        return new_kid, retired

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every key still accepted."""
        return {
            "keys": [
                {**public_jwk(key.public_key()), "kid": kid, "use": "sig", "alg": "ES256"}
                for kid, key in self._keys.items()
            ]
        }
