"""Synthetic item-usage events of realistic size for benchmarks."""

from __future__ import annotations

import random
from typing import Any

from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns

_ACCOUNT = new_id()
_USERS = [
    {
        "uuid": new_id(),
        "name": f"User {i}",
        "email": f"user{i}@example.com",
        "user_type": "user",
        "user_account_uuid": _ACCOUNT,
    }
    for i in range(500)
]
_VAULTS = [new_id(lower=True) for _ in range(40)]
_ACTIONS = ["fill", "reveal", "secure-copy", "enter-item-edit-mode", "server-fetch"]


def event_batch(n: int, start_ns: int, step_ns: int) -> list[dict[str, Any]]:
    """n item usages with timestamps start, start+step, ... (each ~650 bytes of JSON)."""
    rng = random.Random(start_ns)
    events = []
    for i in range(n):
        user = rng.choice(_USERS)
        events.append(
            {
                "uuid": new_id(),
                "timestamp": format_ns(start_ns + i * step_ns + rng.randrange(1_000_000)),
                "used_version": rng.randrange(1, 20),
                "vault_uuid": rng.choice(_VAULTS),
                "item_uuid": new_id(lower=True),
                "action": rng.choice(_ACTIONS),
                "user": user,
                "client": {
                    "app_name": "1Password Browser Extension",
                    "app_version": "81024002",
                    "platform_name": "Chrome",
                    "platform_version": "131.0.6778.86",
                    "os_name": "MacOSX",
                    "os_version": "14.2.1",
                    "ip_address": f"198.51.100.{rng.randrange(1, 255)}",
                },
                "location": {
                    "country": "CA",
                    "region": "Ontario",
                    "city": "Toronto",
                    "latitude": 43.64,
                    "longitude": -79.433,
                },
                "account_uuid": _ACCOUNT,
            }
        )
    return events


def audit_batch(n: int, start_ns: int, step_ns: int) -> list[dict[str, Any]]:
    """n audit events (an administrator suspending a user) at start, start+step, ... (~600 bytes)."""
    rng = random.Random(start_ns)
    events = []
    for i in range(n):
        actor, target = rng.choice(_USERS), rng.choice(_USERS)
        ts = start_ns + i * step_ns
        events.append(
            {
                "uuid": new_id(),
                "timestamp": format_ns(ts),
                "actor_uuid": actor["uuid"],
                "actor_details": {k: actor[k] for k in ("uuid", "name", "email", "user_type")},
                "action": "suspend",
                "object_type": "user",
                "object_uuid": target["uuid"],
                "session": {
                    "uuid": new_id(),
                    "login_time": format_ns(ts - 3600 * 1_000_000_000),
                    "device_uuid": new_id(lower=True),
                    "ip": f"192.0.2.{rng.randrange(1, 255)}",
                },
                "actor_type": "user",
                "actor_account_uuid": _ACCOUNT,
                "account_uuid": _ACCOUNT,
            }
        )
    return events
