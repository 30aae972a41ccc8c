"""The ingest API (`POST /api/ingest/v2/{feature}`) through real HTTP: body forms, replies, dedup,
validation errors, atomic batches, credentials and limits."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import format_ns, parse_ns
from support.clocks import Clock
from support.events import HOUR, MAKERS, SECOND, as_sent, auditevent, itemusage, signin
from support.servers import LiveServer, start_server, stop_server
from support.stores import BOTH_BACKENDS, make_store

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL

SIGNIN = Feature.SIGNINATTEMPTS
ITEMS = Feature.ITEMUSAGES
AUDIT = Feature.AUDITEVENTS
BASE32_ID = re.compile(r"[A-Z2-7]{26}")
EPOCH = "2020-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_backend: str) -> Iterator[LiveServer]:
    """One default server for this module: each test makes its own account, so tests stay independent
    and start-up is paid once. Tests that need other settings or move the clock use make_server."""
    data_dir = tmp_path_factory.mktemp("ingest-api")
    live, uv, thread = start_server(load_settings(data_dir=data_dir), make_store(server_backend, data_dir), Clock())
    yield live
    stop_server(live, uv, thread)


def _setup(server: Any, features: Any = ALL_FEATURES) -> tuple[Any, str, str]:
    account = server.account()
    return account, server.token(account, features), server.ingest_key(account, features)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _post(server: LiveServer, key: str, feature: Feature, body: bytes, *, encoding: str) -> httpx.Response:
    headers = {**_auth(key), "Content-Encoding": encoding}
    return server.http.post(f"/api/ingest/v2/{feature.value}", content=body, headers=headers)


def _ok(response: httpx.Response) -> dict[str, int]:
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    assert set(result) == {"received", "stored", "duplicates"}
    return result


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"Error"}
    message: str = body["Error"]["Message"]
    assert isinstance(message, str) and message
    return message


def _details(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.text
    _error(response)
    details: list[dict[str, Any]] = response.json()["Error"]["Details"]
    assert details
    for detail in details:
        assert set(detail) == {"index", "field", "message"}
        assert isinstance(detail["index"], int) and isinstance(detail["message"], str) and detail["message"]
    return details


def _served(server: Any, token: str, feature: Feature, *, version: int = 2) -> list[dict[str, Any]]:
    """Every event of the stream since 2020 (clamped to retention), following the cursor chain."""
    first = server.page(token, feature, {"limit": 1000, "start_time": EPOCH}, version=version)
    assert first.status_code == 200, first.text
    data = first.json()
    items: list[dict[str, Any]] = data["items"]
    if data["has_more"]:
        more, _ = server.drain(token, feature, data["cursor"], version=version)
        items += more
    return as_sent(items, token)


def _uuids(items: list[dict[str, Any]]) -> list[str]:
    return [item["uuid"] for item in items]


def _recent(server: Any, feature: Feature, count: int) -> list[dict[str, Any]]:
    now = server.clock()
    return [MAKERS[feature](now - (count - i) * SECOND) for i in range(count)]


# --- body forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_a_json_array_is_stored_and_served_back_unchanged(server: Any, feature: Feature) -> None:
    _, token, key = _setup(server)
    events = _recent(server, feature, 3)
    assert _ok(server.ingest(key, feature, events)) == {"received": 3, "stored": 3, "duplicates": 0}
    assert _served(server, token, feature) == events


@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_non_ascii_text_is_served_back_unchanged_in_v1_and_v2(server: Any, feature: Feature) -> None:
    # Multi-byte UTF-8 before the v1 cut: the v1 view is a byte slice of the stored v2 JSON.
    _, token, key = _setup(server)
    event = MAKERS[feature](server.clock() - SECOND)
    user_key = {SIGNIN: "target_user", ITEMS: "user", AUDIT: "actor_details"}[feature]
    event[user_key]["name"] = "Zoë Ñúñez 李雷 🙂"
    event[user_key]["email"] = "zoë@exämple.com"
    if "location" not in event:
        event["location"] = {"country": "CH", "region": "Zürich", "city": "Zürich"}
    event["location"]["city"] = "Zürich ☃"
    assert _ok(server.ingest(key, feature, [event]))["stored"] == 1
    assert _served(server, token, feature, version=2) == [event]
    v2_top = {"account_uuid", "actor_type", "actor_account_uuid"}
    v1_event = {k: v for k, v in event.items() if k not in v2_top}
    v1_event[user_key] = {k: v for k, v in event[user_key].items() if k not in ("user_type", "user_account_uuid")}
    assert _served(server, token, feature, version=1) == [v1_event]


def test_ndjson_with_blank_lines_and_crlf_is_one_event_per_line(server: Any) -> None:
    _, token, key = _setup(server)
    events = _recent(server, ITEMS, 3)
    lines = [orjson.dumps(e) for e in events]
    body = lines[0] + b"\n\n" + lines[1] + b"\r\n   \n" + lines[2] + b"\n\n"
    assert _ok(server.ingest(key, ITEMS, body)) == {"received": 3, "stored": 3, "duplicates": 0}
    assert _served(server, token, ITEMS) == events


def test_a_single_event_object_is_a_batch_of_one(server: Any) -> None:
    _, token, key = _setup(server)
    event = signin(server.clock() - SECOND)
    assert _ok(server.ingest(key, SIGNIN, orjson.dumps(event))) == {"received": 1, "stored": 1, "duplicates": 0}
    assert _served(server, token, SIGNIN) == [event]


def test_an_events_api_page_object_contributes_its_items(server: Any) -> None:
    _, token, key = _setup(server)
    events = _recent(server, AUDIT, 4)
    page = {"cursor": "aGVsbG8h", "has_more": True, "items": events}
    assert _ok(server.ingest(key, AUDIT, page)) == {"received": 4, "stored": 4, "duplicates": 0}
    assert _served(server, token, AUDIT) == events


def test_a_utf8_bom_before_the_body_is_ignored(server: Any) -> None:
    _, token, key = _setup(server)
    events = _recent(server, SIGNIN, 2)
    assert _ok(server.ingest(key, SIGNIN, b"\xef\xbb\xbf" + orjson.dumps(events)))["stored"] == 2
    assert _served(server, token, SIGNIN) == events


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "Gzip"])
def test_a_gzip_encoded_body_is_decoded(server: Any, encoding: str) -> None:
    _, token, key = _setup(server)
    events = _recent(server, ITEMS, 5)
    body = gzip.compress(b"\n".join(orjson.dumps(e) for e in events))
    response = _post(server, key, ITEMS, body, encoding=encoding)
    assert _ok(response) == {"received": 5, "stored": 5, "duplicates": 0}
    assert _served(server, token, ITEMS) == events


def test_a_multi_member_gzip_body_is_decoded_whole(server: Any) -> None:
    # RFC 1952 allows several members in one gzip stream (concatenated files, pigz, appending shippers);
    # `gzip -d` and Python's gzip module decode them all. Dropping the later members silently loses events.
    _, token, key = _setup(server)
    events = _recent(server, SIGNIN, 4)
    first = gzip.compress(b"\n".join(orjson.dumps(e) for e in events[:2]) + b"\n")
    second = gzip.compress(b"\n".join(orjson.dumps(e) for e in events[2:]) + b"\n")
    assert gzip.decompress(first + second).count(b"\n") == 4
    response = _post(server, key, SIGNIN, first + second, encoding="gzip")
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json() == {"received": 4, "stored": 4, "duplicates": 0}
        assert _served(server, token, SIGNIN) == events
    else:  # refusing the whole body is acceptable too, as long as nothing was stored
        assert _served(server, token, SIGNIN) == []


def test_gzip_followed_by_garbage_is_refused(server: Any) -> None:
    _, token, key = _setup(server)
    body = gzip.compress(orjson.dumps(_recent(server, SIGNIN, 1))) + b"this is not gzip"
    response = _post(server, key, SIGNIN, body, encoding="gzip")
    assert response.status_code == 400, response.text
    assert "gzip" in _error(response)
    assert _served(server, token, SIGNIN) == []


@pytest.mark.parametrize(
    "body",
    [b"definitely not gzip", b"\x1f\x8b\x08\x00garbage", gzip.compress(b'[{"category":"success"}]')[:-12]],
    ids=["not-gzip", "bad-header", "truncated"],
)
def test_a_malformed_gzip_body_is_400(server: Any, body: bytes) -> None:
    _, token, key = _setup(server)
    response = _post(server, key, SIGNIN, body, encoding="gzip")
    assert response.status_code == 400
    assert "gzip" in _error(response)
    assert _served(server, token, SIGNIN) == []


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "zstd", "gzip, br"])
def test_an_unsupported_content_encoding_is_400(server: Any, encoding: str) -> None:
    _, _, key = _setup(server)
    body = orjson.dumps(_recent(server, SIGNIN, 1))
    response = _post(server, key, SIGNIN, body, encoding=encoding)
    assert response.status_code == 400
    message = _error(response)
    assert "Content-Encoding" in message and "gzip" in message


def test_an_empty_array_stores_nothing(server: Any) -> None:
    _, token, key = _setup(server)
    assert _ok(server.ingest(key, SIGNIN, [])) == {"received": 0, "stored": 0, "duplicates": 0}
    assert _served(server, token, SIGNIN) == []


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"   \n\r\n\t ", b"\xef\xbb\xbf"])
def test_an_empty_body_is_400(server: Any, body: bytes) -> None:
    _, _, key = _setup(server)
    response = server.ingest(key, SIGNIN, body)
    assert response.status_code == 400
    assert "empty" in _error(response)


@pytest.mark.parametrize("body", [b"[", b'[{"category": "success"}', b"[1,]", b'[{"a":1}] trailing'])
def test_a_malformed_json_array_is_400(server: Any, body: bytes) -> None:
    _, _, key = _setup(server)
    response = server.ingest(key, SIGNIN, body)
    assert response.status_code == 400
    assert "JSON array" in _error(response)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'[{"category": "success"},', "unexpected end of data: line 1 column 26 (char 25)"),
        (b"[1,]", "trailing comma is not allowed: line 1 column 3 (char 2)"),
        (b"[NaN]", "expected a JSON value: line 1 column 2 (char 1)"),
        (b"[1e400]", "number is infinity when parsed as double: line 1 column 2 (char 1)"),
        (b'[{"name": "\xff"}]', "str is not valid UTF-8"),
        (b"[" * 1100 + b"]" * 1100, "depth limit exceeded: line 1 column 1026 (char 1025)"),
        (b'\n[\n{"a": 1}\n{"b": 2}]', "expected ',' or ']': line 4 column 1 (char 12)"),
        (b'[{"name": "\\ud800", "n": NaN}]', "line 1 column"),  # the surrogate is not the only fault
    ],
)
def test_a_malformed_json_array_says_what_is_wrong_and_where(server: Any, body: bytes, says: str) -> None:
    _, token, key = _setup(server)
    message = _error(server.ingest(key, SIGNIN, body))
    assert message.startswith("Bad Request: the body starts with '[' but is not a valid JSON array: "), message
    assert says in message, message
    assert _served(server, token, SIGNIN) == []


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
def test_a_lone_surrogate_escape_is_400_naming_the_field_and_nothing_is_stored(server: Any, ndjson: bool) -> None:
    """docs/security.md ("Text and values"): a lone surrogate is refused naming the field, also
    when it reaches the ingest API escaped in JSON text (which orjson does not decode)."""
    _, token, key = _setup(server)
    good = orjson.dumps(signin(server.clock()))
    bad = b'{"category":"success","type":"credentials_ok","target_user":{"name":"Ada \\ud83d\\ude00 \\ud800"}}'
    body = good + b"\n" + bad if ndjson else b"[" + good + b"," + bad + b"]"
    response = server.ingest(key, SIGNIN, body)
    assert _details(response) == [
        {
            "index": 1,
            "field": "target_user.name",
            "message": "contains a lone surrogate (U+D800) at position 6, which cannot be stored: remove it",
        }
    ]
    assert "target_user.name" in _error(response)
    assert _served(server, token, SIGNIN) == []


def test_a_lone_surrogate_in_a_field_name_is_a_400_that_shows_it_escaped(server: Any) -> None:
    """The field a 400 names is echoed from the request; a name holding a lone surrogate is shown
    escaped (the error body was a 500: JSON is written as UTF-8). The admin API says it alike."""
    _, token, key = _setup(server)
    bad = orjson.dumps(signin(server.clock()))[:-1] + b',"\\ud800x":"y"}'
    response = server.ingest(key, SIGNIN, b"[" + bad + b"]")
    assert response.status_code == 400, response.text
    assert _details(response)[0]["field"] == "\\ud800x"
    assert _served(server, token, SIGNIN) == []
    response = server.http.post("/api/admin/v1/accounts", content=b'{"\\udfff": 1}')
    assert response.status_code == 400, response.text
    assert (
        _error(response) == "Bad Request: \\udfff: the field name contains a lone surrogate (U+DFFF) at position 0,"
        " which cannot be stored: remove it"
    )


def test_a_bad_ndjson_line_is_400_naming_the_line_and_nothing_is_stored(server: Any) -> None:
    _, token, key = _setup(server)
    good = [orjson.dumps(e) for e in _recent(server, SIGNIN, 3)]
    body = good[0] + b"\n" + good[1] + b"\n\n" + b'{"uuid": oops}' + b"\n" + good[2]
    response = server.ingest(key, SIGNIN, body)
    assert response.status_code == 400
    assert "line 4 " in _error(response)
    assert _served(server, token, SIGNIN) == []


def test_ndjson_line_numbers_count_leading_blank_lines(server: Any) -> None:
    # The producer's line 4 is the bad one; leading blank lines are lines of the body too.
    _, _, key = _setup(server)
    good = orjson.dumps(signin(server.clock()))
    body = b"\n\n" + good + b"\nnot json\n"
    response = server.ingest(key, SIGNIN, body)
    assert response.status_code == 400
    assert "line 4 " in _error(response), _error(response)


@pytest.mark.parametrize("body", [b"hello", b"{not json", b"nul"])
def test_a_body_that_is_no_json_at_all_is_400_naming_line_1(server: Any, body: bytes) -> None:
    _, _, key = _setup(server)
    response = server.ingest(key, SIGNIN, body)
    assert response.status_code == 400
    assert "line 1 " in _error(response)


# --- the reply, ids, timestamps, duplicates -----------------------------------------------------


def test_missing_uuid_and_timestamp_are_filled_from_the_server_clock(make_server: Any) -> None:
    server = make_server()
    _, token, key = _setup(server)
    server.clock.advance(3 * 86400)  # the server's clock, not the wall clock, stamps the events
    before = server.clock()
    event = signin(0)
    del event["uuid"], event["timestamp"]
    nulls = {**signin(0), "uuid": None, "timestamp": None}
    assert _ok(server.ingest(key, SIGNIN, [event, nulls])) == {"received": 2, "stored": 2, "duplicates": 0}
    after = server.clock()
    served = _served(server, token, SIGNIN)
    assert len(served) == 2
    for item in served:
        assert BASE32_ID.fullmatch(item["uuid"]), item["uuid"]
        assert before - SECOND <= parse_ns(item["timestamp"]) <= after + SECOND
        assert item["timestamp"] == format_ns(parse_ns(item["timestamp"]))  # canonical form
    assert served[0]["uuid"] != served[1]["uuid"]
    assert {k: v for k, v in served[0].items() if k not in ("uuid", "timestamp")} == event


@pytest.mark.parametrize(
    ("sent", "served"),
    [
        ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z"),
        ("2024-05-01T10:00:00.500000Z", "2024-05-01T10:00:00.5Z"),
        ("2024-05-01t10:00:00.000z", "2024-05-01T10:00:00Z"),
        ("2024-05-01 10:00:00.123456789-00:00", "2024-05-01T10:00:00.123456789Z"),
    ],
)
def test_timestamps_are_normalised_to_canonical_utc(make_server: Any, sent: str, served: str) -> None:
    server = make_server(retention_days=5000)
    _, token, key = _setup(server)
    event = auditevent(parse_ns(served), timestamp=sent)
    event["session"]["login_time"] = sent
    assert _ok(server.ingest(key, AUDIT, [event]))["stored"] == 1
    (item,) = _served(server, token, AUDIT)
    assert item["timestamp"] == served
    assert item["session"]["login_time"] == served


def test_a_uuid_repeated_in_one_batch_is_stored_once_first_copy_wins(server: Any) -> None:
    _, token, key = _setup(server)
    first = itemusage(server.clock() - 2 * SECOND, action="fill")
    again = {**first, "action": "reveal"}
    other = itemusage(server.clock() - SECOND)
    assert _ok(server.ingest(key, ITEMS, [first, other, again])) == {"received": 3, "stored": 2, "duplicates": 1}
    assert _served(server, token, ITEMS) == [first, other]


def test_a_resent_batch_is_counted_as_duplicates_and_served_once(server: Any) -> None:
    _, token, key = _setup(server)
    batch = _recent(server, SIGNIN, 4)
    extra = signin(server.clock())
    assert _ok(server.ingest(key, SIGNIN, batch)) == {"received": 4, "stored": 4, "duplicates": 0}
    assert _ok(server.ingest(key, SIGNIN, batch)) == {"received": 4, "stored": 0, "duplicates": 4}
    assert _ok(server.ingest(key, SIGNIN, [*batch[2:], extra])) == {"received": 3, "stored": 1, "duplicates": 2}
    served = _served(server, token, SIGNIN)
    assert _uuids(served) == _uuids([*batch, extra])


def test_a_resent_event_keeps_its_first_stored_values(server: Any) -> None:
    _, token, key = _setup(server)
    original = auditevent(server.clock() - SECOND)
    assert _ok(server.ingest(key, AUDIT, [original]))["stored"] == 1
    changed = {**original, "action": "delete", "aux_info": "changed"}
    assert _ok(server.ingest(key, AUDIT, [changed])) == {"received": 1, "stored": 0, "duplicates": 1}
    assert _served(server, token, AUDIT) == [original]


def test_uuids_are_unique_per_account_and_feature_only(server: Any) -> None:
    _, token_a, key_a = _setup(server)
    _, token_b, key_b = _setup(server)
    now = server.clock()
    shared = signin(now - SECOND)
    as_item = itemusage(now - SECOND, uuid=shared["uuid"])
    assert _ok(server.ingest(key_a, SIGNIN, [shared]))["stored"] == 1
    assert _ok(server.ingest(key_a, ITEMS, [as_item]))["stored"] == 1
    assert _ok(server.ingest(key_b, SIGNIN, [shared]))["stored"] == 1
    assert _served(server, token_a, SIGNIN) == [shared]
    assert _served(server, token_a, ITEMS) == [as_item]
    assert _served(server, token_b, SIGNIN) == [shared]
    assert _served(server, token_b, ITEMS) == []


def test_the_u2f_timout_spelling_is_accepted_and_served_as_u2f_timeout(server: Any) -> None:
    _, token, key = _setup(server)
    event = signin(server.clock() - SECOND, category="mfa_failed", type="u2f_timout")
    assert _ok(server.ingest(key, SIGNIN, [event]))["stored"] == 1
    for version in (1, 2):
        (item,) = _served(server, token, SIGNIN, version=version)
        assert item["type"] == "u2f_timeout"


def test_optional_fields_absent_on_input_stay_absent(server: Any) -> None:
    _, token, key = _setup(server)
    minimal_signin = {"category": "success", "type": "credentials_ok", "timestamp": format_ns(server.clock())}
    minimal_audit = {"action": "join", "object_type": "gm", "timestamp": format_ns(server.clock())}
    assert _ok(server.ingest(key, SIGNIN, [minimal_signin]))["stored"] == 1
    assert _ok(server.ingest(key, AUDIT, [minimal_audit]))["stored"] == 1
    (signin_item,) = _served(server, token, SIGNIN)
    (audit_item,) = _served(server, token, AUDIT)
    assert set(signin_item) == {"uuid", "timestamp", "category", "type"}
    assert set(audit_item) == {"uuid", "timestamp", "action", "object_type"}


# --- validation errors --------------------------------------------------------------------------


def _one_issue(server: Any, feature: Feature, bad: dict[str, Any], *, index: int = 1) -> dict[str, Any]:
    """Send [good, bad, good] with `bad` at `index`; expect 400, exactly one issue, nothing stored."""
    _, token, key = _setup(server)
    now = server.clock()
    batch: list[Any] = [MAKERS[feature](now - 3 * SECOND), MAKERS[feature](now - 2 * SECOND)]
    batch.insert(index, bad)
    response = server.ingest(key, feature, batch)
    details = _details(response)
    assert "nothing was stored" in _error(response)
    assert _served(server, token, feature) == []
    assert len(details) == 1, details
    (detail,) = details
    assert detail["index"] == index
    return detail


@pytest.mark.parametrize(
    ("feature", "field", "value", "path"),
    [
        (SIGNIN, "country", 42, "country"),
        (SIGNIN, "details", "blocked", "details"),
        (SIGNIN, "client", "Chrome", "client"),
        (SIGNIN, "client", {"ip_address": 3232235777}, "client.ip_address"),
        (SIGNIN, "target_user", {"name": ["Ada"]}, "target_user.name"),
        (SIGNIN, "location", {"latitude": "43.64"}, "location.latitude"),
        (ITEMS, "used_version", "3", "used_version"),
        (ITEMS, "used_version", 3.5, "used_version"),
        (ITEMS, "used_version", True, "used_version"),
        (AUDIT, "aux_id", "12", "aux_id"),
        (AUDIT, "aux_info", {"expiry": "soon"}, "aux_info"),
        (AUDIT, "session", {"ip": 1}, "session.ip"),
    ],
)
def test_wrong_types_are_400_naming_index_and_field(
    server: Any, feature: Feature, field: str, value: Any, path: str
) -> None:
    bad = MAKERS[feature](server.clock(), **{field: value})
    detail = _one_issue(server, feature, bad)
    assert detail["field"] == path


@pytest.mark.parametrize(
    ("feature", "field", "value", "path"),
    [
        (SIGNIN, "category", "succeeded", "category"),
        (SIGNIN, "type", "password_ok", "type"),
        (SIGNIN, "target_user", {"user_type": "admin"}, "target_user.user_type"),
        (ITEMS, "action", "copy", "action"),
        (ITEMS, "user", {"user_type": "guest"}, "user.user_type"),
        (AUDIT, "action", "frobnicate", "action"),
        (AUDIT, "object_type", "spaceship", "object_type"),
        (AUDIT, "actor_details", {"user_type": "robot"}, "actor_details.user_type"),
        (AUDIT, "actor_type", "robot", "actor_type"),
    ],
)
def test_unknown_enum_values_are_400_listing_the_valid_ones(
    server: Any, feature: Feature, field: str, value: str | dict[str, str], path: str
) -> None:
    detail = _one_issue(server, feature, MAKERS[feature](server.clock(), **{field: value}))
    assert detail["field"] == path
    shown = value if isinstance(value, str) else next(iter(value.values()))
    assert repr(shown) in detail["message"]
    assert "expected one of" in detail["message"]


def test_the_enum_message_lists_valid_values(server: Any) -> None:
    detail = _one_issue(server, SIGNIN, signin(server.clock(), category="succeeded"))
    for value in ("success", "credentials_failed", "firewall_reported_success"):
        assert value in detail["message"]


@pytest.mark.parametrize(
    ("feature", "field", "value", "path"),
    [
        (SIGNIN, "uuid", "not-an-id", "uuid"),
        (SIGNIN, "uuid", "", "uuid"),
        (SIGNIN, "uuid", "ABCDEFGHIJKLMNOPQRSTUVWXY1", "uuid"),  # 1 is not base32
        (SIGNIN, "uuid", "ABCDEFGHIJKLMNOPQRSTUVWXYZA", "uuid"),  # 27 characters
        (SIGNIN, "uuid", 12345, "uuid"),
        (SIGNIN, "session_uuid", "0123456789", "session_uuid"),
        (SIGNIN, "account_uuid", "0" * 26, "account_uuid"),
        (ITEMS, "vault_uuid", "jaqxqf5qylslqiitnduawrndc", "vault_uuid"),
        (ITEMS, "item_uuid", "bvwmmwxisuca7wbehrbyqhag58", "item_uuid"),
        (AUDIT, "actor_uuid", "GLF6WUEKS5CSNDJ2OG6TCZD3M", "actor_uuid"),
        (AUDIT, "actor_account_uuid", "GLF6WUEKS5CSNDJ2OG6TCZD3M4 ", "actor_account_uuid"),
    ],
)
def test_bad_ids_are_400_naming_the_field(server: Any, feature: Feature, field: str, value: Any, path: str) -> None:
    detail = _one_issue(server, feature, MAKERS[feature](server.clock(), **{field: value}))
    assert detail["field"] == path


def test_a_bad_nested_id_names_the_nested_path(server: Any) -> None:
    event = auditevent(server.clock())
    event["session"]["device_uuid"] = "rqtd557fn2husnstp5nc66w2x!"
    detail = _one_issue(server, AUDIT, event, index=0)
    assert detail["field"] == "session.device_uuid"
    assert "26 base32" in detail["message"]


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-13-01T00:00:00Z",  # month 13
        "2024-02-30T00:00:00Z",  # Feb 30
        "2023-02-29T00:00:00Z",  # not a leap year
        "2024-01-01T00:00:00.1234567890Z",  # 10 fractional digits
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00",  # no offset
        "2024-01-01",
        "yesterday",
        "1969-12-31T23:59:59Z",  # before the storable range
    ],
)
def test_bad_timestamps_are_400_naming_the_field(server: Any, timestamp: str) -> None:
    detail = _one_issue(server, ITEMS, itemusage(server.clock(), timestamp=timestamp))
    assert detail["field"] == "timestamp"
    assert timestamp in detail["message"]


@pytest.mark.parametrize("timestamp", [1717243200, ["2024-01-01T00:00:00Z"], True])
def test_a_timestamp_that_is_not_a_string_is_reported_once(server: Any, timestamp: Any) -> None:
    detail = _one_issue(server, SIGNIN, signin(server.clock(), timestamp=timestamp))
    assert detail["field"] == "timestamp"


def test_a_bad_session_login_time_names_the_nested_field(server: Any) -> None:
    event = auditevent(server.clock())
    event["session"]["login_time"] = "2024-02-30T10:00:00Z"
    detail = _one_issue(server, AUDIT, event, index=2)
    assert detail["field"] == "session.login_time"


def test_an_unknown_nested_field_suggests_the_known_fields(server: Any) -> None:
    event = signin(server.clock())
    event["client"] = {"app_name": "1Password CLI", "ip": "192.0.2.1"}
    detail = _one_issue(server, SIGNIN, event)
    assert detail["field"] == "client.ip"
    assert "unknown field" in detail["message"]
    assert "ip_address" in detail["message"]


@pytest.mark.parametrize(
    ("feature", "field", "suggestion"),
    [(SIGNIN, "categroy", "category"), (ITEMS, "usr", "user"), (AUDIT, "object_typ", "object_type")],
)
def test_a_misspelt_top_level_field_suggests_the_right_one(
    server: Any, feature: Feature, field: str, suggestion: str
) -> None:
    event = MAKERS[feature](server.clock(), **{field: "x"})
    detail = _one_issue(server, feature, event)
    assert detail["field"] == field
    assert repr(suggestion) in detail["message"]


@pytest.mark.parametrize("item", [1, "an event", None, True, ["nested"]])
def test_non_object_items_are_400_naming_the_index(server: Any, item: Any) -> None:
    detail = _one_issue(server, ITEMS, item)
    assert "JSON object" in detail["message"]


@pytest.mark.parametrize(
    ("feature", "missing"),
    [
        (SIGNIN, ("category",)),
        (SIGNIN, ("type",)),
        (SIGNIN, ("category", "type")),
        (AUDIT, ("action",)),
        (AUDIT, ("object_type",)),
        (AUDIT, ("action", "object_type")),
    ],
)
def test_missing_required_fields_are_400_naming_each(server: Any, feature: Feature, missing: tuple[str, ...]) -> None:
    _, token, key = _setup(server)
    bad = MAKERS[feature](server.clock())
    for name in missing:
        del bad[name]
    response = server.ingest(key, feature, [MAKERS[feature](server.clock()), bad])
    details = _details(response)
    assert sorted((d["index"], d["field"]) for d in details) == [(1, name) for name in sorted(missing)]
    assert all("missing" in d["message"] for d in details)
    assert _served(server, token, feature) == []


def test_every_problem_of_every_event_is_listed_in_index_order(server: Any) -> None:
    _, token, key = _setup(server)
    now = server.clock()
    batch = [
        signin(now, category="nope"),
        signin(now),
        signin(now, timestamp="2024-02-30T00:00:00Z"),
        signin(now, client={"ip": "192.0.2.1"}, country=7),
    ]
    response = server.ingest(key, SIGNIN, batch)
    details = _details(response)
    found = [(d["index"], d["field"]) for d in details]
    assert [index for index, _ in found] == sorted(index for index, _ in found)
    assert set(found) == {(0, "category"), (2, "timestamp"), (3, "client.ip"), (3, "country")}
    message = _error(response)
    assert "4 problem(s)" in message and "event 0, field category" in message
    assert _served(server, token, SIGNIN) == []


def test_the_problem_count_is_of_the_problems_listed(server: Any) -> None:
    _, _, key = _setup(server)
    body = b'[{"category":"success","type":"credentials_ok","location":{"latitude":"1","longitude":"2"}}]'
    response = server.ingest(key, SIGNIN, body)
    assert [(d["index"], d["field"]) for d in _details(response)] == [
        (0, "location.latitude"),
        (0, "location.longitude"),
    ]
    assert _error(response) == (
        "Bad Request: 2 problem(s) in the batch, nothing was stored: event 0, field location.latitude: expected a"
        " JSON number (got '1'); event 0, field location.longitude: expected a JSON number (got '2')"
    )


@pytest.mark.parametrize("bad_index", [0, 5, 9])
def test_one_bad_event_among_good_ones_stores_nothing(server: Any, bad_index: int) -> None:
    _, token, key = _setup(server)
    batch = _recent(server, AUDIT, 10)
    batch[bad_index]["object_type"] = "spaceship"
    response = server.ingest(key, AUDIT, batch)
    details = _details(response)
    assert [(d["index"], d["field"]) for d in details] == [(bad_index, "object_type")]
    assert _served(server, token, AUDIT) == []
    for version in (1, 2):
        assert _served(server, token, AUDIT, version=version) == []
    # the same batch, fixed, is then stored whole (nothing was reserved by the failed attempt)
    batch[bad_index]["object_type"] = "user"
    assert _ok(server.ingest(key, AUDIT, batch)) == {"received": 10, "stored": 10, "duplicates": 0}
    assert _served(server, token, AUDIT) == batch


def test_a_bad_ndjson_event_reports_its_index(server: Any) -> None:
    _, _, key = _setup(server)
    lines = [orjson.dumps(e) for e in _recent(server, SIGNIN, 3)]
    lines[2] = orjson.dumps({**orjson.loads(lines[2]), "type": "bogus"})
    details = _details(server.ingest(key, SIGNIN, b"\n".join(lines)))
    assert [(d["index"], d["field"]) for d in details] == [(2, "type")]


# --- credentials --------------------------------------------------------------------------------


def test_a_missing_authorization_header_is_401(server: Any) -> None:
    response = server.http.post("/api/ingest/v2/signinattempts", content=orjson.dumps([signin(server.clock())]))
    assert response.status_code == 401
    assert "ingest key" in _error(response)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["", "Basic dXNlcjpwYXNz", "Bearer", "sgi_abc", "Token sgi_abc"])
def test_a_malformed_authorization_header_is_401(server: Any, header: str) -> None:
    body = orjson.dumps([signin(server.clock())])
    response = server.http.post("/api/ingest/v2/signinattempts", content=body, headers={"Authorization": header})
    assert response.status_code == 401
    _error(response)


def test_a_siem_token_cannot_ingest(server: Any) -> None:
    _, token, _ = _setup(server)
    response = server.ingest(token, SIGNIN, [signin(server.clock())])
    assert response.status_code == 401
    message = _error(response)
    assert "ingest key" in message and "SIEM token" in message
    assert _served(server, token, SIGNIN) == []


def test_an_unknown_ingest_key_is_401(server: Any) -> None:
    _, token, key = _setup(server)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = server.ingest(forged, SIGNIN, [signin(server.clock())])
    assert response.status_code == 401
    assert "not known" in _error(response)
    assert _served(server, token, SIGNIN) == []


def test_a_key_from_another_server_is_401(server: Any, make_server: Any) -> None:
    other = make_server()
    foreign = other.ingest_key(other.account())
    response = server.ingest(foreign, SIGNIN, [signin(server.clock())])
    assert response.status_code == 401


def test_a_revoked_ingest_key_is_401_on_the_next_request(server: Any) -> None:
    account, token, key = _setup(server)
    assert _ok(server.ingest(key, SIGNIN, [signin(server.clock())]))["stored"] == 1
    (record,) = server.store.list_ingest_keys(account.id)
    server.store.revoke_ingest_key(record.id, server.clock())
    response = server.ingest(key, SIGNIN, [signin(server.clock())])
    assert response.status_code == 401
    assert "revoked" in _error(response)
    assert len(_served(server, token, SIGNIN)) == 1


def test_a_key_without_the_feature_is_401_for_that_feature_only(server: Any) -> None:
    account = server.account()
    token = server.token(account)
    key = server.ingest_key(account, [ITEMS])
    assert _ok(server.ingest(key, ITEMS, [itemusage(server.clock())]))["stored"] == 1
    for feature in (SIGNIN, AUDIT):
        response = server.ingest(key, feature, [MAKERS[feature](server.clock())])
        assert response.status_code == 401
        assert feature.value in _error(response)
        assert _served(server, token, feature) == []


@pytest.mark.parametrize("version", [1, 2])
def test_an_ingest_key_cannot_read_the_events_api(server: Any, version: int) -> None:
    _, _, key = _setup(server)
    assert _ok(server.ingest(key, SIGNIN, [signin(server.clock())]))["stored"] == 1
    response = server.page(key, SIGNIN, {"start_time": EPOCH}, version=version)
    assert response.status_code == 401
    assert "items" not in response.json()
    _error(response)


def test_events_go_to_the_key_owners_account_only(server: Any) -> None:
    _, token_a, key_a = _setup(server)
    _, token_b, _ = _setup(server)
    events = _recent(server, SIGNIN, 2)
    assert _ok(server.ingest(key_a, SIGNIN, events))["stored"] == 2
    assert _served(server, token_a, SIGNIN) == events
    assert _served(server, token_b, SIGNIN) == []


# --- limits -------------------------------------------------------------------------------------


def _padded_batch(server: Any, size: int) -> bytes:
    """A valid NDJSON body of at least `size` bytes."""
    lines = []
    total = 0
    while total < size:
        line = orjson.dumps(signin(server.clock() - SECOND))
        lines.append(line)
        total += len(line) + 1
    return b"\n".join(lines)


def test_a_body_over_the_limit_is_413_by_content_length(make_server: Any) -> None:
    server = make_server(ingest_max_body_bytes=2048)
    _, token, key = _setup(server)
    body = _padded_batch(server, 2049)
    response = server.ingest(key, SIGNIN, body)
    assert response.status_code == 413
    assert "2048" in _error(response)
    assert _served(server, token, SIGNIN) == []


def test_a_body_at_the_limit_is_accepted(make_server: Any) -> None:
    server = make_server(ingest_max_body_bytes=4096)
    _, _, key = _setup(server)
    body = _padded_batch(server, 3000)
    body += b" " * (4096 - len(body))
    assert len(body) == 4096
    assert _ok(server.ingest(key, SIGNIN, body))["stored"] == body.count(b"\n") + 1


def test_a_chunked_body_over_the_limit_is_413(make_server: Any) -> None:
    server = make_server(ingest_max_body_bytes=2048)
    _, token, key = _setup(server)
    body = _padded_batch(server, 3000)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 500):
            yield body[i : i + 500]

    response = server.http.post("/api/ingest/v2/signinattempts", content=chunks(), headers=_auth(key))
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "2048" in _error(response)
    assert _served(server, token, SIGNIN) == []


def test_a_chunked_body_under_the_limit_is_accepted(make_server: Any) -> None:
    server = make_server(ingest_max_body_bytes=4096)
    _, token, key = _setup(server)
    events = _recent(server, ITEMS, 3)

    def chunks() -> Iterator[bytes]:
        for event in events:
            yield orjson.dumps(event) + b"\n"

    response = server.http.post("/api/ingest/v2/itemusages", content=chunks(), headers=_auth(key))
    assert _ok(response)["stored"] == 3
    assert _served(server, token, ITEMS) == events


def test_gzip_that_decompresses_past_the_limit_is_413(make_server: Any) -> None:
    server = make_server(ingest_max_body_bytes=4096, ingest_max_decoded_bytes=4096)
    _, token, key = _setup(server)
    line = orjson.dumps(signin(server.clock()))
    body = gzip.compress(b"\n".join([line] * (50_000 // len(line))))
    assert len(body) < 4096
    response = _post(server, key, SIGNIN, body, encoding="gzip")
    assert response.status_code == 413
    assert "decompressed" in _error(response)
    assert _served(server, token, SIGNIN) == []


def test_a_gzip_bomb_is_413_without_inflating_it(make_server: Any) -> None:
    server = make_server(ingest_max_body_bytes=64 * 1024)
    _, token, key = _setup(server)
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]", compresslevel=9)
    assert len(bomb) < 64 * 1024  # the compressed body itself is within the limit
    response = _post(server, key, SIGNIN, bomb, encoding="gzip")
    assert response.status_code == 413
    assert "decompressed" in _error(response)
    assert _served(server, token, SIGNIN) == []


def test_more_events_than_the_batch_limit_is_413_with_a_message(make_server: Any) -> None:
    server = make_server(ingest_max_batch=5)
    _, token, key = _setup(server)
    assert _ok(server.ingest(key, ITEMS, _recent(server, ITEMS, 5)))["stored"] == 5
    for body in (_recent(server, ITEMS, 6), b"\n".join(orjson.dumps(e) for e in _recent(server, ITEMS, 6))):
        response = server.ingest(key, ITEMS, body)
        assert response.status_code == 413
        message = _error(response)
        assert "6" in message and "5" in message and "split" in message
    assert len(_served(server, token, ITEMS)) == 5


def test_the_batch_limit_applies_to_a_page_objects_items(make_server: Any) -> None:
    server = make_server(ingest_max_batch=2)
    _, _, key = _setup(server)
    page = {"cursor": "x", "has_more": False, "items": _recent(server, AUDIT, 3)}
    assert server.ingest(key, AUDIT, page).status_code == 413


# --- paths and methods --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["signinattempt", "events", "SIGNINATTEMPTS", "auditevents.json"])
def test_an_unknown_feature_path_is_404_with_the_error_shape(server: Any, name: str) -> None:
    _, _, key = _setup(server)
    response = server.ingest(key, name, [signin(server.clock())])
    assert response.status_code == 404
    message = _error(response)
    assert "Not Found" in message
    assert all(f.value in message for f in ALL_FEATURES)


@pytest.mark.parametrize("path", ["/api/ingest/v1/signinattempts", "/api/ingest/v2", "/api/ingest/v2/a/b"])
def test_other_ingest_paths_are_404(server: Any, path: str) -> None:
    _, _, key = _setup(server)
    response = server.http.post(path, content=b"[]", headers=_auth(key))
    assert response.status_code == 404
    assert "Not Found" in _error(response)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_ingest_paths_are_post_only(server: Any, method: str, feature: Feature) -> None:
    _, _, key = _setup(server)
    response = server.http.request(method, f"/api/ingest/v2/{feature.value}", headers=_auth(key))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "POST" in _error(response)


def test_late_events_older_than_the_default_window_are_stored_and_readable(server: Any) -> None:
    _, token, key = _setup(server)
    old = signin(server.clock() - 5 * HOUR)
    assert _ok(server.ingest(key, SIGNIN, [old]))["stored"] == 1
    assert server.page(token, SIGNIN, {}).json()["items"] == []  # default window is the last hour
    assert _served(server, token, SIGNIN) == [old]
