"""JSON objects with a key twice: refused where siemgate reads JSON others also read.

JSON parsers differ on which of two values of one key they keep (Python's, orjson and Go's keep the
last; others the first; some refuse the text), so an event sent as `{"category": "credentials_failed",
..., "category": "success"}` means one thing to siemgate and another to a tool that reads the same
bytes. siemgate refuses such text instead of choosing (docs/security.md, "Text and values").

`may_repeat_keys` is the fast test (C speed, run on every body); `find_repeated_key` the exact and
slower search, run only when the fast test says a key may repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

# A colon that JSON text can hold without writing it: \u003a or \u003A (or a backslash before u003...).
_ESCAPED_COLON = b"u003"


@dataclass(frozen=True, slots=True)
class RepeatedKey:
    """A key found twice in one object: `path` leads to that object (keys and array indexes)."""

    path: tuple[str | int, ...]
    key: str

    def field(self, skip: int = 0) -> str:
        """The dotted path of the repeated key, the first `skip` parts of `path` left out."""
        parts = [str(p) if isinstance(p, str) else f"[{p}]" for p in self.path[skip:]] + [self.key]
        return ".".join(parts).replace(".[", "[")


def may_repeat_keys(raw: bytes, value: Any) -> bool:
    """False when JSON text `raw`, which parsed to `value`, certainly has no object with a key twice.

    Every colon outside the strings of JSON text separates a key from its value, and every colon
    inside them is a character of a string: so the text holds as many colons as `value` written
    again, unless a key repeated (the dropped member and its colons are missing from `value`) or a
    string escaped a colon (`\\u003a`, then the answer is True: "look")."""
    if _ESCAPED_COLON in raw:
        return True
    try:
        again = orjson.dumps(value)
    except orjson.JSONEncodeError:  # a lone surrogate (text decoded by the standard library): look
        return True
    return again.count(b":") != raw.count(b":")


class _Repeats(dict[str, Any]):
    """An object that had a key twice; `repeated` is the first such key."""

    repeated: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    marked = _Repeats(result)
    marked.repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return marked


def find_repeated_key(raw: bytes) -> RepeatedKey | None:
    """The first (in document order) object of JSON text `raw` with a key twice, or None. `raw` must
    be JSON orjson accepts (or one with a lone surrogate); None also when it nests too deep to search."""
    try:
        value = json.loads(raw, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _Repeats):
            return RepeatedKey(path, item.repeated)
        if isinstance(item, dict):
            stack.extend((inner, (*path, key)) for key, inner in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((inner, (*path, index)) for index, inner in reversed(list(enumerate(item))))
    return None
