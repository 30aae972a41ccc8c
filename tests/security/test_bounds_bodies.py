"""Request bodies are bounded before they cost anything, and decoded off the event loop in linear
time, with the real default limits: a gzip body of tens of thousands of members, a huge NDJSON
body, an unauthenticated 300 MB body to any API, an endless chunked one, a megabyte password.
Where the finding was a stall, a stall detector polls /healthz while the hostile request runs."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from siemgate.auth.passwords import hash_password
from siemgate.config import Settings
from siemgate.model.features import Feature

from .bounds_support import ADMIN, StallDetector, admin, failed_signin, live_server, raw_request, read_reply

SIGNIN = Feature.SIGNINATTEMPTS
DEFAULTS = Settings.model_fields
HOSTILE = 300  # seconds the client waits for a hostile request: long enough for a stall to be measured
MEMBERS = 200_000  # tiny gzip members: ~4 MB, well under the default 32 MB body limit


def _member(data: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def test_a_gzip_body_of_many_members_does_not_stall_the_server(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        key = server.ingest_key(server.account())
        body = _member(b"\n") * MEMBERS
        assert len(body) < DEFAULTS["ingest_max_body_bytes"].default
        headers = {"Authorization": f"Bearer {key}", "Content-Encoding": "gzip"}
        with StallDetector(server.base_url) as detector:
            response = server.http.post("/api/ingest/v2/signinattempts", content=body, headers=headers, timeout=HOSTILE)
        detector.assert_responsive()
        assert response.status_code == 413, response.text
        limit = DEFAULTS["ingest_max_gzip_members"].default
        assert f"more than {limit} members" in response.json()["Error"]["Message"]


def test_gzip_members_up_to_the_limit_are_all_decoded(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        account = server.account()
        key, token = server.ingest_key(account), server.token(account)
        members = DEFAULTS["ingest_max_gzip_members"].default
        now = server.clock()
        events = [failed_signin(now - i * 1000) for i in range(members)]
        body = b"".join(_member(orjson.dumps(e) + b"\n") for e in events)
        headers = {"Authorization": f"Bearer {key}", "Content-Encoding": "gzip"}
        with StallDetector(server.base_url) as detector:
            response = server.http.post("/api/ingest/v2/signinattempts", content=body, headers=headers)
        detector.assert_responsive()
        assert response.status_code == 200, response.text
        assert response.json() == {"received": members, "stored": members, "duplicates": 0}
        page = server.page(token, SIGNIN, {"start_time": "2020-01-01T00:00:00Z", "limit": 1}).json()
        assert page["has_more"] is True


def test_a_huge_ndjson_body_does_not_stall_the_server(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        key = server.ingest_key(server.account())
        body = b"{}\n" * (30 * 1024 * 1024 // 3)  # 10 million lines, under the default 32 MB
        with StallDetector(server.base_url) as detector:
            response = server.ingest(key, SIGNIN, body, timeout=HOSTILE)
        detector.assert_responsive()
        assert response.status_code == 413, response.text


def test_too_many_ndjson_lines_are_refused_before_parsing(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        key = server.ingest_key(server.account())
        lines = DEFAULTS["ingest_max_lines"].default
        line = orjson.dumps(failed_signin(server.clock()))
        body = b"\n".join([line] * (lines + 1))  # one line too many, each one the same valid event
        response = server.ingest(key, SIGNIN, body)
        assert response.status_code == 413, response.text
        assert f"{lines + 1} lines; the limit is {lines}" in response.json()["Error"]["Message"]


@pytest.mark.parametrize(
    ("method", "path", "setting"),
    [
        ("POST", f"{ADMIN}/accounts", "admin_max_body_bytes"),
        ("POST", f"{ADMIN}/session", "admin_max_body_bytes"),
        ("POST", "/console/", "admin_max_body_bytes"),
        ("POST", "/api/v2/signinattempts", "events_max_body_bytes"),
        ("GET", "/api/v2/auth/introspect", "events_max_body_bytes"),
        ("POST", "/api/ingest/v2/signinattempts", "ingest_max_body_bytes"),
    ],
)
def test_an_unauthenticated_300_mb_body_is_refused_from_its_content_length(
    tmp_path: Path, method: str, path: str, setting: str
) -> None:
    with live_server(tmp_path) as server:
        declared = 300 * 1024 * 1024
        sock = raw_request(
            server.base_url,
            f"{method} {path} HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: {declared}\n",
        )
        with sock:
            sock.sendall(b"[" + b" " * 65535)  # the start of the body; the rest never comes
            reply = read_reply(sock, timeout=5)
        assert reply is not None, "no reply within 5 s: the server waits for (and would buffer) the whole body"
        status, body = reply
        assert status == 413, body
        limit = DEFAULTS[setting].default
        assert (
            f"is {declared} bytes; the limit here is {limit} bytes ({setting})"
            in orjson.loads(body)["Error"]["Message"]
        )


def test_an_endless_chunked_admin_body_is_refused_while_it_streams(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        sock = raw_request(
            server.base_url,
            f"POST {ADMIN}/accounts HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n",
        )
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        sent = 0
        reply = None
        with sock:
            sock.settimeout(0.5)
            while sent < 64 * 1024 * 1024 and reply is None:
                try:
                    sock.sendall(chunk)
                    sent += 65536
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    break
            reply = read_reply(sock, timeout=5)
        assert reply is not None and reply[0] == 413, f"after {sent} bytes sent: {reply}"
        limit = DEFAULTS["admin_max_body_bytes"].default
        # refused once the limit was passed: what was sent beyond it sat in socket buffers
        assert sent < limit + 16 * 1024 * 1024, f"{sent} bytes were taken before the refusal"
        assert "admin_max_body_bytes" in orjson.loads(reply[1])["Error"]["Message"]


def test_a_megabyte_password_is_refused_without_hashing(tmp_path: Path) -> None:
    from siemgate.auth.passwords import MAX_LENGTH

    with pytest.raises(ValueError, match=f"at most {MAX_LENGTH} characters"):
        hash_password("x" * (MAX_LENGTH + 1))
    with live_server(tmp_path) as server:
        owner = admin(server)
        long = "correct horse " * (1024 * 1024 // 14)
        response = server.http.post(f"{ADMIN}/session", json={"email": "owner@example.com", "password": long})
        assert response.status_code in (400, 413), response.text
        response = server.http.post(
            f"{ADMIN}/session", json={"email": "owner@example.com", "password": "x" * (MAX_LENGTH + 1)}
        )
        assert response.status_code == 400, response.text
        assert f"at most {MAX_LENGTH} characters" in response.text
        body = {"current_password": "x", "new_password": "y" * (MAX_LENGTH + 1)}
        response = server.http.put(f"{ADMIN}/me/password", json=body, headers=owner.headers)
        assert response.status_code == 400, response.text
        assert f"at most {MAX_LENGTH} characters" in response.text


def test_gzip_members_of_every_size_decode_as_gzip_does() -> None:
    import os

    from siemgate.api.body import gunzip

    parts = [b"x", b"", os.urandom(300), b"y" * 100_000, os.urandom(3 * 1024 * 1024), b"end\n"]
    body = b"".join(_member(p) for p in parts) + gzip.compress(b"and a last one")
    assert gunzip(body, max_bytes=8 << 20, max_members=len(parts) + 1) == gzip.decompress(body)


def test_a_chunked_body_within_the_limit_still_reaches_the_admin_api(tmp_path: Path) -> None:
    with live_server(tmp_path, allow_account_creation=True) as server:
        owner = admin(server)
        body = orjson.dumps({"name": "Chunked"})

        def chunks() -> Iterator[bytes]:
            yield body[:5]
            yield body[5:]

        headers = {**owner.headers, "Content-Type": "application/json"}
        response = server.http.post(f"{ADMIN}/accounts", content=chunks(), headers=headers)
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "Chunked"
