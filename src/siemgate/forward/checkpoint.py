"""Durable cursors: one SQLite file, one row per stream, committed atomically.

The forwarder commits a page's cursor only after every sink acknowledged the page's events
(docs/forwarding.md), so the stored cursor is always at or behind what was delivered: a crash
re-delivers at most the unacknowledged pages and never skips one.

A stream that has never delivered anything still gets a row when it starts (`begin`), holding the
`start_time` of its first reset: a restart before the first commit resets from the same time, so
a default of "now - 1 h" cannot move forward across a crash and open a gap.

The database file itself is locked (flock) while open, so two forwarders never share one state
file: no separate lock file that could be deleted under a running forwarder (SQLite's own locks
are POSIX record locks, which flock does not touch; the descriptor is closed after SQLite's).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from siemgate.forward.errors import ForwardConfigError
from siemgate.model.timestamps import format_ns, now_ns
from siemgate.tlog.durable import create_durably, remove_dead_temporaries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    stream      TEXT PRIMARY KEY,
    cursor      TEXT,
    start_time  TEXT,
    events      INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL
)
"""


_COLUMNS = ("stream", "cursor", "start_time", "events", "updated_at")
_SELECT_ALL = "SELECT stream, cursor, start_time, events, updated_at FROM checkpoints ORDER BY 1"


@dataclass(frozen=True, slots=True)
class Position:
    """A stream's durable state: its cursor (None before the first commit) and its reset start."""

    stream: str
    cursor: str | None
    start_time: str | None
    events: int
    updated_at: str


class CheckpointStore:
    """Cursor checkpoints in the SQLite file `path` (created with its folder when missing).

    Raises ForwardConfigError when the file cannot be opened or another process holds it.
    Thread-safe: a forwarder's pipelines, each on its thread, share it; each call holds `_lock`
    (the one connection's transactions must not interleave).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                create_durably(self.path, _new_file(), 0o600)
            self._lock_fd = os.open(self.path, os.O_RDWR)
        except OSError as exc:
            raise ForwardConfigError(f"cannot create the checkpoint file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise ForwardConfigError(
                f"the checkpoint file {self.path} is in use by another forwarder; stop it first, or give this"
                " one its own state (forwarder.state_dir)"
            ) from None
        remove_dead_temporaries(self.path)  # left by a forwarder killed while creating the file
        db: sqlite3.Connection | None = None
        if _emptied(self.path):
            self._release()
            raise ForwardConfigError(_EMPTIED.format(path=self.path))
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
            problem = _damage(db)
        except sqlite3.Error as exc:
            problem = str(exc)
        if db is None or problem is not None:
            if db is not None:
                db.close()
            self._release()
            raise ForwardConfigError(_unusable(self.path, problem)) from None
        self._db = db
        self._lock = threading.Lock()

    def _release(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def load(self, stream: str) -> Position | None:
        with self._lock:
            row = self._db.execute(
                "SELECT stream, cursor, start_time, events, updated_at FROM checkpoints WHERE stream = ?", (stream,)
            ).fetchone()
        return None if row is None else Position(*row)

    def all(self) -> list[Position]:
        with self._lock:
            return [Position(*row) for row in self._db.execute(_SELECT_ALL)]

    def begin(self, stream: str, start_time: str) -> Position:
        """The stream's position, creating it with `start_time` (its first reset) when new."""
        with self._lock:
            self._db.execute(
                "INSERT INTO checkpoints (stream, cursor, start_time, events, updated_at) VALUES (?, NULL, ?, 0, ?)"
                " ON CONFLICT (stream) DO NOTHING",
                (stream, start_time, format_ns(now_ns())),
            )
        position = self.load(stream)
        assert position is not None
        return position

    def commit(self, updates: Iterable[tuple[str, str, int]]) -> None:
        """Store each (stream, cursor, events delivered since the last commit) in one transaction."""
        rows = list(updates)
        if not rows:
            return
        now = format_ns(now_ns())
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for stream, cursor, delivered in rows:
                    self._db.execute(
                        "INSERT INTO checkpoints (stream, cursor, start_time, events, updated_at)"
                        " VALUES (?, ?, NULL, ?, ?) ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor,"
                        " events = checkpoints.events + excluded.events, updated_at = excluded.updated_at",
                        (stream, cursor, delivered, now),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete(self, stream: str) -> bool:
        """Forget a stream (its next start is a reset). True when there was something to forget."""
        with self._lock:
            return self._db.execute("DELETE FROM checkpoints WHERE stream = ?", (stream,)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._release()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _new_file() -> bytes:
    """A checkpoint file holding its table and no row. It is put in place whole (create_durably):
    created empty and then given its table, a forwarder killed in between left an empty file,
    which the next start refused as a file cut to nothing."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(_SCHEMA)
        return db.serialize()
    finally:
        db.close()


def _damage(db: sqlite3.Connection) -> str | None:
    """What is wrong with an open checkpoint file (a table edited by hand, damaged pages), or None."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(checkpoints)")]
    if columns != list(_COLUMNS):
        return f"its checkpoints table has the columns {', '.join(columns)}, not {', '.join(_COLUMNS)}"
    found = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    return None if found == ["ok"] else "the file is damaged: " + "; ".join(found)


_EMPTIED = (
    "the checkpoint file {path} is empty: it was cut to nothing, and starting again from start_time could"
    " skip events. Restore it from a backup, or delete it to start every stream from its start_time"
)


def _emptied(path: Path) -> bool:
    """The file exists and is empty: no forwarder leaves it so (it is created whole, with its
    table), so it was truncated, and opening it would silently forget every stream's position."""
    try:
        return path.stat().st_size == 0
    except FileNotFoundError:
        return False


def _unusable(path: Path, problem: str | None) -> str:
    return (
        f"cannot use the checkpoint file {path}: {problem}. Restore it from a backup, or move it aside:"
        " every stream then starts again from its start_time"
    )


def read_positions(path: Path | str) -> list[Position]:
    """Every stream's position, read without the file's lock, so a running forwarder can be asked
    where it is (its commits are transactions: a reader sees one state or the next); [] when the
    file does not exist yet. Raises ForwardConfigError as CheckpointStore does."""
    path = Path(path)
    if not path.exists():
        return []
    if _emptied(path):
        raise ForwardConfigError(_EMPTIED.format(path=path))
    problem: str | None = None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ForwardConfigError(_unusable(path, str(exc))) from None
    try:
        problem = _damage(db)
        if problem is None:
            return [Position(*row) for row in db.execute(_SELECT_ALL)]
    except sqlite3.Error as exc:
        problem = str(exc)
    finally:
        db.close()
    raise ForwardConfigError(_unusable(path, problem))
