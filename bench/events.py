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
