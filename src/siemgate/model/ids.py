"""1Password-style identifiers: 26-character base32 strings (not RFC 4122 UUIDs)."""

from __future__ import annotations

import base64
import re
import secrets

_ID_RE = re.compile(r"[A-Za-z2-7]{26}")


def new_id(*, lower: bool = False) -> str:
    """A fresh random id: 128 random bits as 26 base32 characters.

    Upper-case for users, events, sessions, accounts and integrations; lower-case (lower=True)
    for vaults, items and devices, as the Events API does.
    """
    text = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
    return text.lower() if lower else text


def is_id(value: object) -> bool:
    """True when value is a 26-character base32 string (either case)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None
