"""ECS documents laid out as Elastic's 1Password integration does (docs/forwarding.md, "Formats"), with its gaps filled:
`event.id` (the uuid), `event.reason` (the sign-in type), `user.target.*` for the user an audit
event acts on (the actor stays in `user.*`), `source.geo` from the event's own location, and
`event.module` / `event.dataset`. Fields the integration keeps under `onepassword.*` are kept there.
"""

from __future__ import annotations

from typing import Any

from siemgate.forward.records import Record, log_fields
from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns, now_ns

ECS_VERSION = "8.11.0"
SUCCESS_CATEGORIES = frozenset({"success", "firewall_reported_success"})
# Audit object types whose aux_uuid is a user (Elastic's related.user rule).
AUX_IS_USER = frozenset({"gm", "device", "uva"})


_CREATED: list[Any] = [0, ""]


def _created() -> str:
    """The time the document was made (`event.created`, as Elastic's agent sets it), per second."""
    now = now_ns()
    if now // 1_000_000_000 != _CREATED[0]:
        _CREATED[:] = [now // 1_000_000_000, format_ns(now - now % 1_000_000_000)]
    return str(_CREATED[1])


def _clean(value: Any) -> Any:
    """Drop None values and empty containers, recursively."""
    if isinstance(value, dict):
        out = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [v for v in (_clean(v) for v in value) if v is not None]
    return value


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if isinstance(value, str) and value and value not in seen:
            seen.append(value)
    return seen


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _geo(location: dict[str, Any]) -> dict[str, Any]:
    country = location.get("country")
    lat, lon = location.get("latitude"), location.get("longitude")
    geo: dict[str, Any] = {"region_name": location.get("region"), "city_name": location.get("city")}
    if isinstance(country, str):
        geo["country_iso_code" if len(country) == 2 else "country_name"] = country
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        geo["location"] = {"lat": lat, "lon": lon}
    return geo


def _client(client: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(host.os, onepassword.client) from an Events API client object."""
    os_ = {"name": client.get("os_name"), "version": client.get("os_version")}
    kept = {k: client.get(k) for k in ("app_name", "app_version", "platform_name", "platform_version")}
    return os_, kept


def to_ecs(record: Record) -> dict[str, Any]:
    e = record.event
    doc: dict[str, Any] = {
        "@timestamp": e.get("timestamp"),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "event",
            "module": "1password",
            "dataset": f"1password.{record.dataset}",
            "id": e.get("uuid"),
            "created": _created(),
        },
    }
    if record.feature is Feature.SIGNINATTEMPTS:
        _signin(e, doc)
    elif record.feature is Feature.ITEMUSAGES:
        _itemusage(e, doc)
    else:
        _audit(e, doc)
    log = log_fields(record)
    if log is not None:
        doc["siemgate"] = log
    result: dict[str, Any] = _clean(doc)
    return result


def _person(doc: dict[str, Any], user: dict[str, Any], *, copy_name: bool) -> list[Any]:
    name = user.get("name")
    doc["user"] = {"id": user.get("uuid"), "full_name": name, "email": user.get("email")}
    if copy_name:
        doc["user"]["name"] = name
    return [user.get("uuid"), user.get("email"), name]


def _network(doc: dict[str, Any], ip: Any, location: dict[str, Any], users: list[Any]) -> None:
    doc["source"] = {"ip": ip, "geo": _geo(location)}
    doc["related"] = {"user": _unique(users), "ip": _unique([ip])}


def _signin(e: dict[str, Any], doc: dict[str, Any]) -> None:
    category = e.get("category")
    client = _dict(e.get("client"))
    os_, kept = _client(client)
    doc["event"].update(
        category=["authentication"],
        type=["info"],
        action=category,
        outcome="success" if category in SUCCESS_CATEGORIES else "failure",
        reason=e.get("type"),
    )
    users = _person(doc, _dict(e.get("target_user")), copy_name=True)
    doc["host"] = {"os": os_}
    _network(doc, client.get("ip_address"), _dict(e.get("location")), users)
    doc["onepassword"] = {
        "uuid": e.get("uuid"),
        "session_uuid": e.get("session_uuid"),
        "type": e.get("type"),
        "country": e.get("country"),
        "details": e.get("details"),
        "client": kept,
        "account_uuid": e.get("account_uuid"),
    }


def _itemusage(e: dict[str, Any], doc: dict[str, Any]) -> None:
    client = _dict(e.get("client"))
    os_, kept = _client(client)
    doc["event"].update(category=["file"], type=["access"], action=e.get("action"))
    users = _person(doc, _dict(e.get("user")), copy_name=False)
    doc["host"] = {"os": os_}
    _network(doc, client.get("ip_address"), _dict(e.get("location")), users)
    doc["onepassword"] = {
        "uuid": e.get("uuid"),
        "used_version": e.get("used_version"),
        "vault_uuid": e.get("vault_uuid"),
        "item_uuid": e.get("item_uuid"),
        "client": kept,
        "account_uuid": e.get("account_uuid"),
    }


def _audit(e: dict[str, Any], doc: dict[str, Any]) -> None:
    object_type = e.get("object_type")
    session = _dict(e.get("session"))
    actor = {**_dict(e.get("actor_details")), "uuid": e.get("actor_uuid")}  # Elastic: user.id = actor_uuid
    doc["event"].update(category=["configuration"], type=["access"], action=e.get("action"))
    users = _person(doc, actor, copy_name=True)
    target: dict[str, Any] = {}
    if object_type == "user":
        target = {"uuid": e.get("object_uuid"), **_dict(e.get("object_details"))}
        users.append(e.get("object_uuid"))
    elif object_type in AUX_IS_USER and e.get("aux_uuid"):
        users.append(e.get("aux_uuid"))
        if object_type in ("gm", "uva"):
            target = {"uuid": e.get("aux_uuid"), **_dict(e.get("aux_details"))}
    if target:
        doc["user"]["target"] = {
            "id": target.get("uuid"),
            "full_name": target.get("name"),
            "email": target.get("email"),
        }
        doc["user"]["target"]["name"] = target.get("name")
    if object_type in ("group", "gm"):
        doc["group"] = {"id": e.get("object_uuid")}
    _network(doc, session.get("ip"), _dict(e.get("location")), users)
    doc["onepassword"] = {
        "uuid": e.get("uuid"),
        "object_type": object_type,
        "object_uuid": e.get("object_uuid"),
        "object_details": e.get("object_details"),
        "aux_id": e.get("aux_id"),
        "aux_uuid": e.get("aux_uuid"),
        "aux_details": e.get("aux_details"),
        "aux_info": e.get("aux_info"),
        "session": {k: session.get(k) for k in ("uuid", "device_uuid", "login_time")},
        "actor_type": e.get("actor_type"),
        "actor_account_uuid": e.get("actor_account_uuid"),
        "account_uuid": e.get("account_uuid"),
    }
