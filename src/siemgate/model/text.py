"""Text every store backend can hold.

PostgreSQL cannot store the NUL character (U+0000) in text, and no backend can store a lone
surrogate (U+D800 to U+DFFF, which is not valid UTF-8). Such characters are refused where they
come in (docs/security.md, "Bounds and operator settings"), so nothing stored on SQLite today
cannot move to PostgreSQL tomorrow.
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# How such characters can appear in JSON text: escaped (\u0000, \ud800) or, for NUL, raw.
_UNSTORABLE_JSON = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\x00")
MAX_DEPTH = 64
EXCERPT = 60  # characters of a value an error message echoes


def excerpt(value: Any) -> str:
    """`value` as an error message shows what was sent: its repr, cut to EXCERPT characters ("..."
    ending a cut one), so that a huge input (a 301-digit number, a megabyte string) is not sent back."""
    if isinstance(value, str | bytes):
        value = value[: EXCERPT + 1]  # what can show: a megabyte is not copied to be cut
    text = repr(value)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."


def excerpt_path(path: str) -> str:
    """A field path as an error message shows it: at most EXCERPT characters ("..." ending a cut
    one), so that a megabyte-long field name is not sent back."""
    return path if len(path) <= EXCERPT else path[: EXCERPT - 3] + "..."


def unstorable(text: str) -> str | None:
    """What is wrong with `text` (a sentence to show), or None when every backend can store it."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    name = "the NUL character (U+0000)" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
    return f"contains {name} at position {found.start()}, which cannot be stored: remove it"


# What a name shown on one line cannot hold: line breaks (all that str.splitlines splits on), tab
# and every other control character (C0, DEL, C1), and the bidirectional embeddings, overrides and
# isolates, which reorder what follows them ("Splunk\u202eedoc.exe" shows as "Splunkexe.code"; the
# right-to-left and left-to-right marks, which reorder nothing, stay allowed).
_NOT_IN_A_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def name_problem(text: str) -> str | None:
    """What keeps `text` from being a name (a sentence to show), or None: a line break, a tab,
    another control character or a bidirectional override. Outputs encode control characters
    safely; a name holding one still reads as two lines, hides what follows in a terminal, a log
    or a mail client's list, or shows its text in another order."""
    found = _NOT_IN_A_NAME.search(text)
    if found is None:
        return None
    char = found.group()
    if char in _BREAKS:
        kind = "a line break"
    elif char == "\t":
        kind = "a tab"
    elif "\u202a" <= char <= "\u2069":
        kind = "a bidirectional override"
    else:
        kind = "a control character"
    return (
        f"contains {kind} (U+{ord(char):04X}) at position {found.start()}: line breaks, tabs, other"
        " control characters and bidirectional overrides are not allowed in a name; remove it"
    )


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first (field path, problem) of a string (or object key) in `value` that cannot be
    stored, searching dicts and lists at every depth; None when there is none. Past MAX_DEPTH
    levels the path stops growing (it names the object at that depth), so the search stays linear."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        named = depth < MAX_DEPTH
        if isinstance(item, str):
            problem = unstorable(item)
            if problem is not None:
                return where, problem
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                child = (f"{where}.{key}" if where else str(key)) if named else where
                if isinstance(key, str) and (problem := unstorable(key)) is not None:
                    return child, "the field name " + problem
                stack.append((inner, child, depth + 1))
        elif isinstance(item, list):
            stack.extend(
                (inner, f"{where}[{i}]" if named else where, depth + 1) for i, inner in reversed(list(enumerate(item)))
            )
    return None


def may_hold_unstorable_json(raw: bytes) -> bool:
    """False when JSON text `raw` certainly decodes to storable strings only (a fast scan; True
    means "decode and look": an escaped backslash before `u0000` also matches)."""
    return _UNSTORABLE_JSON.search(raw) is not None


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_case(text: str) -> str:
    """`text` with the letters A to Z in lower case and every other character as it is: how every
    store backend compares names and email addresses "ignoring case" (SQLite's NOCASE; PostgreSQL's
    `Dialect.fold`). `str.lower()` also folds É, Σ or İ, and would call two different people the same."""
    return text.translate(_ASCII_LOWER)
