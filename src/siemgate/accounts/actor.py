"""Who is making a change: a person (through an API key or a console session) or siemgate itself
(its server, or the operator's command line).

siemgate itself is one actor with a fixed uuid and name, `SYSTEM_UUID` / `SYSTEM_NAME`; the
device of its session says which part of siemgate acted (docs/audit.md, "Who").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kept out so that the command line imports CLI without the store (start-up time)
    from siemgate.store.base import User

SYSTEM_UUID = "SIEMGATESYSTEMACTORAAAAAAA"
SYSTEM_NAME = "siemgate"
SYSTEM_EMAIL = "system@siemgate.invalid"
SERVER_DEVICE = "SIEMGATESERVERDEVICEAAAAAA"  # the server's own work: lifecycle, alerts, retention
CLI_DEVICE = "SIEMGATECMDLINEDEVICEAAAAA"  # the operator's `siemgate` command line
SYSTEM_IP = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Actor:
    """`user` is None for the command line and for siemgate's own scheduled work."""

    user: User | None
    via: str  # "api_key", "session", "cli", "system"
    credential_id: str | None = None  # the API key or session id
    credential_created_at: int | None = None
    ip: str = ""

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.email
        return "siemgate command line" if self.via == "cli" else "siemgate"

    @property
    def device(self) -> str | None:
        """The session's device uuid of siemgate itself (None for a person)."""
        if self.user is not None:
            return None
        return CLI_DEVICE if self.via == "cli" else SERVER_DEVICE


CLI = Actor(user=None, via="cli")
SYSTEM = Actor(user=None, via="system")
