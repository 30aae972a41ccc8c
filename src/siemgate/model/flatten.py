"""Events as flat rows (CSV exports): per feature, the dotted paths of every v2 field (docs/events.md), in a
fixed order, and the cell text of each.

A missing field or JSON null is an empty cell. Text that a spreadsheet would run as a formula
(starting with = + - @, tab or carriage return, also after leading white space or as their
full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20), which some spreadsheets read as the same) is prefixed with a single
quote; JSON numbers are written as numbers (a negative longitude stays -79.433).
"""

from __future__ import annotations

from typing import Any

import orjson

from siemgate.model.features import Feature

_USER = ("uuid", "name", "email")
_USER_V2 = (*_USER, "user_type", "user_account_uuid")
_CLIENT = ("app_name", "app_version", "platform_name", "platform_version", "os_name", "os_version", "ip_address")
_LOCATION = ("country", "region", "city", "latitude", "longitude")
_SESSION = ("uuid", "login_time", "device_uuid", "ip")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _under(parent: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{parent}.{name}" for name in names)


COLUMNS: dict[Feature, tuple[str, ...]] = {
    Feature.SIGNINATTEMPTS: (
        *("uuid", "session_uuid", "timestamp", "category", "type", "country", "details.value"),
        *_under("target_user", _USER_V2),
        *_under("client", _CLIENT),
        *_under("location", _LOCATION),
        "account_uuid",
    ),
    Feature.ITEMUSAGES: (
        *("uuid", "timestamp", "action", "used_version", "vault_uuid", "item_uuid"),
        *_under("user", _USER_V2),
        *_under("client", _CLIENT),
        *_under("location", _LOCATION),
        "account_uuid",
    ),
    Feature.AUDITEVENTS: (
        *("uuid", "timestamp", "action", "object_type", "actor_uuid"),
        *_under("actor_details", _USER_V2),
        *("actor_type", "actor_account_uuid", "account_uuid", "object_uuid"),
        *_under("object_details", _USER),
        *("aux_id", "aux_uuid"),
        *_under("aux_details", _USER),
        "aux_info",
        *_under("session", _SESSION),
        *_under("location", _LOCATION),
    ),
}


def cell(value: Any) -> str:
    """The CSV text of a field's value (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return "'" + text if text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS) else text


def row(feature: Feature, event: dict[str, Any]) -> list[str]:
    """The event's cells, one per column of its feature."""
    cells = []
    for path in COLUMNS[feature]:
        value: Any = event
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        cells.append(cell(value))
    return cells
