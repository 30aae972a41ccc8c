"""SQLite backend: one file in WAL mode, one writer at a time, readers on per-thread connections.

With a single writer, seq order is commit order, so a reader can never see seq n+1 before seq n.
Several processes may share the file (SQLite's own locking serialises their writes).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from siemgate.errors import Conflict, NotFound, StoreError
from siemgate.model.features import Feature
from siemgate.store.base import (
    Account,
    EventRow,
    IngestKey,
    InsertResult,
    Integration,
    NewEvent,
    PageRows,
    Store,
    TokenRecord,
    TokenUse,
)
from siemgate.store.migrations import load_migrations

_UUID_CHUNK = 500
_CHECKPOINT_SECONDS = 0.5
_CHECKPOINT_WAL_BYTES = 32 * 1024 * 1024
_AUTOCHECKPOINT_PAGES = 50_000
_MAX_TS = 2**63 - 1
# The v1 view of a stored event, computed in SQL from the v1 cut (see model.encoding).
_V1_BODY = (
    "CASE WHEN v1_cut IS NULL THEN body ELSE substr(body, 1, v1_cut >> 2)"
    " || CASE WHEN v1_cut & 3 = 2 THEN X'7D7D' ELSE X'7D' END END"
)
# A bounded window with fewer rows than this is read through the timestamp index; larger or open
# windows are read along seq (docs/cursors.md, "Query plans").
_WINDOW_PLAN_MIN = 2000


def _features_text(features: Sequence[Feature]) -> str:
    return ",".join(f.value for f in features)


@functools.lru_cache(maxsize=64)
def _features(text: str) -> tuple[Feature, ...]:
    return tuple(Feature(f) for f in text.split(",") if f)


def _constraint(exc: sqlite3.IntegrityError) -> str:
    """A readable reason for an integrity error (never the values involved)."""
    text = str(exc)
    if "UNIQUE" in text:
        return "it already exists"
    if "FOREIGN KEY" in text:
        return "what it refers to does not exist"
    return "it violates a constraint"


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        account_id=row["account_id"],
        integration_id=row["integration_id"],
        name=row["name"],
        features=_features(row["features"]),
        kid=row["kid"],
        token_sha256=row["token_sha256"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def _ingest_key(row: sqlite3.Row) -> IngestKey:
    return IngestKey(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        features=_features(row["features"]),
        key_sha256=row["key_sha256"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def _account(row: sqlite3.Row) -> Account:
    return Account(id=row["id"], uuid=row["uuid"], name=row["name"], created_at=row["created_at"])


def _integration(row: sqlite3.Row) -> Integration:
    return Integration(
        id=row["id"],
        uuid=row["uuid"],
        account_id=row["account_id"],
        type=row["type"],
        name=row["name"],
        description=row["description"],
        created_at=row["created_at"],
    )


class SQLiteStore(Store):
    """Store on one SQLite file. Safe to share between threads."""

    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._writer = self._connect()
        self._closed = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    # connections --------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA mmap_size=1073741824")
            conn.execute("PRAGMA temp_store=MEMORY")
            # Checkpoints run in a background thread (_checkpoint_loop) so that writers do not pay
            # for copying the WAL into the database; this is only the backstop.
            conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {exc}") from None
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction at a time (BEGIN IMMEDIATE also locks out other processes)."""
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database off the write path, and keep the WAL file small."""
        conn = self._connect()
        wal = Path(f"{self.path}-wal")
        while not self._closed.wait(_CHECKPOINT_SECONDS):
            try:
                if wal.exists() and wal.stat().st_size > _CHECKPOINT_WAL_BYTES:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except (sqlite3.Error, OSError):
                continue  # busy or closing: try again next round

    def close(self) -> None:
        self._closed.set()
        if self._checkpointer.is_alive() and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=5)
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._write_lock:
            conn = self._writer
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in load_migrations("sqlite"):
                if migration.version in done:
                    continue
                record = f"({migration.version}, '{migration.name}', {time.time_ns()})"
                script = f"BEGIN IMMEDIATE;\n{migration.sql}\nINSERT INTO schema_migrations VALUES {record};\nCOMMIT;"
                try:
                    conn.executescript(script)
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise StoreError(f"migration {migration.version} ({migration.name}) failed: {exc}") from None
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        cur = self._reader().cursor()
        cur.row_factory = sqlite3.Row
        return cur.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any], what: str) -> sqlite3.Row:
        rows = self._rows(sql, params)
        if not rows:
            raise NotFound(f"{what} not found")
        return rows[0]

    # accounts -----------------------------------------------------------------------------------
    def create_account(self, uuid: str, name: str, now: int) -> Account:
        try:
            with self._write() as conn:
                cur = conn.execute("INSERT INTO accounts (uuid, name, created_at) VALUES (?, ?, ?)", (uuid, name, now))
                account_id = cur.lastrowid
        except sqlite3.IntegrityError:
            raise Conflict(f"an account named {name!r} already exists; choose another name") from None
        assert account_id is not None
        return Account(account_id, uuid, name, now)

    def get_account(self, uuid_or_name: str) -> Account:
        return _account(
            self._one(
                "SELECT * FROM accounts WHERE uuid = ? OR name = ? ORDER BY uuid = ? DESC LIMIT 1",
                (uuid_or_name, uuid_or_name, uuid_or_name),
                f"account {uuid_or_name!r}",
            )
        )

    def get_account_by_id(self, account_id: int) -> Account:
        return _account(self._one("SELECT * FROM accounts WHERE id = ?", (account_id,), f"account #{account_id}"))

    def list_accounts(self) -> list[Account]:
        return [_account(r) for r in self._rows("SELECT * FROM accounts ORDER BY id")]

    # integrations -------------------------------------------------------------------------------
    def create_integration(
        self, account_id: int, uuid: str, type: str, name: str, description: str, now: int
    ) -> Integration:
        try:
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO integrations (uuid, account_id, type, name, description, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (uuid, account_id, type, name, description, now),
                )
                integration_id = cur.lastrowid
        except sqlite3.IntegrityError as exc:
            if "integrations.account_id, integrations.name" in str(exc):
                raise Conflict(f"this account already has an integration named {name!r}") from None
            raise Conflict(f"cannot create integration {name!r}: {_constraint(exc)}") from None
        assert integration_id is not None
        return Integration(integration_id, uuid, account_id, type, name, description, now)

    def get_integration(self, account_id: int, uuid_or_name: str) -> Integration:
        return _integration(
            self._one(
                "SELECT * FROM integrations WHERE account_id = ? AND (uuid = ? OR name = ?)"
                " ORDER BY uuid = ? DESC LIMIT 1",
                (account_id, uuid_or_name, uuid_or_name, uuid_or_name),
                f"integration {uuid_or_name!r}",
            )
        )

    def get_integration_by_id(self, integration_id: int) -> Integration:
        return _integration(
            self._one("SELECT * FROM integrations WHERE id = ?", (integration_id,), f"integration #{integration_id}")
        )

    def list_integrations(self, account_id: int) -> list[Integration]:
        rows = self._rows("SELECT * FROM integrations WHERE account_id = ? ORDER BY id", (account_id,))
        return [_integration(r) for r in rows]

    # tokens -------------------------------------------------------------------------------------
    def create_token(self, record: TokenRecord) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO tokens (id, account_id, integration_id, name, features, kid, token_sha256,"
                    " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.account_id,
                        record.integration_id,
                        record.name,
                        _features_text(record.features),
                        record.kid,
                        record.token_sha256,
                        record.created_at,
                        record.expires_at,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"cannot record token {record.id}: {_constraint(exc)}") from None

    def get_token(self, token_id: str) -> TokenRecord:
        # Called on every Events API request: plain tuples, no Row objects.
        row = (
            self._reader()
            .execute(
                "SELECT id, account_id, integration_id, name, features, kid, token_sha256, created_at, expires_at,"
                " revoked_at, last_used_at FROM tokens WHERE id = ?",
                (token_id,),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"token {token_id!r} not found")
        return TokenRecord(
            id=row[0],
            account_id=row[1],
            integration_id=row[2],
            name=row[3],
            features=_features(row[4]),
            kid=row[5],
            token_sha256=row[6],
            created_at=row[7],
            expires_at=row[8],
            revoked_at=row[9],
            last_used_at=row[10],
        )

    def list_tokens(self, account_id: int | None = None) -> list[TokenRecord]:
        if account_id is None:
            rows = self._rows("SELECT * FROM tokens ORDER BY created_at, id")
        else:
            rows = self._rows("SELECT * FROM tokens WHERE account_id = ? ORDER BY created_at, id", (account_id,))
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str, now: int) -> TokenRecord:
        with self._write() as conn:
            conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, token_id))
        return self.get_token(token_id)

    def record_token_uses(self, uses: Sequence[TokenUse]) -> None:
        if not uses:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?",
                [(u.at, u.token_id) for u in uses],
            )
            conn.executemany(
                "INSERT INTO token_usage (token_id, feature, last_seq, last_used_at)"
                " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tokens WHERE id = ?)"
                " ON CONFLICT (token_id, feature) DO UPDATE SET last_seq = excluded.last_seq,"
                " last_used_at = excluded.last_used_at WHERE excluded.last_used_at >= token_usage.last_used_at",
                [
                    (u.token_id, u.feature.code, u.seq, u.at, u.token_id)
                    for u in uses
                    if u.feature is not None and u.seq is not None
                ],
            )

    def token_positions(self, token_id: str) -> dict[Feature, tuple[int, int]]:
        rows = self._reader().execute(
            "SELECT feature, last_seq, last_used_at FROM token_usage WHERE token_id = ?", (token_id,)
        )
        return {Feature.from_code(code): (seq, at) for code, seq, at in rows}

    def live_token_kids(self, now: int) -> set[str]:
        rows = self._reader().execute(
            "SELECT DISTINCT kid FROM tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
            (now,),
        )
        return {r[0] for r in rows}

    # ingest keys --------------------------------------------------------------------------------
    def create_ingest_key(self, key: IngestKey) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO ingest_keys (id, account_id, name, features, key_sha256, prefix, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        key.id,
                        key.account_id,
                        key.name,
                        _features_text(key.features),
                        key.key_sha256,
                        key.prefix,
                        key.created_at,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"cannot record ingest key {key.id}: {_constraint(exc)}") from None

    def get_ingest_key_by_hash(self, key_sha256: str) -> IngestKey:
        return _ingest_key(self._one("SELECT * FROM ingest_keys WHERE key_sha256 = ?", (key_sha256,), "ingest key"))

    def list_ingest_keys(self, account_id: int | None = None) -> list[IngestKey]:
        if account_id is None:
            rows = self._rows("SELECT * FROM ingest_keys ORDER BY created_at, id")
        else:
            rows = self._rows("SELECT * FROM ingest_keys WHERE account_id = ? ORDER BY created_at, id", (account_id,))
        return [_ingest_key(r) for r in rows]

    def revoke_ingest_key(self, key_id: str, now: int) -> IngestKey:
        with self._write() as conn:
            conn.execute("UPDATE ingest_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id))
        return _ingest_key(self._one("SELECT * FROM ingest_keys WHERE id = ?", (key_id,), f"ingest key {key_id!r}"))

    def touch_ingest_keys(self, last_used: dict[str, int]) -> None:
        if not last_used:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE ingest_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?",
                [(at, key_id) for key_id, at in last_used.items()],
            )

    # events -------------------------------------------------------------------------------------
    def insert_events(self, account_id: int, feature: Feature, events: Sequence[NewEvent]) -> InsertResult:
        if not events:
            return InsertResult([])
        code = feature.code
        with self._write() as conn:
            existing = self._existing_uuids(conn, account_id, code, [e.uuid for e in events])
            row = conn.execute(
                "SELECT head_seq, max_ts FROM streams WHERE account_id = ? AND feature = ?",
                (account_id, code),
            ).fetchone()
            head, max_ts = (row[0], row[1]) if row else (0, -(2**63))
            seqs: list[int | None] = []
            rows = []
            for event in events:
                if event.uuid in existing:
                    seqs.append(None)
                    continue
                existing.add(event.uuid)
                head += 1
                if event.ts > max_ts:
                    max_ts = event.ts
                seqs.append(head)
                rows.append((account_id, code, head, event.ts, max_ts, event.uuid, event.body, event.v1_cut))
            if rows:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                conn.execute(
                    "INSERT INTO streams (account_id, feature, head_seq, max_ts) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (account_id, feature) DO UPDATE SET head_seq = excluded.head_seq,"
                    " max_ts = excluded.max_ts",
                    (account_id, code, head, max_ts),
                )
        return InsertResult(seqs)

    @staticmethod
    def _existing_uuids(conn: sqlite3.Connection, account_id: int, code: int, uuids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(uuids), _UUID_CHUNK):
            chunk = uuids[i : i + _UUID_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in conn.execute(
                    f"SELECT uuid FROM events WHERE account_id = ? AND feature = ? AND uuid IN ({marks})",
                    (account_id, code, *chunk),
                )
            )
        return found

    def start_position(self, account_id: int, feature: Feature, start: int) -> int:
        conn = self._reader()
        code = feature.code
        # Two statements: SQLite answers a lone min() or max() from the primary key in O(log n).
        first = conn.execute("SELECT min(seq) FROM events WHERE account_id = ? AND feature = ?", (account_id, code))
        lo = first.fetchone()[0]
        if lo is None:
            return self.head_seq(account_id, feature)
        last = conn.execute("SELECT max(seq) FROM events WHERE account_id = ? AND feature = ?", (account_id, code))
        hi = last.fetchone()[0] + 1  # find the first seq in [lo, hi) whose max_ts >= start
        probe = "SELECT seq, max_ts FROM events WHERE account_id = ? AND feature = ? AND seq >= ? ORDER BY seq LIMIT 1"
        while lo < hi:
            mid = (lo + hi) // 2
            row = conn.execute(probe, (account_id, code, mid)).fetchone()
            if row is None or row[0] >= hi:
                hi = mid
            elif row[1] >= start:
                hi = row[0]
            else:
                lo = row[0] + 1
        return int(lo) - 1

    def _window_plan(
        self, conn: sqlite3.Connection, account_id: int, code: int, start: int, end: int | None, limit: int
    ) -> str:
        """Which index to read a window through: along seq (open or large windows) or by timestamp."""
        if end is None:
            return "seq"
        small = _WINDOW_PLAN_MIN + 4 * limit
        window = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM events INDEXED BY events_by_ts WHERE account_id = ?"
            " AND feature = ? AND ts BETWEEN ? AND ? LIMIT ?)",
            (account_id, code, start, end, small),
        ).fetchone()[0]
        return "ts" if window < small else "seq"

    @staticmethod
    def _window_sql(plan: str, columns: str) -> str:
        # `+ts` keeps SQLite from reading the timestamp index on the seq-ordered plan.
        if plan == "ts":
            return (
                f"SELECT {columns} FROM events INDEXED BY events_by_ts WHERE account_id = ? AND feature = ?"
                " AND seq > ? AND ts BETWEEN ? AND ? ORDER BY seq LIMIT ?"
            )
        return (
            f"SELECT {columns} FROM events WHERE account_id = ? AND feature = ? AND seq > ?"
            " AND +ts BETWEEN ? AND ? ORDER BY seq LIMIT ?"
        )

    def read_events(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int
    ) -> list[EventRow]:
        conn = self._reader()
        code = feature.code
        plan = self._window_plan(conn, account_id, code, start, end, limit)
        last = _MAX_TS if end is None else end
        sql = self._window_sql(plan, "seq, body, v1_cut")
        return conn.execute(sql, (account_id, code, after_seq, start, last, limit)).fetchall()

    def read_page(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int, *, v1: bool
    ) -> PageRows:
        conn = self._reader()
        code = feature.code
        plan = self._window_plan(conn, account_id, code, start, end, limit)
        last = _MAX_TS if end is None else end
        body = _V1_BODY if v1 else "body"
        # SQLite aggregates the subquery's rows in its ORDER BY order; the JSON is joined in C.
        inner = self._window_sql(plan, f"seq, {body} AS b")
        count, last_seq, items = conn.execute(
            f"SELECT count(*), max(seq), CAST(group_concat(b, ',') AS BLOB) FROM ({inner})",
            (account_id, code, after_seq, start, last, limit),
        ).fetchone()
        has_more = False
        if count == limit:
            probe = self._window_sql(plan, "1")
            has_more = conn.execute(probe, (account_id, code, last_seq, start, last, 1)).fetchone() is not None
        return PageRows(items or b"", count, last_seq, has_more)

    def head_seq(self, account_id: int, feature: Feature) -> int:
        row = (
            self._reader()
            .execute(
                "SELECT head_seq FROM streams WHERE account_id = ? AND feature = ?",
                (account_id, feature.code),
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    def count_events(self, account_id: int, feature: Feature) -> int:
        row = (
            self._reader()
            .execute("SELECT count(*) FROM events WHERE account_id = ? AND feature = ?", (account_id, feature.code))
            .fetchone()
        )
        return int(row[0])
