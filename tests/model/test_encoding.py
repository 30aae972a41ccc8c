"""Stored event bytes and the v1 prefix slice (model/encoding.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from siemgate.model.encoding import encode_event, v1_bytes
from siemgate.model.features import ALL_FEATURES, Feature

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

# Written out from docs/events.md, "v1 and v2" (not imported from the module under test): the v2-only (MSP) fields.
USER_OBJECT = {"signinattempts": "target_user", "itemusages": "user", "auditevents": "actor_details"}
V2_TOP = {
    "signinattempts": {"account_uuid"},
    "itemusages": {"account_uuid"},
    "auditevents": {"actor_type", "actor_account_uuid", "account_uuid"},
}
V2_USER = {"user_type", "user_account_uuid"}
V1_TOP = {
    "signinattempts": ["uuid", "session_uuid", "timestamp", "category", "type", "country", "details", "client"],
    "itemusages": ["uuid", "timestamp", "used_version", "vault_uuid", "item_uuid", "action", "client", "location"],
    "auditevents": ["uuid", "timestamp", "actor_uuid", "action", "object_type", "object_uuid", "aux_id", "session"],
}
ALL_V2_NAMES = {"account_uuid", "actor_type", "actor_account_uuid", "user_type", "user_account_uuid"}


def expected_v1(feature: Feature, event: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in event.items() if k not in V2_TOP[feature.value]}
    user_key = USER_OBJECT[feature.value]
    if isinstance(out.get(user_key), dict):
        out[user_key] = {k: v for k, v in out[user_key].items() if k not in V2_USER}
    return out


def has_v2_fields(feature: Feature, event: dict[str, Any]) -> bool:
    user = event.get(USER_OBJECT[feature.value])
    return bool(V2_TOP[feature.value] & set(event)) or (isinstance(user, dict) and bool(V2_USER & set(user)))


# --- strategies ---------------------------------------------------------------------------------

TEXT = st.text(max_size=12)  # unicode, including quotes, braces, backslashes and astral characters
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
# Names that are not one of the fields this module gives meaning to.
FREE_NAME = TEXT.filter(lambda k: k not in ALL_V2_NAMES and k not in USER_OBJECT.values())


@st.composite
def user_objects(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["dict", "dict", "dict", "empty", "null", "string", "list"]))
    if kind == "empty":
        return {}
    if kind == "null":
        return None
    if kind == "string":
        return draw(TEXT)
    if kind == "list":
        return draw(st.lists(SCALAR, max_size=2))
    fields: dict[str, Any] = {}
    for name in draw(st.permutations(["uuid", "name", "email", "user_type", "user_account_uuid"])):
        if draw(st.booleans()):
            fields[name] = draw(TEXT)
    fields.update(draw(st.dictionaries(FREE_NAME, JSON, max_size=2)))
    return fields


@st.composite
def v2_events(draw: st.DrawFn, feature: Feature) -> dict[str, Any]:
    """A v2-shaped event: any subset of v1 fields, a user object or not, v2 fields or not, in any order."""
    items: list[tuple[str, Any]] = []
    for name in V1_TOP[feature.value]:
        if draw(st.booleans()):
            items.append((name, draw(JSON)))
    if draw(st.booleans()):
        items.append((USER_OBJECT[feature.value], draw(user_objects())))
    for name in sorted(V2_TOP[feature.value]):
        if draw(st.booleans()):
            items.append((name, draw(st.one_of(TEXT, JSON))))
    # v2-only names of *other* features are ordinary fields here.
    for name in sorted(ALL_V2_NAMES - V2_TOP[feature.value]):
        if draw(st.integers(0, 3)) == 0:
            items.append((name, draw(TEXT)))
    extra = draw(st.dictionaries(FREE_NAME, JSON, max_size=2))
    items.extend((k, v) for k, v in extra.items() if k not in dict(items))
    order = draw(st.permutations(range(len(items))))
    return dict(items[i] for i in order)


def _check(feature: Feature, event: dict[str, Any]) -> None:
    body, cut = encode_event(feature, event)
    assert isinstance(body, bytes)
    assert orjson.loads(body) == event
    assert orjson.loads(v1_bytes(body, cut)) == expected_v1(feature, event)
    assert (cut is None) == (not has_v2_fields(feature, event))
    if cut is None:
        assert v1_bytes(body, cut) == body
    else:
        # The v1 view is a prefix of the stored bytes plus closing braces: no re-encoding.
        v1 = v1_bytes(body, cut)
        assert v1 != body
        assert any(v1.endswith(b"}" * k) and body.startswith(v1[:-k]) for k in (1, 2))


@given(v2_events(Feature.SIGNINATTEMPTS))
def test_signinattempts_round_trip(event: dict[str, Any]) -> None:
    _check(Feature.SIGNINATTEMPTS, event)


@given(v2_events(Feature.ITEMUSAGES))
def test_itemusages_round_trip(event: dict[str, Any]) -> None:
    _check(Feature.ITEMUSAGES, event)


@given(v2_events(Feature.AUDITEVENTS))
def test_auditevents_round_trip(event: dict[str, Any]) -> None:
    _check(Feature.AUDITEVENTS, event)


@given(st.sampled_from(ALL_FEATURES), st.dictionaries(TEXT, JSON, max_size=6))
def test_arbitrary_objects_round_trip(feature: Feature, event: dict[str, Any]) -> None:
    _check(feature, event)


# --- worked examples ----------------------------------------------------------------------------

EXAMPLES: list[tuple[Feature, dict[str, Any], dict[str, Any] | None]] = [
    (Feature.SIGNINATTEMPTS, {"uuid": "A", "category": "success"}, None),
    (Feature.SIGNINATTEMPTS, {"uuid": "A", "account_uuid": "B"}, {"uuid": "A"}),
    (Feature.SIGNINATTEMPTS, {"account_uuid": "B"}, {}),
    (Feature.SIGNINATTEMPTS, {"target_user": {"user_type": "user"}}, {"target_user": {}}),
    (
        Feature.SIGNINATTEMPTS,
        {"target_user": {"user_type": "user", "name": "Zoë"}, "uuid": "A", "account_uuid": "B"},
        {"target_user": {"name": "Zoë"}, "uuid": "A"},
    ),
    (
        Feature.ITEMUSAGES,
        {"user": {"uuid": "U", "user_account_uuid": "X"}, "action": "fill"},
        {"user": {"uuid": "U"}, "action": "fill"},
    ),
    (Feature.ITEMUSAGES, {"user": None, "account_uuid": "B"}, {"user": None}),
    (Feature.ITEMUSAGES, {"actor_type": "user", "user_type": "user"}, None),  # audit-only names: v1 fields here
    (Feature.AUDITEVENTS, {"actor_type": "user", "action": "create"}, {"action": "create"}),
    (Feature.AUDITEVENTS, {"actor_details": {"user_type": "x", "user_account_uuid": "y"}}, {"actor_details": {}}),
    (Feature.AUDITEVENTS, {"target_user": {"user_type": "user"}}, None),  # not audit's user object
    (Feature.AUDITEVENTS, {"object_details": {"user_type": "user"}, "aux_id": 3}, None),
    (Feature.AUDITEVENTS, {}, None),
]


@pytest.mark.parametrize(("feature", "event", "v1"), EXAMPLES)
def test_examples(feature: Feature, event: dict[str, Any], v1: dict[str, Any] | None) -> None:
    body, cut = encode_event(feature, event)
    assert orjson.loads(body) == event
    assert orjson.loads(v1_bytes(body, cut)) == (event if v1 is None else v1)
    assert (cut is None) == (v1 is None)


def test_golden_v2_page_v1_view_drops_only_actor_type() -> None:
    page = orjson.loads((GOLDEN / "auditevents-v2-page.json").read_bytes())
    assert page["items"]
    for event in page["items"]:
        body, cut = encode_event(Feature.AUDITEVENTS, event)
        assert orjson.loads(body) == event
        v1 = orjson.loads(v1_bytes(body, cut))
        assert v1 == {k: v for k, v in event.items() if k != "actor_type"}
        assert (cut is None) == ("actor_type" not in event)


@pytest.mark.parametrize(
    ("name", "feature"),
    [
        ("signinattempts-v1.jsonl", Feature.SIGNINATTEMPTS),
        ("itemusages-v1.jsonl", Feature.ITEMUSAGES),
        ("auditevents-v1.jsonl", Feature.AUDITEVENTS),
    ],
)
def test_golden_v1_events_have_no_cut(name: str, feature: Feature) -> None:
    for line in (GOLDEN / name).read_bytes().splitlines():
        event = orjson.loads(line)
        body, cut = encode_event(feature, event)
        assert cut is None
        assert orjson.loads(body) == event
        assert v1_bytes(body, cut) == body


# --- the stored bytes are exactly those of the encoder as first written -------------------------


def _first_encoder(feature: Feature, event: dict[str, Any]) -> tuple[bytes, int | None]:
    """encode_event as first written (comprehensions where it now copies and pops): stores written
    before must stay byte-identical to new writes of the same event."""
    user_key = USER_OBJECT[feature.value]
    top_names = [n for n in ("actor_type", "actor_account_uuid", "account_uuid") if n in V2_TOP[feature.value]]
    user = event.get(user_key)
    user_extra = None
    if isinstance(user, dict) and ("user_type" in user or "user_account_uuid" in user):
        user_extra = {k: user[k] for k in ("user_type", "user_account_uuid") if k in user}
        user = {k: v for k, v in user.items() if k not in V2_USER}
    top_extra = {k: event[k] for k in top_names if k in event}
    if user_extra is None and not top_extra:
        return orjson.dumps(event), None
    base = {k: v for k, v in event.items() if k not in top_extra and k != user_key}
    if user_key in event:
        base[user_key] = user
    v1 = orjson.dumps(base)
    if user_extra:
        cut, braces = len(v1) - 2, 2
        head = v1[:cut]
        body = head + (b"," if head[-1:] != b"{" else b"") + orjson.dumps(user_extra)[1:-1] + b"}"
    else:
        cut, braces = len(v1) - 1, 1
        body = v1[:cut]
    if top_extra:
        body += (b"," if body != b"{" else b"") + orjson.dumps(top_extra)[1:-1]
    return body + b"}", cut * 4 + braces


@given(st.sampled_from(ALL_FEATURES).flatmap(lambda f: st.tuples(st.just(f), v2_events(f))))
def test_same_bytes_and_cut_as_the_first_encoder(case: tuple[Feature, dict[str, Any]]) -> None:
    feature, event = case
    before = copy.deepcopy(event)
    assert encode_event(feature, event) == _first_encoder(feature, event)
    assert event == before and list(event) == list(before)  # not modified


@pytest.mark.parametrize(("feature", "event", "v1"), EXAMPLES)
def test_examples_same_as_the_first_encoder(feature: Feature, event: dict[str, Any], v1: Any) -> None:
    assert encode_event(feature, event) == _first_encoder(feature, event)
