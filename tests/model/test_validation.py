"""Validating and normalising event batches (model/validation.py): strict for producers, lenient for mirrors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import is_id
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.model.validation import InvalidEvents, Issue, validate_events

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SIGNIN, ITEMS, AUDIT = Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS
NOW = 1_706_693_400_123_000_000  # 2024-01-31T09:30:00.123Z
U1, U2 = "HGIF4OEWXDTVWKEQDIWTKV26HU", "OJQGU46KAPROEJLCK674RHSAY5"

MINIMAL = {
    SIGNIN: {"uuid": U1, "timestamp": "2024-01-31T09:30:00Z", "category": "success", "type": "credentials_ok"},
    ITEMS: {"uuid": U1, "timestamp": "2024-01-31T09:30:00Z"},
    AUDIT: {"uuid": U1, "timestamp": "2024-01-31T09:30:00Z", "action": "create", "object_type": "user"},
}


def _event(feature: Feature, **fields: Any) -> dict[str, Any]:
    event = dict(MINIMAL[feature])
    for key, value in fields.items():
        if value is ...:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def _issues(feature: Feature, items: list[Any], *, strict: bool = True) -> list[Issue]:
    with pytest.raises(InvalidEvents) as info:
        validate_events(feature, items, strict=strict, now=NOW)
    return info.value.issues


def _paths(issues: list[Issue]) -> set[tuple[int, str]]:
    return {(i.index, i.path) for i in issues}


# --- golden files -------------------------------------------------------------------------------


def _golden() -> list[tuple[str, Feature, list[dict[str, Any]]]]:
    out = []
    for name, feature in [
        ("signinattempts-v1.jsonl", SIGNIN),
        ("itemusages-v1.jsonl", ITEMS),
        ("auditevents-v1.jsonl", AUDIT),
    ]:
        lines = (GOLDEN / name).read_bytes().splitlines()
        out.append((name, feature, [orjson.loads(line) for line in lines if line.strip()]))
    page = orjson.loads((GOLDEN / "auditevents-v2-page.json").read_bytes())
    out.append(("auditevents-v2-page.json", AUDIT, page["items"]))
    return out


@pytest.mark.parametrize(("name", "feature", "items"), _golden(), ids=[g[0] for g in _golden()])
@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
def test_golden_files_validate_unchanged(
    name: str, feature: Feature, items: list[dict[str, Any]], strict: bool
) -> None:
    assert items
    original = copy.deepcopy(items)
    result = validate_events(feature, items, strict=strict, now=NOW)
    assert items == original  # the input is not modified
    assert [event for _, event in result] == original  # already canonical: returned unchanged
    assert [ns for ns, _ in result] == [parse_ns(e["timestamp"]) for e in original]


# --- filling and normalising --------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_uuid_and_timestamp_are_filled(feature: Feature, strict: bool) -> None:
    items = [_event(feature, uuid=..., timestamp=...), _event(feature, uuid=None, timestamp=None)]
    result = validate_events(feature, items, strict=strict, now=NOW)
    assert len(result) == 2
    uuids = [event["uuid"] for _, event in result]
    for ns, event in result:
        assert ns == NOW
        assert event["timestamp"] == format_ns(NOW) == "2024-01-31T09:30:00.123Z"
        assert is_id(event["uuid"]) and event["uuid"] == event["uuid"].upper()
    assert uuids[0] != uuids[1]
    assert "uuid" not in items[0]  # the caller's dicts are left alone


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    ("given_ts", "canonical"),
    [
        ("2024-01-31T09:30:00Z", "2024-01-31T09:30:00Z"),
        ("2024-01-31T10:30:00+01:00", "2024-01-31T09:30:00Z"),
        ("2024-01-31T09:30:00.000Z", "2024-01-31T09:30:00Z"),
        ("2024-01-31T09:30:00.120000Z", "2024-01-31T09:30:00.12Z"),
        ("2024-01-31t09:30:00.5z", "2024-01-31T09:30:00.5Z"),
        ("2024-01-31 09:30:00-00:00", "2024-01-31T09:30:00Z"),
        ("2024-01-31T06:30:00.123456789-03:00", "2024-01-31T09:30:00.123456789Z"),
    ],
)
def test_timestamps_are_normalised(given_ts: str, canonical: str, strict: bool) -> None:
    [(ns, event)] = validate_events(AUDIT, [_event(AUDIT, timestamp=given_ts)], strict=strict, now=NOW)
    assert event["timestamp"] == canonical
    assert ns == parse_ns(canonical)
    session = {"login_time": given_ts, "ip": "10.0.0.1"}
    [(_, event)] = validate_events(AUDIT, [_event(AUDIT, session=session)], strict=strict, now=NOW)
    assert event["session"] == {"login_time": canonical, "ip": "10.0.0.1"}
    assert session["login_time"] == given_ts  # not modified in place


@given(st.integers(0, 2**63 - 1), st.sampled_from(["Z", "z", "+00:00", "-00:00"]), st.integers(0, 2))
def test_any_representation_normalises_to_format_ns(ns: int, zone: str, pad: int) -> None:
    text = format_ns(ns)[:-1]
    if "." in text:
        text += "0" * min(pad, 9 - len(text.split(".")[1]))
    [(got_ns, event)] = validate_events(ITEMS, [_event(ITEMS, timestamp=text + zone)], strict=True, now=NOW)
    assert got_ns == ns
    assert event["timestamp"] == format_ns(ns)


def test_only_ascii_digit_timestamps_are_stored() -> None:
    """A timestamp with non-ASCII digits must never be stored as given (SIEMs compare them as strings)."""
    text = "\u0662\u0660\u0662\u0664-01-31T09:30:00Z"  # Arabic-Indic "2024"
    try:
        result = validate_events(ITEMS, [_event(ITEMS, timestamp=text)], strict=True, now=NOW)
    except InvalidEvents as exc:  # refusing it is fine (see tests/model/test_timestamps.py)
        issues = exc.issues
    else:  # and so is normalising it, but never storing it unchanged
        assert [e["timestamp"] for _, e in result] == ["2024-01-31T09:30:00Z"]
        return
    assert _paths(issues) == {(0, "timestamp")}


# --- strict vs lenient --------------------------------------------------------------------------


def test_strict_refuses_unknown_fields_lenient_keeps_them() -> None:
    items = [
        _event(SIGNIN, client={"app_name": "x", "ip": "1.2.3.4"}, colour="blue"),
        _event(SIGNIN, target_user={"uuid": U2, "nmae": "typo"}),
    ]
    issues = _issues(SIGNIN, items)
    assert _paths(issues) == {(0, "client.ip"), (0, "colour"), (1, "target_user.nmae")}
    by_path = {i.path: i.message for i in issues}
    assert by_path["target_user.nmae"].startswith("unknown field")
    assert "'name'" in by_path["target_user.nmae"]  # did you mean 'name'?
    assert "ip_address" in by_path["client.ip"]  # suggestion or the list of known fields
    lenient = validate_events(SIGNIN, items, strict=False, now=NOW)
    assert [event for _, event in lenient] == items


def test_strict_refuses_unknown_enum_values_lenient_keeps_them() -> None:
    items = [
        _event(SIGNIN, category="teleported"),
        _event(SIGNIN, type="passkey_magic"),
        _event(SIGNIN, target_user={"uuid": U2, "user_type": "robot"}),
    ]
    issues = _issues(SIGNIN, items)
    assert _paths(issues) == {(0, "category"), (1, "type"), (2, "target_user.user_type")}
    for issue in issues:
        assert issue.message.startswith("unknown value"), issue
    by_path = {i.path: i.message for i in issues}
    assert "'teleported'" in by_path["category"] and "success" in by_path["category"]
    assert "external_user" in by_path["target_user.user_type"]
    lenient = validate_events(SIGNIN, items, strict=False, now=NOW)
    assert [event for _, event in lenient] == items
    audit = [_event(AUDIT, action="target.attribute.verb", object_type="hologram", actor_type="martian")]
    assert [e for _, e in validate_events(AUDIT, audit, strict=False, now=NOW)] == audit
    assert _paths(_issues(AUDIT, audit)) == {(0, "action"), (0, "object_type"), (0, "actor_type")}


def test_strict_checks_types_and_ids() -> None:
    items = [
        _event(ITEMS, uuid="not-an-id"),
        _event(ITEMS, used_version="1"),
        _event(ITEMS, used_version=True),
        _event(ITEMS, vault_uuid="jaqxqf5qylslqiitnduawrndc5", item_uuid="0" * 26),
        _event(ITEMS, location={"latitude": "north"}),
        _event(ITEMS, client="Chrome"),
    ]
    issues = _issues(ITEMS, items)
    assert _paths(issues) == {
        (0, "uuid"),
        (1, "used_version"),
        (2, "used_version"),
        (3, "item_uuid"),
        (4, "location.latitude"),
        (5, "client"),
    }
    by_index = {i.index: i.message for i in issues}
    assert "'not-an-id'" in by_index[0] and "26 base32" in by_index[0]
    assert "'1'" in by_index[1]  # shows what was given
    # Lenient checks only uuid and timestamp.
    assert len(validate_events(ITEMS, items[1:], strict=False, now=NOW)) == 5


@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_strict_requires_the_required_fields(feature: Feature) -> None:
    required = {SIGNIN: {"category", "type"}, ITEMS: set(), AUDIT: {"action", "object_type"}}[feature]
    bare = {"uuid": U1, "timestamp": "2024-01-31T09:30:00Z"}
    if not required:
        assert validate_events(feature, [bare], strict=True, now=NOW)[0][1] == bare
        return
    issues = _issues(feature, [bare])
    assert _paths(issues) == {(0, name) for name in required}
    assert all(i.message == "required field is missing" for i in issues)
    assert validate_events(feature, [bare], strict=False, now=NOW)[0][1] == bare


@pytest.mark.parametrize("uuid", ["", 42, ["x"], "x" * 129])
def test_lenient_checks_the_uuid(uuid: Any) -> None:
    issues = _issues(ITEMS, [_event(ITEMS), _event(ITEMS, uuid=uuid)], strict=False)
    assert _paths(issues) == {(1, "uuid")}
    assert "string" in issues[0].message
    # Any non-empty string up to 128 characters is a usable uuid in lenient mode.
    for ok in ("x", "x" * 128, "not-base32-at-all"):
        assert validate_events(ITEMS, [_event(ITEMS, uuid=ok)], strict=False, now=NOW)[0][1]["uuid"] == ok


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("2024-13-01T00:00:00Z", "month"),
        ("2023-02-29T00:00:00Z", "28 days"),
        ("2024-01-31T24:00:00Z", "time of day"),
        ("2024-01-31T09:30:00.1234567890Z", "at most 9"),
        ("2024-01-31T09:30:00", "RFC 3339"),
        ("1969-12-31T23:59:59Z", "range"),
        ("2262-04-12T00:00:00Z", "range"),
        (1706693400, "RFC 3339"),
    ],
)
def test_bad_timestamps_are_reported(bad: Any, hint: str, strict: bool) -> None:
    issues = _issues(ITEMS, [_event(ITEMS), _event(ITEMS, timestamp=bad)], strict=strict)
    assert {i.index for i in issues} == {1}
    assert {i.path for i in issues} == {"timestamp"}
    assert any(hint in i.message for i in issues), issues
    session_issues = _issues(AUDIT, [_event(AUDIT, session={"login_time": bad})], strict=strict)
    assert _paths(session_issues) == {(0, "session.login_time")}


# --- the u2f_timout alias -----------------------------------------------------------------------


def test_u2f_timout_alias() -> None:
    """The v1 OpenAPI spelling is accepted from producers and stored as the documented one."""
    items = [_event(SIGNIN, category="mfa_failed", type="u2f_timout"), _event(SIGNIN, type="u2f_timeout")]
    result = validate_events(SIGNIN, items, strict=True, now=NOW)
    assert [e["type"] for _, e in result] == ["u2f_timeout", "u2f_timeout"]
    assert items[0]["type"] == "u2f_timout"
    # Mirrored data is kept exactly as received.
    assert validate_events(SIGNIN, items, strict=False, now=NOW)[0][1]["type"] == "u2f_timout"
    # Only sign-in types have the alias.
    assert _paths(_issues(AUDIT, [_event(AUDIT, action="u2f_timout")])) == {(0, "action")}


@pytest.mark.parametrize("feature", ALL_FEATURES)
@pytest.mark.parametrize("value", [["u2f_timout"], {"a": 1}])
def test_strange_type_values_are_issues_not_crashes(feature: Feature, value: Any) -> None:
    """`type` with an unhashable value (a JSON array or object) is a validation issue like any other."""
    issues = _issues(feature, [_event(feature, type=value)])
    assert _paths(issues) == {(0, "type")}


# --- InvalidEvents ------------------------------------------------------------------------------


def test_invalid_events_lists_every_problem_with_index_and_path() -> None:
    items = [
        _event(AUDIT),
        _event(AUDIT, action="fly", object_type=...),
        _event(AUDIT),
        _event(AUDIT, timestamp="2024-02-30T00:00:00Z", session={"login_time": "2024-01-01T00:00:00Z", "ip": 1}),
        _event(AUDIT, actor_details={"uuid": "short", "user_account_uuid": "bad"}, aux_id="7"),
    ]
    with pytest.raises(InvalidEvents) as info:
        validate_events(AUDIT, items, strict=True, now=NOW)
    exc = info.value
    assert _paths(exc.issues) == {
        (1, "action"),
        (1, "object_type"),
        (3, "timestamp"),
        (3, "session.ip"),
        (4, "actor_details.uuid"),
        (4, "actor_details.user_account_uuid"),
        (4, "aux_id"),
    }
    assert [i.index for i in exc.issues] == sorted(i.index for i in exc.issues)
    assert exc.total == len(exc.issues)
    message = str(exc)
    assert f"{exc.total} problem(s)" in message and "nothing was stored" in message
    assert str(exc.issues[0]) in message
    assert f"(and {exc.total - 3} more)" in message


def test_issue_text() -> None:
    assert str(Issue(3, "client.ip_address", "boom")) == "event 3, field client.ip_address: boom"
    assert str(Issue(0, "", "expected a JSON object, got a string")) == "event 0: expected a JSON object, got a string"


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    ("item", "kind"),
    [("text", "a string"), (5, "a number"), (None, "null"), ([], "an array"), (True, "a boolean")],
)
def test_non_objects_are_reported(item: Any, kind: str, strict: bool) -> None:
    issues = _issues(SIGNIN, [_event(SIGNIN), item], strict=strict)
    assert [(i.index, i.path, i.message) for i in issues] == [(1, "", f"expected a JSON object, got {kind}")]


def test_non_objects_do_not_hide_the_other_problems() -> None:
    """'Raises InvalidEvents listing every problem': a stray non-object is one problem among several."""
    items = [_event(SIGNIN, category="nope"), "oops", _event(SIGNIN, timestamp="yesterday")]
    assert _paths(_issues(SIGNIN, items)) == {(0, "category"), (1, ""), (2, "timestamp")}


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
def test_both_bad_timestamps_of_one_event_are_reported(strict: bool) -> None:
    item = _event(AUDIT, timestamp="2024-13-01T00:00:00Z", session={"login_time": "2024-01-01T25:00:00Z"})
    assert _paths(_issues(AUDIT, [item], strict=strict)) == {(0, "timestamp"), (0, "session.login_time")}


def test_issues_are_capped_but_counted() -> None:
    items = [_event(SIGNIN, category="nope", type="nope") for _ in range(80)]
    with pytest.raises(InvalidEvents) as info:
        validate_events(SIGNIN, items, strict=True, now=NOW)
    assert len(info.value.issues) == 100
    assert info.value.total == 160
    assert "160 problem(s)" in str(info.value)


@pytest.mark.parametrize("events", [1, 120])
def test_a_number_given_as_a_string_is_one_problem_in_the_count(events: int) -> None:
    """An int | float field fails for each member of the union: two errors from pydantic, one
    problem listed and counted (the count said 4 for the 2 listed, "(and 1 more)" of nothing)."""
    items = [_event(SIGNIN, location={"latitude": "1", "longitude": "2"}) for _ in range(events)]
    with pytest.raises(InvalidEvents) as info:
        validate_events(SIGNIN, items, strict=True, now=NOW)
    assert _paths(info.value.issues[:2]) == {(0, "location.latitude"), (0, "location.longitude")}
    assert (len(info.value.issues), info.value.total) == (min(2 * events, 100), 2 * events)
    assert str(info.value).startswith(f"{2 * events} problem(s) in the batch")


def test_empty_batch() -> None:
    for feature in ALL_FEATURES:
        assert validate_events(feature, [], strict=True, now=NOW) == []
        assert validate_events(feature, [], strict=False, now=NOW) == []


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
def test_the_callers_events_are_never_modified(strict: bool, valid: bool) -> None:
    items = [
        _event(AUDIT, timestamp="2024-01-31T10:30:00+01:00", session={"login_time": "2024-01-31 09:30:00.50Z"}),
        _event(AUDIT, uuid=None, timestamp=...),
        _event(AUDIT, uuid=U2 if valid else 7),
    ]
    original = copy.deepcopy(items)
    if valid:
        result = validate_events(AUDIT, items, strict=strict, now=NOW)
        assert result[0][1]["timestamp"] == "2024-01-31T09:30:00Z"
        assert all(event is not item for (_, event), item in zip(result, items, strict=True))
    else:
        _issues(AUDIT, items, strict=strict)
    assert items == original
