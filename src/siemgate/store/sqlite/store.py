"""SQLite backend: one file in WAL mode, one writer at a time, readers on per-thread connections.

With a single writer, seq order is commit order, so a reader can never see seq n+1 before seq n.
Several processes may share the file (SQLite's own locking serialises their writes).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from siemgate.errors import Conflict, NotFound, StoreError
from siemgate.model.features import Feature
from siemgate.private import private_file
from siemgate.store.base import (
    Account,
    ApiKey,
    EventRow,
    IngestKey,
    InsertResult,
    Integration,
    Member,
    NewEvent,
    PageRows,
    RetentionPolicy,
    Session,
    SigningKey,
    Store,
    StoredEvent,
    TokenRecord,
    TokenUse,
    User,
)
from siemgate.store.migrations import load_migrations
from siemgate.store.shared import facets as facet_sql
from siemgate.store.shared.alerts import AlertSQL
from siemgate.store.sqlite.errors import error_boundary, integrity_conflict
from siemgate.tlog.entry import entry_bytes

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
    """A readable reason for an integrity error, by its result code (never the values involved)."""
    return integrity_conflict(exc).message


_CREDENTIAL_COLUMNS = (
    "id, account_id, integration_id, name, features, kid, token_sha256, created_at, expires_at, revoked_at,"
    " last_used_at, replaces, revoke_at, revoke_on_replacement_use, created_by, expiry_warned_at, expiry_recorded_at"
)


def _token(row: Sequence[Any]) -> TokenRecord:
    """A TokenRecord from a row of _CREDENTIAL_COLUMNS (plain tuples: this runs on every request)."""
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
        replaces=row[11],
        revoke_at=row[12],
        revoke_on_replacement_use=bool(row[13]),
        created_by=row[14],
        expiry_warned_at=row[15],
        expiry_recorded_at=row[16],
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
        deleted_at=row["deleted_at"],
    )


def _user(row: sqlite3.Row, prefix: str = "") -> User:
    return User(
        id=row[prefix + "id"],
        uuid=row[prefix + "uuid"],
        email=row[prefix + "email"],
        name=row[prefix + "name"],
        password_hash=row[prefix + "password_hash"],
        home_account_id=row[prefix + "home_account_id"],
        created_at=row[prefix + "created_at"],
    )


_MEMBER_SELECT = (
    "SELECT u.id AS id, u.uuid AS uuid, u.email AS email, u.name AS name, u.password_hash AS password_hash,"
    " u.home_account_id AS home_account_id, u.created_at AS created_at, m.account_id AS account_id,"
    " m.role AS role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id"
)


def _member(row: sqlite3.Row) -> Member:
    return Member(user=_user(row), account_id=row["account_id"], role=row["role"], joined_at=row["joined_at"])


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        key_sha256=row["key_sha256"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        token_sha256=row["token_sha256"],
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_seen_at=row["last_seen_at"],
        ip=row["ip"],
        user_agent=row["user_agent"],
    )


_MAX_ROWS_PER_INSERT = 1024


@functools.lru_cache(maxsize=64)
def _values_sql(head: str, tail: str, width: int, count: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return f"{head} {','.join([row] * count)}{tail}"


def _insert_rows(conn: sqlite3.Connection, head: str, tail: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`head VALUES (..), (..), .. tail` for the rows, in order: one statement per power-of-two
    chunk (so that a few statement texts are prepared and cached) instead of executemany's one
    step per row. Each step releases and retakes the GIL, and while another request's thread
    waits for it that was a thread switch per row (docs/benchmarks.md, "Ingest")."""
    width = len(rows[0]) if rows else 0
    done = 0
    while done < len(rows):
        count = min(1 << ((len(rows) - done).bit_length() - 1), _MAX_ROWS_PER_INSERT)
        chunk = rows[done : done + count]
        conn.execute(_values_sql(head, tail, width, count), list(itertools.chain.from_iterable(chunk)))
        done += count


@error_boundary
class SQLiteStore(AlertSQL, Store):
    """Store on one SQLite file. Safe to share between threads."""

    _mark = "?"
    _for_update = ""
    log_entries_on = True  # off only in the benchmark that measures what the log costs

    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 before SQLite opens it; SQLite gives its -wal and -shm files the database's mode.
        for name in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            if name == self.path or name.exists():
                private_file(name)
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
            # Temporary data in files (cached by SQLite and the OS; nothing is written for small
            # sorts): with temp_store=MEMORY SQLite's sorter allocates every row on its own, which
            # made a 90-day count of 600,000 events ~30 % slower, serialised parallel ones on the
            # allocator, and left ~40 ms of frees to the connection's next statement
            # (docs/benchmarks.md, "Console on a million events").
            conn.execute("PRAGMA temp_store=FILE")
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

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader in a read transaction: every statement in the block sees the same
        snapshot of the file (WAL), whatever commits meanwhile (docs/cursors.md, "One snapshot per page")."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
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
            # Table rebuilds (see 0002) need foreign keys off; references are checked after each migration.
            conn.execute("PRAGMA foreign_keys=OFF")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
                )
                done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                for migration in load_migrations("sqlite"):
                    if migration.version not in done:
                        self._apply(conn, migration.version, migration.name, migration.sql)
                        applied.append(f"{migration.version:04d}_{migration.name}")
            finally:
                conn.execute("PRAGMA foreign_keys=ON")
        return applied

    @staticmethod
    def _apply(conn: sqlite3.Connection, version: int, name: str, sql: str) -> None:
        record = f"({version}, '{name}', {time.time_ns()})"
        script = f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO schema_migrations VALUES {record};\nCOMMIT;"
        try:
            conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"migration {version} ({name}) failed: {exc}") from None
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise StoreError(f"migration {version} ({name}) left broken references: {broken[:5]}")

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

    def rename_account(self, account_id: int, name: str) -> Account:
        try:
            with self._write() as conn:
                cur = conn.execute("UPDATE accounts SET name = ? WHERE id = ?", (name, account_id))
        except sqlite3.IntegrityError:
            raise Conflict(f"an account named {name!r} already exists; choose another name") from None
        if cur.rowcount == 0:
            raise NotFound(f"account #{account_id} not found")
        return self.get_account_by_id(account_id)

    # people ---------------------------------------------------------------------------------------
    def create_user(
        self, uuid: str, email: str, name: str, password_hash: str | None, home_account_id: int | None, now: int
    ) -> User:
        try:
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO users (uuid, email, name, password_hash, home_account_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (uuid, email, name, password_hash, home_account_id, now),
                )
                user_id = cur.lastrowid
        except sqlite3.IntegrityError as exc:
            if "users.email" in str(exc):
                raise Conflict(f"a person with the email {email!r} already exists") from None
            raise Conflict(f"cannot create the person {email!r}: {_constraint(exc)}") from None
        assert user_id is not None
        return User(user_id, uuid, email, name, password_hash, home_account_id, now)

    def get_user(self, uuid_or_email: str) -> User:
        return _user(
            self._one(
                "SELECT * FROM users WHERE uuid = ? OR email = ? ORDER BY uuid = ? DESC LIMIT 1",
                (uuid_or_email, uuid_or_email, uuid_or_email),
                f"person {uuid_or_email!r}",
            )
        )

    def get_user_by_id(self, user_id: int) -> User:
        return _user(self._one("SELECT * FROM users WHERE id = ?", (user_id,), f"person #{user_id}"))

    def set_password(self, user_id: int, password_hash: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    def add_member(self, account_id: int, user_id: int, role: str, now: int) -> Member:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
                    (account_id, user_id, role, now),
                )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise Conflict("this person is already a member of the account") from None
            raise Conflict(f"cannot add the member: {_constraint(exc)}") from None
        return self.get_member(account_id, user_id)

    def get_member(self, account_id: int, user_id: int) -> Member:
        return _member(
            self._one(
                f"{_MEMBER_SELECT} WHERE m.account_id = ? AND m.user_id = ?",
                (account_id, user_id),
                "membership",
            )
        )

    @staticmethod
    def _owners_after(conn: sqlite3.Connection, account_id: int) -> int:
        return int(
            conn.execute(
                "SELECT count(*) FROM memberships WHERE account_id = ? AND role = 'owner'", (account_id,)
            ).fetchone()[0]
        )

    def set_role(self, account_id: int, user_id: int, role: str) -> Member:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE memberships SET role = ? WHERE account_id = ? AND user_id = ?", (role, account_id, user_id)
            )
            if cur.rowcount == 0:
                raise NotFound("this person is not a member of the account")
            if self._owners_after(conn, account_id) == 0:
                raise Conflict("the account must keep at least one owner; make someone else owner first")
        return self.get_member(account_id, user_id)

    def remove_member(self, account_id: int, user_id: int) -> None:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM memberships WHERE account_id = ? AND user_id = ?", (account_id, user_id))
            if cur.rowcount == 0:
                raise NotFound("this person is not a member of the account")
            if self._owners_after(conn, account_id) == 0:
                raise Conflict("the account must keep at least one owner; make someone else owner first")

    def list_members(self, account_id: int, after_user_id: int = 0, limit: int = 1000) -> list[Member]:
        rows = self._rows(
            f"{_MEMBER_SELECT} WHERE m.account_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?",
            (account_id, after_user_id, limit),
        )
        return [_member(r) for r in rows]

    def list_memberships(self, user_id: int) -> list[Member]:
        rows = self._rows(f"{_MEMBER_SELECT} WHERE m.user_id = ? ORDER BY m.account_id", (user_id,))
        return [_member(r) for r in rows]

    # personal API keys and sessions ---------------------------------------------------------------
    def create_api_key(self, key: ApiKey) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO api_keys (id, user_id, name, key_sha256, prefix, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key.id, key.user_id, key.name, key.key_sha256, key.prefix, key.created_at, key.expires_at),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"cannot record API key {key.id}: {_constraint(exc)}") from None

    def get_api_key_by_hash(self, key_sha256: str) -> ApiKey:
        return _api_key(self._one("SELECT * FROM api_keys WHERE key_sha256 = ?", (key_sha256,), "API key"))

    def list_api_keys(self, user_id: int) -> list[ApiKey]:
        return [
            _api_key(r) for r in self._rows("SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at", (user_id,))
        ]

    def revoke_api_key(self, user_id: int, key_id: str, now: int) -> ApiKey:
        with self._write() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                (now, key_id, user_id),
            )
        return _api_key(
            self._one("SELECT * FROM api_keys WHERE id = ? AND user_id = ?", (key_id, user_id), f"API key {key_id!r}")
        )

    def touch_api_keys(self, last_used: dict[str, int]) -> None:
        if not last_used:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?",
                [(at, key_id) for key_id, at in last_used.items()],
            )

    def create_session(self, session: Session) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sessions (id, user_id, token_sha256, csrf_token, created_at, expires_at, last_seen_at,"
                " ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.user_id,
                    session.token_sha256,
                    session.csrf_token,
                    session.created_at,
                    session.expires_at,
                    session.last_seen_at,
                    session.ip,
                    session.user_agent,
                ),
            )

    def get_session_by_hash(self, token_sha256: str) -> Session:
        return _session(self._one("SELECT * FROM sessions WHERE token_sha256 = ?", (token_sha256,), "session"))

    def touch_session(self, session_id: str, now: int, expires_at: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?", (now, expires_at, session_id)
            )

    def delete_session(self, session_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def delete_sessions(self, user_id: int) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

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
                "SELECT * FROM integrations WHERE account_id = ? AND (uuid = ? OR name = ?) AND deleted_at IS NULL"
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
        rows = self._rows(
            "SELECT * FROM integrations WHERE account_id = ? AND deleted_at IS NULL ORDER BY id", (account_id,)
        )
        return [_integration(r) for r in rows]

    def update_integration(self, integration_id: int, name: str, description: str) -> Integration:
        try:
            with self._write() as conn:
                cur = conn.execute(
                    "UPDATE integrations SET name = ?, description = ? WHERE id = ? AND deleted_at IS NULL",
                    (name, description, integration_id),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"this account already has an integration named {name!r}") from None
        if cur.rowcount == 0:
            raise NotFound(f"integration #{integration_id} not found")
        return self.get_integration_by_id(integration_id)

    def delete_integration(self, integration_id: int, now: int) -> list[str]:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE integrations SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", (now, integration_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"integration #{integration_id} not found")
            revoked = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM tokens WHERE integration_id = ? AND revoked_at IS NULL", (integration_id,)
                )
            ]
            conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE integration_id = ? AND revoked_at IS NULL",
                (now, integration_id),
            )
        return revoked

    # tokens -------------------------------------------------------------------------------------
    def create_token(self, record: TokenRecord) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO tokens (id, account_id, integration_id, name, features, kid, token_sha256,"
                    " created_at, expires_at, replaces, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        record.replaces,
                        record.created_by,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"cannot record token {record.id}: {_constraint(exc)}") from None

    def get_token(self, token_id: str) -> TokenRecord:
        row = self._reader().execute(f"SELECT {_CREDENTIAL_COLUMNS} FROM tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"token {token_id!r} not found")
        return _token(row)

    def token_revocation(self, token_id: str) -> tuple[int | None, int | None]:
        row = self._reader().execute("SELECT revoked_at, revoke_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"token {token_id!r} not found")
        return row[0], row[1]

    def list_tokens(self, account_id: int | None = None, integration_id: int | None = None) -> list[TokenRecord]:
        where, params = [], []
        if account_id is not None:
            where.append("account_id = ?")
            params.append(account_id)
        if integration_id is not None:
            where.append("integration_id = ?")
            params.append(integration_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._reader().execute(
            f"SELECT {_CREDENTIAL_COLUMNS} FROM tokens{clause} ORDER BY created_at, id", params
        )
        return [_token(r) for r in rows]

    def schedule_revocation(self, token_id: str, revoke_at: int | None, on_replacement_use: bool) -> None:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE tokens SET revoke_at = ?, revoke_on_replacement_use = ? WHERE id = ?",
                (revoke_at, int(on_replacement_use), token_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"token {token_id!r} not found")

    def mark_token(
        self, token_id: str, *, expiry_warned_at: int | None = None, expiry_recorded_at: int | None = None
    ) -> None:
        with self._write() as conn:
            if expiry_warned_at is not None:
                conn.execute("UPDATE tokens SET expiry_warned_at = ? WHERE id = ?", (expiry_warned_at, token_id))
            if expiry_recorded_at is not None:
                conn.execute("UPDATE tokens SET expiry_recorded_at = ? WHERE id = ?", (expiry_recorded_at, token_id))

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

    # signing keys and secrets ---------------------------------------------------------------------
    def signing_keys(self) -> list[SigningKey]:
        rows = self._reader().execute("SELECT kid, pem, created_at, active FROM signing_keys ORDER BY created_at, kid")
        return [SigningKey(kid, bytes(pem), created_at, bool(active)) for kid, pem, created_at, active in rows]

    def add_signing_key(self, key: SigningKey) -> None:
        try:
            with self._write() as conn:
                if key.active:
                    conn.execute("UPDATE signing_keys SET active = 0 WHERE active = 1")
                conn.execute(
                    "INSERT INTO signing_keys (kid, pem, created_at, active) VALUES (?, ?, ?, ?)",
                    (key.kid, key.pem, key.created_at, int(key.active)),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"signing key {key.kid} already exists") from None

    def delete_signing_keys(self, kids: Iterable[str]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM signing_keys WHERE kid = ? AND active = 0", [(k,) for k in sorted(kids)])

    def secret(self, name: str, new_value: bytes, now: int) -> bytes:
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO secrets (name, value, created_at) VALUES (?, ?, ?)", (name, new_value, now)
            )
            row = conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])

    # events -------------------------------------------------------------------------------------
    def insert_events(self, account_id: int, feature: Feature, events: Sequence[NewEvent]) -> InsertResult:
        if not events:
            return InsertResult([])
        code = feature.code
        with self._write() as conn:
            row = conn.execute(
                "SELECT head_seq, max_ts FROM streams WHERE account_id = ? AND feature = ?",
                (account_id, code),
            ).fetchone()
            head, max_ts = (row[0], row[1]) if row else (0, -(2**63))
            stamped_again = self._stamped_before(conn, account_id, code, events)
            fresh = [i for i, event in enumerate(events) if event.uuid not in stamped_again]
            # Seqs are dense (docs/cursors.md, "Sequence"): the batch is written with consecutive
            # seqs; when the unique (ts, uuid) index turned some away as duplicates (of the stream or
            # of an earlier row of this batch), it is written again without them.
            conn.execute("SAVEPOINT batch")
            stored = self._insert_batch(conn, account_id, code, head, max_ts, events, fresh)
            if stored < len(fresh):
                kept = self._seqs_present(conn, account_id, code, head + 1, head + len(fresh))
                fresh = [i for n, i in enumerate(fresh, start=head + 1) if n in kept]
                conn.execute("ROLLBACK TO batch")
                self._insert_batch(conn, account_id, code, head, max_ts, events, fresh)
            conn.execute("RELEASE batch")
            seqs: list[int | None] = [None] * len(events)
            for seq, i in enumerate(fresh, start=head + 1):
                seqs[i] = seq
            facet_rows = [
                (account_id, code, events[i].ts, seq, *facets)
                for seq, i in enumerate(fresh, start=head + 1)
                if (facets := events[i].facets) is not None
            ]
            if facet_rows:
                _insert_rows(conn, "INSERT INTO facets VALUES", "", facet_rows)
            if fresh and self.log_entries_on:  # the stream's log, in the same transaction (docs/integrity.md)
                entries = b"".join([entry_bytes(events[i].ts, events[i].body) for i in fresh])
                try:  # one row: the batch's entries from index `head` (seq head + 1) on
                    conn.execute("INSERT INTO log_entries VALUES (?, ?, ?, ?)", (account_id, code, head, entries))
                except sqlite3.IntegrityError:
                    raise StoreError(
                        f"cannot store the events: the log of the stream already has an entry at index {head}"
                        " or after, for a seq never given (an integrity error: docs/integrity.md)"
                    ) from None
            if fresh:
                conn.execute(
                    "INSERT INTO streams (account_id, feature, head_seq, max_ts) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (account_id, feature) DO UPDATE SET head_seq = excluded.head_seq,"
                    " max_ts = excluded.max_ts",
                    (account_id, code, head + len(fresh), max([max_ts, *(events[i].ts for i in fresh)])),
                )
        return InsertResult(seqs)

    @staticmethod
    def _insert_batch(
        conn: sqlite3.Connection,
        account_id: int,
        code: int,
        head: int,
        max_ts: int,
        events: Sequence[NewEvent],
        chosen: Sequence[int],
    ) -> int:
        """Insert events[i] for i in `chosen` with seqs head + 1, head + 2, ...; duplicates of the
        (ts, uuid) index are skipped. Returns how many rows were stored."""
        rows = []
        for seq, i in enumerate(chosen, start=head + 1):
            event = events[i]
            max_ts = max(max_ts, event.ts)
            rows.append((account_id, code, seq, event.ts, max_ts, event.uuid, event.body, event.v1_cut))
        before = conn.total_changes
        tail = " ON CONFLICT (account_id, feature, ts, uuid) DO NOTHING"
        _insert_rows(conn, "INSERT INTO events VALUES", tail, rows)
        return conn.total_changes - before

    @staticmethod
    def _seqs_present(conn: sqlite3.Connection, account_id: int, code: int, first: int, last: int) -> set[int]:
        rows = conn.execute(
            "SELECT seq FROM events WHERE account_id = ? AND feature = ? AND seq BETWEEN ? AND ?",
            (account_id, code, first, last),
        )
        return {int(r[0]) for r in rows}

    @staticmethod
    def _stamped_before(conn: sqlite3.Connection, account_id: int, code: int, events: Sequence[NewEvent]) -> set[str]:
        """Of the events that came without a timestamp, the uuids already seen that way; records the rest."""
        uuids = [e.uuid for e in events if e.ts_assigned]
        if not uuids:
            return set()
        found: set[str] = set()
        for i in range(0, len(uuids), 500):
            chunk = uuids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in conn.execute(
                    f"SELECT uuid FROM stamped_uuids WHERE account_id = ? AND feature = ? AND uuid IN ({marks})",
                    (account_id, code, *chunk),
                )
            )
        conn.executemany(
            "INSERT OR IGNORE INTO stamped_uuids VALUES (?, ?, ?)",
            [(account_id, code, u) for u in uuids if u not in found],
        )
        return found

    def start_position(self, account_id: int, feature: Feature, start: int) -> int:
        with self._snapshot() as conn:
            return self._start_position(conn, account_id, feature.code, start)

    @staticmethod
    def _start_position(conn: sqlite3.Connection, account_id: int, code: int, start: int) -> int:
        # Two statements: SQLite answers a lone min() or max() from the primary key in O(log n).
        first = conn.execute("SELECT min(seq) FROM events WHERE account_id = ? AND feature = ?", (account_id, code))
        lo = first.fetchone()[0]
        if lo is None:  # the head of the same snapshot: whatever is stored after it comes after the cursor
            head = conn.execute("SELECT head_seq FROM streams WHERE account_id = ? AND feature = ?", (account_id, code))
            row = head.fetchone()
            return int(row[0]) if row else 0
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
            "SELECT count(*) FROM (SELECT 1 FROM events INDEXED BY events_by_time WHERE account_id = ?"
            " AND feature = ? AND ts BETWEEN ? AND ? LIMIT ?)",
            (account_id, code, start, end, small),
        ).fetchone()[0]
        return "ts" if window < small else "seq"

    @staticmethod
    def _window_sql(plan: str, columns: str) -> str:
        # `+ts` keeps SQLite from reading the timestamp index on the seq-ordered plan.
        if plan == "ts":
            return (
                f"SELECT {columns} FROM events INDEXED BY events_by_time WHERE account_id = ? AND feature = ?"
                " AND seq > ? AND ts BETWEEN ? AND ? ORDER BY seq LIMIT ?"
            )
        return (
            f"SELECT {columns} FROM events WHERE account_id = ? AND feature = ? AND seq > ?"
            " AND +ts BETWEEN ? AND ? ORDER BY seq LIMIT ?"
        )

    def read_events(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int
    ) -> list[EventRow]:
        code = feature.code
        last = _MAX_TS if end is None else end
        with self._snapshot() as conn:
            plan = self._window_plan(conn, account_id, code, start, end, limit)
            sql = self._window_sql(plan, "seq, body, v1_cut")
            return conn.execute(sql, (account_id, code, after_seq, start, last, limit)).fetchall()

    def read_page(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int, *, v1: bool
    ) -> PageRows:
        code = feature.code
        last = _MAX_TS if end is None else end
        body = _V1_BODY if v1 else "body"
        with self._snapshot() as conn:  # the plan, the page and has_more from one snapshot
            plan = self._window_plan(conn, account_id, code, start, end, limit)
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

    def facet_counts(
        self,
        account_id: int,
        feature: Feature,
        start: int,
        end: int,
        group_by: Sequence[str],
        *,
        bucket_ns: int | None = None,
        filters: Mapping[str, str] | None = None,
        limit: int = 1000,
    ) -> list[tuple[Any, ...]]:
        sql, params = facet_sql.count_query(group_by, bucket_ns, filters, "?")
        return self._reader().execute(sql, (account_id, feature.code, start, end, *params, limit)).fetchall()

    def search_events(
        self,
        account_id: int,
        feature: Feature,
        start: int,
        end: int,
        filters: Mapping[str, str] | None,
        before: tuple[int, int] | None,
        limit: int,
    ) -> list[tuple[int, int, bytes]]:
        if before is not None:
            end = min(end, before[0])
        sql, params = facet_sql.search_query(account_id, feature.code, start, end, filters, before, limit, "?")
        rows = self._reader().execute(sql, params).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

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

    def count_events(self, account_id: int, feature: Feature, after_seq: int = 0) -> int:
        row = (
            self._reader()
            .execute(
                "SELECT count(*) FROM events WHERE account_id = ? AND feature = ? AND seq > ?",
                (account_id, feature.code, after_seq),
            )
            .fetchone()
        )
        return int(row[0])

    def first_unread_time(self, account_id: int, feature: Feature, after_seq: int) -> int | None:
        row = (
            self._reader()
            .execute(
                "SELECT max_ts FROM events WHERE account_id = ? AND feature = ? AND seq > ? ORDER BY seq LIMIT 1",
                (account_id, feature.code, after_seq),
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

    # alert rules, evaluation state, alerts and deliveries: store/shared/alerts.py --------------------
    @contextmanager
    def _alert_tx(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            with self._write() as conn:
                yield conn
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"{what}: {_constraint(exc)}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"{what}: SQLite refused it ({type(exc).__name__})") from None

    # retention ----------------------------------------------------------------------------------
    def retention_policies(self, account_id: int) -> dict[Feature, RetentionPolicy]:
        rows = self._reader().execute(
            "SELECT feature, days, archive, updated_at FROM retention_policies WHERE account_id = ?", (account_id,)
        )
        return {
            Feature.from_code(code): RetentionPolicy(account_id, Feature.from_code(code), days, archive, updated_at)
            for code, days, archive, updated_at in rows
        }

    def set_retention_policy(self, policy: RetentionPolicy) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO retention_policies VALUES (?, ?, ?, ?, ?)",
                    (policy.account_id, policy.feature.code, policy.days, policy.archive, policy.updated_at),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"cannot save the retention policy: {_constraint(exc)}") from None

    # retention: reading by time, purging ---------------------------------------------------------
    def iter_events(
        self, account_id: int, feature: Feature, start_ts: int, end_ts: int, batch: int = 5000
    ) -> Iterator[list[StoredEvent]]:
        conn = self._reader()
        code = feature.code
        after: tuple[int, str] | None = None
        sql = (
            "SELECT seq, ts, uuid, body FROM events INDEXED BY events_by_time WHERE account_id = ? AND feature = ?"
            " AND ts >= ? AND ts < ?"
        )
        while True:
            if after is None:
                rows = conn.execute(sql + " ORDER BY ts, uuid LIMIT ?", (account_id, code, start_ts, end_ts, batch))
            else:
                rows = conn.execute(
                    sql + " AND (ts > ? OR (ts = ? AND uuid > ?)) ORDER BY ts, uuid LIMIT ?",
                    (account_id, code, start_ts, end_ts, after[0], after[0], after[1], batch),
                )
            page = [(int(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]
            if not page:
                return
            yield page
            after = (page[-1][1], page[-1][2])
            if len(page) < batch:
                return

    def purge_events(self, account_id: int, feature: Feature, before_ts: int, *, max_seq: int | None = None) -> int:
        code = feature.code
        limit = _MAX_TS if max_seq is None else max_seq
        with self._write() as conn:
            before = conn.total_changes
            conn.execute(
                "DELETE FROM events WHERE account_id = ? AND feature = ? AND ts < ? AND seq <= ?",
                (account_id, code, before_ts, limit),
            )
            deleted = conn.total_changes - before
            has_facets = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'facets'").fetchone()
            if has_facets:  # the explorer's per-event rows go with their events
                conn.execute(
                    "DELETE FROM facets WHERE account_id = ? AND feature = ? AND ts < ? AND seq <= ?",
                    (account_id, code, before_ts, limit),
                )
        return deleted
