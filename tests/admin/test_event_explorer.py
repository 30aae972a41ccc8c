"""The console's event explorer, exports and dashboard statistics (docs/console.md), through real
HTTP: facet filters, newest-first paging without gaps or repeats, time windows, counts checked
against counts done here over the ingested events, JSON Lines and CSV exports, who may see them,
and account isolation."""

from __future__ import annotations

import base64
import csv
import io
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from siemgate.alerts.fields import known_fields
from siemgate.model import flatten
from siemgate.model.facets import FACET_NAMES
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.store.base import Account
from support.admin import ADMIN, DAY, HOUR, MINUTE, SECOND, Person, Site, error_message, ok
from support.servers import bearer
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL

SIGNIN, ITEMS, AUDIT = Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS
BAD_CURSOR = "Bad Request: cursor is not a next_cursor from this API; start without one"

# Each facet read independently of model.facets, straight from the docs/console.md table.
SIGNIN_FACETS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "actor": lambda e: e.get("target_user", {}).get("email"),
    "kind": lambda e: e["category"],
    "detail": lambda e: e["type"],
    "country": lambda e: e.get("country") or e.get("location", {}).get("country"),
    "app": lambda e: e.get("client", {}).get("app_name"),
    "ip": lambda e: e.get("client", {}).get("ip_address"),
}
ALL_FACETS = {"actor": "", "kind": "", "detail": "", "country": "", "app": "", "ip": ""}


# events ---------------------------------------------------------------------------------------------
def signin(rng: random.Random, ts: int) -> dict[str, Any]:
    """A sign-in with facets drawn from small sets; some without client, country or location."""
    category, type_ = rng.choice([("success", "credentials_ok"), ("credentials_failed", "password_secret_bad")])
    event: dict[str, Any] = {
        "uuid": new_id(),
        "session_uuid": new_id(),
        "timestamp": format_ns(ts),
        "category": category,
        "type": type_,
        "details": None,
        "target_user": {"uuid": new_id(), "name": "Ada", "email": rng.choice(["ada@x.example", "bob@x.example"])},
        "account_uuid": new_id(),
    }
    if rng.random() < 0.8:
        event["client"] = {
            "app_name": rng.choice(["1Password for Mac", "1Password CLI"]),
            "ip_address": rng.choice(["192.0.2.1", "192.0.2.2", "198.51.100.7"]),
        }
    where = rng.random()
    if where < 0.4:
        event["country"] = rng.choice(["CA", "FR"])
    elif where < 0.7:
        event["location"] = {"country": rng.choice(["DE", "CA"]), "city": "Somewhere"}
    return event


def item_usage(ts: int, action: str = "reveal") -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(ts),
        "action": action,
        "vault_uuid": new_id(lower=True),
        "item_uuid": new_id(lower=True),
        "user": {"uuid": new_id(), "name": "Ada", "email": "ada@x.example"},
    }


def audit_event(ts: int, action: str = "suspend") -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(ts),
        "actor_uuid": new_id(),
        "action": action,
        "object_type": "user",
        "session": {"uuid": new_id(), "login_time": format_ns(ts - HOUR), "device_uuid": new_id(lower=True)},
    }


@dataclass
class Window:
    """Events ingested into an account for a window long before anything the site itself records."""

    site: Site
    account: Account
    feature: Feature
    start: int
    end: int
    events: list[dict[str, Any]]

    @property
    def params(self) -> dict[str, str]:
        return {"start": format_ns(self.start), "end": format_ns(self.end)}

    def url(self, tail: str = "") -> str:
        return self.site.path(f"/events/{self.feature.value}{tail}", self.account)

    def stats_url(self) -> str:
        return self.site.path(f"/stats/{self.feature.value}", self.account)

    def stored(self) -> list[bytes]:
        """The stored JSON of every event in the window, newest first (timestamp, then seq)."""
        store = self.site.services.store
        rows = store.read_events(self.account.id, self.feature, 0, self.start, self.end, 100_000)
        keyed = [(parse_ns(orjson.loads(body)["timestamp"]), seq, body) for seq, body, _ in rows]
        return [body for _, _, body in sorted(keyed, reverse=True)]


def ingest(site: Site, account: Account, feature: Feature, events: list[dict[str, Any]]) -> None:
    key = site.server.ingest_key(account)
    for i in range(0, len(events), 5000):
        response = site.server.ingest(key, feature, events[i : i + 5000])
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == len(events[i : i + 5000])


def signins(site: Site, account: Account | None = None, count: int = 60, seed: int = 1) -> Window:
    """`count` sign-ins over six hours three days ago, some sharing a timestamp (ties broken by seq)."""
    rng = random.Random(seed)
    start = (site.services.clock() - 3 * DAY) // HOUR * HOUR
    times = [start + rng.randrange(6 * 3600) * SECOND for _ in range(count - 6)]
    times += [start + HOUR] * 6  # one timestamp shared by several events
    events = [signin(rng, ts) for ts in times]
    acct = account or site.account
    ingest(site, acct, SIGNIN, events)
    return Window(site, acct, SIGNIN, start, start + 6 * HOUR, events)


def get(site: Site, who: Person, url: str, **params: str) -> Any:
    return ok(site.call(who, "GET", url, params=params))


def search_all(site: Site, who: Person, url: str, limit: int, **params: str) -> list[list[dict[str, Any]]]:
    """Every page of a search, following next_cursor."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        page = get(site, who, url, limit=str(limit), **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000, "next_cursor never ends"


def urlsafe(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def uuids(items: list[dict[str, Any]]) -> list[str]:
    return [i["uuid"] for i in items]


# the explorer ---------------------------------------------------------------------------------------
def test_each_filter_narrows_to_exactly_the_matching_events(site: Site) -> None:
    data = signins(site)
    everything = get(site, site.admin, data.url(), limit="200", **data.params)["items"]
    assert sorted(uuids(everything)) == sorted(uuids(data.events))
    for facet, read in SIGNIN_FACETS.items():
        values = Counter(read(e) for e in data.events)
        assert len(values) > 1, f"test data has one {facet} only"
        for value in values:
            if value is None:
                continue
            found = get(site, site.admin, data.url(), limit="200", **{**data.params, facet: value})["items"]
            expected = [e["uuid"] for e in data.events if read(e) == value]
            assert sorted(uuids(found)) == sorted(expected), (facet, value)
    both = {"kind": "success", "app": "1Password CLI"}
    found = get(site, site.owner, data.url(), limit="200", **data.params, **both)["items"]
    expected = [e["uuid"] for e in data.events if e["category"] == "success" and SIGNIN_FACETS["app"](e) == both["app"]]
    assert expected and sorted(uuids(found)) == sorted(expected)
    assert get(site, site.owner, data.url(), **data.params, actor="nobody@x.example")["items"] == []
    empty_filters = get(site, site.owner, data.url(), limit="200", **data.params, **ALL_FACETS)["items"]
    assert len(empty_filters) == len(data.events)  # an empty value is no filter


def test_filters_on_item_usages_and_audit_events(site: Site) -> None:
    start = (site.services.clock() - 2 * DAY) // HOUR * HOUR
    ingest(site, site.account, ITEMS, [item_usage(start + i * SECOND, ["reveal", "fill"][i % 2]) for i in range(10)])
    ingest(
        site,
        site.account,
        AUDIT,
        [audit_event(start + i * SECOND, "join" if i % 3 == 0 else "suspend") for i in range(9)],
    )
    window = {"start": format_ns(start), "end": format_ns(start + HOUR)}
    fills = get(site, site.owner, site.path("/events/itemusages"), kind="fill", **window)["items"]
    assert len(fills) == 5 and {e["action"] for e in fills} == {"fill"}
    joins = get(site, site.owner, site.path("/events/auditevents"), kind="join", detail="user", **window)["items"]
    assert len(joins) == 3 and {e["action"] for e in joins} == {"join"}


def test_pages_are_newest_first_without_gaps_or_repeats(site: Site) -> None:
    data = signins(site, count=60)
    stored = data.stored()
    pages = search_all(site, site.admin, data.url(), 6, **data.params)
    assert [len(p) for p in pages] == [6] * 10  # the last full page says there is no more
    items = [item for page in pages for item in page]
    assert [orjson.dumps(i) for i in items] == stored  # newest first, every event once, as stored
    assert len(search_all(site, site.admin, data.url(), 7, **data.params)) == 9
    first = get(site, site.admin, data.url(), **data.params)
    assert len(first["items"]) == 50 and first["next_cursor"]


def test_a_cursor_not_from_the_explorer_is_refused(site: Site) -> None:
    data = signins(site, count=20)
    cursor = get(site, site.owner, data.url(), limit="5", **data.params)["next_cursor"]
    people_cursor = get(site, site.owner, site.path("/members"), limit="1")["next_cursor"]
    made = [b"events1:abc", b"events1:1", b"events1:1:2:3", b"events1:-1:2", b"events1:%d:1" % 2**63, b"events1:\xb2:1"]
    forged = ["garbage!", cursor[:-3], cursor + "A", people_cursor, *map(urlsafe, made)]
    for bad in forged:
        response = site.call(site.owner, "GET", data.url(), params={**data.params, "cursor": bad})
        assert error_message(response, 400) == BAD_CURSOR, bad
    assert ok(site.call(site.owner, "GET", data.url(), params={**data.params, "cursor": cursor}))["items"]


# who may see events -------------------------------------------------------------------------------
ENDPOINTS = ["/events/signinattempts", "/events/signinattempts/export", "/stats/signinattempts"]


@pytest.mark.parametrize("tail", ENDPOINTS)
def test_owners_and_administrators_only(site: Site, tail: str) -> None:
    url = site.path(tail)
    for who in (site.owner, site.admin):
        assert site.call(who, "GET", url).status_code == 200
    message = error_message(site.call(site.member, "GET", url), 403)
    assert message.startswith("Forbidden: only an owner or administrator can see the account's events")
    assert "you are a member of" in message
    assert error_message(site.call(site.outsider, "GET", url), 404).startswith("Not Found: no account")
    assert error_message(site.call(None, "GET", url), 401).startswith("Unauthorized")
    siem = site.http.get(url, headers=bearer(site.reader()))
    assert "SIEM tokens can only read events" in error_message(siem, 401)


@pytest.mark.parametrize("tail", ["/events/{}", "/events/{}/export", "/stats/{}"])
def test_an_unknown_feature_is_404(site: Site, tail: str) -> None:
    message = error_message(site.call(site.owner, "GET", site.path(tail.format("signins"))), 404)
    assert message == "Not Found: unknown feature 'signins'; use one of signinattempts, itemusages, auditevents"


def test_another_accounts_events_never_appear(site: Site) -> None:
    mine = signins(site, count=30, seed=2)
    theirs = signins(site, site.other, count=40, seed=2)  # same window, same facet values
    assert {e["uuid"] for e in mine.events}.isdisjoint(e["uuid"] for e in theirs.events)
    found = [i for page in search_all(site, site.owner, mine.url(), 200, **mine.params) for i in page]
    assert sorted(uuids(found)) == sorted(uuids(mine.events))
    found = get(site, site.owner, mine.url(), limit="200", **mine.params, actor="ada@x.example")["items"]
    assert set(uuids(found)) <= set(uuids(mine.events))
    stats = get(site, site.owner, mine.stats_url(), **mine.params)
    assert stats["total"] == 30
    exported = site.call(site.owner, "GET", mine.url("/export"), params=mine.params).content.splitlines()
    assert sorted(orjson.loads(line)["uuid"] for line in exported) == sorted(uuids(mine.events))
    outsider_sees = get(site, site.outsider, theirs.url(), limit="200", **theirs.params)["items"]
    assert sorted(uuids(outsider_sees)) == sorted(uuids(theirs.events))


# time windows ---------------------------------------------------------------------------------------
def test_the_window_defaults_to_the_last_24_hours(site: Site) -> None:
    now = site.services.clock()
    events = [signin(random.Random(3), ts) for ts in (now - HOUR, now - 23 * HOUR, now - 25 * HOUR)]
    ingest(site, site.account, SIGNIN, events)
    found = get(site, site.owner, site.path("/events/signinattempts"))["items"]
    assert uuids(found) == [events[0]["uuid"], events[1]["uuid"]]
    stats = get(site, site.owner, site.path("/stats/signinattempts"))
    end = parse_ns(stats["end"])
    assert now <= end <= site.services.clock() and parse_ns(stats["start"]) == end - DAY
    assert stats["total"] == 2
    # only end given: the 24 hours before it
    older = get(site, site.owner, site.path("/events/signinattempts"), end=format_ns(now - 2 * HOUR))["items"]
    assert uuids(older) == [events[1]["uuid"], events[2]["uuid"]]
    # only start given: up to now; any RFC 3339 form
    since = format_ns(now - 26 * HOUR).replace("Z", "+00:00").replace("T", " ")
    assert len(get(site, site.owner, site.path("/events/signinattempts"), start=since)["items"]) == 3


@pytest.mark.parametrize("tail", ENDPOINTS)
def test_bad_windows_are_400(site: Site, tail: str) -> None:
    url = site.path(tail)
    later, earlier = "2024-01-02T00:00:00Z", "2024-01-01T00:00:00+01:00"
    response = site.call(site.owner, "GET", url, params={"start": later, "end": earlier})
    assert error_message(response, 400) == "Bad Request: start must be before end"
    for name in ("start", "end"):
        message = error_message(site.call(site.owner, "GET", url, params={name: "yesterday"}), 400)
        assert message.startswith(f"Bad Request: {name}: 'yesterday' is not an RFC 3339 timestamp")
        assert "2024-01-31T09:30:00Z" in message


# dashboards -----------------------------------------------------------------------------------------
def stats(data: Window, **params: str) -> dict[str, Any]:
    result: dict[str, Any] = get(data.site, data.site.admin, data.stats_url(), **data.params, **params)
    return result


def counted(rows: list[dict[str, Any]], *keys: str) -> Counter[tuple[Any, ...]]:
    return Counter({tuple(r[k] for k in keys): r["count"] for r in rows})


def test_counts_match_counts_of_the_ingested_events(site: Site) -> None:
    data = signins(site, count=80, seed=4)
    read = SIGNIN_FACETS
    whole = stats(data)
    assert whole["rows"] == [{"count": 80}] and whole["total"] == 80 and whole["group_by"] == []
    assert whole["interval_seconds"] is None and whole["feature"] == "signinattempts"
    assert (whole["start"], whole["end"]) == (format_ns(data.start), format_ns(data.end))
    for facet in FACET_NAMES:
        result = stats(data, group_by=facet)
        assert result["group_by"] == [facet]
        assert all(set(r) == {facet, "count"} for r in result["rows"])
        assert counted(result["rows"], facet) == Counter((read[facet](e),) for e in data.events), facet
        counts = [r["count"] for r in result["rows"]]
        assert counts == sorted(counts, reverse=True)  # most first
    pair = stats(data, group_by="country, app")
    expected = Counter((read["country"](e), read["app"](e)) for e in data.events)
    assert None in {k[1] for k in expected}  # events without a client: app is null, not missing
    assert counted(pair["rows"], "country", "app") == expected and pair["total"] == 80
    failed = stats(data, group_by="actor", kind="credentials_failed")
    fails = [e for e in data.events if e["category"] == "credentials_failed"]
    assert counted(failed["rows"], "actor") == Counter((read["actor"](e),) for e in fails)
    assert failed["total"] == len(fails) < 80
    top = stats(data, group_by="kind,ip", limit="2")
    assert len(top["rows"]) == 2 and top["total"] == 80


def test_counts_by_time_bucket(site: Site) -> None:
    data = signins(site, count=70, seed=5)
    boundary = data.start + 2 * HOUR  # one event exactly on a bucket's start, one a nanosecond before
    edge = [signin(random.Random(6), boundary), signin(random.Random(7), boundary - 1)]
    ingest(site, site.account, SIGNIN, edge)
    events = data.events + edge
    result = stats(data, interval="hour", group_by="kind")
    assert result["interval_seconds"] == 3600
    buckets = [parse_ns(r["bucket"]) for r in result["rows"]]
    assert buckets == sorted(buckets)  # time order
    expected = Counter((format_ns(parse_ns(e["timestamp"]) // HOUR * HOUR), e["category"]) for e in events)
    assert counted(result["rows"], "bucket", "kind") == expected
    plain = stats(data, interval="15m")
    assert counted(plain["rows"], "bucket") == Counter(
        (format_ns(parse_ns(e["timestamp"]) // (15 * MINUTE) * (15 * MINUTE)),) for e in events
    )
    assert {"bucket", "count"} == {k for r in plain["rows"] for k in r}
    by_minute = {r["bucket"]: r["count"] for r in stats(data, interval="minute", limit="5000")["rows"]}
    assert by_minute[format_ns(boundary)] == sum(
        1 for e in events if parse_ns(e["timestamp"]) // MINUTE * MINUTE == boundary
    )
    assert by_minute[format_ns(boundary - MINUTE)] >= 1  # the nanosecond before is the bucket before


@pytest.mark.parametrize(
    ("span", "offset", "seconds"),
    [
        (HOUR, 0, 60),
        (2 * HOUR, 0, 300),  # 121 minute buckets when the window starts on a minute
        (2 * HOUR - MINUTE, 0, 60),
        (DAY, 0, 900),
        (10 * DAY, 0, 21600),
        (60 * DAY, 0, 86400),
        (400 * DAY, 0, 86400),  # more than 120 days: days anyway
        (30 * HOUR, 30 * MINUTE, 3600),  # 121 quarter hours, 31 hours
    ],
)
def test_auto_interval_picks_the_smallest_width_with_at_most_120_buckets(
    site: Site, span: int, offset: int, seconds: int
) -> None:
    start = 1_700_000_000 * SECOND // DAY * DAY + offset
    params = {"start": format_ns(start), "end": format_ns(start + span), "interval": "auto"}
    assert get(site, site.owner, site.path("/stats/auditevents"), **params)["interval_seconds"] == seconds


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"group_by": "actor,nope"}, "Bad Request: group_by: unknown facet 'nope'; facets are actor, kind, detail"),
        ({"group_by": "actor,kind,ip"}, "Bad Request: group_by takes at most 2 different facets"),
        ({"group_by": "kind,kind"}, "Bad Request: group_by takes at most 2 different facets"),
        ({"interval": "week"}, "Bad Request: query.interval: Input should be 'none', 'auto', 'minute'"),
        ({"limit": "5001"}, "Bad Request: query.limit"),
    ],
)
def test_bad_stats_parameters_are_400(site: Site, params: dict[str, str], says: str) -> None:
    assert error_message(site.call(site.owner, "GET", site.path("/stats/itemusages"), params=params), 400).startswith(
        says
    )


# exports --------------------------------------------------------------------------------------------
def test_jsonl_export_returns_every_stored_event_byte_for_byte(site: Site) -> None:
    start = (site.services.clock() - 4 * DAY) // DAY * DAY
    events = [item_usage(start + (i // 3) * SECOND, ["reveal", "fill"][i % 2]) for i in range(2500)]
    ingest(site, site.account, ITEMS, events)  # more than two export pages, with ties on timestamp
    data = Window(site, site.account, ITEMS, start, start + HOUR, events)
    response = site.call(site.owner, "GET", data.url("/export"), params=data.params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    stamp = format_ns(start)[:10].replace("-", "")
    name = f"siemgate-itemusages-{stamp}T000000Z-{stamp}T010000Z.jsonl"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    stored = data.stored()
    assert len(stored) == 2500
    assert response.content == b"".join(body + b"\n" for body in stored)
    filtered = site.call(
        site.owner, "GET", data.url("/export"), params={**data.params, "kind": "fill", "format": "jsonl"}
    )
    assert filtered.content.splitlines() == [b for b in stored if orjson.loads(b)["action"] == "fill"]


def test_csv_export_has_a_column_per_field_and_escapes_formulas(site: Site) -> None:
    ts = (site.services.clock() - 5 * DAY) // HOUR * HOUR
    full = signin(random.Random(8), ts)
    full.update(
        country="CA",
        details={"value": "@SUM(A1:A9)"},
        target_user={
            "uuid": new_id(),
            "name": '=HYPERLINK("http://evil.example")',
            "email": "+1@x.example",
            "user_type": "user",
        },
        client={"app_name": "-cmd|' /C calc'!A0", "app_version": "8", "ip_address": "\t192.0.2.1"},
        location={"country": "CA", "city": "Toronto", "latitude": 43.64, "longitude": -79.433},
    )
    bare = {"uuid": new_id(), "timestamp": format_ns(ts - SECOND), "category": "success", "type": "mfa_ok"}
    ingest(site, site.account, SIGNIN, [full, bare])
    data = Window(site, site.account, SIGNIN, ts - HOUR, ts + HOUR, [full, bare])
    response = site.call(site.owner, "GET", data.url("/export"), params={**data.params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:7] == ["uuid", "session_uuid", "timestamp", "category", "type", "country", "details.value"]
    assert rows[0] == list(flatten.COLUMNS[SIGNIN]) and len(rows) == 3
    first, second = (dict(zip(rows[0], r, strict=True)) for r in rows[1:])
    assert first["uuid"] == full["uuid"] and second["uuid"] == bare["uuid"]  # newest first
    assert first["target_user.name"] == '\'=HYPERLINK("http://evil.example")'
    assert first["target_user.email"] == "'+1@x.example"
    assert first["client.app_name"] == "'-cmd|' /C calc'!A0"
    assert first["client.ip_address"] == "'\t192.0.2.1"
    assert first["details.value"] == "'@SUM(A1:A9)"
    assert (first["location.latitude"], first["location.longitude"]) == ("43.64", "-79.433")  # numbers stay numbers
    assert (first["target_user.user_type"], first["location.city"], first["client.app_version"]) == (
        "user",
        "Toronto",
        "8",
    )
    assert first["timestamp"] == full["timestamp"] and first["category"] == full["category"]
    assert set(second.values()) - {""} == {bare["uuid"], bare["timestamp"], "success", "mfa_ok"}
    nothing = site.call(
        site.owner, "GET", data.url("/export"), params={**data.params, "format": "csv", "ip": "0.0.0.0"}
    )
    assert list(csv.reader(io.StringIO(nothing.text))) == [list(flatten.COLUMNS[SIGNIN])]


def test_an_unknown_export_format_is_400(site: Site) -> None:
    response = site.call(site.owner, "GET", site.path("/events/auditevents/export"), params={"format": "xlsx"})
    assert error_message(response, 400) == "Bad Request: query.format: Input should be 'jsonl' or 'csv'"


@pytest.mark.parametrize("feature", ALL_FEATURES, ids=str)
def test_csv_columns_are_every_field_of_the_v2_shape(feature: Feature) -> None:
    columns = flatten.COLUMNS[feature]
    fields = known_fields(feature.value)
    leaves = {f for f in fields if not any(g.startswith(f + ".") for g in fields)}
    assert len(columns) == len(set(columns)) and set(columns) == leaves


def test_the_openapi_document_describes_the_endpoints(site: Site) -> None:
    doc = ok(site.http.get("/openapi.json"))
    paths = {
        f"{ADMIN}/accounts/{{account}}/events/{{feature}}": {"limit", "cursor"},
        f"{ADMIN}/accounts/{{account}}/events/{{feature}}/export": {"format"},
        f"{ADMIN}/accounts/{{account}}/stats/{{feature}}": {"group_by", "interval", "limit"},
    }
    for path, own in paths.items():
        operation = doc["paths"][path]["get"]
        assert operation["summary"]
        query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        assert set(query) == {"start", "end", "match", *FACET_NAMES, *own}
        assert all(p.get("description") for p in query.values()), path
        assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
    export = doc["paths"][f"{ADMIN}/accounts/{{account}}/events/{{feature}}/export"]["get"]["responses"]["200"]
    assert set(export["content"]) == {"application/x-ndjson", "text/csv"}
