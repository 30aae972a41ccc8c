"""Parquet archives carry typed columns of every field beside the stored bytes: a data person
reads `target_user.email` or `location.latitude` as typed values, replay stays byte-exact (fields
beyond the typed schema included), and a `log_index` column holds each event's leaf in the tamper-evident log."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.retention import parquet
from siemgate.retention.replay import plan_replay, replay
from siemgate.retention.survey import manifests

from .helpers import DAY, NOW, S, audit, open_services

DAY0 = NOW - 201 * DAY


def _signin(ts: int, n: int) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "session_uuid": new_id(),
        "timestamp": format_ns(ts),
        "category": "firewall_failed" if n % 2 else "success",
        "type": "continent_blocked" if n % 2 else "credentials_ok",
        "country": "CA",
        "details": {"value": "Europe"} if n % 2 else None,
        "target_user": {"uuid": new_id(), "name": f"User {n}", "email": f"user{n}@example.com"},
        "client": {"app_name": "1Password Browser Extension", "app_version": "20240", "ip_address": "192.0.2.7"},
        "location": {"country": "CA", "city": "Toronto", "latitude": 43.64 + n / 100, "longitude": -79.4},
    }


def _item(ts: int, n: int) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(ts),
        "action": "reveal",
        "used_version": n,
        "vault_uuid": new_id(),
        "item_uuid": new_id(),
        "user": {"uuid": new_id(), "name": "Ada", "email": "ada@example.com"},
    }


MAKERS = {Feature.SIGNINATTEMPTS: _signin, Feature.ITEMUSAGES: _item, Feature.AUDITEVENTS: audit}


def _column(table: pa.Table, path: str) -> list[Any]:
    """A column or a nested struct field (`target_user.email`) as Python values."""
    head, *rest = path.split(".")
    array = table.column(head).combine_chunks()
    for name in rest:
        array = array.field(name)
    return array.to_pylist()  # type: ignore[no-any-return]


def _get(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


CHECKED = {
    Feature.SIGNINATTEMPTS: [
        "category",
        "session_uuid",
        "details.value",
        "target_user.email",
        "client.ip_address",
        "location.city",
        "location.latitude",
        "location.region",
    ],
    Feature.ITEMUSAGES: ["action", "used_version", "vault_uuid", "user.email", "client.app_name"],
    Feature.AUDITEVENTS: ["action", "object_type", "actor_uuid", "object_uuid", "session.uuid", "session.ip"],
}


def test_parquet_archives_have_typed_columns_of_every_field_and_replay_stays_byte_exact(tmp_path: Path) -> None:
    services = open_services(tmp_path / "a", archive_format="parquet")
    account = services.store.create_account(new_id(), "Acme", NOW)
    written: dict[Feature, list[dict[str, Any]]] = {}
    for feature in ALL_FEATURES:
        written[feature] = [MAKERS[feature](DAY0 + i * 60 * S, i) for i in range(50)]
        services.writer.write(account.id, feature, written[feature])
    # A mirrored event: a field and an enum value newer than the spec, kept leniently.
    newer = {**_item(DAY0 + 3 * S, 1000), "action": "teleport", "future_field": {"nested": [1, 2]}}
    services.writer.write(account.id, Feature.ITEMUSAGES, [newer], strict=False)
    stored = {
        f: {uuid: body for batch in services.store.iter_events(account.id, f, 0, 2**62) for _, _, uuid, body in batch}
        for f in ALL_FEATURES
    }
    seqs = {
        f: {uuid: seq for batch in services.store.iter_events(account.id, f, 0, 2**62) for seq, _, uuid, _ in batch}
        for f in ALL_FEATURES
    }
    assert all(r.error is None for r in services.retention.apply(accounts=[account]))
    streams = {s.feature: s for s in manifests(services.settings.archive_path)}
    for feature in ALL_FEATURES:
        [entry] = streams[feature].files
        table = pq.read_table(streams[feature].folder / entry.path)
        assert table.schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
        assert table.schema.field("log_index").type == pa.int64()
        # each row carries its event's leaf in the stream's log: seq - 1
        indices = dict(zip(_column(table, "uuid"), _column(table, "log_index"), strict=True))
        assert indices == {uuid: seq - 1 for uuid, seq in seqs[feature].items()}
        events = [orjson.loads(e) for e in _column(table, "event")]
        assert [format_ns(t.value) for t in table.column("timestamp")] == [e["timestamp"] for e in events]
        for path in CHECKED[feature]:
            assert _column(table, path) == [_get(e, path) for e in events], path
        assert {u: e.encode() for u, e in zip(_column(table, "uuid"), _column(table, "event"), strict=True)} == {
            u: bytes(b) for u, b in stored[feature].items()
        }
    signins = pq.read_table(streams[Feature.SIGNINATTEMPTS].folder / streams[Feature.SIGNINATTEMPTS].files[0].path)
    assert signins.schema.field("location").type.field("latitude").type == pa.float64()
    audits = pq.read_table(streams[Feature.AUDITEVENTS].folder / streams[Feature.AUDITEVENTS].files[0].path)
    assert audits.schema.field("session").type.field("login_time").type == pa.timestamp("ns", tz="UTC")
    services.close()

    target = open_services(tmp_path / "b")
    try:
        late = target.store.create_account(account.uuid, "Acme", NOW)
        # a new store: its log holds none of the archived indices
        result = replay(target.writer, plan_replay(target.store, services.settings.archive_path), unchecked=True)
        assert result.stored == sum(len(v) for v in stored.values())
        again = {
            f: {u: bytes(b) for batch in target.store.iter_events(late.id, f, 0, 2**62) for _, _, u, b in batch}
            for f in ALL_FEATURES
        }
        assert again == {f: {u: bytes(b) for u, b in stored[f].items()} for f in ALL_FEATURES}  # byte for byte
        assert b'"future_field":{"nested":[1,2]}' in again[Feature.ITEMUSAGES][newer["uuid"]]
    finally:
        target.close()


def test_a_value_that_does_not_fit_its_column_is_null_there_and_kept_in_the_event() -> None:
    odd = {**_item(DAY0, 1), "used_version": "7", "user": "not an object", "location": {"latitude": True}}
    session = {"uuid": new_id(), "login_time": "2030-01-01T00:00:00.5Z", "ip": "192.0.2.1"}
    rows = [
        (parse_ns(odd["timestamp"]), odd["uuid"], orjson.dumps(odd)),
        (DAY0 + 1, new_id(), orjson.dumps({**audit(DAY0 + 1, 1), "session": session})),
    ]
    out = io.BytesIO()
    parquet.write(rows[:1], Feature.ITEMUSAGES, out)
    table = pq.read_table(io.BytesIO(out.getvalue()))
    assert _column(table, "used_version") == [None]
    assert _column(table, "user") == [None]
    assert _column(table, "location.latitude") == [None]
    assert _column(table, "event") == [orjson.dumps(odd).decode()]
    out = io.BytesIO()
    parquet.write(rows[1:], Feature.AUDITEVENTS, out)
    table = pq.read_table(io.BytesIO(out.getvalue()))
    [login] = _column(table, "session.login_time")
    assert format_ns(int(login.timestamp() * 1e9 // 1)).startswith("2030-01-01T00:00:00")


@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_every_field_of_the_shape_has_a_column(feature: Feature) -> None:
    from siemgate.model.flatten import COLUMNS

    columns = parquet.schema(feature)
    for dotted in COLUMNS[feature]:  # the CSV export's list of every v2 field
        head, *rest = dotted.split(".")
        kind = columns.field(head).type
        for name in rest:
            kind = kind.field(name).type
        assert kind is not None, dotted
