"""Serve Events API pages: reset and cursor semantics of docs/cursors.md, as pre-built JSON bytes.

A reset {start S, end E, limit L} defines a stream: every event of the (account, feature) whose
timestamp is in [S, E], stored now or later, in seq order. A page holds up to L events after the
cursor's seq; `has_more` is exact (one extra row is read, nothing is counted); at the end of data
the same cursor string comes back. Stored JSON is spliced into the envelope without decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siemgate.api.page_request import CursorRequest, ResetRequest
from siemgate.errors import InvalidCursor
from siemgate.model.cursor import Cursor, CursorError, decode_cursor, encode_cursor
from siemgate.model.features import Feature
from siemgate.model.timestamps import MAX_STORED_NS, NS_PER_SECOND
from siemgate.store.base import Account, Store

HOUR_NS = 3600 * NS_PER_SECOND
DAY_NS = 24 * HOUR_NS


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    last_seq: int
    count: int
    first_seq: int  # the seq the page read after: its leaves are [first_seq, last_seq)


class PageReader:
    def __init__(
        self,
        store: Store,
        cursor_key: bytes,
        retention_days: int,
        clock: Callable[[], int],
        retention: Callable[[int, Feature], int] | None = None,
    ) -> None:
        """`retention(account_id, feature)`: the stream's retention in ns (per-account policies);
        default `retention_days` for every stream."""
        self.store = store
        self.cursor_key = cursor_key
        self.retention_ns = retention_days * DAY_NS
        self.retention = retention
        self.clock = clock

    def read(self, account: Account, feature: Feature, request: ResetRequest | CursorRequest, *, v1: bool) -> Page:
        """One page of the stream the request names; raises InvalidCursor (400) for a bad cursor."""
        if isinstance(request, CursorRequest):
            cursor = self.open_cursor(request.cursor, account, feature)
            cursor_text = request.cursor
        else:
            cursor = self._reset(account, feature, request)
            cursor_text = None
        rows = self.store.read_page(account.id, feature, cursor.seq, cursor.start, cursor.end, cursor.limit, v1=v1)
        # A page that stopped at its scan budget moves the cursor past every event it examined,
        # matching or not (docs/cursors.md, "Bounded work"); otherwise to its last event.
        position = rows.position if rows.position is not None else rows.last_seq
        if position is not None and position != cursor.seq:
            last_seq = position
            cursor_text = encode_cursor(
                Cursor(cursor.account_uuid, feature, last_seq, cursor.start, cursor.end, cursor.limit), self.cursor_key
            )
        else:
            last_seq = cursor.seq
            if cursor_text is None:
                cursor_text = encode_cursor(cursor, self.cursor_key)
        body = b"".join(
            (
                b'{"cursor":"',
                cursor_text.encode("ascii"),
                b'","has_more":true,"items":[' if rows.has_more else b'","has_more":false,"items":[',
                rows.items,
                b"]}",
            )
        )
        return Page(body, last_seq, rows.count, cursor.seq)

    def _reset(self, account: Account, feature: Feature, request: ResetRequest) -> Cursor:
        now = self.clock()
        end = request.end  # within the storable range (page_request checks it)
        start = request.start if request.start is not None else (end if end is not None else now) - HOUR_NS
        keep = self.retention(account.id, feature) if self.retention is not None else self.retention_ns
        start = min(max(start, now - keep, 0), MAX_STORED_NS)
        if end is not None and end < start:
            end = start - 1  # a window entirely before the retention horizon holds nothing
        seq = self.store.start_position(account.id, feature, start)
        return Cursor(account.uuid, feature, seq, start, end, request.limit)

    def open_cursor(self, text: str, account: Account, feature: Feature) -> Cursor:
        """The cursor `text` if this server issued it for this account and stream; InvalidCursor else."""
        try:
            cursor = decode_cursor(text, self.cursor_key)
        except CursorError as exc:
            raise InvalidCursor(f"Bad Request: {exc}; start again with a reset (start_time, limit)") from None
        if cursor.account_uuid != account.uuid:
            raise InvalidCursor(
                "Bad Request: this cursor belongs to another account; use the cursor returned with this token"
            )
        if cursor.feature is not feature:
            raise InvalidCursor(
                f"Bad Request: this cursor belongs to the {cursor.feature.value} stream;"
                f" send it to /api/v2/{cursor.feature.value}"
            )
        return cursor
