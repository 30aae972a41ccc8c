"""Paging through an account's fired alerts and their deliveries in the admin API (what the
console's Alerts page and scripts read): every one is reached, once, in order, however many there
are, and a page costs one page of rows, not the account's whole history."""

from __future__ import annotations

from typing import Any

import orjson

from siemgate.api.admin.deps import encode_cursor
from siemgate.model.ids import new_id
from siemgate.store.base import AlertCommit, AlertRecord, DeliveryRecord
from support.admin import Site, error_message, ok
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # the keyset is SQL: run on SQLite and PostgreSQL

MANY = 10_050  # past the 10,000 the list used to read whole and page in memory
SAME_TIME = 300  # alerts sharing one detection time: the page boundary falls inside them
S = 1_000_000_000


def _store_alerts(site: Site, count: int) -> tuple[list[str], list[str]]:
    """`count` alerts with one delivery each, stored directly (firing that many takes minutes);
    their ids and their deliveries' ids, newest first (ties by id) as the API lists them."""
    start = site.services.clock() - count * S
    rule = {"id": "bulk", "name": "Bulk", "severity": "low", "kind": "match", "description": "", "version": 0}
    payload = orjson.dumps({"rule": rule, "events": [], "count": 1}).decode()
    action = orjson.dumps({"type": "event"}).decode()
    alerts, deliveries = [], []
    for i in range(count):
        at = start + (i if i >= SAME_TIME else 0) * S
        alert = AlertRecord(new_id(), site.account.id, "bulk", at, at, "low", "auditevents", "", f"#{i}", payload)
        alerts.append(alert)
        deliveries.append(
            DeliveryRecord(new_id(), alert.id, site.account.id, "bulk", action, "event", "failed", 8, None, "x", at)
        )
    commit = AlertCommit(site.account.id, None, None, 0, alerts=alerts, deliveries=deliveries)
    site.services.store.commit_alert_evaluation(commit)
    alert_order = sorted(alerts, key=lambda a: (a.fired_at, a.id), reverse=True)
    delivery_order = sorted(deliveries, key=lambda d: (d.created_at, d.id), reverse=True)
    return [a.id for a in alert_order], [d.id for d in delivery_order]


def _every_page(site: Site, tail: str) -> tuple[list[str], int]:
    """The ids of every item of a list, following next_cursor, and the number of pages."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = ok(site.call(site.member, "GET", site.path(tail), params=params))
        ids += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            return ids, pages


def test_every_alert_and_delivery_is_reached_once_in_order(make_server: Any) -> None:
    site = Site(make_server())
    alert_ids, delivery_ids = _store_alerts(site, MANY)
    listed, pages = _every_page(site, "/alerts")
    assert len(listed) == MANY and pages == -(-MANY // 200)
    assert listed == alert_ids  # newest first, ties by id, none skipped or repeated
    listed, _ = _every_page(site, "/alert-deliveries")
    assert listed == delivery_ids
    for tail in ("/alerts", "/alert-deliveries"):
        # not base64; another list's cursor ("page1:x"); no time ("alerts1:x"); a time past 64 bits,
        # which PostgreSQL would refuse with an error (encoded with the deliveries' prefix too)
        huge = [encode_cursor(f"{10**20}|x", prefix) for prefix in (b"alerts1:", b"deliveries1:")]
        for bad in ("nonsense", "cGFnZTE6eA", "YWxlcnRzMTp4", *huge):
            message = error_message(site.call(site.member, "GET", site.path(tail), params={"cursor": bad}), 400)
            assert "cursor" in message
