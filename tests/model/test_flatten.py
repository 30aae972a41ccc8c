"""CSV cells never start what a spreadsheet runs as a formula (model.flatten.cell)."""

from __future__ import annotations

import pytest

from siemgate.model.flatten import cell


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "  =HYPERLINK(\"http://x\")", "\n@x", "\u3000=1",
     "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", " \uff1d1"],
)  # fmt: skip
def test_text_a_spreadsheet_would_run_is_quoted(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize(
    ("value", "written"),
    [("Toronto", "Toronto"), ("a=b", "a=b"), ("", ""), (" x", " x"), (5, "5"), (-79.433, "-79.433"),
     (True, "true"), (None, "")],
)  # fmt: skip
def test_other_values_are_written_as_they_are(value: object, written: str) -> None:
    assert cell(value) == written
