"""Who is making a change: a person (through an API key or a console session) or the system."""

from __future__ import annotations

from dataclasses import dataclass

from siemgate.store.base import User


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


CLI = Actor(user=None, via="cli")
SYSTEM = Actor(user=None, via="system")
