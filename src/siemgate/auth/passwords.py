"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 1024  # hashing is linear in the length: a password is never a megabyte of work


@functools.cache
def _dummy() -> str:
    """A hash to verify against when the person does not exist, so that timing does not reveal it."""
    return _hasher.hash("siemgate-no-such-person")


def check_strength(password: str) -> None:
    """Raise ValueError when a password is too weak to accept."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"the password must have at most {MAX_LENGTH} characters")
    if password.strip() != password or not password.strip():
        raise ValueError("the password must not start or end with spaces")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. Exactly one argon2 verification whatever the person: one who
    does not exist, or has no password, is checked against a dummy hash, so the reply's cost does
    not tell whether the address is known (tests count the verifications). A password over
    MAX_LENGTH, which no hash can match, is refused without hashing (the API refuses it earlier)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def warm_up() -> None:
    """Make the dummy hash now (at start), so the first unknown address costs one verification."""
    _dummy()
