"""ES256 signing keys for SIEM tokens and the secret that authenticates cursors.

Both live in the store (tables `signing_keys` and `secrets`), so every server process — on this
machine or on others sharing a PostgreSQL database — signs and verifies with the same keys and
sees rotations: an unknown kid triggers a reload, issuing re-reads which key is active, and the
JWKS is read fresh. The first start creates a key and the cursor secret; a deployment that kept
them in `<data_dir>/keys/` (siemgate before 0.2) has them imported on its first start.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from siemgate.errors import ConfigError
from siemgate.store.base import CredentialStore, SigningKey

_PEM = ".pem"
CURSOR_SECRET = "cursor"  # noqa: S105 (the name of the secret, not a secret)


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


def _load(kid: str, pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        raise ConfigError(f"signing key {kid} in the store is damaged; restore it from backup") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"signing key {kid} in the store is not an EC P-256 private key")
    return key


def _new_key(now: int) -> SigningKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return SigningKey(thumbprint(key.public_key()), pem, now, active=True)


class KeyRing:
    """The signing keys and cursor secret of one deployment, kept in `store`."""

    def __init__(self, store: CredentialStore, data_dir: Path | None = None) -> None:
        """Load the keys, importing `<data_dir>/keys/` once if the store has none, or creating a key."""
        self.store = store
        self._lock = threading.Lock()
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._active: str | None = None
        legacy = Path(data_dir) / "keys" if data_dir is not None else None
        if not store.signing_keys():
            self._import_or_create(legacy)
        self.reload()
        self.cursor_key = self._cursor_key(legacy)

    def _import_or_create(self, legacy: Path | None) -> None:
        now = time.time_ns()
        found = sorted(legacy.glob("*" + _PEM)) if legacy is not None and legacy.is_dir() else []
        active_file = legacy / "active" if legacy is not None else None
        active = active_file.read_text().strip() if active_file is not None and active_file.exists() else None
        keys = []
        for path in found:
            kid = path.name.removesuffix(_PEM)
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read signing key {path}: {exc}") from None
            _load(kid, pem)
            keys.append(SigningKey(kid, pem, now, active=False))
        if keys:
            chosen = active if active in {k.kid for k in keys} else keys[-1].kid
            keys.sort(key=lambda k: k.kid == chosen)  # the active one last, so it stays active
            keys[-1] = SigningKey(keys[-1].kid, keys[-1].pem, now, active=True)
        else:
            keys = [_new_key(now)]
        self.store.import_signing_keys(keys)  # all or none: a start stopped midway imports them again

    def _cursor_key(self, legacy: Path | None) -> bytes:
        path = legacy / "cursor.key" if legacy is not None else None
        initial = path.read_bytes() if path is not None and path.is_file() else secrets.token_bytes(32)
        if len(initial) != 32:
            raise ConfigError(f"{path} is damaged (expected 32 bytes); restore it from backup")
        value = self.store.secret(CURSOR_SECRET, initial, time.time_ns())
        if len(value) != 32:
            raise ConfigError("the cursor secret in the store is damaged (expected 32 bytes); restore it from backup")
        return value

    def reload(self) -> None:
        """Re-read the keys from the store (after another process rotated)."""
        stored = self.store.signing_keys()
        known = self._keys
        keys = {k.kid: known.get(k.kid) or _load(k.kid, k.pem) for k in stored}
        active = next((k.kid for k in stored if k.active), None) or next(reversed(keys), None)
        with self._lock:
            self._keys, self._active = keys, active

    def active(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """The kid and key new tokens are signed with (re-read so other processes' rotations apply)."""
        self.reload()
        if self._active is None:
            raise ConfigError("there is no signing key in the store; run `siemgate keys rotate` to make one")
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

        Returns (new kid, retired kids)."""
        new = _new_key(time.time_ns())
        self.store.add_signing_key(new)
        retired = [k.kid for k in self.store.signing_keys() if k.kid != new.kid and k.kid not in keep]
        self.store.delete_signing_keys(retired)
        self.reload()
        return new.kid, retired

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every key still accepted (read fresh: rotations elsewhere show)."""
        self.reload()
        return {
            "keys": [
                {**public_jwk(key.public_key()), "kid": kid, "use": "sig", "alg": "ES256"}
                for kid, key in self._keys.items()
            ]
        }
