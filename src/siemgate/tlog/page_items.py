"""The items of an Events API page as the exact bytes served (what their leaves commit to).

A page is `{"cursor":"…","has_more":…,"items":[<item>,<item>,…]}` with each item the stored v2
bytes spliced in verbatim; a JSON parser would lose those bytes, so the envelope is walked with the
standard library's decoder (`raw_decode`, which reports where each value ends) and every item is
cut from the text at its own bounds. Valid UTF-8 re-encodes to the very bytes received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


class PageFormatError(ValueError):
    """The bytes are not an Events API page."""


@dataclass(frozen=True)
class RawPage:
    cursor: str
    has_more: bool
    items: list[bytes]
    decoded: list[Any]  # the items as decoded (so that a verifier need not decode them again)


def split_page(page: bytes) -> RawPage:
    """The cursor, has_more and the raw bytes of every item of a page; PageFormatError if the bytes
    are not a page."""
    try:
        text = page.decode("utf-8")
    except UnicodeDecodeError:
        raise PageFormatError("the page is not UTF-8") from None
    fields: dict[str, Any] = {}
    items: list[bytes] | None = None
    decoded: list[Any] = []
    try:
        pos = _expect(text, _skip(text, 0), "{")
        while True:
            pos = _skip(text, pos)
            if text.startswith("}", pos) and not fields and items is None:
                pos += 1
                break
            key, pos = _DECODER.raw_decode(text, pos)
            if not isinstance(key, str):
                raise PageFormatError("the page's keys must be strings")
            if key in fields or (key == "items" and items is not None):
                # JSON parsers differ on which of two values they keep: the verified items (or
                # cursor) could then be other than those a SIEM reads from the same bytes.
                raise PageFormatError(f"the page has the key {key!r} twice")
            pos = _expect(text, _skip(text, pos), ":")
            pos = _skip(text, pos)
            if key == "items" and text.startswith("[", pos):
                items, decoded, pos = _items(text, pos + 1)
            else:
                fields[key], pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text.startswith(",", pos):
                pos += 1
                continue
            pos = _expect(text, pos, "}")
            break
    except json.JSONDecodeError as exc:
        raise PageFormatError(f"the page is not JSON: {exc}") from None
    if _skip(text, pos) != len(text):
        raise PageFormatError("the page has bytes after its JSON object")
    cursor, has_more = fields.get("cursor"), fields.get("has_more")
    if not isinstance(cursor, str) or not isinstance(has_more, bool) or items is None:
        raise PageFormatError("the page is not an Events API page (cursor, has_more, items)")
    return RawPage(cursor, has_more, items, decoded)


def _items(text: str, pos: int) -> tuple[list[bytes], list[Any], int]:
    """The items of the array whose `[` ends just before `pos` (raw and decoded), and the position
    after its `]`."""
    out: list[bytes] = []
    decoded: list[Any] = []
    pos = _skip(text, pos)
    if text.startswith("]", pos):
        return out, decoded, pos + 1
    while True:
        pos = _skip(text, pos)
        value, end = _DECODER.raw_decode(text, pos)
        out.append(text[pos:end].encode("utf-8"))
        decoded.append(value)
        pos = _skip(text, end)
        if text.startswith(",", pos):
            pos += 1
            continue
        return out, decoded, _expect(text, pos, "]")


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def _expect(text: str, pos: int, char: str) -> int:
    if not text.startswith(char, pos):
        raise PageFormatError(f"the page is not JSON: expected {char!r} at offset {pos}")
    return pos + 1
