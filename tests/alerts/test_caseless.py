"""One meaning of "ignoring case" in alert rules (alerts.caseless, docs/alerts.md "Ignoring case"):
Unicode simple case folding, the one RE2 applies to a `nocase` regex, on every path that compares
values: `eq`, `in`, `contains`, `regex`, Sigma values, the rule index (batch and per event), key
readers (threshold groups, first-seen keys and values, suppression keys), `alerts test`, and the
first-seen state learnt from the stored history on SQLite and PostgreSQL. Values are drawn at
random from a hostile alphabet (ASCII, Latin-1, Turkish I, the Kelvin sign, ß/ẞ, Greek sigmas,
fullwidth letters, combining marks, Cherokee)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import re2

from siemgate.alerts.caseless import _CASED_BELOW, fold, simple_fold
from siemgate.alerts.engine import Evaluator, RuleIndex, StateBook
from siemgate.alerts.fields import key_reader
from siemgate.alerts.match import compile_condition
from siemgate.alerts.model import compile_rule, parse_rule
from siemgate.alerts.service import test_rule as run_rule
from siemgate.alerts.sigma import sigma_to_rules
from support.events import signin
from support.stores import STORE_BACKENDS, drop_pg_schema

from .test_alerts_live import SIGNIN
from .test_exactly_once_model import BackendSite

S = 1_000_000_000
T0 = 1_900_000_000 * S
FIELD = "target_user.name"
HOSTILE = (
    "aAzZiIkK@.-1 "  # ASCII
    "éÉüÜßÿŸµ"  # Latin-1 (µ is the micro sign, whose folding is the Greek μ)
    "ıİ"  # Turkish dotless i, dotted capital I
    "\u212a"  # Kelvin sign
    "ẞ"  # capital sharp s
    "ΣσςμΜ"  # Greek: capital, medial and final sigma; mu
    "\uff21\uff41\uff2b\uff4b"  # fullwidth A, a, K, k
    "\u0301\u0307"  # combining acute accent and dot above
    "\u017fǅǄǆ"  # long s; the titlecase, capital and small dz with caron
    "Ꭰꭰ"  # Cherokee capital and small a
)


def _variant(rng: random.Random, text: str) -> str:
    """`text` with each character in a random case (or another character of its folding class)."""
    out = []
    for char in text:
        options = [char, char.upper(), char.lower(), *(c for c in HOSTILE if simple_fold(c) == simple_fold(char))]
        out.append(rng.choice([o for o in options if len(o) == 1] or [char]))
    return "".join(out)


def _pair(rng: random.Random) -> tuple[str, str]:
    value = "".join(rng.choice(HOSTILE) for _ in range(rng.randint(1, 6)))
    if rng.random() < 0.3:
        return value, "".join(rng.choice(HOSTILE) for _ in range(len(value)))
    return value, _variant(rng, value)


ADA, BOB = signin(0)["target_user"]["uuid"], signin(0)["target_user"]["uuid"]


def _event(value: Any, user: str = ADA, ts: int = T0) -> dict[str, Any]:
    event = signin(ts)
    event["target_user"]["name"] = value
    event["target_user"]["uuid"] = user
    return event


def _rule(**definition: Any) -> Any:
    return compile_rule(parse_rule({"id": "r", "name": "R", "source": "signinattempts", **definition}))


def _sigma(detection: dict[str, Any]) -> Any:
    text = (
        "title: Caseless\nid: 44444444-4444-4444-8444-444444444444\n"
        "logsource: {product: 1password, service: signinattempts}\n"
        f"detection:\n  sel: {json.dumps(detection, ensure_ascii=False)}\n  condition: sel\nlevel: high\n"
    )
    [rule] = sigma_to_rules(text)
    return compile_rule(rule)


def _paths(value: str, other: str) -> dict[str, bool]:
    """Whether each path calls `other` (an event's value) the same as `value` (a rule's), ignoring case."""
    seen, event = _event(value), _event(other)
    quoted = re.escape(value)
    eq = _rule(match={FIELD: {"eq": value, "nocase": True}})
    index = RuleIndex([eq])
    [(_, test, positions)] = index.plan([event]) or [(0, None, [])]
    found = index.candidates(event)  # none, or the rule with what is left to test
    reader = key_reader([FIELD], True)
    pair = [seen, event]
    first_seen = {"key": ["target_user.uuid"], "value": [FIELD], "nocase": True}

    def new_to_first_seen(events: list[tuple[int, dict[str, Any]]]) -> bool:
        rules, book = [_rule(match={"category": "success"}, first_seen=first_seen)], StateBook()
        Evaluator(rules, book).evaluate([(1, seen)], learn_only=True)
        return bool(Evaluator(rules, book).evaluate(events))  # the number's new key is its first: quiet

    mixed = [(2, event), (3, _event(5, user=BOB))]  # a number: the per-event path, not the column
    grouped = _rule(
        match={"category": "success"}, threshold={"count": 2, "window": "1m", "group_by": [FIELD], "nocase": True}
    )
    return {
        "eq": compile_condition({FIELD: {"eq": value, "nocase": True}}, "signinattempts")(event),
        "in": compile_condition({FIELD: {"in": ["\x01", value], "nocase": True}}, "signinattempts")(event),
        "regex (RE2)": compile_condition({FIELD: {"regex": f"^(?:{quoted})$", "nocase": True}}, "signinattempts")(
            event
        ),
        "contains both ways": compile_condition({FIELD: {"contains": value, "nocase": True}}, "signinattempts")(event)
        and compile_condition({FIELD: {"contains": other, "nocase": True}}, "signinattempts")(seen),
        "sigma value": _sigma({FIELD: value}).predicate(event),
        "sigma |re|i": _sigma({f"{FIELD}|re|i": f"^(?:{quoted})$"}).predicate(event),
        "rule index, batch": bool(positions) and (test is None or test(event)),
        "rule index, per event": any(t is None or t(event) for _, t in found),
        "key reader, one": reader.one(seen) == reader.one(event),
        "key reader, batch": reader.column(pair, [0]) == reader.column(pair, [1]),
        "first seen, batch": not new_to_first_seen([(2, event)]),
        "first seen, per event": not new_to_first_seen(mixed),
        "threshold group (alerts test)": bool(run_rule(grouped, pair)),
    }


@pytest.mark.parametrize("seed", range(4))
def test_every_path_calls_the_same_values_the_same(seed: int) -> None:
    rng = random.Random(seed)
    agreed = [0, 0]
    for _ in range(150):
        value, other = _pair(rng)
        paths = _paths(value, other)
        assert len(set(paths.values())) == 1, f"{value!r} against {other!r}: {paths}"
        agreed[paths["eq"]] += 1
    assert min(agreed) > 20  # the draws hold both kinds: matches and not


def test_fold_is_what_re2_matches_ignoring_case() -> None:
    """Each character and those its case variants lead to: the same folding exactly when RE2's
    case-insensitive match of one is the other (every code point; none above _CASED_BELOW folds)."""
    options = re2.Options()
    options.case_sensitive = False
    classes: dict[str, list[str]] = {}
    for code in range(_CASED_BELOW):
        classes.setdefault(simple_fold(chr(code)), []).append(chr(code))
    wrong = []
    for code in range(_CASED_BELOW):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF or (char.lower() == char and char.upper() == char and char.casefold() == char):
            continue
        pattern = re2.compile(re.escape(char), options)
        near = {char.upper(), char.lower(), char.title(), char.casefold(), *classes[simple_fold(char)]}
        for other in (c for c in near if len(c) == 1):
            if (pattern.fullmatch(other) is not None) != (fold(char) == fold(other)):
                wrong.append((char, other))
    assert wrong == []
    above = (chr(c) for c in range(_CASED_BELOW, 0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert [c for c in above if simple_fold(c) != c or c.lower() != c] == []


@pytest.mark.parametrize("seed", range(3))
def test_fold_is_one_character_at_a_time(seed: int) -> None:
    """A text folds as its characters do, whatever their neighbours (a final Σ, an İ), and ASCII
    as `str.lower`."""
    rng = random.Random(seed)
    for _ in range(2000):
        text = "".join(rng.choice(HOSTILE) for _ in range(rng.randint(0, 12)))
        assert fold(text) == "".join(map(simple_fold, text)), repr(text)
    assert fold("ΟΔΟΣ") == fold("οδος") == fold("οδοσ") and fold("Kim") == fold("\u212aim") == "kim"
    assert fold("STRAẞE") == "straße" != fold("strasse") and fold("İstanbul") != fold("istanbul")


HISTORY = ["ZÜRICH", "Straße", "İstanbul", "ΑΘΗΝΑΣ", "\u212aöln", "ǅakovica", "\u017fion", "µünchen"]
SAME = ["Zürich", "STRAẞE", "İSTANBUL", "Αθηνασ", "Köln", "ǆakovica", "Sion", "μÜnchen"]


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_first_seen_learnt_from_the_stored_history_folds_as_live_evaluation(tmp_path: Path, backend: str) -> None:
    """History with non-ASCII values in mixed case, then a first-seen rule (it learns the history):
    the same values in another case are not new; a value that differs otherwise is."""
    site = BackendSite(tmp_path / "data", backend)
    try:
        start = site.clock() - 86400 * S
        site.write(SIGNIN, [_event(city, ts=start + i * S) for i, city in enumerate(HISTORY)])
        site.rule(
            id="new-city", name="New city", source="signinattempts", match={"category": "success"},
            first_seen={"key": ["target_user.uuid"], "value": [FIELD], "nocase": True},
        )  # fmt: skip
        site.write(SIGNIN, [_event(city, ts=site.clock() + i * S) for i, city in enumerate(SAME)])
        assert [a.summary for a in site.alerts("new-city")] == []
        site.restart()
        site.write(SIGNIN, [_event(city, ts=site.clock() + (10 + i) * S) for i, city in enumerate(SAME)])
        site.write(SIGNIN, [_event("istanbul", ts=site.clock() + 20 * S)])  # not İstanbul's case: new
        [alert] = site.alerts("new-city")
        assert "istanbul" in alert.summary
    finally:
        site.services.close()
        if site.schema is not None:
            drop_pg_schema(site.schema)
