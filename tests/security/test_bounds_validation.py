"""One validation for times and coordinates on every path: what no event can hold (a latitude of
999, a longitude past 180, 1e308, a time after 2262) is a 400 at ingest, through the mirror sink's
lenient writer and in the Events API alike; a reset's start before the retention window, even
before 1970, is moved to the window's start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from siemgate.errors import InvalidEventBatch
from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns

from .bounds_support import ADMIN, SECOND, admin, failed_signin, live_server

SIGNIN = Feature.SIGNINATTEMPTS
DAY = 86400 * SECOND
IMPOSSIBLE = [
    ("latitude", 999),
    ("latitude", -90.000001),
    ("latitude", 1e308),
    ("longitude", 180.5),
    ("longitude", -1e308),
]


@pytest.mark.parametrize(("field", "value"), IMPOSSIBLE)
def test_impossible_coordinates_are_a_400_at_ingest_and_refused_for_mirrors(
    tmp_path: Path, field: str, value: float
) -> None:
    with live_server(tmp_path) as server:
        account = server.account()
        key, token = server.ingest_key(account), server.token(account)
        event = failed_signin(server.clock())
        event["location"][field] = value
        response = server.ingest(key, SIGNIN, [failed_signin(server.clock()), event])
        assert response.status_code == 400, response.text
        details = response.json()["Error"]["Details"]
        assert details[0]["index"] == 1 and details[0]["field"] == f"location.{field}", details
        bound = 90 if field == "latitude" else 180
        assert f"from {-bound} to {bound} degrees" in details[0]["message"]
        with pytest.raises(InvalidEventBatch):
            server.services.writer.write(account.id, SIGNIN, [event], strict=False)
        assert server.page(token, SIGNIN, {"start_time": "2020-01-01T00:00:00Z"}).json()["items"] == []


def test_coordinates_at_their_bounds_are_accepted(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        key = server.ingest_key(server.account())
        events = []
        for latitude, longitude in ((90, 180), (-90, -180), (0, 0.0), (-89.999999, 179.999999)):
            event = failed_signin(server.clock())
            event["location"].update(latitude=latitude, longitude=longitude)
            events.append(event)
        response = server.ingest(key, SIGNIN, events)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_time": "9999-01-01T00:00:00Z"}, "start_time"),
        ({"start_time": "2262-04-12T00:00:00Z"}, "start_time"),
        ({"end_time": "9999-12-31T23:59:59Z"}, "end_time"),
        ({"start_time": "2024-01-01T00:00:00Z", "end_time": "9999-12-31T23:59:59Z"}, "end_time"),
        ({"end_time": "1969-12-31T23:59:59Z"}, "end_time"),
        ({"start_time": "2024-01-01T00:00:00+99:00"}, "start_time"),
    ],
)
def test_a_reset_no_event_can_match_is_a_400(tmp_path: Path, body: dict[str, Any], field: str) -> None:
    with live_server(tmp_path) as server:
        token = server.token(server.account())
        response = server.page(token, SIGNIN, body)
        assert response.status_code == 400, response.text
        message = response.json()["Error"]["Message"]
        assert message.startswith(f"Bad Request: {field}:"), message


def test_the_explorer_refuses_the_same_times(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        owner = admin(server)
        url = f"{ADMIN}/accounts/{owner.account.uuid}/events/signinattempts"
        for params in ({"start": "9999-01-01T00:00:00Z"}, {"end": "1969-12-31T23:59:59Z"}):
            response = server.http.get(url, params=params, headers=owner.headers)
            assert response.status_code == 400, response.text


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00Z", "1969-07-20T20:17:40Z", "2020-01-01T00:00:00Z"])
def test_a_start_before_the_retention_window_is_clamped(tmp_path: Path, start: str) -> None:
    with live_server(tmp_path, retention_days=10) as server:
        account = server.account()
        key, token = server.ingest_key(account), server.token(account)
        now = server.clock()
        old, recent = failed_signin(now - 11 * DAY), failed_signin(now - 9 * DAY)
        assert server.ingest(key, SIGNIN, [recent]).status_code == 200
        # the ingest API refuses an event before retention (docs/events.md, "Event times"); a mirror keeps it
        assert server.services.writer.write(account.id, SIGNIN, [old], strict=False).stored == 1
        response = server.page(token, SIGNIN, {"start_time": start, "end_time": format_ns(now)})
        assert response.status_code == 200, response.text
        assert [e["uuid"] for e in response.json()["items"]] == [recent["uuid"]]
