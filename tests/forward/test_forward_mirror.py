"""The siemgate sink: mirror an Events API into a local store, kept as received and served again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siemgate.composition.stores import open_store
from siemgate.forward.records import make_record
from siemgate.forward.sinks.base import Item, SinkContext
from siemgate.forward.sinks.mirror import MirrorConfig
from siemgate.model.features import ALL_FEATURES, Feature

from .forward_support import config, fill, run_once


def test_mirror_keeps_events_as_received_and_serves_them_again(source: Any, make_server: Any, tmp_path: Path) -> None:
    signins = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 150)
    mirror = make_server()
    local = mirror.account("Mirror")
    sink = {"type": "siemgate", "account": local.uuid, "data_dir": str(mirror.services.settings.data_dir)}
    cfg = config(tmp_path / "state", source.url, {"mirror": sink}, features=["signinattempts"])
    assert run_once(cfg, open_store=open_store).code == 0
    assert run_once(cfg, open_store=open_store).code == 0  # nothing new: no copies

    token = mirror.token(local, ALL_FEATURES)
    upstream = source.live.page(
        source.token, Feature.SIGNINATTEMPTS, {"limit": 1000, "start_time": "2020-01-01T00:00:00Z"}
    )
    served = mirror.page(token, Feature.SIGNINATTEMPTS, {"limit": 1000, "start_time": "2020-01-01T00:00:00Z"})
    assert [e["uuid"] for e in served.json()["items"]] == signins
    assert served.json()["items"] == upstream.json()["items"]  # byte-for-byte the same events


def test_mirror_is_lenient_with_fields_newer_than_siemgate(make_server: Any) -> None:
    mirror = make_server()
    local = mirror.account("Mirror")
    sink = MirrorConfig(type="siemgate", account=local.name, data_dir=mirror.services.settings.data_dir).build(
        "m", SinkContext("src", open_store)
    )
    event = {
        "uuid": "FUTUREEVENTUUIDFUTUREEVENT",
        "timestamp": "2026-11-01T10:00:00.123Z",
        "action": "brand-new-action",
        "object_type": "brand-new-object",
        "future_field": {"nested": [1, 2]},
    }
    try:
        sink.send([Item(0, make_record(Feature.AUDITEVENTS, event, "src"), b"")])
        sink.send([Item(0, make_record(Feature.AUDITEVENTS, event, "src"), b"")])  # a replay is a duplicate
    finally:
        sink.close()
    token = mirror.token(local, ALL_FEATURES)
    items = mirror.page(token, Feature.AUDITEVENTS, {"start_time": "2026-11-01T00:00:00Z"}).json()["items"]
    mine = [i for i in items if i["uuid"] == event["uuid"]]
    assert mine == [event]
