"""1Password-style ids (model/ids.py): 26 base32 characters."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siemgate.model.ids import is_id, new_id

UPPER = re.compile(r"[A-Z2-7]{26}")
LOWER = re.compile(r"[a-z2-7]{26}")


def test_new_id_is_26_upper_case_base32_characters() -> None:
    ids = [new_id() for _ in range(2000)]
    for value in ids:
        assert UPPER.fullmatch(value), value
        assert is_id(value)
        assert len(base64.b32decode(value + "======")) == 16  # 128 random bits
    assert len(set(ids)) == len(ids)
    # Random: every base32 character shows up somewhere in the first 25 positions.
    assert set("".join(i[:25] for i in ids)) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_new_id_lower() -> None:
    ids = [new_id(lower=True) for _ in range(500)]
    for value in ids:
        assert LOWER.fullmatch(value), value
        assert is_id(value)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "value",
    [
        "56YE2TYN2VFYRLNSHKPW5NVT5E",
        "jaqxqf5qylslqiitnduawrndc5",
        "rqtd557fn2husnstp5nc66w2xa",
        "AbCdEfGhIjKlMnOpQrStUvWxYz",
    ],
)
def test_is_id_accepts_spec_examples(value: str) -> None:
    assert is_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "56YE2TYN2VFYRLNSHKPW5NVT5",  # 25
        "56YE2TYN2VFYRLNSHKPW5NVT5EA",  # 27
        "56YE2TYN2VFYRLNSHKPW5NVT50",  # 0 is not base32
        "56YE2TYN2VFYRLNSHKPW5NVT51",
        "56YE2TYN2VFYRLNSHKPW5NVT58",
        "56YE2TYN2VFYRLNSHKPW5NVT59",
        "56YE2TYN2VFYRLNSHKPW5NVT5=",
        "56YE2TYN2VFYRLNSHKPW5NVT5E\n",
        " 56YE2TYN2VFYRLNSHKPW5NVT5E",
        "56YE2TYN-VFYRLNSHKPW5NVT5E",
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",  # an RFC 4122 UUID is not an id here
        None,
        12345678901234567890123456,
        b"56YE2TYN2VFYRLNSHKPW5NVT5E",
        ["56YE2TYN2VFYRLNSHKPW5NVT5E"],
    ],
)
def test_is_id_refuses(value: object) -> None:
    assert not is_id(value)


@given(st.text(max_size=30))
def test_is_id_matches_its_definition(value: str) -> None:
    expected = len(value) == 26 and all(
        c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz234567" for c in value
    )
    assert is_id(value) == expected
