"""Conditions: which events a rule matches, compiled once into predicates.

A condition is a mapping. The keys `all` (a list of conditions, all true), `any` (a list, at least
one true) and `not` (one condition, false) combine; every other key is a field path (see
alerts.fields) with a test; several keys in one mapping must all hold. A test is

- a scalar: equality (`category: credentials_failed`);
- a list: one of the values (`action: [export, reveal]`);
- a mapping of operators, all of which must hold:
  `eq`, `ne`, `in`, `not_in` (values), `prefix`, `suffix`, `contains`, `regex` (strings; regex is
  RE2 syntax, searched anywhere unless anchored), `gt`, `gte`, `lt`, `lte` (numbers, compared
  exactly; strings in decimal notation such as app_version count, see `_number`), `before`,
  `after` (RFC 3339 times, against a timestamp field), `cidr` (an IP address field inside a
  network), `exists` (true: present and not null), and `nocase: true` to compare strings ignoring
  case.

A test on an absent field is false, except `exists: false`, `ne` and `not_in` (which are negations).
Numbers equal their decimal text (`used_version: 3` matches 3 and "3").
"""

from __future__ import annotations

import ipaddress
import math
import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import re2

from siemgate.alerts.caseless import fold
from siemgate.alerts.fields import MISSING, check_field, getter
from siemgate.model.text import excerpt
from siemgate.model.timestamps import TimestampError, parse_ns

Predicate = Callable[[Mapping[str, Any]], bool]
REGEX_MEMORY = 256 * 1024  # bytes one compiled regex (its program and matching states) may use (compile_regex)
OPERATORS = (
    "eq",
    "ne",
    "in",
    "not_in",
    "prefix",
    "suffix",
    "contains",
    "regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "before",
    "after",
    "cidr",
    "exists",
    "nocase",
)
Scalar = str | int | float | bool | None


class Searcher(Protocol):
    def search(self, text: str) -> object | None: ...


class ConditionError(ValueError):
    """A condition is malformed; the message names where (`match.any[1].country`) and what to write."""


def compile_regex(pattern: str, nocase: bool, where: str, *, stored: bool = False) -> Searcher:
    """A regular expression compiled by RE2, which matches in time linear in the text whatever
    the pattern (no catastrophic backtracking). RE2 has no backreferences, lookahead or
    lookbehind, and no possessive quantifiers; such patterns are refused with RE2's reason, as is
    one whose compiled form needs more than REGEX_MEMORY. That memory also bounds the states RE2
    keeps for the regex as it matches (with RE2's default, 8 MiB, a regex built 3 MB of them on
    one 60,000-character text, kept as long as its rule), past which it matches without them.
    `stored`: of a rule saved before that bound, which gets RE2's default when it needs it."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = REGEX_MEMORY
    options.case_sensitive = not nocase
    try:
        compiled: Searcher = re2.compile(pattern, options)
        return compiled
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if stored and "pattern too large" in reason:
            options.max_mem = re2.Options().max_mem
            fallback: Searcher = re2.compile(pattern, options)
            return fallback
        raise ConditionError(
            f"{where}: regular expression {excerpt(pattern)} is not supported: {reason}. Rules use RE2 syntax"
            " (linear-time matching): no backreferences (\\1), lookahead or lookbehind ((?=, (?!, (?<=, (?<!)"
        ) from None


def compile_condition(condition: Any, source: str, where: str = "match", *, stored: bool = False) -> Predicate:
    """Compile a condition for events of `source`; raises ConditionError. `stored`: of a rule
    already saved (compile_regex)."""
    if not isinstance(condition, Mapping) or not condition:
        raise ConditionError(f"{where}: expected a mapping of field tests or all/any/not, got {condition!r}")
    parts: list[Predicate] = []
    for key, spec in condition.items():
        if not isinstance(key, str):
            raise ConditionError(f"{where}: keys must be field paths or all/any/not, got {key!r}")
        if key in ("all", "any"):
            if not isinstance(spec, list) or not spec:
                raise ConditionError(f"{where}.{key}: expected a non-empty list of conditions")
            subs = [compile_condition(c, source, f"{where}.{key}[{i}]", stored=stored) for i, c in enumerate(spec)]
            parts.append(_all(subs) if key == "all" else _any(subs))
        elif key == "not":
            parts.append(_not(compile_condition(spec, source, f"{where}.not", stored=stored)))
        else:
            try:
                check_field(source, key)
            except ValueError as exc:
                raise ConditionError(f"{where}: {exc}") from None
            parts.append(_field_test(key, spec, f"{where}.{key}", stored))
    return parts[0] if len(parts) == 1 else _all(parts)


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 2:
        first, second = parts
        return lambda e: first(e) and second(e)
    return lambda e: all(p(e) for p in parts)


def _not(inner: Predicate) -> Predicate:
    return lambda e: not inner(e)


def _any(parts: list[Predicate]) -> Predicate:
    return lambda e: any(p(e) for p in parts)


def _field_test(path: str, spec: Any, where: str, stored: bool = False) -> Predicate:
    if isinstance(spec, list):
        spec = {"in": spec}
    elif not isinstance(spec, Mapping):
        spec = {"eq": spec}
    unknown = [op for op in spec if op not in OPERATORS]
    if unknown:
        raise ConditionError(f"{where}: unknown operator {unknown[0]!r}; use one of {', '.join(OPERATORS)}")
    nocase = spec.get("nocase", False)
    if not isinstance(nocase, bool):
        raise ConditionError(f"{where}.nocase: expected true or false")
    tests = [_operator(op, value, nocase, f"{where}.{op}", stored) for op, value in spec.items() if op != "nocase"]
    if not tests:
        raise ConditionError(f"{where}: no operator given")
    read = getter(path)
    top = "." not in path  # a top-level field is read inline, without a call
    if set(spec) == {"exists"} and isinstance(spec["exists"], bool):  # without a call per test
        wanted = spec["exists"]
        if top:
            return (lambda e: e.get(path) is not None) if wanted else (lambda e: e.get(path) is None)
        return lambda e: ((a := read(e)) is not MISSING and a is not None) == wanted
    if len(tests) == 1:
        only = tests[0]
        if top:
            return lambda e: only(e.get(path, MISSING))
        return lambda e: only(read(e))
    return lambda e: all(test(read(e)) for test in tests)


def _text(value: Any, nocase: bool) -> str | None:
    """A field value as text for string operators (numbers as their decimal text), else None."""
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, str | int | float):
        text = str(value)
        return fold(text) if nocase else text
    return None


MAX_NUMBER_TEXT = 100  # characters of a numeric string; a longer string is text
_NUMERIC_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _number(value: Any) -> int | Decimal | None:
    """A value as the exact number it is written as, or None when it is not one: an integer as
    itself; a float as its shortest decimal text (`0.1` is 0.1, as a JSON text writes it); a
    string in decimal notation, ASCII digits only (`"81118003"`, `"-2.5"`, `"1e3"`; not `" 12 "`,
    `"1_000"`, `"0x10"`, `"nan"`, `"inf"` or other scripts' digits). Never NaN or infinite, and
    integers beyond 2**53 compare exactly."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT and _NUMERIC_TEXT.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:  # an exponent beyond Decimal's range: no comparable number
            return None
    return None


def _equals(actual: Any, expected: Scalar, nocase: bool) -> bool:
    if actual is MISSING:
        return False
    if expected is None or isinstance(expected, bool) or isinstance(actual, bool) or actual is None:
        return actual is expected or (actual == expected and type(actual) is type(expected))
    if isinstance(expected, str):
        text = _text(actual, nocase)
        return text is not None and text == (fold(expected) if nocase else expected)
    number = _number(actual)
    return number is not None and number == _number(expected)


def _one_of(values: list[Scalar], nocase: bool) -> Callable[[Any], bool]:
    """A test: the value equals one of `values`, as _equals says. When they are all strings, a
    string value is looked up in a set of them; anything else is compared one by one."""
    if not all(isinstance(v, str) for v in values):
        return lambda a: any(_equals(a, v, nocase) for v in values)
    texts = frozenset(fold(str(v)) if nocase else v for v in values)
    if nocase:
        return lambda a: fold(a) in texts if type(a) is str else any(_equals(a, v, nocase) for v in values)
    return lambda a: a in texts if type(a) is str else any(_equals(a, v, nocase) for v in values)


def _scalars(value: Any, where: str) -> list[Scalar]:
    values = value if isinstance(value, list) else None
    if not values or not all(v is None or isinstance(v, str | int | float | bool) for v in values):
        raise ConditionError(f"{where}: expected a non-empty list of strings or numbers")
    return values


def _operator(op: str, value: Any, nocase: bool, where: str, stored: bool = False) -> Callable[[Any], bool]:
    if op in ("eq", "ne"):
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise ConditionError(f"{where}: expected a string, number, true/false or null")
        equal = _one_of([value], nocase)
        if op == "eq":
            return equal
        return lambda a: not equal(a)
    if op in ("in", "not_in"):
        found = _one_of(_scalars(value, where), nocase)
        if op == "in":
            return found
        return lambda a: not found(a)
    if op in ("prefix", "suffix", "contains"):
        if not isinstance(value, str):
            raise ConditionError(f"{where}: expected a string")
        needle = fold(value) if nocase else value
        method = {"prefix": str.startswith, "suffix": str.endswith, "contains": str.__contains__}[op]

        def string_test(a: Any) -> bool:
            text = _text(a, nocase)
            return text is not None and method(text, needle)

        return string_test
    if op == "regex":
        if not isinstance(value, str):
            raise ConditionError(f"{where}: expected a regular expression as a string")
        pattern = compile_regex(value, nocase, where, stored=stored)

        def regex_test(a: Any) -> bool:
            text = _text(a, False)
            return text is not None and pattern.search(text) is not None

        return regex_test
    if op in ("gt", "gte", "lt", "lte"):
        limit = _number(value)
        if limit is None:
            raise ConditionError(f"{where}: expected a number")
        compare: Callable[[Any, Any], bool] = {
            "gt": operator.gt,
            "gte": operator.ge,
            "lt": operator.lt,
            "lte": operator.le,
        }[op]

        def number_test(a: Any) -> bool:
            number = _number(a)
            return number is not None and compare(number, limit)

        return number_test
    if op in ("before", "after"):
        try:
            instant = parse_ns(value) if isinstance(value, str) else None
        except TimestampError:
            instant = None
        if instant is None:
            raise ConditionError(f"{where}: expected an RFC 3339 time such as 2024-01-31T09:30:00Z")

        def time_test(a: Any) -> bool:
            if not isinstance(a, str):
                return False
            try:
                ns = parse_ns(a)
            except TimestampError:
                return False
            return ns < instant if op == "before" else ns > instant

        return time_test
    if op == "cidr":
        try:
            network = ipaddress.ip_network(value, strict=False) if isinstance(value, str) else None
        except ValueError:
            network = None
        if network is None:
            raise ConditionError(f"{where}: expected a network such as 10.0.0.0/8 or 2001:db8::/32")

        def cidr_test(a: Any) -> bool:
            if not isinstance(a, str):
                return False
            try:
                return ipaddress.ip_address(a) in network
            except ValueError:
                return False

        return cidr_test
    # exists
    if not isinstance(value, bool):
        raise ConditionError(f"{where}: expected true or false")
    return lambda a: (a is not MISSING and a is not None) == value
