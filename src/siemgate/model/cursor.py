"""Cursors: opaque, URL-safe, MAC-protected positions in one (account, feature) stream.

A cursor carries the stream (account uuid, feature), the last seq delivered, and the reset that
defined the stream (start, end, limit). Layout before base64url (no padding), big-endian:

    version u8 | feature u8 | limit u16 | seq u64 | start i64 | flags u8 | end i64 | account 26 bytes
    | HMAC-SHA256(key, all of the above)[:16]

flags bit 0: `end` is set. A cursor that fails to decode, was altered, or was made with another
key is refused with CursorError; the caller checks that account and feature match the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from siemgate.model.features import Feature

VERSION = 1
_BODY = struct.Struct(">BBHQqBq26s")
_MAC_LEN = 16
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_ENCODED_LEN = len(base64.urlsafe_b64encode(b"\0" * (_BODY.size + _MAC_LEN)).rstrip(b"="))


class CursorError(ValueError):
    """The cursor cannot be decoded or was not made with this key."""


@dataclass(frozen=True, slots=True)
class Cursor:
    account_uuid: str
    feature: Feature
    seq: int
    start: int
    end: int | None
    limit: int


def encode_cursor(cursor: Cursor, key: bytes) -> str:
    """The cursor as an opaque URL-safe string authenticated with `key`."""
    body = _BODY.pack(
        VERSION,
        cursor.feature.code,
        cursor.limit,
        cursor.seq,
        cursor.start,
        1 if cursor.end is not None else 0,
        cursor.end if cursor.end is not None else 0,
        cursor.account_uuid.encode("ascii"),
    )
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_LEN]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, key: bytes) -> Cursor:
    """Decode and authenticate; raises CursorError saying what is wrong."""
    if not isinstance(text, str) or len(text) != _ENCODED_LEN:
        raise CursorError("the cursor is malformed (truncated, altered, or not from this server)")
    if _ALPHABET.fullmatch(text) is None:
        raise CursorError("the cursor is malformed (not base64url)")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:  # stray bits in the last character
        raise CursorError("the cursor was not issued by this server or has been altered")
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:_MAC_LEN]):
        raise CursorError("the cursor was not issued by this server or has been altered")
    version, code, limit, seq, start, flags, end, account = _BODY.unpack(body)
    if version != VERSION:
        raise CursorError(f"cursor format version {version} is not supported")
    try:
        feature = Feature.from_code(code)
        account_uuid = account.decode("ascii")
    except (KeyError, UnicodeDecodeError):
        raise CursorError("the cursor is malformed") from None
    return Cursor(account_uuid, feature, seq, start, end if flags & 1 else None, limit)
