"""The Events API through real HTTP: docs/events-api.md and the reset/cursor semantics of docs/cursors.md."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from siemgate.auth.tokens import TokenService
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import format_ns
from support.events import HOUR, MAKERS, SECOND, as_sent, auditevent, itemusage, signin
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL

SIGNIN = Feature.SIGNINATTEMPTS
V2_TOP = {"account_uuid", "actor_type", "actor_account_uuid"}
V2_USER = {"user_type", "user_account_uuid"}


def _setup(server: Any, features: Any = ALL_FEATURES) -> tuple[Any, str, str]:
    account = server.account()
    return account, server.token(account, features), server.ingest_key(account)


def _store(server: Any, key: str, feature: Feature, events: list[dict[str, Any]]) -> None:
    response = server.ingest(key, feature, events)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == len(events)


def _error(response: Any) -> str:
    body = response.json()
    assert set(body) == {"Error"} and set(body["Error"]) >= {"Message"}
    message: str = body["Error"]["Message"]
    assert message
    return message


# --- endpoints, methods, paths ------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_every_event_endpoint_serves_an_envelope(server: Any, version: int, feature: Feature) -> None:
    _, token, _ = _setup(server)
    response = server.page(token, feature, version=version)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"cursor", "has_more", "items"}
    assert isinstance(body["cursor"], str) and body["cursor"]
    assert body["has_more"] is False and body["items"] == []


@pytest.mark.parametrize("path", [f"/api/v{v}/{f.value}" for v in (1, 2) for f in ALL_FEATURES])
def test_event_paths_are_post_only(server: Any, path: str) -> None:
    _, token, _ = _setup(server)
    response = server.http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "POST" in _error(response)


@pytest.mark.parametrize("path", ["/api/auth/introspect", "/api/v2/auth/introspect"])
def test_introspect_is_get_only(server: Any, path: str) -> None:
    response = server.http.post(path)
    assert response.status_code == 405
    assert "GET" in _error(response)


@pytest.mark.parametrize("path", ["/api/v3/signinattempts", "/api/v2/signinattempt", "/", "/api/v2/events"])
def test_unknown_paths_are_404_with_the_error_shape(server: Any, path: str) -> None:
    response = server.http.post(path)
    assert response.status_code == 404
    assert "Not Found" in _error(response)


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c", "Token abc"],
)
def test_missing_or_malformed_credentials_get_401(server: Any, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = server.http.post("/api/v2/signinattempts", headers=headers)
    assert response.status_code == 401
    assert _error(response).startswith("Unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_signed_by_another_key_is_refused(server: Any, make_server: Any) -> None:
    other = make_server()
    foreign_account = other.account()
    foreign = other.token(foreign_account)
    # Same audience (both servers default to 127.0.0.1:8080), different signing keys.
    response = server.page(foreign, SIGNIN)
    assert response.status_code == 401
    assert "not signed by this server" in _error(response)


def test_a_token_with_an_altered_payload_is_refused(server: Any) -> None:
    _account, token, _ = _setup(server, [SIGNIN])
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["1password.com/fts"] = [f.value for f in ALL_FEATURES]
    forged_payload = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    response = server.page(f"{header}.{forged_payload}.{signature}", Feature.AUDITEVENTS)
    assert response.status_code == 401


def test_a_token_issued_for_a_former_public_address_keeps_working(make_server: Any) -> None:
    server = make_server(public_url="https://siem-a.example.com")
    token = server.token(server.account())
    assert server.page(token, SIGNIN).status_code == 200
    # The deployment re-configured for another address still accepts the tokens it issued (until
    # they are rotated): their signature and recorded digest identify them (docs/setup.md).
    moved = TokenService(server.store, server.services.keys, "siem-b.example.com", server.clock)
    assert moved.authenticate(f"Bearer {token}").features


def test_without_a_public_host_tokens_survive_a_port_change(server: Any) -> None:
    token = server.token(server.account())
    moved = TokenService(server.store, server.services.keys, "127.0.0.1:9999", server.clock)
    assert moved.authenticate(f"Bearer {token}").features


def test_revoked_token_fails_on_the_next_request(server: Any) -> None:
    account, token, _ = _setup(server)
    assert server.page(token, SIGNIN).status_code == 200
    token_id = server.store.list_tokens(account.id)[0].id
    server.store.revoke_token(token_id, server.clock())
    response = server.page(token, SIGNIN)
    assert response.status_code == 401
    assert "revoked" in _error(response)
    assert server.http.get("/api/v2/auth/introspect", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_expired_token_fails_on_the_next_request(server: Any) -> None:
    account = server.account()
    token = server.token(account, expires_in_s=30 * 86400)
    assert server.page(token, SIGNIN).status_code == 200
    server.clock.advance(30 * 86400 + 1)
    response = server.page(token, SIGNIN)
    assert response.status_code == 401
    assert "expired" in _error(response)


def test_a_token_without_the_feature_gets_401_on_that_endpoint_only(server: Any) -> None:
    _, token, _ = _setup(server, [Feature.AUDITEVENTS])
    assert server.page(token, Feature.AUDITEVENTS).status_code == 200
    for feature in (Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES):
        for version in (1, 2):
            response = server.page(token, feature, version=version)
            assert response.status_code == 401
            assert feature.value in _error(response)


# --- introspection ------------------------------------------------------------------------------


def test_introspect_v1_is_pascal_case_and_v2_snake_case(server: Any) -> None:
    account, token, _ = _setup(server, [SIGNIN, Feature.AUDITEVENTS])
    record = server.store.list_tokens(account.id)[0]
    integration = server.store.get_integration_by_id(record.integration_id)
    headers = {"Authorization": f"Bearer {token}"}
    v1 = server.http.get("/api/auth/introspect", headers=headers)
    v2 = server.http.get("/api/v2/auth/introspect", headers=headers)
    assert v1.status_code == v2.status_code == 200
    assert v1.json() == {
        "UUID": integration.uuid,
        "IssuedAt": format_ns(record.created_at - record.created_at % SECOND),
        "Features": ["signinattempts", "auditevents"],
    }
    assert v2.json() == {
        "uuid": integration.uuid,
        "issued_at": format_ns(record.created_at - record.created_at % SECOND),
        "features": ["signinattempts", "auditevents"],
        "account_uuid": account.uuid,
    }


def test_token_claims_match_the_1password_shape(server: Any) -> None:
    account, token, _ = _setup(server, [SIGNIN])
    header_b64, payload_b64, _ = token.split(".")
    header = orjson.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    claims = orjson.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    record = server.store.list_tokens(account.id)[0]
    assert header["alg"] == "ES256" and header["kid"] == record.kid
    assert claims["aud"] == ["127.0.0.1:8080"]
    assert claims["1password.com/fts"] == ["signinattempts"]
    assert claims["1password.com/auuid"] == account.uuid
    assert claims["jti"] == record.id
    assert claims["sub"] == server.store.get_integration_by_id(record.integration_id).uuid
    assert "exp" not in claims and isinstance(claims["iat"], int)
    jwks = server.http.get("/.well-known/jwks.json").json()
    assert record.kid in {k["kid"] for k in jwks["keys"]}


# --- tolerant body parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"", None),
        (b"{}", None),
        (b"{}", "text/plain"),
        (b"{}", "application/x-www-form-urlencoded"),
        (b"null", "application/json"),
        (b'{"limit": null, "cursor": null, "start_time": null, "end_time": null}', "application/json"),
        (b'{"ResetCursor": {"limit": 5, "start_time": "2020-01-01T00:00:00Z"}}', "application/json"),
        (b'{"cursor": ""}', "application/json"),
        (b"\xef\xbb\xbf{}", "application/json"),
        (b"  \n{ }\n ", "application/json"),
    ],
)
def test_tolerated_bodies_act_as_a_default_reset(server: Any, raw: bytes, content_type: str | None) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    _store(server, key, SIGNIN, [signin(now - 2 * HOUR), signin(now - 10 * SECOND)])
    headers = {"Content-Type": content_type} if content_type else {}
    response = server.page(token, SIGNIN, raw=raw, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["items"]) == 1  # the default window is the last hour
    assert body["has_more"] is False


def test_cursor_wins_over_reset_fields(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    events = [signin(now - 60 * SECOND + i * SECOND) for i in range(5)]
    _store(server, key, SIGNIN, events)
    first = server.page(token, SIGNIN, {"limit": 2}).json()
    assert [e["uuid"] for e in first["items"]] == [e["uuid"] for e in events[:2]]
    body = {"cursor": first["cursor"], "limit": 1000, "start_time": "2020-01-01T00:00:00Z", "end_time": None}
    second = server.page(token, SIGNIN, body).json()
    assert [e["uuid"] for e in second["items"]] == [e["uuid"] for e in events[2:4]]  # limit 2 travels in the cursor


def test_a_hand_formatted_cursor_body_parses(server: Any) -> None:
    _, token, key = _setup(server)
    _store(server, key, SIGNIN, [signin(server.clock() - SECOND) for _ in range(3)])
    first = server.page(token, SIGNIN, {"limit": 1}).json()
    raw = ('{{ "cursor": "{}" }}'.format(first["cursor"])).encode()
    response = server.page(token, SIGNIN, raw=raw)
    assert response.status_code == 200 and len(response.json()["items"]) == 1


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"limit=10", "not valid JSON"),
        (b'{"cursor": 42}', "cursor must be"),
        (b'{"limit": 1001}', "limit"),
        (b'{"limit": 0}', "limit"),
        (b'{"limit": -5}', "limit"),
        (b'{"limit": "100"}', "limit"),
        (b'{"limit": 10.5}', "limit"),
        (b'{"limit": true}', "limit"),
        (b'{"start_time": "yesterday"}', "start_time"),
        (b'{"start_time": "2024-13-01T00:00:00Z"}', "start_time"),
        (b'{"end_time": 1700000000}', "end_time"),
        (b'{"start_time": "2024-02-01T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}', "end_time is before"),
    ],
)
def test_bad_bodies_get_400_saying_what_to_fix(server: Any, raw: bytes, fragment: str) -> None:
    _, token, _ = _setup(server)
    response = server.page(token, SIGNIN, raw=raw)
    assert response.status_code == 400
    message = _error(response)
    assert message.startswith("Bad Request")
    assert fragment in message


def test_an_oversized_request_body_is_413(server: Any) -> None:
    _, token, _ = _setup(server)
    raw = b'{"limit": 10, "padding": "' + b"x" * (server.services.settings.events_max_body_bytes + 10) + b'"}'
    response = server.page(token, SIGNIN, raw=raw)
    assert response.status_code == 413
    assert "limit" in _error(response)


# --- limits and windows -------------------------------------------------------------------------


def test_limit_defaults_to_100_and_accepts_1_to_1000(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    _store(server, key, SIGNIN, [signin(now - 30 * 60 * SECOND + i * SECOND) for i in range(1001)])
    default = server.page(token, SIGNIN, {}).json()
    assert len(default["items"]) == 100 and default["has_more"] is True
    assert len(server.page(token, SIGNIN, {"limit": 1}).json()["items"]) == 1
    assert len(server.page(token, SIGNIN, {"limit": 10.0}).json()["items"]) == 10
    full = server.page(token, SIGNIN, {"limit": 1000}).json()
    assert len(full["items"]) == 1000 and full["has_more"] is True
    rest = server.page(token, SIGNIN, {"cursor": full["cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["has_more"] is False


def test_has_more_is_exact(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    _store(server, key, SIGNIN, [signin(now - 100 * SECOND + i * SECOND) for i in range(10)])
    exact = server.page(token, SIGNIN, {"limit": 10}).json()
    assert len(exact["items"]) == 10 and exact["has_more"] is False
    one_short = server.page(token, SIGNIN, {"limit": 9}).json()
    assert one_short["has_more"] is True


def test_default_window_with_end_time_is_the_hour_before_it(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    end = now - 10 * HOUR
    inside = [signin(end - 30 * 60 * SECOND), signin(end)]
    outside = [signin(end - 2 * HOUR), signin(end + SECOND), signin(now - SECOND)]
    _store(server, key, SIGNIN, inside + outside)
    body = server.page(token, SIGNIN, {"end_time": format_ns(end), "limit": 50}).json()
    assert [e["uuid"] for e in body["items"]] == [e["uuid"] for e in inside]


def test_start_and_end_bounds_are_inclusive(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    start, end = now - 3 * HOUR, now - 2 * HOUR
    events = [signin(start - 1), signin(start), signin(end), signin(end + 1)]
    _store(server, key, SIGNIN, events)
    body = server.page(token, SIGNIN, {"start_time": format_ns(start), "end_time": format_ns(end)}).json()
    assert [e["uuid"] for e in body["items"]] == [events[1]["uuid"], events[2]["uuid"]]


def test_a_far_past_start_time_is_clamped_to_retention(make_server: Any) -> None:
    server = make_server(retention_days=10)
    account, token, key = _setup(server)
    now = server.clock()
    old, recent = signin(now - 11 * 86400 * SECOND), signin(now - 9 * 86400 * SECOND)
    _store(server, key, SIGNIN, [recent])
    # the ingest API refuses an event before retention (docs/events.md); a mirror keeps it
    assert server.services.writer.write(account.id, SIGNIN, [old], strict=False).stored == 1
    body = server.page(token, SIGNIN, {"start_time": "2020-01-01T00:00:00Z"}).json()
    assert [e["uuid"] for e in body["items"]] == [recent["uuid"]]


@pytest.mark.parametrize(
    "text",
    [
        "{date}T16:32:50-03:00",
        "{date}T19:32:50Z",
        "{date}T19:32:50.000Z",
        "{date}T19:32:50.000000Z",
        "{date}T19:32:50.000000+00:00",
        "{date}T19:32:50-00:00",
        "{date}T21:32:50+02:00",
        "{date}t19:32:50z",
        "{date} 19:32:50Z",
        "{date}T19:32:50.000000000Z",
    ],
)
def test_every_rfc3339_variant_means_the_same_instant(server: Any, text: str) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    day = format_ns(now - 86400 * SECOND)[:10]
    instant = f"{day}T19:32:50Z"
    from siemgate.model.timestamps import parse_ns

    at = parse_ns(instant)
    before, exactly, after = signin(at - 1), signin(at), signin(at + 1)
    _store(server, key, SIGNIN, [before, exactly, after])
    body = server.page(token, SIGNIN, {"start_time": text.format(date=day), "limit": 10}).json()
    assert [e["uuid"] for e in body["items"]] == [exactly["uuid"], after["uuid"]]
    body = server.page(token, SIGNIN, {"start_time": format_ns(at - HOUR), "end_time": text.format(date=day)}).json()
    assert [e["uuid"] for e in body["items"]] == [before["uuid"], exactly["uuid"]]


# --- cursor semantics ---------------------------------------------------------------------------


def test_end_of_data_returns_the_same_cursor_and_later_events_arrive_on_it(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    _store(server, key, SIGNIN, [signin(now - 5 * SECOND)])
    first = server.page(token, SIGNIN, {}).json()
    assert len(first["items"]) == 1 and first["has_more"] is False
    again = server.page(token, SIGNIN, {"cursor": first["cursor"]}).json()
    assert again == {"cursor": first["cursor"], "has_more": False, "items": []}
    assert server.page(token, SIGNIN, {"cursor": first["cursor"]}).json()["cursor"] == first["cursor"]
    new = signin(server.clock())
    _store(server, key, SIGNIN, [new])
    later = server.page(token, SIGNIN, {"cursor": first["cursor"]}).json()
    assert [e["uuid"] for e in later["items"]] == [new["uuid"]]
    assert later["cursor"] != first["cursor"]


def test_an_empty_reset_still_returns_a_usable_cursor(server: Any) -> None:
    _, token, key = _setup(server)
    empty = server.page(token, SIGNIN, {}).json()
    assert empty["items"] == [] and empty["cursor"]
    event = signin(server.clock())
    _store(server, key, SIGNIN, [event])
    assert [e["uuid"] for e in server.page(token, SIGNIN, {"cursor": empty["cursor"]}).json()["items"]] == [
        event["uuid"]
    ]


def test_items_come_in_insertion_order_and_late_events_are_delivered(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    first_batch = [signin(now - 10 * SECOND), signin(now - 5 * SECOND)]
    _store(server, key, SIGNIN, first_batch)
    page = server.page(token, SIGNIN, {"start_time": format_ns(now - HOUR)}).json()
    assert [e["uuid"] for e in page["items"]] == [e["uuid"] for e in first_batch]
    late = signin(now - 50 * 60 * SECOND)  # older than everything already read, stored afterwards
    newer = signin(now)
    _store(server, key, SIGNIN, [newer, late])
    page = server.page(token, SIGNIN, {"cursor": page["cursor"]}).json()
    assert [e["uuid"] for e in page["items"]] == [newer["uuid"], late["uuid"]]


def test_a_late_event_outside_the_window_is_not_delivered(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    page = server.page(token, SIGNIN, {"start_time": format_ns(now - HOUR)}).json()
    _store(server, key, SIGNIN, [signin(now - 2 * HOUR)])
    assert server.page(token, SIGNIN, {"cursor": page["cursor"]}).json()["items"] == []


def _tamper(cursor: str) -> str:
    middle = len(cursor) // 2
    return cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]


@pytest.mark.parametrize(
    ("mangle", "fragment"),
    [
        (_tamper, "not issued by this server or has been altered"),
        (lambda c: c[:-3], "malformed"),
        (lambda c: c + "AAAA", "malformed"),
        (lambda c: "!" * len(c), "malformed"),
        (lambda c: "aGVsbG8hIGlzIHRoaXMgYSBjdXJzb3I_", "malformed"),
    ],
)
def test_forged_or_truncated_cursors_get_400(server: Any, mangle: Any, fragment: str) -> None:
    _, token, _ = _setup(server)
    cursor = server.page(token, SIGNIN, {}).json()["cursor"]
    response = server.page(token, SIGNIN, {"cursor": mangle(cursor)})
    assert response.status_code == 400
    message = _error(response)
    assert fragment in message and "reset" in message


def test_a_cursor_of_account_a_is_refused_for_a_token_of_account_b(server: Any) -> None:
    _account_a, token_a, key_a = _setup(server)
    _, token_b, _ = _setup(server)
    _store(server, key_a, SIGNIN, [signin(server.clock() - SECOND)])
    cursor_a = server.page(token_a, SIGNIN, {"limit": 1}).json()["cursor"]
    response = server.page(token_b, SIGNIN, {"cursor": cursor_a})
    assert response.status_code == 400
    assert "another account" in _error(response)


def test_a_cursor_of_another_stream_is_refused(server: Any) -> None:
    _, token, _ = _setup(server)
    cursor = server.page(token, Feature.ITEMUSAGES, {}).json()["cursor"]
    response = server.page(token, SIGNIN, {"cursor": cursor})
    assert response.status_code == 400
    assert "itemusages" in _error(response)


def test_a_cursor_from_another_server_is_refused(server: Any, make_server: Any) -> None:
    other = make_server()
    _, other_token, _ = _setup(other)
    foreign_cursor = other.page(other_token, SIGNIN, {}).json()["cursor"]
    _, token, _ = _setup(server)
    response = server.page(token, SIGNIN, {"cursor": foreign_cursor})
    assert response.status_code == 400


def test_v1_and_v2_cursors_of_a_stream_are_interchangeable(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    events = [signin(now - 3 * SECOND), signin(now - 2 * SECOND)]
    _store(server, key, SIGNIN, events)
    v1 = server.page(token, SIGNIN, {"limit": 1}, version=1).json()
    v2 = server.page(token, SIGNIN, {"cursor": v1["cursor"]}, version=2).json()
    assert [e["uuid"] for e in v2["items"]] == [events[1]["uuid"]]


# --- v1 and v2 shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_v1_items_are_v2_items_without_the_msp_fields(server: Any, feature: Feature) -> None:
    _, token, key = _setup(server)
    event = MAKERS[feature](server.clock() - SECOND)
    _store(server, key, feature, [event])
    v2 = as_sent(server.page(token, feature, {}, version=2).json()["items"], token)
    v1 = server.page(token, feature, {}, version=1).json()["items"]
    assert v2 == [event]
    expected_v1 = {k: v for k, v in event.items() if k not in V2_TOP}
    user_key = {
        Feature.SIGNINATTEMPTS: "target_user",
        Feature.ITEMUSAGES: "user",
        Feature.AUDITEVENTS: "actor_details",
    }[feature]
    expected_v1[user_key] = {k: v for k, v in event[user_key].items() if k not in V2_USER}
    assert v1 == [expected_v1]


def test_details_null_and_absent_optional_objects_are_kept_as_sent(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    with_null = signin(now - 2 * SECOND)
    without_location = signin(now - SECOND)
    del without_location["location"], without_location["details"]
    firewall = signin(now, category="firewall_failed", type="country_blocked", details={"value": "RU"})
    _store(server, key, SIGNIN, [with_null, without_location, firewall])
    items = server.page(token, SIGNIN, {}).json()["items"]
    assert items[0]["details"] is None
    assert "location" not in items[1] and "details" not in items[1]
    assert items[2]["details"] == {"value": "RU"}


def test_timestamps_come_out_in_one_utc_form(server: Any) -> None:
    _, _token, key = _setup(server)
    now = server.clock()
    text = format_ns(now - HOUR // 2)
    shifted = text[:10] + "T" + text[11:19]
    event = auditevent(now)
    event["timestamp"] = shifted + ".120000000+00:00"
    _store(server, key, Feature.AUDITEVENTS, [event])
    item = server.page(server.token(server.store.list_accounts()[0]), Feature.AUDITEVENTS, {}).json()["items"][0]
    assert item["timestamp"] == shifted + ".12Z"


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limit_headers_on_every_reply_and_429_with_retry_after(make_server: Any) -> None:
    server = make_server(rate_limit_per_minute=3)
    _, token, _ = _setup(server)
    remaining = []
    for _ in range(3):
        response = server.page(token, SIGNIN, {})
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
        remaining.append(int(response.headers["ratelimit-remaining"]))
        assert 0 <= int(response.headers["ratelimit-reset"]) <= 60
    assert remaining == [2, 1, 0]
    limited = server.page(token, SIGNIN, {})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Too Many Requests" in _error(limited)
    # limits are per token: another token of the same account is unaffected
    assert server.page(server.token(server.store.list_accounts()[0]), SIGNIN, {}).status_code == 200


def test_hourly_limit_applies_too(make_server: Any) -> None:
    server = make_server(rate_limit_per_hour=2)
    _, token, _ = _setup(server)
    assert [server.page(token, SIGNIN, {}).status_code for _ in range(3)] == [200, 200, 429]
    assert server.http.get("/api/v2/auth/introspect", headers={"Authorization": f"Bearer {token}"}).status_code == 429


def test_an_accounts_tokens_together_are_limited_and_other_accounts_are_not(make_server: Any) -> None:
    """Each token had its own limit only, so an account's 500 tokens could send 300,000 requests a
    minute: 64 of them polling at once took another account's pages from 2 ms to 54 ms (127.0.0.1)."""
    server = make_server(account_rate_limit_per_minute=3)
    busy, other = server.account(), server.account()
    tokens = [server.token(busy) for _ in range(3)]
    assert [server.page(token, SIGNIN, {}).status_code for token in tokens] == [200, 200, 200]
    limited = server.page(server.token(busy), SIGNIN, {})  # a fresh token, within its own limit
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "all its tokens together" in _error(limited)
    assert server.page(server.token(other), SIGNIN, {}).status_code == 200


# --- multi-account ------------------------------------------------------------------------------


def test_accounts_never_see_each_others_events(server: Any) -> None:
    _, token_a, key_a = _setup(server)
    _, token_b, key_b = _setup(server)
    now = server.clock()
    a_events = [itemusage(now - SECOND), itemusage(now)]
    b_events = [itemusage(now - SECOND)]
    _store(server, key_a, Feature.ITEMUSAGES, a_events)
    _store(server, key_b, Feature.ITEMUSAGES, b_events)
    assert {e["uuid"] for e in server.page(token_a, Feature.ITEMUSAGES, {}).json()["items"]} == {
        e["uuid"] for e in a_events
    }
    assert [e["uuid"] for e in server.page(token_b, Feature.ITEMUSAGES, {}).json()["items"]] == [b_events[0]["uuid"]]
