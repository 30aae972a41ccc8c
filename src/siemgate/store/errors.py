"""Errors the store backends raise besides siemgate.errors' own (the same on both backends)."""

from __future__ import annotations

from siemgate.errors import Conflict


class IntegrityConflict(Conflict):
    """A write violated a constraint: `kind` is unique, foreign_key or check; `constraint` its name
    (PostgreSQL names it; SQLite does not, so it is "" there)."""

    def __init__(self, message: str, kind: str, constraint: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.constraint = constraint


class RoomExhausted(Conflict):
    """store.put_alert_rules would pass its RuleRoom: the account holds `held` counted rules and
    the call adds `adding`, past `limit`."""

    def __init__(self, held: int, adding: int, limit: int) -> None:
        super().__init__(f"the account holds {held} rules and these would add {adding}; at most {limit}")
        self.held = held
        self.adding = adding
        self.limit = limit
