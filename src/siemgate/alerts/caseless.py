"""What "ignoring case" means in alert rules: one folding for every path that compares values.

`fold` is Unicode simple case folding (CaseFolding.txt, statuses C and S): each character is
replaced by one character, whatever surrounds it. It is what RE2 does for a regex with `nocase`,
so `eq`, `in`, `prefix`, `suffix`, `contains`, `regex`, the rule index, threshold groups,
first-seen keys and suppression keys all call the same values the same. Letters of every script
fold (`ZÜRICH` is `zürich`, `ΟΔΟΣ` is `οδοσ` and `οδος`, the Kelvin sign K is `k`, `ẞ` is `ß`,
fullwidth A U+FF21 is U+FF41); what simple folding does not do is not done: `ß` is not `ss`, the Turkish
`İ` (U+0130) and dotless i (U+0131) are themselves only, and `é` is not `e` followed by a combining
accent. docs/alerts.md, "Ignoring case".

The store's own "ignoring case" (names, e-mail addresses, the explorer's forgiving filters) is
A to Z only (model.text.fold_case): that one decides who is the same person, not what a rule matches.
"""

from __future__ import annotations

import functools
import re
import threading

FOLD = "simple"  # the folding first-seen values are learnt with (CompiledRule.learnt_from)
# Every character with a case folding is below this (Unicode 14: Adlam, U+1E900 to U+1E943);
# tests/alerts/test_caseless.py checks the whole range.
_CASED_BELOW = 0x1E944
# A text at least this long is folded once for all the tests of a rule that read it (a rule may
# hold hundreds of `nocase` tests on one field of up to an event's size): the last one each thread
# folded is kept with its folding.
_REMEMBERED_LENGTH = 256
_last = threading.local()


def simple_fold(char: str) -> str:
    """`char`'s simple case folding: its full folding when that is one character, else its
    lower case when that is one (ẞ, the Greek capitals with a subscript iota), else itself."""
    full = char.casefold()
    if len(full) == 1:
        return full
    lower = char.lower()
    return lower if len(lower) == 1 else char


@functools.cache
def _tables() -> tuple[re.Pattern[str], dict[int, str]]:
    """(the characters `str.lower` folds otherwise, or not one by one, as a pattern; the folding
    table), built on the first text that is not ASCII (about 0.1 s)."""
    chars = list(map(chr, range(_CASED_BELOW)))
    table: dict[int, str] = {}
    special = ["Σ"]  # str.lower makes it final or medial sigma by its neighbours
    for char, full, lower in zip(chars, map(str.casefold, chars), map(str.lower, chars), strict=True):
        if full == char and lower == char:
            continue
        folded = simple_fold(char)
        if folded != char:
            table[ord(char)] = folded
        if folded != lower:
            special.append(char)
    return re.compile("[" + "".join(map(re.escape, special)) + "]"), table


def fold(text: str) -> str:
    """`text` with every character replaced by its simple case folding. A text without any of the
    few characters `str.lower` folds otherwise (İ, Σ, final sigma, long s, the micro sign,
    Cherokee) is `str.lower`'s. A long text folded again right after (the same object, by the
    same thread) is not folded again."""
    if len(text) < _REMEMBERED_LENGTH:
        return text.lower() if text.isascii() else _fold(text)
    last: tuple[str, str] | None = getattr(_last, "pair", None)
    if last is not None and last[0] is text:
        return last[1]
    folded = _fold(text)
    _last.pair = (text, folded)
    return folded


def _fold(text: str) -> str:
    """fold, without remembering."""
    if text.isascii():
        return text.lower()
    special, table = _tables()
    return text.lower() if special.search(text) is None else text.translate(table)


@functools.cache
def _beyond_a_to_z() -> re.Pattern[str]:
    """The characters that fold alike with a character other than their A-to-Z other case (é
    and É, k and the Kelvin sign, s and the long s), as a pattern."""
    _, table = _tables()
    classes: dict[str, set[str]] = {}
    for code, folded in table.items():
        classes.setdefault(folded, {folded}).add(chr(code))
    a_to_z = {folded: {folded, folded.upper()} for folded in map(chr, range(ord("a"), ord("z") + 1))}
    chars = sorted(c for folded, group in classes.items() if group != a_to_z.get(folded) for c in group)
    return re.compile("[" + "".join(map(re.escape, chars)) + "]")


def shared_part(text: str) -> str:
    """The longest run of `text` without such characters: every text that `fold` calls the same as
    `text` contains it, ignoring the case of A to Z only (model.text.fold_case, the explorer's
    forgiving filters). `text` itself when it has none; "" when it is all such characters."""
    return max(_beyond_a_to_z().split(text), key=len)
