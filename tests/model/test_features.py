"""The three features and how they are parsed (model/features.py)."""

from __future__ import annotations

import pytest

from siemgate.model.features import ALL_FEATURES, Feature, parse_features

S, IU, A = Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS


def test_all_features_and_names() -> None:
    assert ALL_FEATURES == (S, IU, A)
    assert [f.value for f in ALL_FEATURES] == ["signinattempts", "itemusages", "auditevents"]


def test_codes_are_distinct_and_round_trip() -> None:
    codes = [f.code for f in ALL_FEATURES]
    assert len(set(codes)) == 3
    assert all(0 < c < 256 for c in codes)  # fits the cursor's u8
    for f in ALL_FEATURES:
        assert Feature.from_code(f.code) is f
    with pytest.raises(KeyError):
        Feature.from_code(max(codes) + 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, (S, IU, A)),
        ("all", (S, IU, A)),
        ("ALL", (S, IU, A)),
        (" All ", (S, IU, A)),
        ("signinattempts", (S,)),
        ("itemusages", (IU,)),
        ("auditevents", (A,)),
        ("SignInAttempts", (S,)),
        ("auditevents,signinattempts", (S, A)),  # order follows ALL_FEATURES
        (" auditevents , itemusages ", (IU, A)),
        ("itemusages,itemusages", (IU,)),
        ("itemusages,,auditevents,", (IU, A)),
        ("signinattempts,itemusages,auditevents", (S, IU, A)),
        (["auditevents", "ITEMUSAGES"], (IU, A)),
        (("signinattempts",), (S,)),
        (["all"], (S, IU, A)),
    ],
)
def test_parse_features(text: str | list[str] | tuple[str, ...] | None, expected: tuple[Feature, ...]) -> None:
    assert parse_features(text) == expected


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("signins", "signins"),
        ("signinattempts,audit", "audit"),
        (["itemusage"], "itemusage"),
        ("sign in attempts", "sign in attempts"),
    ],
)
def test_unknown_features_name_the_valid_ones(text: str | list[str], unknown: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_features(text)
    message = str(info.value)
    assert repr(unknown) in message
    for feature in ALL_FEATURES:
        assert feature.value in message
