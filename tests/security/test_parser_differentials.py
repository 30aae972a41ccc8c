"""JSON that parsers read differently, and values readers would read differently, through real HTTP
on SQLite and PostgreSQL (docs/security.md, "Text and values").

The ingest API refuses an object with a key twice (parsers differ on which value they keep: the
stored event would mean something other than what another tool reads from the bytes sent), and
integers that Go, JavaScript or Elasticsearch readers would not read exactly. Hostile inputs that
are already refused or that every reader reads alike are kept here as tests too. The Events API
request keeps 1Password's (Go's) reading: the last of two values of a key wins.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from siemgate.alerts.model import RuleError, load_rule
from siemgate.alerts.service import parse_rules_text
from siemgate.alerts.service import test_rule as fire
from siemgate.config import load_settings
from siemgate.forward.formats.ecs import to_ecs
from siemgate.forward.formats.ocsf import to_ocsf
from siemgate.forward.records import make_record
from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from support.admin import Site, error_message, ok
from support.clocks import Clock
from support.events import SECOND, auditevent, itemusage, signin
from support.servers import LiveServer, start_server, stop_server
from support.stores import BOTH_BACKENDS, make_store

server_backend = BOTH_BACKENDS

SIGNIN = Feature.SIGNINATTEMPTS
EPOCH = "2020-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_backend: str) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("differentials")
    live, uv, thread = start_server(load_settings(data_dir=data_dir), make_store(server_backend, data_dir), Clock())
    yield live
    stop_server(live, uv, thread)


def _setup(server: LiveServer) -> tuple[str, str]:
    account = server.account()
    return server.token(account), server.ingest_key(account)


def _served(server: LiveServer, token: str, feature: Feature = SIGNIN) -> list[dict[str, Any]]:
    page = server.page(token, feature, {"start_time": EPOCH, "limit": 1000})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def _refused(server: LiveServer, key: str, body: bytes, feature: Feature = SIGNIN) -> dict[str, Any]:
    response = server.ingest(key, feature, body)
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["Error"]
    return error


def _text(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()


def _twice(event: dict[str, Any], path: str, first: Any) -> str:
    """`event` as JSON text with the key at dotted `path` written twice: `first`, then its value."""
    *parents, name = path.split(".")
    inner = event
    for parent in parents:
        inner = inner[parent]
    marker = "__twice__"
    inner[marker] = None
    text = _text(event)
    del inner[marker]
    return text.replace(f'"{marker}":null', f'"{name}":{orjson.dumps(first).decode()}', 1)


# --- a key twice in what producers send -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "first"),
    [
        ("category", "credentials_failed"),  # a failed sign-in the last value would call a success
        ("target_user.email", "mallory@example.com"),
        ("uuid", "AAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ("location.latitude", 0),
    ],
)
@pytest.mark.parametrize("form", ["array", "ndjson", "object", "page"])
def test_an_event_with_a_key_twice_is_refused_naming_event_and_field(
    server: LiveServer, path: str, first: Any, form: str
) -> None:
    token, key = _setup(server)
    now = server.clock()
    good = _text(signin(now - 2 * SECOND))
    twice = _twice(signin(now - SECOND), path, first)
    body = {
        "array": f"[{good},{twice}]",
        "ndjson": f"{good}\n\n{twice}\n",
        "object": twice,
        "page": f'{{"cursor":"c","has_more":false,"items":[{good},{twice}]}}',
    }[form]
    error = _refused(server, key, body.encode())
    index = 0 if form == "object" else 1
    name = path.rsplit(".", 1)[-1]
    assert error["Details"] == [
        {
            "index": index,
            "field": path,
            "message": f"the key {name!r} appears twice in one object: JSON parsers differ on which value they keep;"
            " send it once",
        }
    ]
    assert f"event {index}" in error["Message"] and f"field {path}" in error["Message"]
    assert _served(server, token) == []


@pytest.mark.parametrize("name", ["items", "cursor", "has_more"])
def test_a_page_with_an_envelope_key_twice_is_refused(server: LiveServer, name: str) -> None:
    token, key = _setup(server)
    now = server.clock()
    forged, real = _text(signin(now - 2 * SECOND)), _text(signin(now - SECOND))
    body = {
        "items": f'{{"items":[{forged}],"cursor":"b","has_more":false,"items":[{real}]}}',
        "cursor": f'{{"cursor":"a","cursor":"b","has_more":false,"items":[{real}]}}',
        "has_more": f'{{"cursor":"b","has_more":true,"has_more":false,"items":[{real}]}}',
    }[name]
    error = _refused(server, key, body.encode())
    assert error["Message"] == (
        f"Bad Request: the page has the key {name!r} twice: JSON parsers differ on which value they keep;"
        " send each key once"
    )
    assert _served(server, token) == []


def test_colons_in_text_and_escaped_are_not_taken_for_a_key_twice(server: LiveServer) -> None:
    """The fast test counts colons: timestamps, IPv6 addresses and `\\u003a` escapes hold some."""
    token, key = _setup(server)
    event = signin(server.clock() - SECOND, name="a:b::c")
    event["client"]["ip_address"] = "2001:db8::1"
    text = _text(event).replace("a:b::c", "a\\u003ab:\\u003Ac")
    response = server.ingest(key, SIGNIN, f"[{text}]".encode())
    assert response.status_code == 200, response.text
    [served] = _served(server, token)
    assert served["target_user"]["name"] == "a:b::c" and served["client"]["ip_address"] == "2001:db8::1"


# --- integers every reader reads exactly ---------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "field", "value"),
    [
        (Feature.AUDITEVENTS, "aux_id", 2**64 - 1),  # Go's int64 and Elasticsearch's long refuse it
        (Feature.AUDITEVENTS, "aux_id", 2**53 + 1),  # JavaScript (the console) reads 2**53
        (Feature.ITEMUSAGES, "used_version", -(2**53) - 1),
    ],
)
def test_an_integer_past_2_53_is_refused(server: LiveServer, feature: Feature, field: str, value: int) -> None:
    token, key = _setup(server)
    make = auditevent if feature is Feature.AUDITEVENTS else itemusage
    error = _refused(server, key, orjson.dumps([make(server.clock() - SECOND, **{field: value})]), feature)
    limit = 2**53 - 1
    assert error["Details"] == [
        {
            "index": 0,
            "field": field,
            "message": f"must be from -{limit} to {limit} (2**53-1, the integers every JSON reader reads exactly),"
            f" got {value}",
        }
    ]
    assert _served(server, token, feature) == []


def test_integers_up_to_2_53_are_served_exactly_in_v1_and_v2(server: LiveServer) -> None:
    token, key = _setup(server)
    now = server.clock()
    events = [auditevent(now - 2 * SECOND, aux_id=2**53 - 1), auditevent(now - SECOND, aux_id=-(2**53 - 1))]
    assert server.ingest(key, Feature.AUDITEVENTS, events).status_code == 200
    for version in (1, 2):
        page = server.page(token, Feature.AUDITEVENTS, {"start_time": EPOCH}, version=version)
        assert b'"aux_id":9007199254740991' in page.content and b'"aux_id":-9007199254740991' in page.content


# --- refused already, or read alike by every reader (kept as tests) ------------------------------


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("category", "\uff53\uff55\uff43\uff43\uff45\uff53\uff53", "unknown value"),  # fullwidth "success"
        ("category", "succe\u017fs", "unknown value"),  # long s, whose upper() is S
        ("category", "su\u0441cess", "unknown value"),  # Cyrillic es
        ("category", "Success", "unknown value"),  # case
        ("category", "success\u200b", "unknown value"),  # zero-width space
        ("type", "credentials_ok ", "unknown value"),
        ("country", 5, "valid string"),
        ("country", True, "valid string"),
        ("uuid", "\uff21" * 26, "is not an id"),  # fullwidth letters are not base32
        ("timestamp", "2016-12-31T23:59:60Z", "invalid time of day"),  # a leap second (Go refuses it too)
        ("timestamp", "0000-01-01T00:00:00Z", "outside the supported range"),
        ("timestamp", "9999-12-31T23:59:59Z", "outside the supported range"),
        ("timestamp", "10000-01-01T00:00:00Z", "is not an RFC 3339 timestamp"),
        ("timestamp", "2024-01-01T00:00:00+24:00", "invalid UTC offset"),
        ("timestamp", "2024-01-01T00:00:00." + "1" * 30 + "Z", "30 fractional digits"),
        ("timestamp", "\uff12" + "024-01-01T00:00:00Z", "is not an RFC 3339 timestamp"),  # fullwidth digit
    ],
)
def test_look_alikes_wrong_types_and_odd_timestamps_are_refused_naming_the_field(
    server: LiveServer, field: str, value: Any, says: str
) -> None:
    token, key = _setup(server)
    error = _refused(server, key, orjson.dumps([signin(server.clock() - SECOND, **{field: value})]))
    [detail] = error["Details"]
    assert detail["index"] == 0 and detail["field"] == field and says in detail["message"], detail
    assert _served(server, token) == []


@pytest.mark.parametrize(
    ("number", "says"),
    [("NaN", "expected a JSON value"), ("Infinity", "expected a JSON value"), ("1e400", "infinity")],
)
def test_numbers_json_has_not_are_refused(server: LiveServer, number: str, says: str) -> None:
    token, key = _setup(server)
    body = _text(signin(server.clock() - SECOND)).replace('"latitude":43.64', f'"latitude":{number}')
    assert says in _refused(server, key, f"[{body}]".encode())["Message"]
    assert _served(server, token) == []


def test_control_characters_are_served_escaped_as_sent(server: LiveServer) -> None:
    """Escaped control characters, U+2028 and a BOM inside a string are text: every reader of the
    served JSON reads the same characters (a raw control character is not JSON and is refused)."""
    token, key = _setup(server)
    name = "Ada\u0001\n\r\t\u2028\u202e\ufeff"
    assert server.ingest(key, SIGNIN, [signin(server.clock() - SECOND, name=name)]).status_code == 200
    [served] = _served(server, token)
    assert served["target_user"]["name"] == name
    raw = _text(signin(server.clock() - SECOND)).replace("Ada Lovelace", "Ada\tLovelace")
    assert "control character" in _refused(server, key, f"[{raw}]".encode())["Message"]


# --- alert rules and admin API bodies ------------------------------------------------------------

SIGMA_TWICE = """title: Failed sign-ins
logsource: {product: 1password, service: signinattempts}
detection:
  selection: {category: credentials_failed}
  selection: {category: success}
  condition: selection
level: high
"""


def _rule_ids(site: Site) -> set[str]:
    rules = ok(site.call(site.admin, "GET", site.path("/alert-rules"), params={"limit": "200"}))["items"]
    return {rule["id"] for rule in rules}


def test_rules_and_admin_bodies_with_a_key_twice_are_refused_and_nothing_is_saved(make_server: Any) -> None:
    site = Site(make_server(alerts_enabled=True))
    before = _rule_ids(site)
    rules = site.path("/alert-rules")
    headers = {**site.admin.headers, "Content-Type": "application/json"}
    rule = '{"id":"twice","name":"Twice","source":"signinattempts",%s}'
    for fields, key, where in [
        ('"match":{"category":"credentials_failed"},"match":{"category":"success"}', "match", "match"),
        ('"match":{"category":"credentials_failed","category":"success"}', "category", "match.category"),
    ]:
        message = error_message(site.http.post(rules, content=rule % fields, headers=headers), 400)
        assert message == (
            f"Bad Request: the key {key!r} appears twice in one object (at {where}): JSON parsers differ on which"
            " value they keep; send it once"
        )
    sigma = orjson.dumps({"sigma": SIGMA_TWICE})
    message = error_message(site.http.post(rules, content=sigma, headers=headers), 400)
    assert "found the key 'selection' twice" in message and "line 5" in message, message
    assert _rule_ids(site) == before
    # The same rule with each key once is saved: what was refused was the repeat.
    sigma = orjson.dumps({"sigma": SIGMA_TWICE.replace("  selection: {category: credentials_failed}\n", "")})
    assert site.http.post(rules, content=sigma, headers=headers).status_code == 201


def test_rule_yaml_with_a_key_twice_is_refused_and_merge_keys_still_work() -> None:
    twice = (
        "id: r\nname: R\nsource: signinattempts\nmatch: {category: credentials_failed}\nmatch: {category: success}\n"
    )
    with pytest.raises(RuleError, match=r"found the key 'match' twice[\s\S]*line 5"):
        parse_rules_text(twice)
    merged = (
        "id: r\nname: R\nsource: signinattempts\nmatch:\n  <<: {category: credentials_failed}\n  type: sso_failed\n"
    )
    [rule] = parse_rules_text(merged)
    assert rule.match == {"category": "credentials_failed", "type": "sso_failed"}
    overridden = merged.replace("type: sso_failed", "category: success")  # YAML: the mapping's own key wins
    assert parse_rules_text(overridden)[0].match == {"category": "success"}


@pytest.mark.parametrize(
    ("value", "reading"),
    [
        ("NO", "a boolean"),
        ("on", "a boolean"),
        ("Off", "a boolean"),
        ("0777", "the number 511"),
        ("1:30", "the number 90"),
    ],
)
def test_rule_yaml_scalars_yaml_versions_read_differently_must_be_quoted(value: str, reading: str) -> None:
    """`country: NO` was the boolean false to PyYAML (YAML 1.1), a rule that never matched Norway,
    and the text NO to YAML 1.2 parsers: such plain values are refused, asking for quotes."""
    rule = f"id: r\nname: R\nsource: signinattempts\nmatch: {{country: {value}}}\n"
    with pytest.raises(RuleError, match=f"the plain value '{value}' is read as {reading} by YAML 1.1 parsers"):
        parse_rules_text(rule)
    sigma = SIGMA_TWICE.replace("  selection: {category: credentials_failed}\n", "").replace(
        "category: success", f"country: {value}"
    )
    with pytest.raises(RuleError, match=f"quote it \\('{value}'\\)"):
        parse_rules_text(sigma)
    [quoted] = parse_rules_text(rule.replace(value, f"'{value}'"))
    assert quoted.match == {"country": value}
    [plain] = parse_rules_text(
        "id: r\nname: R\nsource: auditevents\nenabled: True\nmatch: {aux_id: [0, 12, -3, 0x1F]}\n"
    )
    assert plain.enabled is True and plain.match == {"aux_id": [0, 12, -3, 31]}


# --- Events API requests: read as 1Password's server (Go) reads them -----------------------------


def _page(server: LiveServer, token: str, raw: bytes, **headers: str) -> tuple[int, Any]:
    response = server.page(token, SIGNIN, raw=raw, headers=headers)
    return response.status_code, response.json()


def test_an_events_api_request_with_a_key_twice_is_read_with_the_last_value(server: LiveServer) -> None:
    """Unlike ingest: a request body is only read by the server it is sent to, and 1Password's
    server (Go's encoding/json) keeps the last value, so a client it serves is served here too."""
    token, key = _setup(server)
    now = server.clock()
    assert server.ingest(key, SIGNIN, [signin(now - i * SECOND) for i in range(5, 0, -1)]).status_code == 200
    _, first = _page(server, token, b'{"limit":2}')
    cursor = first["cursor"].encode()
    for raw, served in [
        (b'{"limit":1,"limit":3}', 3),
        (b'{"cursor":"not-a-cursor","cursor":"%s"}' % cursor, 2),  # the last: a real cursor
        (b'{"cursor":"%s","cursor":""}' % cursor, 5),  # the last: empty, so a reset
        (b'{"start_time":"%s","start_time":"2099-01-01T00:00:00Z"}' % EPOCH.encode(), 0),  # the last: 2099
        (b'{"start_time":"2099-01-01T00:00:00Z","start_time":"%s"}' % EPOCH.encode(), 5),
    ]:
        status, page = _page(server, token, raw)
        assert status == 200 and len(page["items"]) == served, (raw, page)


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b'[{"limit":1}]', 400, "must be a JSON object"),
        (b"5", 400, "must be a JSON object"),
        (b"true", 400, "must be a JSON object"),
        (b"null", 200, ""),  # as no body
        (b'{"limit":"10"}', 400, "whole number"),
        (b'{"limit":true}', 400, "whole number"),
        (b'{"limit":1.5}', 400, "whole number"),
        (b'{"limit":18446744073709551616}', 400, "from 1 to 1000"),
        (b'{"limit":10.0}', 200, ""),  # a whole number written as a float (JavaScript clients)
        (b'{"limit":NaN}', 400, "not valid JSON"),
        (b'{"cursor":5}', 400, "cursor must be the string"),
        (b'{"cursor":"a\\u0000"}', 400, "cursor is malformed"),
        (b'{"x":' * 5000 + b"1" + b"}" * 5000, 400, "depth limit"),
        # What Go's encoding/json (1Password's server) reads, replacing it with U+FFFD: a lone
        # surrogate escape or invalid UTF-8 is ignored in an unknown key, a 400 in a known one.
        (b'{"limit":1,"note":"\\ud800"}', 200, ""),
        (b'{"limit":1,"note":"caf\xe9"}', 200, ""),
        (b'{"cursor":"\\ud800"}', 400, "cursor is malformed"),
        (b'{"start_time":"2024\xff"}', 400, "start_time: "),
        (b'{"limit":NaN,"note":"\xe9"}', 400, "not valid JSON"),
    ],
)
def test_events_api_bodies_of_the_wrong_shape_are_refused_saying_what_to_send(
    server: LiveServer, raw: bytes, status: int, says: str
) -> None:
    token, _ = _setup(server)
    got, page = _page(server, token, raw)
    assert got == status, page
    assert status == 200 or says in page["Error"]["Message"], page


def test_a_cursor_of_valid_base64_with_hostile_contents_is_refused(server: LiveServer) -> None:
    """The cursor's MAC covers every byte: a cursor for another account, a seq moved back, or the
    limit raised, re-encoded as valid base64url of the right length, is a 400."""
    token, _ = _setup(server)
    _, first = _page(server, token, b'{"limit":1}')
    raw = bytearray(base64.urlsafe_b64decode(first["cursor"] + "=="))
    for offset in (2, 4, 11, 30):  # limit, seq, start, account
        forged = bytearray(raw)
        forged[offset] ^= 0x01
        cursor = base64.urlsafe_b64encode(bytes(forged)).rstrip(b"=")
        status, page = _page(server, token, b'{"cursor":"%s"}' % cursor)
        assert status == 400 and "altered" in page["Error"]["Message"], page


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded", "application/json"])
def test_an_events_api_body_is_json_whatever_its_content_type(server: LiveServer, content_type: str) -> None:
    token, _ = _setup(server)
    headers = {"Content-Type": content_type} if content_type else {}
    status, page = _page(server, token, b'{"limit":1}', **headers)
    assert status == 200 and page["items"] == [], page


def test_a_chunked_events_api_body_past_the_limit_is_413(server: LiveServer) -> None:
    token, _ = _setup(server)

    def chunks() -> Iterator[bytes]:
        yield b'{"limit":1,"x":"'
        for _ in range(100):
            yield b"a" * 1024
        yield b'"}'

    response = server.http.post(
        "/api/v2/signinattempts", content=chunks(), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 413 and "events_max_body_bytes" in response.text


# --- every reader of a stored event reads the same values -----------------------------------------


def test_every_reader_reads_the_values_sent(server: LiveServer) -> None:
    """Odd but valid values, sent with an offset timestamp: the v1 and v2 bytes (read by orjson and
    by the standard library), the ECS and OCSF documents the forwarder makes of them, and an alert
    rule on the name all read the same name, coordinates, integer and instant."""
    token, key = _setup(server)
    name = 'Ada\u2028\u202e\u0001"\\/ Lovelace'
    now = server.clock() // SECOND * SECOND - 10 * SECOND
    offset = format_ns(now + 3 * 3600 * SECOND)[:-1] + "+03:00"
    event = signin(now, name=name, timestamp=offset)
    event["location"] = {"country": "CA", "latitude": -0.0, "longitude": 9.5e-300}
    audit = auditevent(now, aux_id=2**53 - 1)
    assert server.ingest(key, SIGNIN, [event]).status_code == 200
    assert server.ingest(key, Feature.AUDITEVENTS, [audit]).status_code == 200
    for version in (1, 2):
        raw = server.page(token, SIGNIN, {"start_time": EPOCH}, version=version).content
        for served in (orjson.loads(raw)["items"][0], json.loads(raw)["items"][0]):
            assert served["target_user"]["name"] == name
            assert served["timestamp"] == format_ns(now)  # the same instant, in UTC
            assert (
                math.copysign(1, served["location"]["latitude"]) == -1 and served["location"]["longitude"] == 9.5e-300
            )
        raw = server.page(token, Feature.AUDITEVENTS, {"start_time": EPOCH}, version=version).content
        assert json.loads(raw)["items"][0]["aux_id"] == orjson.loads(raw)["items"][0]["aux_id"] == 2**53 - 1
    [served] = _served(server, token)
    ecs = to_ecs(make_record(SIGNIN, served, "s"))
    ocsf = to_ocsf(make_record(SIGNIN, served, "s"))
    assert ecs["user"]["full_name"] == ocsf["user"]["name"] == name
    assert ecs["@timestamp"] == format_ns(now) and ocsf["time"] == now // 1_000_000
    assert ecs["source"]["geo"]["location"] == {"lat": -0.0, "lon": 9.5e-300}
    rule = load_rule({"id": "odd-name", "name": "Odd", "source": "signinattempts", "match": {"target_user.name": name}})
    assert [firing.event["uuid"] for firing in fire(rule, [served])] == [served["uuid"]]
