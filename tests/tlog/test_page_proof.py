"""Page proofs (docs/integrity.md, "Page proof") from a live server with a real signer, checked by
the page verifier: a time-filtered stream with late events verifies page by page and as a cursor
chain; a page whose server drops one event of the window is refused however the server words the
proof; an event an empty page still owes and a later empty page withholds is refused; the CLI's
`page` and `event` commands give the verdicts as exit codes."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.model.timestamps import format_ns
from siemgate.tlog.cosignature import create_witness_key, public_key_text
from siemgate.tlog.page_items import PageFormatError, split_page
from siemgate.tlog.verify_cli import main
from siemgate.tlog.verify_page import StreamState, verify_page
from support.events import auditevent

from .proof_api_kit import AUDIT, SECOND, ProofSetup, proof_setup

T0 = (time.time_ns() // SECOND - 86400) * SECOND
WINDOW = {"start_time": format_ns(T0 + 10 * SECOND), "end_time": format_ns(T0 + 60 * SECOND), "limit": 7}


def _stream(s: ProofSetup, account: Any) -> None:
    """Events at T0+0..T0+69 s (10 before the window, 10 after), with 3 late events (T0-100 s, out of
    the window) and 2 late ones inside the window committed between them."""
    key = s.server.ingest_key(account)
    batches = [
        [auditevent(T0 + i * SECOND) for i in range(0, 30)],
        [auditevent(T0 - (100 + i) * SECOND) for i in range(3)],
        [auditevent(T0 + i * SECOND) for i in range(30, 70)],
        [auditevent(T0 + 15 * SECOND + 500_000_000), auditevent(T0 + 25 * SECOND + 500_000_000)],
    ]
    for batch in batches:
        assert s.server.ingest(key, AUDIT, batch).status_code == 200


def _pages(s: ProofSetup, token: str, reset: dict[str, Any]) -> list[tuple[dict[str, Any], bytes, Any]]:
    """Every page of the stream with its request and proof: (request, page bytes, proof)."""
    out = []
    request: dict[str, Any] = dict(reset)
    while True:
        page = s.server.page(token, AUDIT, request)
        assert page.status_code == 200, page.text
        raw = split_page(page.content)
        proof = s.page_proof(token, {"request": request, "response_cursor": raw.cursor})
        assert proof.status_code == 200, proof.text
        out.append((request, page.content, proof.json()))
        if not raw.has_more:
            return out
        request = {"cursor": raw.cursor}


def test_a_time_filtered_stream_with_late_events_verifies_page_by_page(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        _stream(s, account)
        pages = _pages(s, token, WINDOW)
        state = StreamState()
        served = omitted = 0
        for _, page, proof in pages:
            report = verify_page(page, proof, s.keys, state)
            assert report.ok, report.lines()
            served += report.served
            omitted += report.omitted
        assert served == 51 + 2  # T0+10..T0+60 inclusive, and the two late ones inside the window
        assert omitted >= 3  # the late events before the window sit inside the pages' ranges
        first = pages[0][2]
        assert first["reset"] is True and first["first_idx"] == 10  # the reset's start position
        assert state.next_idx == pages[-1][2]["end_idx"] or pages[-1][2]["tail"]


def _drop(page: bytes, index: int) -> bytes:
    raw = split_page(page)
    items = [item for n, item in enumerate(raw.items) if n != index]
    return b"".join(
        (
            b'{"cursor":"',
            raw.cursor.encode(),
            b'","has_more":',
            b"true" if raw.has_more else b"false",
            b',"items":[',
            b",".join(items),
            b"]}",
        )
    )


def test_a_page_whose_server_drops_an_event_of_the_window_is_refused(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        _stream(s, account)
        _, page, proof = _pages(s, token, WINDOW)[1]
        assert verify_page(page, proof, s.keys).ok
        dropped = proof["items"][3]
        idx = dropped["idx"]
        shorter = _drop(page, 3)

        # 1. the page lacks the event, the honest proof still lists it as served
        assert not verify_page(shorter, proof, s.keys).ok
        # 2. the proof calls it outside the window (with its true, committed timestamp)
        lied = copy.deepcopy(proof)
        lied["items"].remove(dropped)
        lied["omitted"].append(dropped)
        report = verify_page(shorter, lied, s.keys)
        assert not report.ok and report.first_bad_index() == idx
        assert "inside the page's window, but it was not served" in "\n".join(report.lines())
        # 3. ... with a forged timestamp outside the window: its leaf no longer rebuilds the root
        forged = copy.deepcopy(lied)
        forged["omitted"][-1] = {**dropped, "ts_ns": T0 - 999 * SECOND}
        report = verify_page(shorter, forged, s.keys)
        assert not report.ok and "do not rebuild the signed root" in "\n".join(report.lines())
        # 4. ... or as purged (body gone, but not older than the retention cutoff)
        purged = copy.deepcopy(proof)
        purged["items"].remove(dropped)
        purged["purged"].append(dropped)
        report = verify_page(shorter, purged, s.keys)
        assert not report.ok and report.first_bad_index() == idx and "it was deleted" in "\n".join(report.lines())
        # 5. ... or not at all
        skipped = copy.deepcopy(lied)
        skipped["omitted"].remove(dropped)
        report = verify_page(shorter, skipped, s.keys)
        assert not report.ok and report.first_bad_index() == idx
        # and through the CLI: exit status 1 naming the index
        (tmp_path / "page.json").write_bytes(shorter)
        (tmp_path / "proof.json").write_text(json.dumps(lied))
        assert (
            main(["page", str(tmp_path / "page.json"), str(tmp_path / "proof.json"), "--key", str(s.kit.public_key)])
            == 1
        )
        (tmp_path / "page.json").write_bytes(page)
        (tmp_path / "proof.json").write_text(json.dumps(proof))
        assert (
            main(["page", str(tmp_path / "page.json"), str(tmp_path / "proof.json"), "--key", str(s.kit.public_key)])
            == 0
        )


def test_an_event_an_empty_page_owes_must_be_served_next(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        key = s.server.ingest_key(account)
        assert s.server.ingest(key, AUDIT, [auditevent(T0 + i * SECOND) for i in range(5)]).status_code == 200
        reset = {"start_time": format_ns(T0), "limit": 10}
        state = StreamState()
        first = s.server.page(token, AUDIT, reset)
        cursor = split_page(first.content).cursor
        proof = s.page_proof(token, {"request": reset, "response_cursor": cursor}).json()
        assert verify_page(first.content, proof, s.keys, state).ok
        empty = s.server.page(token, AUDIT, {"cursor": cursor})
        assert split_page(empty.content).items == []
        # an event of the window is committed after the empty page was read
        assert s.server.ingest(key, AUDIT, [auditevent(T0 + 30 * SECOND)]).status_code == 200
        s.wait_covered(account, 6)
        owed = s.page_proof(token, {"request": {"cursor": cursor}, "response_cursor": cursor, "old_size": 5}).json()
        assert owed["tail"] is True and [p["idx"] for p in owed["pending"]] == [5]
        report = verify_page(empty.content, owed, s.keys, state)
        assert report.ok and state.pending == [5] and state.next_idx == 5
        # a server that withholds it answers empty again: the next proof still owes it -> refused
        withheld = copy.deepcopy(state)
        again = s.page_proof(token, {"request": {"cursor": cursor}, "response_cursor": cursor, "old_size": 6}).json()
        report = verify_page(empty.content, again, s.keys, withheld)
        assert not report.ok and report.first_bad_index() == 5 and "withholds" in "\n".join(report.lines())
        # the honest server serves it
        served = s.server.page(token, AUDIT, {"cursor": cursor})
        nxt = split_page(served.content)
        assert len(nxt.items) == 1
        proof = s.page_proof(token, {"request": {"cursor": cursor}, "response_cursor": nxt.cursor, "old_size": 6})
        assert verify_page(served.content, proof.json(), s.keys, state).ok and state.pending == []


def test_cli_event_and_page_with_state(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        _stream(s, account)
        key = str(s.kit.public_key)
        pages = _pages(s, token, WINDOW)
        state_file = tmp_path / "state.json"
        for n, (_, page, proof) in enumerate(pages):
            (tmp_path / f"p{n}.json").write_bytes(page)
            (tmp_path / f"q{n}.json").write_text(json.dumps(proof))
        assert (
            main(
                ["page", str(tmp_path / "p0.json"), str(tmp_path / "q0.json"), "--key", key, "--state", str(state_file)]
            )
            == 0
        )
        saved = json.loads(state_file.read_text())
        assert saved["next_idx"] == pages[0][2]["end_idx"]
        # page 2 without page 1 before it: a gap in the cursor chain
        assert (
            main(
                ["page", str(tmp_path / "p2.json"), str(tmp_path / "q2.json"), "--key", key, "--state", str(state_file)]
            )
            == 1
        )
        assert json.loads(state_file.read_text()) == saved  # a refused page leaves the state as it was
        assert (
            main(
                ["page", str(tmp_path / "p1.json"), str(tmp_path / "q1.json"), "--key", key, "--state", str(state_file)]
            )
            == 0
        )
        # one event against its proof; an altered event is refused naming its index
        item = split_page(pages[0][1]).items[2]
        idx = pages[0][2]["items"][2]["idx"]
        (tmp_path / "event.json").write_bytes(item + b"\n")
        (tmp_path / "event.proof").write_text(s.get(token, "/auditevents/proof", idx=idx).text)
        assert main(["event", str(tmp_path / "event.json"), str(tmp_path / "event.proof"), "--key", key]) == 0
        event = orjson.loads(item)
        (tmp_path / "event.json").write_bytes(item.replace(event["uuid"].encode(), event["uuid"][::-1].encode()))
        assert main(["event", str(tmp_path / "event.json"), str(tmp_path / "event.proof"), "--key", key]) == 1
        assert main(["event", str(tmp_path / "nope.json"), str(tmp_path / "event.proof"), "--key", key]) == 2
        # with a witness policy, checkpoints no witness cosigned are refused
        witness = tmp_path / "w.pub"
        witness.write_text(public_key_text([create_witness_key(tmp_path / "w.key", "w.test.example/w").verifier()]))
        policy = ["--key", key, "--witness-key", str(witness)]
        (tmp_path / "event.json").write_bytes(item)
        assert main(["event", str(tmp_path / "event.json"), str(tmp_path / "event.proof"), *policy]) == 1
        assert main(["page", str(tmp_path / "p0.json"), str(tmp_path / "q0.json"), *policy]) == 1


@pytest.mark.parametrize("body", [b"", b"{}", b'{"cursor":"x","has_more":false,"items":[}'])
def test_a_page_that_is_not_a_page_is_refused(tmp_path: Path, body: bytes) -> None:
    from siemgate.tlog.verify_page import PageInputError

    with pytest.raises(PageInputError):
        verify_page(body, {}, None)  # type: ignore[arg-type]


def test_items_are_cut_from_the_page_byte_for_byte() -> None:
    items = [
        '{"a":"]},[{\\"x\\"","timestamp":"2026-01-01T00:00:00Z"}',
        '{"b":["é","\\u00e9",{"c":null}],"n":-1.5e3}',
        "{}",
    ]
    page = ('{"cursor":"C","has_more":false,"items":[' + ",".join(items) + "]}").encode()
    raw = split_page(page)
    assert raw.items == [i.encode() for i in items] and raw.cursor == "C" and raw.has_more is False
    spaced = b' { "items" : [ {"x":1} , {"y":[2]} ] , "has_more" : true , "cursor" : "D" } '
    assert split_page(spaced).items == [b'{"x":1}', b'{"y":[2]}']
    for bad in [b'{"cursor":"C","has_more":false}', b'{"cursor":"C","has_more":false,"items":[1,]}', page + b"x"]:
        with pytest.raises(PageFormatError):
            split_page(bad)


def test_an_empty_pages_proof_reveals_a_bounded_tail(
    tmp_path: Path, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siemgate.tlog import page_proof

    monkeypatch.setattr(page_proof, "MAX_TAIL", 3)
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        key = s.server.ingest_key(account)
        window = {"start_time": format_ns(T0), "end_time": format_ns(T0 + 10 * SECOND), "limit": 10}
        assert s.server.ingest(key, AUDIT, [auditevent(T0 + i * SECOND) for i in range(3)]).status_code == 200
        first = s.server.page(token, AUDIT, window)
        cursor = split_page(first.content).cursor
        later = [auditevent(T0 + (100 + i) * SECOND) for i in range(5)]  # after the window
        assert s.server.ingest(key, AUDIT, later).status_code == 200
        s.wait_covered(account, 8)
        empty = s.server.page(token, AUDIT, {"cursor": cursor})
        proof = s.page_proof(token, {"request": {"cursor": cursor}, "response_cursor": cursor}).json()
        assert (proof["tail"], proof["first_idx"], proof["end_idx"]) == (True, 3, 6)
        assert [p["idx"] for p in proof["omitted"]] == [3, 4, 5]
        assert verify_page(empty.content, proof, s.keys).ok


def test_an_altered_served_item_is_named_by_its_own_index(tmp_path: Path, make_server: Any) -> None:
    """A stored body changed behind siemgate's back is served altered with an honest proof: the
    verifier names that index, and only it — not the start of the page's range as well, which
    made `follow` report an untouched event as the first bad index."""
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        _stream(s, account)
        _, page, proof = _pages(s, token, WINDOW)[1]
        raw = split_page(page)
        idx = proof["items"][3]["idx"]
        assert idx > proof["first_idx"]
        altered = raw.items[3].replace(b'"action":"', b'"action":"x', 1)
        assert altered != raw.items[3]
        report = verify_page(page.replace(raw.items[3], altered, 1), proof, s.keys)
        assert report.first_bad_index() == idx, report.lines()
        assert [p.index for p in report.problems] == [idx], report.lines()
        assert "does not hash to its log entry" in report.lines()[0]
        # a server that lists the altered item's own hash is still caught: the root does not rebuild
        lied = copy.deepcopy(proof)
        digest = hashlib.sha256(altered).digest()
        lied["items"][3]["body_sha256"] = base64.b64encode(digest).decode()
        report = verify_page(page.replace(raw.items[3], altered, 1), lied, s.keys)
        assert not report.ok and "do not rebuild the signed root" in "\n".join(report.lines())
