"""SQLiteStore's plumbing: one file in WAL mode, one writer connection (one write transaction at a
time), a reader connection per thread, WAL checkpoints off the write path, and migrations. The
shared SQL runs through `_tx` and `_rows` (store/shared/dialect.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from siemgate.errors import ConfigError, StoreError
from siemgate.private import private_file, unusable
from siemgate.store.errors import too_long
from siemgate.store.migrations import APPLIED, Migration, pending_migrations, recorded
from siemgate.store.sqlite.errors import translate

_CHECKPOINT_SECONDS = 0.5
_CHECKPOINT_WAL_BYTES = 32 * 1024 * 1024
_AUTOCHECKPOINT_PAGES = 50_000
_PROGRESS_STEPS = 10_000  # SQLite virtual-machine steps between two looks at a read's deadline (~1 ms)


class SQLiteBase:
    """Connections and transactions for one SQLite file. Safe to share between threads."""

    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600 before SQLite opens it; SQLite gives its -wal and -shm files the database's mode.
            for name in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                if name == self.path or name.exists():
                    private_file(name)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the SQLite store at {self.path} (SIEMGATE_DATA_DIR or SIEMGATE_DATABASE_URL):"
                f" {unusable(exc)}"
            ) from None
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
                for migration in self._pending(conn):
                    try:
                        self._apply(conn, migration.version, migration.name, migration.sql)
                    except StoreError:
                        # another process (a server and a CLI command started together after an
                        # upgrade) applied it since the list was read: its transaction recorded it,
                        # so ours, applying it again, failed and was rolled back whole
                        if conn.execute(f"SELECT 1 FROM {APPLIED} WHERE version = ?", (migration.version,)).fetchone():
                            continue
                        raise
                    applied.append(f"{migration.version:04d}_{migration.name}")
            finally:
                conn.execute("PRAGMA foreign_keys=ON")
        return applied

    @staticmethod
    def _pending(conn: sqlite3.Connection) -> list[Migration]:
        """The pending migrations: a read when the table of applied migrations exists (every
        start, a read-only command's too, must not wait for a writer such as a server's ingest),
        else in a write transaction of their own (pending_migrations creates it, once, with the
        guard view)."""
        if recorded(conn, "sqlite"):
            return pending_migrations(conn, "sqlite")
        conn.execute("BEGIN IMMEDIATE")
        try:
            pending = pending_migrations(conn, "sqlite")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return pending

    @staticmethod
    def _apply(conn: sqlite3.Connection, version: int, name: str, sql: str) -> None:
        """Apply one migration in one transaction, committed only if no row then refers to a row
        that does not exist (checked before COMMIT: a refused migration is not recorded, and the
        next start refuses it again). Raises StoreError."""
        record = f"({version}, '{name}', {time.time_ns()})"
        script = f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO {APPLIED} VALUES {record};"
        try:
            conn.executescript(script)
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                conn.execute("ROLLBACK")
                shown = ", ".join(f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in broken[:5])
                raise StoreError(
                    f"migration {version} ({name}) not applied: the store has broken references ({shown}"
                    f"{', ...' if len(broken) > 5 else ''}), rows referring to rows that do not exist;"
                    " restore the store from a backup, or remove those rows, then start again"
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"migration {version} ({name}) failed: {exc}") from None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read, as plain tuples, on this thread's reader."""
        return self._reader().execute(sql, params).fetchall()

    def _rows_within(
        self, sql: str, params: Sequence[Any], seconds: float, bodies: bool = False
    ) -> list[tuple[Any, ...]]:
        """`_rows`, interrupted once it has run `seconds` (SQLite calls the progress handler every
        _PROGRESS_STEPS virtual-machine steps): Unavailable (store.errors.too_long)."""
        conn = self._reader()
        deadline = time.monotonic() + seconds
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted":
                raise too_long(seconds) from None
            raise translate(exc, "the read failed") from None
        finally:
            conn.set_progress_handler(None, 0)

    @contextmanager
    def _tx(self, what: str = "the write failed") -> Iterator[sqlite3.Connection]:
        """A write transaction whose sqlite3 errors leave as siemgate errors (sqlite/errors.py)."""
        try:
            with self._write() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise translate(exc, what) from None
