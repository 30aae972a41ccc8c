"""The history checker's model catches each way of breaking the contract (synthetic histories,
no processes): a checker that passes everything would prove nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from siemgate.model.cursor import Cursor, encode_cursor
from siemgate.model.features import Feature

from .history_model import check, load


def _c(seq: int) -> str:
    """A cursor at `seq` (the checker reads its position)."""
    return encode_cursor(Cursor("A" * 26, Feature.SIGNINATTEMPTS, seq, 50, None, 1), b"k" * 32)


def _write(folder: Path, writer: list[dict[str, Any]], reader: list[dict[str, Any]], final: dict[str, Any]) -> Path:
    (folder / "ops").mkdir(parents=True, exist_ok=True)
    (folder / "ops" / "writer-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in writer))
    (folder / "ops" / "reader-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reader) + '{"k": "pa')
    (folder / "final.json").write_text(json.dumps(final))
    return folder


def _history() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Three events a, b, c (c outside the window), acknowledged at t=2; a reader with limit 1."""
    writer = [
        {"k": "send", "w": 0, "b": 1, "t": 1.0, "ev": [["a", 100], ["b", 200], ["c", 5]]},
        {"k": "ack", "w": 0, "b": 1, "t": 2.0},
    ]
    reader = [
        {"k": "reader", "r": 0, "start": 50, "end": None, "limit": 1},
        {"k": "page", "r": 0, "t0": 3.0, "t1": 3.1, "req": None, "st": 200, "u": ["a"], "hm": True, "c": _c(1)},
        {"k": "page", "r": 0, "t0": 4.0, "t1": 4.1, "req": _c(1), "st": 200, "u": ["b"], "hm": False, "c": _c(3)},
        {"k": "page", "r": 0, "t0": 5.0, "t1": 5.1, "req": _c(3), "st": 200, "u": [], "hm": False, "c": _c(3)},
        {"k": "finished", "r": 0},
    ]
    final = {"events": [[1, "a"], [2, "c"], [3, "b"]], "head": 3, "writers_done_at": 4.5, "readers": 1}
    return writer, reader, final


def test_a_history_that_keeps_the_contract_passes(tmp_path: Path) -> None:
    assert check(load(_write(tmp_path, *_history()))) == []


def _page(reader: list[dict[str, Any]], n: int) -> dict[str, Any]:
    return [r for r in reader if r["k"] == "page"][n]


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (lambda w, r, f: _page(r, 1).update(u=[]), "skipped"),
        (lambda w, r, f: _page(r, 1).update(u=["a"]), "delivered twice"),
        (lambda w, r, f: _page(r, 1).update(u=["c"]), "delivered outside its window"),
        (lambda w, r, f: _page(r, 0).update(hm=False), "has_more false too early"),
        (lambda w, r, f: _page(r, 2).update(hm=True), "has_more true at the end"),
        (lambda w, r, f: _page(r, 2).update(c=_c(4)), "end of data changed the cursor"),
        (lambda w, r, f: _page(r, 1).update(req=_c(0)), "cursor not followed"),
        (lambda w, r, f: f.update(events=[[1, "a"], [3, "b"], [4, "c"]], head=4), "seqs not dense"),
        (lambda w, r, f: f.update(events=[[1, "b"], [2, "c"], [3, "a"]]), "out of seq order"),
        (lambda w, r, f: f.update(events=[[1, "a"], [2, "c"], [3, "b"], [4, "x"]], head=4), "stored but never sent"),
        (lambda w, r, f: f.update(events=[[1, "a"], [2, "b"]], head=2), "acknowledged but not stored"),
        (lambda w, r, f: r.pop(), "reader did not finish"),
        (lambda w, r, f: w.pop(), "nothing acknowledged"),
    ],
)
def test_each_way_of_breaking_the_contract_is_caught(tmp_path: Path, change: Any, kind: str) -> None:
    writer, reader, final = _history()
    change(writer, reader, final)
    violations = check(load(_write(tmp_path, writer, reader, final)))
    assert any(line.startswith(kind + ":") for line in violations), violations


def _scan_stop_history() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Events a (in the window), then c and d (outside it); the second page stopped at its scan
    budget after c: no items, has_more true, its cursor moved past c (docs/cursors.md, "Bounded work")."""
    writer = [
        {"k": "send", "w": 0, "b": 1, "t": 1.0, "ev": [["a", 100], ["c", 5], ["d", 6]]},
        {"k": "ack", "w": 0, "b": 1, "t": 2.0},
    ]
    reader = [
        {"k": "reader", "r": 0, "start": 50, "end": None, "limit": 1},
        {"k": "page", "r": 0, "t0": 3.0, "t1": 3.1, "req": None, "st": 200, "u": ["a"], "hm": False, "c": _c(1)},
        {"k": "page", "r": 0, "t0": 4.0, "t1": 4.1, "req": _c(1), "st": 200, "u": [], "hm": True, "c": _c(2)},
        {"k": "page", "r": 0, "t0": 5.0, "t1": 5.1, "req": _c(2), "st": 200, "u": [], "hm": False, "c": _c(2)},
        {"k": "finished", "r": 0},
    ]
    final = {"events": [[1, "a"], [2, "c"], [3, "d"]], "head": 3, "writers_done_at": 2.5, "readers": 1}
    return writer, reader, final


def test_a_page_stopped_at_its_scan_budget_may_move_its_cursor_with_has_more_true(tmp_path: Path) -> None:
    assert check(load(_write(tmp_path, *_scan_stop_history()))) == []


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (lambda r: _page(r, 1).update(c=_c(3)), "has_more true at the end"),  # at the head: nothing left to examine
        (lambda r: _page(r, 1).update(c=_c(1)), "has_more true at the end"),  # the cursor did not move
        (lambda r: _page(r, 2).update(c=_c(3)), "end of data changed the cursor"),
    ],
)
def test_a_scan_stop_is_not_an_excuse_for_a_wrong_has_more(tmp_path: Path, change: Any, kind: str) -> None:
    writer, reader, final = _scan_stop_history()
    change(reader)
    violations = check(load(_write(tmp_path, writer, reader, final)))
    assert any(line.startswith(kind + ":") for line in violations), violations
