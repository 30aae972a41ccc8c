"""The items of an Events API page as the exact bytes served (what their leaves commit to).

A page is `{"cursor":"…","has_more":…,"items":[<item>,<item>,…]}` with each item the stored v2
bytes spliced in verbatim; a JSON parser would lose those bytes, so the items array is split by a
scanner that tracks strings and nesting. The whole page must also parse as JSON with the same
number of items, so a split that disagrees with a JSON parser is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

_ITEMS_KEY = b'"items"'


class PageFormatError(ValueError):
    """The bytes are not an Events API page."""


@dataclass(frozen=True)
class RawPage:
    cursor: str
    has_more: bool
    items: list[bytes]


def split_page(page: bytes) -> RawPage:
    """The cursor, has_more and the raw bytes of every item of a page; PageFormatError if the bytes
    are not a page."""
    try:
        data = json.loads(page)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PageFormatError(f"the page is not JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("cursor"), str)
        or not isinstance(data.get("has_more"), bool)
        or not isinstance(data.get("items"), list)
    ):
        raise PageFormatError("the page is not an Events API page (cursor, has_more, items)")
    items = _split_items(page)
    if len(items) != len(data["items"]):
        raise PageFormatError("the items array could not be split into its items")
    return RawPage(data["cursor"], data["has_more"], items)


def _split_items(page: bytes) -> list[bytes]:
    start = _items_start(page)
    items: list[bytes] = []
    depth = 0
    in_string = escaped = False
    item_start = None
    i = start
    n = len(page)
    while i < n:
        c = page[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x7B, 0x5B):  # { [
            if depth == 0:
                item_start = i
            depth += 1
        elif c in (0x7D, 0x5D):  # } ]
            if depth == 0:
                if c == 0x5D:
                    return items
                raise PageFormatError("unbalanced braces in the items array")
            depth -= 1
            if depth == 0 and item_start is not None:
                items.append(page[item_start : i + 1])
                item_start = None
        i += 1
    raise PageFormatError("the items array is not closed")


def _items_start(page: bytes) -> int:
    """The offset just after the `[` of the top-level items array."""
    # Top-level keys of the envelope: find "items" at depth 1, outside strings.
    depth = 0
    in_string = escaped = False
    i = 0
    while i < len(page):
        c = page[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            if depth == 1 and page.startswith(_ITEMS_KEY, i):
                j = i + len(_ITEMS_KEY)
                while j < len(page) and page[j] in b" \t\r\n:":
                    j += 1
                if j < len(page) and page[j] == 0x5B:
                    return j + 1
            in_string = True
        elif c in (0x7B, 0x5B):
            depth += 1
        elif c in (0x7D, 0x5D):
            depth -= 1
        i += 1
    raise PageFormatError("the page has no items array")
