"""The proof API beside the Events API (docs/integrity.md, "Proofs for SIEMs"), over real HTTP with
a real signer process: checkpoints, consistency proofs and event proofs that verify with only the
public key; clear 4xx errors for forged or foreign inputs; tenant isolation; the same token, feature
scopes and rate limit as the Events API; checkpoints signed on demand or a 409 with Retry-After."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from siemgate.tlog.bundle import parse_hashes
from siemgate.tlog.checkpoint import open_checkpoint
from siemgate.tlog.page_items import split_page
from siemgate.tlog.proof import verify_consistency
from siemgate.tlog.tlog_proof import parse_tlog_proof, verify_event
from support.events import auditevent

from .proof_api_kit import AUDIT, SECOND, proof_setup

T0 = (time.time_ns() // SECOND - 86400) * SECOND  # inside the default retention
START = format_ns(T0)


def _message(response: Any) -> str:
    return str(response.json()["Error"]["Message"])


def _items(server: Any, token: str, count: int) -> list[bytes]:
    """The raw v2 bytes of the first `count` items of the audit stream (reset from T0)."""
    page = server.page(token, AUDIT, {"start_time": START, "limit": count})
    assert page.status_code == 200, page.text
    return split_page(page.content).items


def test_checkpoint_consistency_and_event_proofs_verify_with_the_public_key(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        s.ingest(account, 300, T0)
        first = s.wait_covered(account, 300)
        old_note = s.get(token, "/auditevents/checkpoint")
        assert old_note.status_code == 200 and old_note.headers["content-type"].startswith("text/plain")
        assert "RateLimit-Remaining" in old_note.headers
        old = open_checkpoint(old_note.text, s.keys).checkpoint
        assert old.origin.endswith(f"/{account.uuid}/auditevents") and old.size == first.size
        s.ingest(account, 123, T0 + 1000 * SECOND)
        s.wait_covered(account, 423)
        new = open_checkpoint(s.get(token, "/auditevents/checkpoint").text, s.keys).checkpoint
        proof = s.get(token, "/auditevents/consistency", old=old.size, new=new.size)
        assert proof.status_code == 200, proof.text
        verify_consistency(old.size, new.size, old.root, new.root, parse_hashes(proof.text, "proof"))

        items = _items(s.server, token, 50)
        item = items[41]
        by_idx = s.get(token, "/auditevents/proof", idx=41)
        assert by_idx.status_code == 200, by_idx.text
        verified = verify_event(item, by_idx.text, s.keys)
        assert verified.index == 41 and verified.checkpoint.checkpoint.size == new.size
        event = orjson.loads(item)
        by_uuid = s.get(token, "/auditevents/proof", uuid=event["uuid"], timestamp=event["timestamp"])
        assert by_uuid.status_code == 200, by_uuid.text
        assert parse_tlog_proof(by_uuid.text).index == 41
        verify_event(item, by_uuid.text, s.keys)
        at_old = s.get(token, "/auditevents/proof", idx=41, size=old.size)
        assert verify_event(item, at_old.text, s.keys).checkpoint.checkpoint.size == old.size


def test_forged_and_foreign_inputs_get_clear_4xx_errors(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        s.ingest(account, 20, T0)
        cp = s.wait_covered(account, 20)
        cases: list[tuple[Any, int, str]] = [
            (s.get(token, "/auditevents/consistency", old=5, new=cp.size + 1), 400, "beyond the newest checkpoint"),
            (s.get(token, "/auditevents/consistency", old=9, new=5), 400, "0 <= old <= new"),
            (s.get(token, "/auditevents/consistency", old="x", new=5), 400, "old"),
            (s.get(token, "/auditevents/proof", idx=cp.size + 5), 404, "beyond this auditevents log"),
            (s.get(token, "/auditevents/proof", idx=3, size=7), 404, "no signed checkpoint of size 7"),
            (s.get(token, "/auditevents/proof"), 400, "by idx, or by uuid and timestamp"),
            (s.get(token, "/auditevents/proof", idx=1, uuid="x"), 400, "not both"),
            (s.get(token, "/auditevents/proof", uuid="ABC"), 400, "needs the event's timestamp"),
            (s.get(token, "/auditevents/proof", uuid="ABC", timestamp="yesterday"), 400, "timestamp"),
            # past what the store's 64-bit integers hold: a 400, not an overflow (500)
            (s.get(token, "/auditevents/proof", idx=0, size=2**63), 400, "size"),
            (s.get(token, "/auditevents/proof", idx=0, size=10**20), 400, "size"),
            (s.get(token, "/auditevents/consistency", old=0, new=2**64), 400, "new"),
            (s.get(token, "/auditevents/proof", uuid="ABC", timestamp="9999-12-07T01:00:00Z"), 400, "outside"),
            (s.get(token, "/auditevents/proof", uuid="ABC", timestamp="0001-01-01T00:00:00Z"), 400, "outside"),
            (
                s.get(token, "/auditevents/proof", uuid="NOSUCHUUID", timestamp="2026-01-01T00:00:00Z"),
                404,
                "no auditevents event",
            ),
            (s.get(token, "/nosuchlog/checkpoint"), 400, "there is no log 'nosuchlog'"),
            (s.get(token, "/auditevents/checkpoints"), 404, "no endpoint"),
            (s.page_proof(token, {"response_cursor": "forged"}), 400, "cursor"),
            (s.page_proof(token, {"request": {}}), 400, "response_cursor"),
            (s.page_proof(token, [1, 2]), 400, "response_cursor"),
            (s.page_proof(token, {"response_cursor": "x", "old_size": -1}), 400, "old_size"),
        ]
        for response, status, text in cases:
            assert response.status_code == status, (response.request.url, response.text)
            assert text in _message(response), (response.request.url, response.text)
        page = s.server.page(token, AUDIT, {"start_time": START, "limit": 5}).json()
        nxt = s.server.page(token, AUDIT, {"cursor": page["cursor"]}).json()
        # the response cursor must answer the request: another window, a cursor backwards, another stream
        other = s.server.page(token, AUDIT, {"start_time": format_ns(T0 + SECOND), "limit": 5}).json()
        for body, text in [
            ({"request": {"cursor": page["cursor"]}, "response_cursor": other["cursor"]}, "not the answer"),
            ({"request": {"cursor": nxt["cursor"]}, "response_cursor": page["cursor"]}, "before the request"),
            ({"request": {"limit": 7}, "response_cursor": page["cursor"]}, "not the answer"),
            ({"request": {"cursor": page["cursor"][:-2] + "AA"}, "response_cursor": nxt["cursor"]}, "cursor"),
        ]:
            response = s.page_proof(token, body)
            assert response.status_code == 400 and text in _message(response), response.text
        signin = s.server.page(token, Feature.SIGNINATTEMPTS, {"limit": 5}).json()
        wrong_stream = s.page_proof(token, {"response_cursor": signin["cursor"]})
        assert wrong_stream.status_code == 400 and "signinattempts stream" in _message(wrong_stream)
        old_size = s.page_proof(
            token, {"request": {"cursor": page["cursor"]}, "response_cursor": nxt["cursor"], "old_size": 10**6}
        )
        assert old_size.status_code == 400 and "old_size" in _message(old_size)


def test_tenants_never_see_each_others_logs(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        a, b, outsider = s.server.account(), s.server.account(), s.server.account()
        token_a, token_b, token_out = s.server.token(a), s.server.token(b), s.server.token(outsider)
        s.ingest(a, 30, T0)
        s.ingest(b, 60, T0 + 5 * SECOND)
        s.wait_covered(a, 30)
        s.wait_covered(b, 60)
        note_a = open_checkpoint(s.get(token_a, "/auditevents/checkpoint").text, s.keys).checkpoint
        note_b = open_checkpoint(s.get(token_b, "/auditevents/checkpoint").text, s.keys).checkpoint
        assert note_a.origin.endswith(a.uuid + "/auditevents") and note_a.size == 30
        assert note_b.origin.endswith(b.uuid + "/auditevents") and note_b.size == 60
        # B's events are not A's: its index 45 and its uuids are unknown to A's token
        assert s.get(token_a, "/auditevents/proof", idx=45).status_code == 404
        event_b = orjson.loads(_items(s.server, token_b, 1)[0])
        by_uuid = s.get(token_a, "/auditevents/proof", uuid=event_b["uuid"], timestamp=event_b["timestamp"])
        assert by_uuid.status_code == 404
        assert s.get(token_a, "/auditevents/consistency", old=1, new=60).status_code == 400
        # B's cursors are refused on A's token; an outsider (no events) has no checkpoint and no proofs
        page_b = s.server.page(token_b, AUDIT, {"start_time": START, "limit": 5}).json()
        foreign = s.page_proof(token_a, {"request": {"limit": 5}, "response_cursor": page_b["cursor"]})
        assert foreign.status_code == 400 and "another account" in _message(foreign)
        assert s.page_proof(token_out, {"response_cursor": page_b["cursor"]}).status_code == 400
        for path, params in [
            ("/auditevents/checkpoint", {}),
            ("/auditevents/proof", {"idx": 3}),
            ("/auditevents/consistency", {"old": 1, "new": 2}),
        ]:
            response = s.get(token_out, path, **params)
            assert response.status_code == 404, response.text
            assert a.uuid not in response.text and b.uuid not in response.text
        # no token, a bad token, a token without the feature
        assert s.server.http.get("/api/siemgate/v1/log/auditevents/checkpoint").status_code == 401
        assert s.get("not-a-token", "/auditevents/checkpoint").status_code == 401
        narrow = s.server.token(a, [Feature.SIGNINATTEMPTS])
        refused = s.get(narrow, "/auditevents/checkpoint")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"


def test_proofs_count_against_the_tokens_events_api_rate_limit(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server, rate_limit_per_minute=3) as s:
        account = s.server.account()
        token = s.server.token(account)
        assert s.server.page(token, AUDIT, {}).status_code == 200
        assert s.get(token, "/auditevents/checkpoint").status_code == 404  # no events yet: counted all the same
        assert s.get(token, "/auditevents/proof", idx=0).status_code == 404
        limited = s.get(token, "/auditevents/checkpoint")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert s.server.page(token, AUDIT, {}).status_code == 429
        other = s.server.token(account)
        assert s.get(other, "/auditevents/checkpoint").status_code == 404


def test_a_page_beyond_the_newest_checkpoint_is_signed_on_demand_once_per_interval(
    tmp_path: Path, make_server: Any
) -> None:
    with proof_setup(tmp_path, make_server, integrity_checkpoint_seconds=3600) as s:
        account = s.server.account()
        token = s.server.token(account)
        s.ingest(account, 10, T0)
        first = s.wait_covered(account, 10)  # the first checkpoint is signed at once
        s.ingest(account, 5, T0 + 100 * SECOND)
        refused = s.get(token, "/auditevents/proof", idx=12)
        assert refused.status_code == 409, refused.text
        wait = int(refused.headers["Retry-After"])
        assert 3500 <= wait <= 3600 and "not yet covered" in _message(refused)
        assert s.newest(account) == first  # nothing was signed
        s.server.clock.advance(wait)
        signed = s.get(token, "/auditevents/proof", idx=12)
        assert signed.status_code == 200, signed.text
        cp = open_checkpoint(parse_tlog_proof(signed.text).checkpoint, s.keys).checkpoint
        assert cp.size == 15 and s.newest(account) == cp
        # within the interval again: an index the newest checkpoint covers is served at once
        assert s.get(token, "/auditevents/proof", idx=14).status_code == 200


def test_proof_headers_only_when_asked_and_the_body_unchanged(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        s.ingest(account, 30, T0)
        s.wait_covered(account, 30)
        reset = {"start_time": START, "limit": 10}
        plain = s.server.page(token, AUDIT, reset)
        asked = s.server.page(token, AUDIT, reset, headers={"Siemgate-Proof": "1"})
        assert plain.content == asked.content
        assert not {h for h in plain.headers if h.lower().startswith("siemgate-") or h.lower() == "link"}
        assert asked.headers["Siemgate-Log-Range"] == "0-9"
        assert asked.headers["Siemgate-Log-Size"] == "30"
        assert asked.headers["Link"] == '</api/siemgate/v1/log/auditevents/page-proof>; rel="proof"'
        nxt = s.server.page(token, AUDIT, {"cursor": plain.json()["cursor"]}, headers={"Siemgate-Proof": "1"})
        assert nxt.headers["Siemgate-Log-Range"] == "10-19"
        v1 = s.server.page(token, AUDIT, reset, version=1, headers={"Siemgate-Proof": "1"})
        assert v1.headers["Siemgate-Log-Range"] == "0-9"


def test_no_checkpoint_can_be_signed_is_a_503_with_retry_after(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server, integrity_checkpoint_seconds=3600) as s:
        account = s.server.account()
        token = s.server.token(account)
        s.ingest(account, 5, T0)
        s.wait_covered(account, 5)
        s.ingest(account, 3, T0 + 100 * SECOND)
        s.server.store.set_log_error(account.id, AUDIT, "index 6: damaged entry", s.server.clock())
        s.server.clock.advance(3600)
        stopped = s.get(token, "/auditevents/proof", idx=6)
        assert stopped.status_code == 503 and stopped.headers["Retry-After"] == "3600"
        assert "stopped by an integrity error" in _message(stopped)
        assert s.get(token, "/auditevents/proof", idx=4).status_code == 200  # what is signed is still served
    plain = make_server()  # no signer at all
    account = plain.account()
    token = plain.token(account)
    key = plain.ingest_key(account)
    assert plain.ingest(key, AUDIT, [auditevent(T0)]).status_code == 200
    headers = {"Authorization": f"Bearer {token}"}
    assert plain.http.get("/api/siemgate/v1/log/auditevents/checkpoint", headers=headers).status_code == 404
    unsigned = plain.http.get("/api/siemgate/v1/log/auditevents/proof", params={"idx": 0}, headers=headers)
    assert unsigned.status_code == 503 and "no log signer" in _message(unsigned)
