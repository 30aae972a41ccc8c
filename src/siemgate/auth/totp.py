"""TOTP second factor (RFC 6238 with pyotp: SHA-1, 6 digits, 30-second steps, as every
authenticator app expects) and one-time recovery codes.

The TOTP secret must be readable by the server to check codes, so it is stored encrypted
(AES-256-GCM) under a key kept in the store's secrets, never in clear, and bound to its person
(the person's uuid is the seal's associated data): a sealed secret moved to another person's row
does not open. Recovery codes are stored as SHA-256 only. A code is accepted for the current step
or one step either side (clock drift), and each step's code only once (the store keeps the last
step used).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from siemgate.errors import StoreError
from siemgate.store.base import CredentialStore
from siemgate.store.shared.identity import IdentityStore

log = logging.getLogger("siemgate.auth")
STEP_SECONDS = 30
DRIFT_STEPS = 1
ISSUER = "siemgate"
RECOVERY_CODES = 10
_KEY_NAME = "totp-secret-key"
# A secret sealed for one person starts with this (base64 has no ':'); earlier builds sealed with
# the associated data b"totp" alone, bound to no one, and wrote no prefix.
_BOUND = "b1:"
# The deployment secret recording that the store's unbound secrets were sealed again, bound.
_BOUND_MARK = "totp-secrets-bound"
_RESET = "the operator resets their two-factor sign-in (`siemgate user reset-two-factor EMAIL`) and they enrol again"


def new_secret() -> str:
    """A fresh 160-bit secret, base32 (what authenticator apps take)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code, or typed in)."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=email, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now_s: float) -> int | None:
    """The time step whose code `code` is (current step ± DRIFT_STEPS), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not (code.isascii() and code.isdigit()):  # "١٢٣٤٥٦" is digits too
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now_s // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten one-time codes like `k3v9q-7hx2m` (50 random bits each). A draw of digits only (2-7,
    about 1 in 18 million) is drawn again: it would be read as an app's code, never as this."""
    codes: list[str] = []
    while len(codes) < RECOVERY_CODES:
        text = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
        if looks_like_recovery_code(text):
            codes.append(f"{text[:5]}-{text[5:]}")
    return codes


def recovery_digest(code: str) -> str:
    """SHA-256 of a recovery code as typed (case, spaces and dashes ignored)."""
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normal.encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return len(normal) == 10 and not normal.isdigit()


class SecretBox:
    """Encrypts TOTP secrets, each bound to its person, with a key kept in the store (made on
    first use)."""

    def __init__(self, store: CredentialStore, now: int) -> None:
        self._aead = AESGCM(store.secret(_KEY_NAME, AESGCM.generate_key(bit_length=256), now))

    def seal(self, secret: str, user_uuid: str) -> str:
        nonce = os.urandom(12)
        return (
            _BOUND + base64.b64encode(nonce + self._aead.encrypt(nonce, secret.encode(), _bound_to(user_uuid))).decode()
        )

    def open(self, sealed: str, user_uuid: str) -> str:
        """The secret sealed for `user_uuid`. StoreError (saying what the operator does; logged
        with the person's uuid) for a value sealed for another person or under another key, or
        sealed bound to no one after the store's one-time upgrade (`bind_stored`): either was
        written into the store since."""
        if not sealed.startswith(_BOUND):
            log.warning("two-factor secret of person %s refused: sealed bound to no one", user_uuid)
            raise StoreError(
                "the two-factor secret stored for this person is sealed bound to no one (as earlier builds"
                f" sealed them) and was written after the store's upgrade, so it is refused; {_RESET}"
            )
        try:
            raw = base64.b64decode(sealed.removeprefix(_BOUND), validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], _bound_to(user_uuid)).decode()
        except (InvalidTag, ValueError):
            log.warning("two-factor secret of person %s refused: sealed for another person or key", user_uuid)
            raise StoreError(
                "the two-factor secret stored for this person does not open: it was sealed for another person"
                f" or with another store's key; {_RESET}"
            ) from None

    def bind_stored(self, store: IdentityStore, now: int) -> int | None:
        """Seal every secret an older release stored again, bound to its person, once per store
        and in one transaction (the first start of this release); from then on an unbound value is
        refused. Returns how many were sealed again; None when that was done before."""
        return store.bind_two_factor_secrets(self._bind_older, _BOUND_MARK, now)

    def _bind_older(self, sealed: str, user_uuid: str) -> str | None:
        """`sealed` as an older release sealed it, sealed again for `user_uuid`; None for a value
        already bound, or one that does not open with this key (refused when used)."""
        if sealed.startswith(_BOUND):
            return None
        try:
            raw = base64.b64decode(sealed, validate=True)
            secret = self._aead.decrypt(raw[:12], raw[12:], b"totp").decode()
        except (InvalidTag, ValueError):
            return None
        return self.seal(secret, user_uuid)


def _bound_to(user_uuid: str) -> bytes:
    return b"totp\x00" + user_uuid.encode()
