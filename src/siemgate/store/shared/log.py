"""The tamper-evident log tables of both store backends, written once (docs/integrity.md, "In the
store"): entries (written by `insert_events` in the event's transaction, packed: one row per batch
holding its entries in index order), the perfect-node hashes
the integrator keeps, the integration state, signed checkpoints and recovery statements.

`LogStore` runs on the primitives a backend supplies (store/shared/dialect.py).
Nothing here deletes an entry or a hash: purges delete event bodies only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from siemgate.model.features import Feature
from siemgate.store.shared.dialect import SharedSQL
from siemgate.tlog.entry import ENTRY_SIZE

ENTRIES_PER_ROW = 1000  # the backfill's rows; ingest writes one row per batch


@dataclass(frozen=True, slots=True)
class LogState:
    """How far a stream's log is integrated: `size` entries with tree root `root`; `error` is the
    integrity error that stopped integration (then nothing more is integrated or signed)."""

    size: int
    root: bytes
    error: str | None
    updated_at: int


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    time: int  # unix seconds, as signed
    size: int
    note: str


class LogStore(SharedSQL):
    """An interface of the store (part of Store) and its one implementation, over the backend's
    primitives (store/shared/dialect.py). Writes into an account that no longer exists (deleted
    while the log worker ran) store nothing: its id may be given to a new account (SQLite)."""

    # reading ----------------------------------------------------------------------------------
    def log_overview(self) -> list[tuple[int, Feature, int, int, bool]]:
        """(account_id, feature, head seq, integrated size, stopped by an error) of every stream
        that has been written to; size -1 when its log was never integrated."""
        rows = self._rows(
            "SELECT s.account_id, s.feature, s.head_seq, coalesce(l.size, -1), l.error IS NOT NULL FROM streams s"
            " LEFT JOIN log_state l ON l.account_id = s.account_id AND l.feature = s.feature"
            " ORDER BY s.account_id, s.feature"
        )
        return [(int(r[0]), Feature.from_code(int(r[1])), int(r[2]), int(r[3]), bool(r[4])) for r in rows]

    def log_state(self, account_id: int, feature: Feature) -> LogState | None:
        rows = self._rows(
            self._q("SELECT size, root, error, updated_at FROM log_state WHERE account_id = ? AND feature = ?"),
            (account_id, feature.code),
        )
        if not rows:
            return None
        size, root, error, updated = rows[0]
        return LogState(int(size), bytes(root), error, int(updated))

    def log_entry_rows(self, account_id: int, feature: Feature, begin: int, end: int) -> list[tuple[int, bytes]]:
        """(index, 41 entry bytes) of the entries with `begin <= index < end`, in index order, as
        the packed rows hold them (an index held twice by overlapping rows comes twice; a trailing
        partial entry comes short: the integrator reports both)."""
        rows = self._rows(
            self._q(
                "SELECT idx, entries FROM log_entries WHERE account_id = ? AND feature = ? AND idx < ? AND idx >="
                " coalesce((SELECT max(idx) FROM log_entries WHERE account_id = ? AND feature = ? AND idx <= ?), ?)"
                " ORDER BY idx"
            ),
            (account_id, feature.code, end, account_id, feature.code, begin, begin),
        )
        out = []
        for first, blob in rows:
            data = bytes(blob)
            for k in range(0, len(data), ENTRY_SIZE):
                idx = int(first) + k // ENTRY_SIZE
                if begin <= idx < end:
                    out.append((idx, data[k : k + ENTRY_SIZE]))
        return out

    def log_hash_rows(
        self, account_id: int, feature: Feature, level: int, begin: int, end: int
    ) -> list[tuple[int, bytes]]:
        """(index, hash) of the stored perfect nodes of `level` with `begin <= index < end`."""
        rows = self._rows(
            self._q(
                "SELECT idx, hash FROM log_hashes WHERE account_id = ? AND feature = ? AND level = ?"
                " AND idx >= ? AND idx < ? ORDER BY idx"
            ),
            (account_id, feature.code, level, begin, end),
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def log_checkpoints(self, account_id: int, feature: Feature) -> list[StoredCheckpoint]:
        """Every stored checkpoint of the stream, oldest first."""
        rows = self._rows(
            self._q("SELECT time, size, note FROM log_checkpoints WHERE account_id = ? AND feature = ? ORDER BY time"),
            (account_id, feature.code),
        )
        return [StoredCheckpoint(int(r[0]), int(r[1]), str(r[2])) for r in rows]

    def last_log_checkpoint(self, account_id: int, feature: Feature) -> StoredCheckpoint | None:
        return self._one_checkpoint(account_id, feature, "", (), "DESC")

    def first_log_checkpoint_since(self, account_id: int, feature: Feature, time: int) -> StoredCheckpoint | None:
        """The oldest stored checkpoint of the stream signed at or after `time` (unix s), if any."""
        return self._one_checkpoint(account_id, feature, " AND time >= ?", (time,), "")

    def log_checkpoint_of_size(self, account_id: int, feature: Feature, size: int) -> StoredCheckpoint | None:
        """The newest stored checkpoint of exactly `size` entries, if any."""
        return self._one_checkpoint(account_id, feature, " AND size = ?", (size,), "DESC")

    def _one_checkpoint(
        self, account_id: int, feature: Feature, condition: str, params: tuple[int, ...], order: str
    ) -> StoredCheckpoint | None:
        """The stream's first stored checkpoint by time in `order` ("" or "DESC") that meets
        `condition` (SQL after the stream's, with `?` for `params`), if any."""
        rows = self._rows(
            self._q(
                f"SELECT time, size, note FROM log_checkpoints WHERE account_id = ? AND feature = ?{condition}"
                f" ORDER BY time {order} LIMIT 1"
            ),
            (account_id, feature.code, *params),
        )
        return StoredCheckpoint(int(rows[0][0]), int(rows[0][1]), str(rows[0][2])) if rows else None

    def log_event_seq(self, account_id: int, feature: Feature, ts: int, uuid: str) -> int | None:
        """The seq of the stored event with timestamp `ts` and `uuid` (one probe of the
        (ts, uuid) index the store keeps for duplicates), or None."""
        rows = self._rows(
            self._q("SELECT seq FROM events WHERE account_id = ? AND feature = ? AND ts = ? AND uuid = ?"),
            (account_id, feature.code, ts, uuid),
        )
        return int(rows[0][0]) if rows else None

    def log_event_seqs(self, account_id: int, feature: Feature, after_seq: int, up_to_seq: int) -> list[int]:
        """The seqs of the stored events with `after_seq < seq <= up_to_seq`, in order (which
        indices of a range still have their body)."""
        rows = self._rows(
            self._q(
                "SELECT seq FROM events WHERE account_id = ? AND feature = ? AND seq > ? AND seq <= ? ORDER BY seq"
            ),
            (account_id, feature.code, after_seq, up_to_seq),
        )
        return [int(r[0]) for r in rows]

    def log_recoveries(self, account_id: int, feature: Feature) -> list[str]:
        """The signed recovery statements of the stream, oldest first."""
        rows = self._rows(
            self._q("SELECT statement FROM log_recoveries WHERE account_id = ? AND feature = ? ORDER BY time"),
            (account_id, feature.code),
        )
        return [str(r[0]) for r in rows]

    def log_event_rows(
        self, account_id: int, feature: Feature, after_seq: int, up_to_seq: int, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """(seq, ts, body) of up to `limit` stored events with `after_seq < seq <= up_to_seq`, in seq
        order: what the backfill reads (a plain range read; no anti-join, whose plan degrades as
        the entries it writes grow)."""
        rows = self._rows(
            self._q(
                "SELECT seq, ts, body FROM events WHERE account_id = ? AND feature = ? AND seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?"
            ),
            (account_id, feature.code, after_seq, up_to_seq, limit),
        )
        return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]

    # writing ----------------------------------------------------------------------------------
    def add_log_entries(self, account_id: int, feature: Feature, entries: Sequence[tuple[int, bytes]]) -> int:
        """Store (index, entry) pairs of the backfill (ascending, none already stored), packed by
        runs of consecutive indices. Returns how many were written."""
        runs: list[tuple[int, list[bytes]]] = []
        for idx, entry in entries:
            if runs and runs[-1][0] + len(runs[-1][1]) == idx and len(runs[-1][1]) < ENTRIES_PER_ROW:
                runs[-1][1].append(entry)
            else:
                runs.append((idx, [entry]))
        written = 0
        with self._change("cannot store log entries") as conn:
            if not self._account_exists(conn, account_id):
                return 0  # deleted meanwhile: nothing of it may stay (SharedSQL._account_exists)
            for first, chunk in runs:
                cur = conn.execute(
                    self._q("INSERT INTO log_entries VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                    (account_id, feature.code, first, b"".join(chunk)),
                )
                written += len(chunk) if cur.rowcount == 1 else 0
        return written

    def log_integrated(
        self,
        account_id: int,
        feature: Feature,
        old_size: int,
        state: LogState,
        hashes: Sequence[tuple[int, int, bytes]],
    ) -> bool:
        """Record that the log grew from `old_size` to `state.size` and the new perfect-node hashes
        (level, index, hash), atomically; False (nothing written) when another integrator moved the
        state first or an integrity error stopped it, or the account was deleted."""
        with self._change("cannot record the log's integration") as conn:
            if not self._account_exists(conn, account_id):
                return False
            if old_size == 0:
                cur = conn.execute(
                    self._q("INSERT INTO log_state VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT DO NOTHING"),
                    (account_id, feature.code, state.size, state.root, state.updated_at),
                )
            else:
                cur = conn.execute(
                    self._q(
                        "UPDATE log_state SET size = ?, root = ?, updated_at = ? WHERE account_id = ?"
                        " AND feature = ? AND size = ? AND error IS NULL"
                    ),
                    (state.size, state.root, state.updated_at, account_id, feature.code, old_size),
                )
            if cur.rowcount != 1:
                return False
            for level, idx, h in hashes:
                conn.execute(
                    self._q("INSERT INTO log_hashes VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                    (account_id, feature.code, level, idx, h),
                )
        return True

    def set_log_error(self, account_id: int, feature: Feature, error: str | None, now: int) -> None:
        """Record (or, with None, clear) the integrity error that stops the stream's integration."""
        with self._change("cannot record the log's state") as conn:
            if not self._account_exists(conn, account_id):
                return
            conn.execute(
                self._q(
                    "INSERT INTO log_state VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (account_id, feature)"
                    " DO UPDATE SET error = excluded.error, updated_at = excluded.updated_at"
                ),
                (account_id, feature.code, b"", error, now),
            )

    def add_log_checkpoint(self, account_id: int, feature: Feature, checkpoint: StoredCheckpoint) -> None:
        """Keep a signed checkpoint; one already stored for that time is kept."""
        with self._change("cannot store the checkpoint") as conn:
            if not self._account_exists(conn, account_id):
                return
            conn.execute(
                self._q("INSERT INTO log_checkpoints VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                (account_id, feature.code, checkpoint.time, checkpoint.size, checkpoint.note),
            )

    def add_log_recovery(self, account_id: int, feature: Feature, time: int, statement: str) -> None:
        with self._change("cannot store the recovery statement") as conn:
            if not self._account_exists(conn, account_id):
                return
            conn.execute(
                self._q("INSERT INTO log_recoveries VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                (account_id, feature.code, time, statement),
            )

    def reset_log_state(self, account_id: int, feature: Feature, state: LogState) -> None:
        """Set the integration state as it is after a recovery (the tree as the store holds it)."""
        with self._change("cannot record the log's state") as conn:
            if not self._account_exists(conn, account_id):
                return
            conn.execute(
                self._q(
                    "INSERT INTO log_state VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT (account_id, feature)"
                    " DO UPDATE SET size = excluded.size, root = excluded.root, error = NULL,"
                    " updated_at = excluded.updated_at"
                ),
                (account_id, feature.code, state.size, state.root, state.updated_at),
            )
