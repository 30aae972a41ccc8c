"""Valid v2 events of each feature, with chosen timestamps (what a producer sends)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns

SECOND = 1_000_000_000
HOUR = 3600 * SECOND
# What producers in these tests put in `account_uuid`. The server stores the account's own uuid
# instead (docs/events.md); `as_sent` maps it back so served events compare with what was sent.
SENT_ACCOUNT_UUID = "PRODUCERSACCOUNTUUIDAAAAAA"


def as_sent(items: list[dict[str, Any]], token: str) -> list[dict[str, Any]]:
    """Served items with the account's own `account_uuid` (checked against the token's account)
    put back to SENT_ACCOUNT_UUID."""
    account = jwt.decode(token, options={"verify_signature": False})["1password.com/auuid"]
    result = []
    for item in items:
        if "account_uuid" in item:
            assert item["account_uuid"] == account, f"stored with {item['account_uuid']}, not the account's {account}"
            item = {**item, "account_uuid": SENT_ACCOUNT_UUID}
        result.append(item)
    return result


def signin(ts_ns: int, *, name: str = "Ada Lovelace", **extra: Any) -> dict[str, Any]:
    """A successful sign-in attempt of `name`; `extra` replaces top-level fields."""
    return {
        "uuid": new_id(),
        "session_uuid": new_id(),
        "timestamp": format_ns(ts_ns),
        "category": "success",
        "type": "credentials_ok",
        "country": "CA",
        "details": None,
        "target_user": {
            "uuid": new_id(),
            "name": name,
            "email": "ada@example.com",
            "user_type": "user",
            "user_account_uuid": new_id(),
        },
        "client": {
            "app_name": "1Password for Mac",
            "app_version": "81024002",
            "platform_name": "MacBookPro18,3",
            "platform_version": "14.2",
            "os_name": "macOS",
            "os_version": "14.2.1",
            "ip_address": "192.0.2.10",
        },
        "location": {"country": "CA", "region": "Ontario", "city": "Toronto", "latitude": 43.64, "longitude": -79.433},
        "account_uuid": SENT_ACCOUNT_UUID,
        **extra,
    }


def failed(ts: int, email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    """A sign-in refused for a bad password, of the user with `email`."""
    event = signin(ts, category="credentials_failed", type="password_secret_bad", **extra)
    event["target_user"]["email"] = email
    return event


def itemusage(ts_ns: int, **extra: Any) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(ts_ns),
        "used_version": 3,
        "vault_uuid": new_id(lower=True),
        "item_uuid": new_id(lower=True),
        "user": {"uuid": new_id(), "name": "Ada", "email": "ada@example.com", "user_type": "user"},
        "client": {"app_name": "1Password Browser Extension", "app_version": "20127", "ip_address": "192.0.2.11"},
        "action": "reveal",
        "account_uuid": SENT_ACCOUNT_UUID,
        **extra,
    }


def auditevent(ts_ns: int, **extra: Any) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(ts_ns),
        "actor_uuid": new_id(),
        "actor_details": {"uuid": new_id(), "name": "Admin", "email": "admin@example.com", "user_type": "user"},
        "action": "suspend",
        "object_type": "user",
        "object_uuid": new_id(),
        "session": {
            "uuid": new_id(),
            "login_time": format_ns(ts_ns - HOUR),
            "device_uuid": new_id(lower=True),
            "ip": "192.0.2.12",
        },
        "actor_type": "user",
        "actor_account_uuid": new_id(),
        "account_uuid": SENT_ACCOUNT_UUID,
        **extra,
    }


MAKERS: dict[Feature, Callable[..., dict[str, Any]]] = {
    Feature.SIGNINATTEMPTS: signin,
    Feature.ITEMUSAGES: itemusage,
    Feature.AUDITEVENTS: auditevent,
}
