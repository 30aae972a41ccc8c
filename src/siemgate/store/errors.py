"""Errors the store backends raise besides siemgate.errors' own (the same on both backends)."""

from __future__ import annotations

from siemgate.errors import Conflict, Unavailable

# NotFound's text when events are stored into an account deleted meanwhile (insert_events)
ACCOUNT_GONE = "account #{account_id} not found: it was deleted; nothing was stored"
# The condition on an `accounts` row that it is live: not being deleted (store/shared/deletion.py);
# what writes into an account checks it with the account's id, and refuses ACCOUNT_GONE otherwise.
LIVE = "deleting_at IS NULL"


def too_long(seconds: float) -> Unavailable:
    """What a read bounded in time (SharedSQL._rows_within) raises once it has run `seconds`."""
    return Unavailable(
        f"Service Unavailable: this search ran longer than {seconds:g} s and was stopped; narrow the time"
        " window or add filters",
        retry_after=1,
    )


class IntegrityConflict(Conflict):
    """A write violated a constraint: `kind` is unique, foreign_key or check; `constraint` its name
    (PostgreSQL names it; SQLite does not, so it is "" there)."""

    def __init__(self, message: str, kind: str, constraint: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.constraint = constraint


class LimitReached(Conflict):
    """A create would pass the bound on what its owner (an account, a person) may hold: its
    message says how many are held, the most allowed, and how to make room."""


class RoomExhausted(LimitReached):
    """store.put_alert_rules would pass its RuleRoom: the account holds `held` counted rules and
    the call adds `adding`, past `limit`."""

    def __init__(self, held: int, adding: int, limit: int) -> None:
        super().__init__(f"the account holds {held} rules and these would add {adding}; at most {limit}")
        self.held = held
        self.adding = adding
        self.limit = limit


class RuleExists(Conflict):
    """store.put_alert_rules(only_new=True) found the rule `rule_id` stored already."""

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"alert rule {rule_id!r} exists")
        self.rule_id = rule_id
