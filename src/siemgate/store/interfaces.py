"""The store's interfaces that each backend implements in its own way: opening and closing, and
the event logs. The other aggregates are written once in store/shared/, each class both interface
and implementation; `Store` (store/base.py) is the union of all of them, and states the contract
common to all.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from siemgate.model.features import Feature
from siemgate.store.records import (
    EventRow,
    InsertResult,
    NewEvent,
    PageRows,
)

# A page read along seq examines at most this many stored events, plus 10 per event of its limit
# (docs/cursors.md, "Bounded work").
SCAN_ROWS = 10_000


class ScanBudget:
    """How many stored events a page may examine (docs/cursors.md, "Bounded work"): the same on
    every backend's event logs."""

    scan_rows = SCAN_ROWS  # lowered by tests that follow chains through many scan stops

    def scan_budget(self, limit: int) -> int:
        """How many stored events a page of `limit` may examine along seq after its cursor."""
        return self.scan_rows + 10 * limit


class StoreLifecycle(abc.ABC):
    """Opening and closing: migrations and connections."""

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending numbered migrations; return the names applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""


class EventStore(abc.ABC):
    """The event logs: writing batches, paging by seq (per backend:
    sqlite/, postgres/)."""

    @abc.abstractmethod
    def insert_events(self, account_id: int, feature: Feature, events: Sequence[NewEvent]) -> InsertResult:
        """Store the new events of the batch atomically, in order (see the module contract).
        NotFound, storing nothing, when the account does not exist (deleted meanwhile): a batch
        and an account's deletion are ordered, never leaving events of no account."""

    @abc.abstractmethod
    def start_position(self, account_id: int, feature: Feature, start: int) -> int:
        """A seq such that every event with timestamp >= start has a greater seq (fast, not a scan)."""

    @abc.abstractmethod
    def read_events(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int
    ) -> list[EventRow]:
        """Up to `limit` events with seq > after_seq and start <= timestamp <= end, in seq order."""

    @abc.abstractmethod
    def read_page(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int, *, v1: bool
    ) -> PageRows:
        """The events read_events would return, as one JSON fragment (v1 views when `v1`), plus
        whether more matching events exist right now. The serving hot path: backends build the
        fragment natively instead of returning rows. A backend may stop a page after examining a
        bounded number of stored events (PageRows.position, has_more true; docs/cursors.md,
        "Bounded work"): the page then holds the matching events up to that position."""

    @abc.abstractmethod
    def head_seq(self, account_id: int, feature: Feature) -> int:
        """The highest seq ever given in the stream (0 when empty)."""

    @abc.abstractmethod
    def count_events(self, account_id: int, feature: Feature, after_seq: int = 0) -> int:
        """Events stored in the stream with seq > after_seq."""

    @abc.abstractmethod
    def first_unread_time(self, account_id: int, feature: Feature, after_seq: int) -> int | None:
        """The stream's newest activity time (max_ts) when the first event with seq > after_seq was
        stored: how long that event has waited for a reader. None when there is no such event."""
