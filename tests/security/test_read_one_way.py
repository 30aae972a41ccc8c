"""Requests that servers and proxies would read two ways are refused, through real uvicorn and raw
sockets with both of its HTTP parsers (docs/security.md, "Requests read one way").

Starlette reads the first of two Authorization headers but the last of two cookies or query values
of one name; a proxy in front may read the other. Each is a 400 saying what to send once, never a
pick. Two Content-Length headers, or Content-Length with Transfer-Encoding (request smuggling),
are refused by uvicorn's httptools parser and, where h11 lets them through, by the request guard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from uvicorn.config import HTTPProtocolType

from siemgate.config import load_settings
from siemgate.model.ids import new_id
from support.clocks import Clock
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

from .bounds_support import admin, raw_request, read_reply
from .identity_support import ADMIN, Tenants

BODY = '{"limit":1,"start_time":"2020-01-01T00:00:00Z"}'


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    parser: HTTPProtocolType = request.param
    data_dir = tmp_path_factory.mktemp(f"one-way-{parser}")
    live, uv, thread = start_server(
        load_settings(data_dir=data_dir), make_store("sqlite", data_dir), Clock(), http=parser
    )
    yield live
    stop_server(live, uv, thread)


def _send(server: LiveServer, head: str, body: str = "") -> tuple[int, str]:
    """(status, error message or body text) of a raw request: `head` is the request line and
    headers but Host, one a line."""
    request_line, _, headers = head.partition("\n")
    host = server.base_url.removeprefix("http://")
    sock = raw_request(
        server.base_url, f"{request_line}\nHost: {host}\nConnection: close\n{headers}".rstrip("\n") + "\n"
    )
    try:
        sock.sendall(body.encode())
        reply = read_reply(sock, 10)
    finally:
        sock.close()
    assert reply is not None, "no reply"
    status, data = reply
    try:
        return status, str(json.loads(data)["Error"]["Message"])
    except (ValueError, KeyError, TypeError):
        return status, data.decode(errors="replace")


def _page_head(*headers: str, length: int = len(BODY)) -> str:
    lines = "\n".join(headers)
    return f"POST /api/v2/signinattempts HTTP/1.1\nContent-Type: application/json\nContent-Length: {length}\n{lines}"


@pytest.mark.parametrize("valid_first", [True, False])
def test_two_authorization_headers_on_the_events_api_are_refused(server: LiveServer, valid_first: bool) -> None:
    token = server.token(server.account())
    pair = [f"Authorization: Bearer {token}", "Authorization: Bearer not-a-token"]
    status, message = _send(server, _page_head(*(pair if valid_first else pair[::-1])), BODY)
    assert status == 400, message
    assert "the Authorization header is sent 2 times" in message and "send it once" in message


def test_two_authorization_headers_on_the_admin_api_are_refused(server: LiveServer) -> None:
    owner, other = admin(server), admin(server)
    head = f"GET {ADMIN}/me HTTP/1.1\nAuthorization: Bearer {owner.key}\nAuthorization: Bearer {other.key}"
    status, message = _send(server, head)
    assert status == 400, message
    assert "the Authorization header is sent 2 times" in message
    assert _send(server, f"GET {ADMIN}/me HTTP/1.1\nAuthorization: Bearer {owner.key}")[0] == 200


def _session(tenants: Tenants, email: str) -> str:
    signed_in = tenants.sign_in(email)
    assert signed_in.status_code == 200, signed_in.text
    return signed_in.cookies["siemgate_session"]


@pytest.mark.parametrize("split", [False, True], ids=["one-header", "two-headers"])
def test_the_session_cookie_twice_is_refused(server: LiveServer, split: bool) -> None:
    tenants = Tenants(server)
    alice, bob = _session(tenants, tenants.alice.email), _session(tenants, tenants.bob.email)
    cookies = [f"siemgate_session={alice}", f"siemgate_session={bob}"]
    header = "\n".join(f"Cookie: {c}" for c in cookies) if split else f"Cookie: {'; '.join(cookies)}"
    status, message = _send(server, f"GET {ADMIN}/me HTTP/1.1\n{header}")
    assert status == 400, message
    assert "the session cookie siemgate_session is sent 2 times" in message
    assert "sign in again" in message
    one = _send(server, f"GET {ADMIN}/me HTTP/1.1\nCookie: other=x; siemgate_session={alice}; theme=dark")
    assert one[0] == 200 and tenants.alice.email in one[1]


@pytest.mark.parametrize("right_first", [True, False])
def test_the_csrf_token_twice_is_refused(server: LiveServer, right_first: bool) -> None:
    """Starlette reads the first of two X-CSRF-Token headers: with the session's token first, a
    second one (whatever it is) was ignored and the change made (201)."""
    tenants = Tenants(server)
    signed_in = tenants.sign_in(tenants.alice.email)
    assert signed_in.status_code == 200, signed_in.text
    cookie, csrf = signed_in.cookies["siemgate_session"], signed_in.json()["csrf_token"]
    tokens = [f"X-CSRF-Token: {csrf}", "X-CSRF-Token: something-else"]
    head = f"POST {ADMIN}/me/two-factor HTTP/1.1\nCookie: siemgate_session={cookie}\nContent-Length: 0"
    status, message = _send(server, "\n".join([head, *(tokens if right_first else tokens[::-1])]))
    assert status == 400, message
    assert "the X-CSRF-Token header is sent 2 times" in message and "send it once" in message
    assert _send(server, f"{head}\nX-CSRF-Token: {csrf}")[0] == 201


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (["Content-Length: 5"], BODY),
        (["Transfer-Encoding: chunked"], f"{len(BODY):x}\r\n{BODY}\r\n0\r\n\r\n"),
    ],
    ids=["two-lengths", "length-and-chunked"],
)
def test_ambiguous_body_framing_is_refused(server: LiveServer, headers: list[str], body: str) -> None:
    token = server.token(server.account())
    status, message = _send(server, _page_head(f"Authorization: Bearer {token}", *headers), body)
    assert status == 400, message


@pytest.mark.parametrize(
    ("query", "name"),
    [("actor=a&actor=b", "actor"), ("actor=a&%61ctor=a", "actor"), ("limit=5&kind=x&limit=6", "limit")],
)
def test_a_query_parameter_twice_is_refused_naming_it(server: LiveServer, query: str, name: str) -> None:
    owner = admin(server)
    for tail in ("", "/export"):
        path = f"{ADMIN}/accounts/{owner.account.uuid}/events/signinattempts{tail}?{query}"
        status, message = _send(server, f"GET {path} HTTP/1.1\nAuthorization: Bearer {owner.key}")
        assert status == 400, message
        assert message == f"Bad Request: the query parameter '{name}' is given more than once: send it once"
    proof = _send(server, "GET /api/siemgate/v1/log/signinattempts/consistency?old=1&new=2&old=2 HTTP/1.1")
    assert proof[0] == 400 and "'old' is given more than once" in proof[1]
    page = _send(server, f"GET /console/accounts/{owner.account.uuid}/events?{query} HTTP/1.1")
    assert page[0] == 400 and f"'{name}' is given more than once" in page[1]  # the explorer reads the first


def test_distinct_query_parameters_and_blank_ones_still_work(server: LiveServer) -> None:
    owner = admin(server)
    path = f"{ADMIN}/accounts/{owner.account.uuid}/events/signinattempts?actor=a&kind=&limit=5&x{new_id()[:4]}="
    status, message = _send(server, f"GET {path} HTTP/1.1\nAuthorization: Bearer {owner.key}")
    assert status == 200, message


def test_two_equal_lengths_are_refused_or_read_as_that_length(server: LiveServer) -> None:
    """httptools refuses them; h11 hands the app one (every reader reads the same body)."""
    token = server.token(server.account())
    head = _page_head(f"Authorization: Bearer {token}", f"Content-Length: {len(BODY)}")
    status, message = _send(server, head, BODY)
    assert status == 400 or (status == 200 and json.loads(message)["items"] == []), message
