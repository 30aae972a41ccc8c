"""OCSF 1.7.0 documents (docs/forwarding.md, "Formats").

| feed | class | activity |
|---|---|---|
| sign-in attempts | Authentication 3002 | Logon (1); status from the category, status_detail = type |
| item usages | Web Resources Activity 6001 | Create 1, Read 2, Update 3, Export 7, Share 8, else Other 99 (1) |
| audit, object user | Account Change 3001 | by action (Create, Enable, Password, Delete, MFA…) |
| audit, object gm / group / gva | Group Management 3006 | join → Add User, leave → Remove User, create, … |
| audit, object uva | User Access Management 3005 | grant → Assign Privileges, revoke → Revoke Privileges |
| audit, anything else | Entity Management 3004 | by action (Create, Read, Update, Delete, Enable, Disable, …) |

(1) The acting user goes to `unmapped.user`: in 1.7 the class has no `actor` without the host profile.
An action without a mapping gets activity 99 (Other) with the action string in `activity_name`.
`metadata.uid` is the event's uuid. The version is pinned to 1.7.0: the newest schema shipped with
pydantic-ocsf, which validates every document in the tests (and at run time with `validate`).
"""

from __future__ import annotations

import functools
from typing import Any

from siemgate.forward.formats.ecs import SUCCESS_CATEGORIES, _clean, _dict
from siemgate.forward.records import Record, log_fields
from siemgate.model.features import Feature
from siemgate.model.timestamps import TimestampError, now_ns, parse_ns

OCSF_VERSION = "1.7.0"
PRODUCT = {"name": "1Password Events API", "vendor_name": "1Password"}
OTHER = 99

AUTHENTICATION, WEB_RESOURCES_ACTIVITY = 3002, 6001
ACCOUNT_CHANGE, ENTITY_MANAGEMENT, USER_ACCESS, GROUP_MANAGEMENT = 3001, 3004, 3005, 3006
CLASS_NAMES = {
    AUTHENTICATION: "Authentication",
    WEB_RESOURCES_ACTIVITY: "WebResourcesActivity",
    ACCOUNT_CHANGE: "AccountChange",
    ENTITY_MANAGEMENT: "EntityManagement",
    USER_ACCESS: "UserAccess",
    GROUP_MANAGEMENT: "GroupManagement",
}

ITEM_ACTIVITY = {
    "server-create": 1,
    "fill": 2,
    "reveal": 2,
    "secure-copy": 2,
    "server-fetch": 2,
    "select-sso-provider": 2,
    "server-update": 3,
    "enter-item-edit-mode": 3,
    "export": 7,
    "share": 8,
}
ACCOUNT_ACTIVITY = {
    "create": 1,
    "provsn": 1,
    "activate": 2,
    "reactive": 2,
    "changemp": 3,
    "beginr": 4,
    "completr": 4,
    "suspend": 5,
    "delete": 6,
    "purge": 6,
    "enblmfa": 10,
    "disblmfa": 11,
}
GROUP_ACTIVITY = {"grant": 1, "revoke": 2, "join": 3, "leave": 4, "delete": 5, "create": 6}
USER_ACCESS_ACTIVITY = {"grant": 1, "revoke": 2}
ENTITY_ACTIVITY = {
    "create": 1,
    "view": 2,
    "update": 3,
    "updatea": 3,
    "updatfw": 3,
    "updatduo": 3,
    "updatmfa": 3,
    "changenm": 3,
    "changela": 3,
    "trename": 3,
    "patch": 3,
    "replace": 3,
    "delete": 4,
    "purge": 4,
    "delshare": 4,
    "dealldev": 4,
    "deolddev": 4,
    "enblduo": 8,
    "enblsso": 8,
    "enblmfa": 8,
    "disblduo": 9,
    "disblsso": 9,
    "disblmfa": 9,
    "activate": 10,
    "reactive": 10,
    "suspend": 12,
}
OS_TYPES = {"windows": 100, "linux": 200, "android": 201, "macos": 300, "macosx": 300, "ios": 301, "ipados": 302}
MFA_TYPES = ("mfa_", "totp_", "u2f_", "duo_")


def _ms(timestamp: Any) -> int | None:
    try:
        return parse_ns(timestamp) // 1_000_000
    except TimestampError:
        return None


def _time_ms(event: dict[str, Any]) -> int:
    ms = _ms(event.get("timestamp"))
    return now_ns() // 1_000_000 if ms is None else ms


def _user(user: dict[str, Any], uid: Any = None) -> dict[str, Any]:
    """An OCSF user; `uid` is never missing (the classes that need a user require the object)."""
    return {"uid": str(uid or user.get("uuid") or ""), "name": user.get("name"), "email_addr": user.get("email")}


def _endpoint(ip: Any, location: dict[str, Any], client: dict[str, Any] | None = None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"ip": ip}
    if location:
        endpoint["location"] = {
            "country": location.get("country"),
            "region": location.get("region"),
            "city": location.get("city"),
            "lat": location.get("latitude"),
            "long": location.get("longitude"),
        }
    if client and client.get("os_name"):
        name = str(client["os_name"])
        endpoint["os"] = {
            "name": name,
            "version": client.get("os_version"),
            "type_id": OS_TYPES.get(name.lower().replace(" ", ""), OTHER),
        }
    return endpoint


def _base(record: Record, class_uid: int, activity_id: int, activity: str | None) -> dict[str, Any]:
    e = record.event
    doc: dict[str, Any] = {
        "class_uid": class_uid,
        "category_uid": class_uid // 1000,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "time": _time_ms(e),
        "severity_id": 1,
        "status_id": 1,
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": e.get("uuid"),
            "log_name": record.feature.value,
            "original_time": e.get("timestamp"),
        },
    }
    if activity_id == OTHER and activity:
        doc["activity_name"] = activity
    return doc


def to_ocsf(record: Record) -> dict[str, Any]:
    """The OCSF document for a record (not validated; see `validated`)."""
    if record.feature is Feature.SIGNINATTEMPTS:
        doc = _authentication(record)
    elif record.feature is Feature.ITEMUSAGES:
        doc = _web_resources(record)
    else:
        doc = _audit(record)
    log = log_fields(record)
    if log is not None:
        doc.setdefault("unmapped", {})["siemgate"] = log
    result: dict[str, Any] = _clean(doc)
    return result


def _authentication(record: Record) -> dict[str, Any]:
    e = record.event
    category, kind = e.get("category"), e.get("type")
    client = _dict(e.get("client"))
    doc = _base(record, AUTHENTICATION, 1, None)
    success = category in SUCCESS_CATEGORIES
    doc.update(
        status_id=1 if success else 2,
        severity_id=1 if success else 2,
        status_detail=kind,
        message=f"1Password sign-in attempt: {category}",
        user=_user(_dict(e.get("target_user"))),
        src_endpoint=_endpoint(client.get("ip_address"), _dict(e.get("location")), client),
        session={"uid": e.get("session_uuid")},
        service={"name": "1Password"},
        unmapped={
            "category": category,
            "country": e.get("country"),
            "details": e.get("details"),
            "client": {k: client.get(k) for k in ("app_name", "app_version", "platform_name", "platform_version")},
            "account_uuid": e.get("account_uuid"),
        },
    )
    if isinstance(kind, str) and kind.startswith(MFA_TYPES):
        doc["is_mfa"] = True
    return doc


def _web_resources(record: Record) -> dict[str, Any]:
    e = record.event
    action = e.get("action")
    client = _dict(e.get("client"))
    doc = _base(record, WEB_RESOURCES_ACTIVITY, ITEM_ACTIVITY.get(str(action), OTHER), str(action))
    doc.update(
        message=f"1Password item usage: {action}",
        web_resources=[{"uid": e.get("item_uuid"), "type": "item"}, {"uid": e.get("vault_uuid"), "type": "vault"}],
        src_endpoint=_endpoint(client.get("ip_address"), _dict(e.get("location")), client),
        unmapped={
            "user": _user(_dict(e.get("user"))),
            "action": action,
            "used_version": e.get("used_version"),
            "client": {k: client.get(k) for k in ("app_name", "app_version", "platform_name", "platform_version")},
            "account_uuid": e.get("account_uuid"),
        },
    )
    return doc


def _audit(record: Record) -> dict[str, Any]:
    e = record.event
    action, object_type = str(e.get("action")), str(e.get("object_type"))
    session = _dict(e.get("session"))
    object_user = {"uuid": e.get("object_uuid"), **_dict(e.get("object_details"))}
    aux_user = {"uuid": e.get("aux_uuid"), **_dict(e.get("aux_details"))}
    if object_type == "user":
        doc = _base(record, ACCOUNT_CHANGE, ACCOUNT_ACTIVITY.get(action, OTHER), action)
        doc["user"] = _user(object_user)
    elif object_type in ("gm", "group", "gva"):
        doc = _base(record, GROUP_MANAGEMENT, GROUP_ACTIVITY.get(action, OTHER), action)
        if object_type == "gva":  # a group's access to a vault: the group is the aux object
            doc["group"] = {"uid": str(e.get("aux_uuid") or "")}
            doc["resource"] = {"uid": e.get("object_uuid"), "type": "vault"}
            doc["privileges"] = [str(e.get("aux_info") or "vault_access")]
        else:
            doc["group"] = {"uid": str(e.get("object_uuid") or "")}
            if object_type == "gm" and e.get("aux_uuid"):
                doc["user"] = _user(aux_user)
    elif object_type == "uva":
        doc = _base(record, USER_ACCESS, USER_ACCESS_ACTIVITY.get(action, OTHER), action)
        doc["user"] = _user(aux_user)
        doc["privileges"] = [str(e.get("aux_info") or "vault_access")]
        doc["resource"] = {"uid": e.get("object_uuid"), "type": "vault"}
    else:
        doc = _base(record, ENTITY_MANAGEMENT, ENTITY_ACTIVITY.get(action, OTHER), action)
        doc["entity"] = {"uid": str(e.get("object_uuid") or ""), "type": object_type}
    actor = _dict(e.get("actor_details")) or {"uuid": e.get("actor_uuid")}
    doc.update(
        message=f"1Password audit event: {action} {object_type}",
        actor={
            "user": _user(actor, e.get("actor_uuid")),  # the actor_uuid field is the actor's id
            "session": {"uid": session.get("uuid"), "created_time": _ms(session.get("login_time"))},
        },
        src_endpoint=_endpoint(session.get("ip"), _dict(e.get("location"))),
        unmapped={
            "device_uuid": session.get("device_uuid"),
            "action": action,
            "object_type": object_type,
            "object_uuid": e.get("object_uuid"),
            "aux_id": e.get("aux_id"),
            "aux_uuid": e.get("aux_uuid"),
            "aux_info": e.get("aux_info"),
            "actor_type": e.get("actor_type"),
            "actor_account_uuid": e.get("actor_account_uuid"),
            "account_uuid": e.get("account_uuid"),
        },
    )
    return doc


@functools.cache
def _models() -> dict[int, Any]:
    """The pydantic-ocsf classes (built from the bundled schema on first use, ~0.5 s)."""
    from ocsf.v1_7_0 import events

    return {uid: getattr(events, name) for uid, name in CLASS_NAMES.items()}


def check(doc: dict[str, Any]) -> list[str]:
    """Problems of an OCSF document against the 1.7.0 schema: validation errors, and attributes the
    schema does not define (outside `unmapped`). Empty when the document is valid."""
    from pydantic import BaseModel, ValidationError

    model_cls = _models().get(doc.get("class_uid", 0))
    if model_cls is None:
        return [f"class_uid {doc.get('class_uid')!r} is not one this format produces"]
    try:
        model = model_cls.model_validate(doc)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    problems: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, BaseModel):
            problems.extend(f"{path}{name}: not an attribute of the schema" for name in value.model_extra or {})
            for name in type(value).model_fields:
                if name != "unmapped":
                    walk(getattr(value, name), f"{path}{name}.")
        elif isinstance(value, list):
            for item in value:
                walk(item, path)

    walk(model, "")
    return problems


def validated(record: Record) -> dict[str, Any]:
    """to_ocsf, checked against the schema; raises ValueError listing the problems."""
    doc = to_ocsf(record)
    problems = check(doc)
    if problems:
        raise ValueError(f"OCSF document for {record.uuid or 'an event'} is invalid: {'; '.join(problems[:5])}")
    return doc
