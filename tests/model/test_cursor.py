"""Cursors: opaque, URL-safe, MAC-protected (model/cursor.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import string
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siemgate.model.cursor import Cursor, CursorError, decode_cursor, encode_cursor
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
BASE64URL = string.ascii_letters + string.digits + "-_"
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
INT64 = st.integers(-(2**63), 2**63 - 1)
ACCOUNT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz234567", min_size=26, max_size=26)

CURSORS = st.builds(
    Cursor,
    account_uuid=ACCOUNT,
    feature=st.sampled_from(ALL_FEATURES),
    seq=st.integers(0, 2**64 - 1),
    start=INT64,
    end=st.one_of(st.none(), INT64),
    limit=st.integers(1, 1000),
)
REFERENCE = Cursor("HGIF4OEWXDTVWKEQDIWTKV26HU", Feature.ITEMUSAGES, 12345, 1_700_000_000 * 10**9, None, 100)
REFERENCE_TEXT = encode_cursor(REFERENCE, KEY)


@given(CURSORS)
def test_round_trip(cursor: Cursor) -> None:
    text = encode_cursor(cursor, KEY)
    assert decode_cursor(text, KEY) == cursor


@given(CURSORS)
def test_url_safe_and_fixed_length(cursor: Cursor) -> None:
    text = encode_cursor(cursor, KEY)
    assert URL_SAFE.fullmatch(text), text
    assert len(text) == len(REFERENCE_TEXT)


@given(CURSORS, st.binary(min_size=1, max_size=64))
def test_deterministic_per_key(cursor: Cursor, key: bytes) -> None:
    assert encode_cursor(cursor, key) == encode_cursor(cursor, key)
    if key != KEY:
        assert encode_cursor(cursor, key) != encode_cursor(cursor, KEY)


@given(CURSORS, CURSORS)
def test_distinct_cursors_encode_differently(a: Cursor, b: Cursor) -> None:
    assert (encode_cursor(a, KEY) == encode_cursor(b, KEY)) == (a == b)


def test_end_none_and_end_zero_are_different() -> None:
    none = Cursor(new_id(), Feature.AUDITEVENTS, 1, 0, None, 10)
    zero = Cursor(none.account_uuid, Feature.AUDITEVENTS, 1, 0, 0, 10)
    assert decode_cursor(encode_cursor(none, KEY), KEY).end is None
    assert decode_cursor(encode_cursor(zero, KEY), KEY).end == 0
    assert encode_cursor(none, KEY) != encode_cursor(zero, KEY)


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor("A" * 26, Feature.SIGNINATTEMPTS, 0, -(2**63), None, 1),
        Cursor("7" * 26, Feature.AUDITEVENTS, 2**64 - 1, 2**63 - 1, 2**63 - 1, 1000),
        Cursor("z" * 26, Feature.ITEMUSAGES, 2**63, 0, -(2**63), 65535),
    ],
)
def test_extremes_round_trip(cursor: Cursor) -> None:
    assert decode_cursor(encode_cursor(cursor, KEY), KEY) == cursor


# --- tampering ----------------------------------------------------------------------------------


def test_every_single_character_substitution_is_refused() -> None:
    """Changing any one character of a cursor must make it invalid (DESIGN: "an altered cursor is a 400").

    Checked exhaustively on one cursor: every position, every other base64url character.
    """
    accepted = []
    for i, original in enumerate(REFERENCE_TEXT):
        for ch in BASE64URL:
            if ch == original:
                continue
            altered = REFERENCE_TEXT[:i] + ch + REFERENCE_TEXT[i + 1 :]
            try:
                decode_cursor(altered, KEY)
            except CursorError:
                continue
            accepted.append((i, original, ch))
    assert accepted == [], f"{len(accepted)} altered cursors were accepted, e.g. {accepted[:5]}"


@given(CURSORS, st.data())
def test_random_substitution_is_refused(cursor: Cursor, data: st.DataObject) -> None:
    text = encode_cursor(cursor, KEY)
    i = data.draw(st.integers(0, len(text) - 2))
    ch = data.draw(st.sampled_from(BASE64URL).filter(lambda c: c != text[i]))
    with pytest.raises(CursorError):
        decode_cursor(text[:i] + ch + text[i + 1 :], KEY)
    # The last character carries spare bits (95 characters hold 71 bytes): every change to it must
    # still be refused. Checked exhaustively so the outcome does not depend on what was drawn.
    accepted = [c for c in BASE64URL if c != text[-1] and _decodes(text[:-1] + c)]
    assert accepted == [], f"last character {text[-1]!r} could be replaced by any of {accepted}"


def _decodes(text: str) -> bool:
    try:
        decode_cursor(text, KEY)
    except CursorError:
        return False
    return True


@given(CURSORS, st.data())
def test_truncated_or_extended_cursors_are_refused(cursor: Cursor, data: st.DataObject) -> None:
    text = encode_cursor(cursor, KEY)
    cut = data.draw(st.integers(0, len(text) - 1))
    with pytest.raises(CursorError):
        decode_cursor(text[:cut], KEY)
    with pytest.raises(CursorError):
        decode_cursor(text[cut:] if cut else text[1:], KEY)
    extra = data.draw(st.text(alphabet=BASE64URL + "=.~ %", min_size=1, max_size=8))
    with pytest.raises(CursorError):
        decode_cursor(text + extra, KEY)
    with pytest.raises(CursorError):
        decode_cursor(extra + text, KEY)
    # Moving one character to the end keeps the length and the characters, but not the cursor.
    j = data.draw(st.integers(0, len(text) - 2))
    shifted = text[:j] + text[j + 1 :] + text[j]
    if shifted != text:
        with pytest.raises(CursorError):
            decode_cursor(shifted, KEY)


@settings(max_examples=50)
@given(CURSORS)
def test_a_cursor_from_another_key_is_refused(cursor: Cursor) -> None:
    with pytest.raises(CursorError, match=r"not issued by this server|altered"):
        decode_cursor(encode_cursor(cursor, OTHER_KEY), KEY)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "qwerty4567",  # the golden page's cursor
        REFERENCE_TEXT + "=",
        REFERENCE_TEXT[:-1] + "=",
        REFERENCE_TEXT[:-1] + "+",
        REFERENCE_TEXT[:-1] + "/",
        REFERENCE_TEXT[:10] + " " + REFERENCE_TEXT[11:],
        REFERENCE_TEXT[:10] + "é" + REFERENCE_TEXT[11:],
        base64.b64encode(b"\xff" * 71).decode(),
        None,
        12345,
        REFERENCE_TEXT.encode(),
    ],
)
def test_malformed_cursors_are_refused(value: object) -> None:
    with pytest.raises(CursorError, match="cursor"):
        decode_cursor(value, KEY)  # type: ignore[arg-type]


def _forge(fields: tuple[object, ...], key: bytes = KEY) -> str:
    """A cursor with the documented layout and a valid MAC, whatever its fields say."""
    body = struct.pack(">BBHQqBq26s", *fields)
    mac = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()


def test_documented_layout() -> None:
    fields = (1, Feature.ITEMUSAGES.code, 100, 12345, 1_700_000_000 * 10**9, 0, 0, REFERENCE.account_uuid.encode())
    assert _forge(fields) == REFERENCE_TEXT


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((2, 1, 100, 1, 0, 0, 0, b"A" * 26), "version"),
        ((0, 1, 100, 1, 0, 0, 0, b"A" * 26), "version"),
        ((1, 9, 100, 1, 0, 0, 0, b"A" * 26), "malformed"),
        ((1, 0, 100, 1, 0, 0, 0, b"A" * 26), "malformed"),
        ((1, 1, 100, 1, 0, 0, 0, b"\xff" * 26), "malformed"),
    ],
)
def test_authentic_but_unusable_cursors_are_refused(fields: tuple[object, ...], message: str) -> None:
    with pytest.raises(CursorError, match=message):
        decode_cursor(_forge(fields), KEY)
