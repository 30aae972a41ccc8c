"""Errors that echo what a client sent show a bounded excerpt of it (model.text.excerpt): a
`limit` of 1e300 was echoed as a 301-digit number, and a megabyte-long time, id or name came back
whole in the error, through the real server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from siemgate.model.features import Feature
from support.admin import ADMIN, Site, error_message
from support.servers import LiveServer, bearer

HUGE = 20_000  # characters; within every body and URL bound, far beyond any message
LONG = "9" * HUGE
EXCERPT = 60  # characters model.text.excerpt keeps (a literal: the test must fail without it)
LONGEST_MESSAGE = 400  # the fixed text of these messages plus one excerpt


def _bounded(message: str) -> str:
    assert len(message) <= LONGEST_MESSAGE, (len(message), message[:200])
    assert "9" * EXCERPT not in message and "x" * EXCERPT not in message, message[:200]
    return message


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"limit": 1e300}', f"limit must be from 1 to 1000, got {str(int(1e300))[: EXCERPT - 3]}..."),
        (orjson.dumps({"limit": "x" * HUGE}), "limit must be a whole number from 1 to 1000, got 'xxx"),
        (orjson.dumps({"start_time": "2024-01-01T00:00:00." + LONG + "Z"}), "start_time: '2024-01-01T00:00:00.999"),
        (orjson.dumps({"end_time": "x" * HUGE}), "end_time: 'xxx"),
    ],
    ids=["limit-1e300", "limit-string", "start-time-digits", "end-time"],
)
def test_an_events_api_error_echoes_a_bounded_excerpt(server: LiveServer, body: bytes, shown: str) -> None:
    account = server.account()
    response = server.page(server.token(account, list(Feature)), Feature.SIGNINATTEMPTS, raw=body)
    message = _bounded(error_message(response, 400))
    assert shown in message and "..." in message, message


def test_admin_and_ingest_errors_echo_a_bounded_excerpt(server: LiveServer) -> None:
    site = Site(server)
    long_ref = "x" * HUGE
    key = server.ingest_key(site.account)
    cases: list[tuple[str, str, str, dict[str, Any], int]] = [
        ("GET", f"{ADMIN}/accounts/{long_ref}/integrations", "no account 'xxx", {}, 404),
        ("GET", site.path(f"/integrations/{long_ref}"), "no integration 'xxx", {}, 404),
        ("GET", site.path(f"/tokens/{long_ref}"), "no token 'xxx", {}, 404),
        ("DELETE", site.path(f"/ingest-keys/{long_ref}"), "no ingest key 'xxx", {}, 404),
        ("POST", site.path("/integrations"), "unknown SIEM type 'xxx", {"json": {"type": long_ref, "name": "n"}}, 400),
        (
            "POST",
            site.path("/integrations"),
            "Bad Request: 'xxx",
            {"json": {"type": "splunk", "name": "n", long_ref: 1}},
            400,
        ),
    ]
    for method, url, shown, kwargs, status in cases:
        message = _bounded(error_message(site.call(site.owner, method, url, **kwargs), status))
        assert shown in message and "..." in message, (url[:80], message)
    response = server.http.post(f"/api/ingest/v2/{long_ref}", headers=bearer(key), content=b"[]")
    assert "unknown feature 'xxx" in _bounded(error_message(response, 404))
    response = server.http.post(
        "/api/ingest/v2/signinattempts", headers={**bearer(key), "Content-Encoding": long_ref}, content=b"[]"
    )
    assert "Content-Encoding 'xxx" in _bounded(error_message(response, 400))


def test_field_names_in_errors_are_bounded_too(server: LiveServer) -> None:
    """A field path names what was sent too: a 20,000-character unknown field, a key written twice
    or a field name holding NUL came back whole, twice (message and details), in the 400."""
    site = Site(server)
    key = server.ingest_key(site.account)
    event = {"uuid": "A" * 26, "timestamp": "2024-01-01T00:00:00Z", "category": "success", "type": "credentials_ok"}
    long_name = "x" * HUGE
    bodies = [
        orjson.dumps([{**event, long_name: 1}]),
        orjson.dumps([{**event, "client": {long_name: 1}}]),
        orjson.dumps([event])[:-2] + b',"%s":1,"%s":2}]' % (long_name.encode(), long_name.encode()),
    ]
    for body in bodies:
        response = server.http.post("/api/ingest/v2/signinattempts", headers=bearer(key), content=body)
        assert response.status_code == 400, response.text[:200]
        assert len(response.content) <= 2 * LONGEST_MESSAGE, response.text[:200]
        assert "x" * EXCERPT not in response.text, response.text[:200]
    body = b'{"type":"splunk","name":"n","%s":1,"%s":2}' % (long_name.encode(), long_name.encode())
    response = site.call(site.owner, "POST", site.path("/integrations"), content=body)
    assert "appears twice" in _bounded(error_message(response, 400))
    body = orjson.dumps({"type": "splunk", "name": "n", "y" * HUGE + "\u0000": 1})
    response = site.call(site.owner, "POST", site.path("/integrations"), content=body)
    assert "NUL" in _bounded(error_message(response, 400).replace("y", "x"))
