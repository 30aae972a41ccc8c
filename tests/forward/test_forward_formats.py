"""ECS and OCSF documents: Elastic's field placement, and OCSF 1.7.0 validated with pydantic-ocsf."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from siemgate.forward.formats.ecs import to_ecs
from siemgate.forward.formats.ocsf import check, to_ocsf, validated
from siemgate.forward.records import make_record
from siemgate.model.enums import AUDIT_ACTIONS, AUDIT_OBJECT_TYPES, ITEM_USAGE_ACTIONS, SIGNIN_CATEGORIES
from siemgate.model.features import Feature
from support.events import auditevent, itemusage, signin

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
NOW = time.time_ns()


def golden() -> list[tuple[Feature, dict[str, Any]]]:
    found = []
    for path in sorted(GOLDEN.glob("*")):
        feature = next((f for f in Feature if path.name.startswith(f.value)), None)
        if feature is None:
            continue
        if path.suffix == ".jsonl":
            found += [(feature, json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
        elif path.suffix == ".json":
            found += [(feature, item) for item in json.loads(path.read_text())["items"]]
    return found


def every_shape() -> list[tuple[Feature, dict[str, Any]]]:
    cases: list[tuple[Feature, dict[str, Any]]] = [
        (Feature.SIGNINATTEMPTS, signin(NOW, category=c)) for c in SIGNIN_CATEGORIES
    ]
    cases += [(Feature.ITEMUSAGES, itemusage(NOW, action=a)) for a in ITEM_USAGE_ACTIONS]
    cases += [
        (
            Feature.AUDITEVENTS,
            auditevent(NOW, action=a, object_type=o, aux_uuid="AUXUSERUUIDAUXUSERUUIDAUXU", aux_info="A"),
        )
        for o in AUDIT_OBJECT_TYPES
        for a in AUDIT_ACTIONS[::7]
    ]
    return cases + golden()


def test_every_ocsf_document_is_valid_against_the_schema() -> None:
    cases = every_shape()
    assert len(golden()) >= 10
    for feature, event in cases:
        doc = to_ocsf(make_record(feature, event, "s"))
        assert check(doc) == [], (feature, event.get("action"), event.get("object_type"), doc)
        assert doc["metadata"]["uid"] == event["uuid"] and doc["metadata"]["version"] == "1.7.0"
        assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]


@pytest.mark.parametrize(
    ("feature", "event", "class_uid", "activity"),
    [
        (Feature.SIGNINATTEMPTS, signin(NOW, category="mfa_failed", type="totp_bad"), 3002, 1),
        (Feature.ITEMUSAGES, itemusage(NOW, action="reveal"), 6001, 2),
        (Feature.ITEMUSAGES, itemusage(NOW, action="export"), 6001, 7),
        (Feature.AUDITEVENTS, auditevent(NOW, action="suspend", object_type="user"), 3001, 5),
        (Feature.AUDITEVENTS, auditevent(NOW, action="join", object_type="gm", aux_uuid="U" * 26), 3006, 3),
        (Feature.AUDITEVENTS, auditevent(NOW, action="grant", object_type="uva", aux_uuid="U" * 26), 3005, 1),
        (Feature.AUDITEVENTS, auditevent(NOW, action="create", object_type="vault"), 3004, 1),
        (Feature.AUDITEVENTS, auditevent(NOW, action="trvlaway", object_type="account"), 3004, 99),
    ],
)
def test_ocsf_classes_and_activities(feature: Feature, event: dict[str, Any], class_uid: int, activity: int) -> None:
    doc = validated(make_record(feature, event, "s"))
    assert (doc["class_uid"], doc["activity_id"]) == (class_uid, activity)
    if activity == 99:
        assert doc["activity_name"] == event["action"]
    if feature is Feature.SIGNINATTEMPTS:
        assert doc["status_id"] == 2 and doc["status_detail"] == "totp_bad" and doc["is_mfa"] is True
        assert doc["user"]["uid"] == event["target_user"]["uuid"] and doc["src_endpoint"]["ip"] == "192.0.2.10"


def test_ecs_follows_elastic_and_fills_its_gaps() -> None:
    s = signin(NOW, category="firewall_reported_success", type="country_blocked")
    doc = to_ecs(make_record(Feature.SIGNINATTEMPTS, s, "s"))
    assert doc["event"]["category"] == ["authentication"] and doc["event"]["outcome"] == "success"
    assert doc["event"]["action"] == "firewall_reported_success" and doc["event"]["reason"] == "country_blocked"
    assert doc["event"]["id"] == s["uuid"] and doc["event"]["dataset"] == "1password.signin_attempts"
    assert doc["user"] == {
        "id": s["target_user"]["uuid"],
        "full_name": "Ada Lovelace",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
    }
    assert doc["source"]["ip"] == "192.0.2.10" and doc["source"]["geo"]["city_name"] == "Toronto"
    assert (
        doc["host"]["os"] == {"name": "macOS", "version": "14.2.1"}
        and doc["onepassword"]["session_uuid"] == s["session_uuid"]
    )

    u = itemusage(NOW)
    doc = to_ecs(make_record(Feature.ITEMUSAGES, u, "s"))
    assert doc["event"]["category"] == ["file"] and doc["event"]["type"] == ["access"] and "name" not in doc["user"]
    assert doc["onepassword"]["item_uuid"] == u["item_uuid"]

    a = auditevent(NOW, action="join", object_type="gm", aux_uuid="AUXUSERUUIDAUXUSERUUIDAUXU")
    doc = to_ecs(make_record(Feature.AUDITEVENTS, a, "s"))
    assert doc["user"]["id"] == a["actor_uuid"] and doc["user"]["target"]["id"] == "AUXUSERUUIDAUXUSERUUIDAUXU"
    assert doc["group"]["id"] == a["object_uuid"] and "AUXUSERUUIDAUXUSERUUIDAUXU" in doc["related"]["user"]
    assert doc["source"]["ip"] == "192.0.2.12" and doc["event"]["category"] == ["configuration"]
