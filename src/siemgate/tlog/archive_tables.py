"""The per-index tables of `siemgate-verify archive` (archive_verify), kept in a SQLite file in a
temporary directory rather than in memory: the archived row of each log index, the entry of every
archived row, the first index of each entry and the bundle's live bodies. An archive of hundreds of
millions of rows, or a hostile folder of countless tiny rows, then needs a bounded amount of memory
(SQLite's page cache, CACHE_KIB) and temporary disk space in proportion to its rows (~200 bytes
each). Standard library only.

Each verification's folder (`siemgate-verify-*` in the temporary directory) holds a lock file
that its process keeps locked (flock) while it runs; the folder appears under that name only once
locked. A verifier killed outright (kill -9, a crash, a reboot) cannot remove its folder, so every
new verification first removes the folders whose lock nobody holds: those of dead verifiers, never
one of a verifier still running (`remove_stale`)."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

from siemgate.tlog.entry import Entry, decode_entry

CACHE_KIB = 8 * 1024
PREFIX = "siemgate-verify-"
LOCK = "lock"
LOOSE_BATCH = 4096  # entries of archived rows written at once
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE archived (idx INTEGER PRIMARY KEY, file INTEGER NOT NULL, row INTEGER NOT NULL, entry BLOB,
                       problem TEXT);
CREATE INDEX archived_file ON archived (file, idx);
CREATE TABLE loose (entry BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE seen (entry BLOB PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE live (idx INTEGER PRIMARY KEY, body BLOB NOT NULL);
"""


@dataclass
class Row:
    """An archived row: its file, its row number there, its entry (None when the row's event has no
    valid timestamp) and what is wrong with it."""

    file: str
    row: int
    entry: Entry | None
    problem: str | None = None


class InOrder(Generic[T]):
    """The values of a table by index, asked for in increasing index order (one pass, no look-up)."""

    def __init__(self, items: Iterator[tuple[int, T]]) -> None:
        self._items = items
        self._next = next(items, None)

    def at(self, idx: int) -> T | None:
        """The value at `idx`, or None; `idx` never below the one asked before."""
        while self._next is not None and self._next[0] < idx:
            self._next = next(self._items, None)
        return self._next[1] if self._next is not None and self._next[0] == idx else None


class TablesError(Exception):
    """The temporary tables cannot be made or written (no temporary directory, a full disk)."""


def _failed(exc: BaseException) -> TablesError:
    return TablesError(
        f"the verifier's temporary tables in {tempfile.gettempdir()} failed ({exc}): set TMPDIR to a folder"
        " with room for about 200 bytes per archived row"
    )


def _unlocked(folder: str) -> bool:
    """Whether the lock file of a verifier's `folder` exists and no process holds its lock."""
    try:
        fd = os.open(os.path.join(folder, LOCK), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # no lock file: not a folder this code made, left alone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its verifier is running
    finally:
        os.close(fd)  # (releases the lock just taken)
    return True


def remove_stale(directory: str) -> list[str]:
    """Remove the folders of dead verifiers in `directory` (this user's `siemgate-verify-*` folders
    whose lock nobody holds); returns their paths. Never raises: what cannot be read or removed stays."""
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(PREFIX)]
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(directory, name)
        try:
            info = os.lstat(folder)
        except OSError:
            continue
        if not os.path.isdir(folder) or os.path.islink(folder) or info.st_uid != os.getuid():
            continue
        if _unlocked(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _locked_folder() -> tuple[str, int]:
    """A new folder `siemgate-verify-*` in the temporary directory and the descriptor of its lock
    file, locked before the folder gets that name (so a sweep never sees it unlocked)."""
    directory = tempfile.gettempdir()
    making = tempfile.mkdtemp(prefix=f".{PREFIX}new-", dir=directory)
    try:
        fd = os.open(os.path.join(making, LOCK), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        folder = os.path.join(directory, PREFIX + os.path.basename(making).removeprefix(f".{PREFIX}new-"))
        os.rename(making, folder)
    except BaseException:
        shutil.rmtree(making, ignore_errors=True)
        raise
    return folder, fd


class IndexTables:
    """The tables of one verification; a context manager that removes the temporary directory on
    exit, error or not (and, first, the folders of verifiers that were killed: `remove_stale`).
    Raises TablesError when they cannot be made, or (on exit) written."""

    def __init__(self) -> None:
        remove_stale(tempfile.gettempdir())
        try:
            self.folder, self._lock = _locked_folder()
        except OSError as exc:
            raise _failed(exc) from None
        try:
            # never committed: one transaction, whose pages past the cache go to the file
            self._db = sqlite3.connect(os.path.join(self.folder, "tables.sqlite"))
            self._db.executescript(
                f"PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -{CACHE_KIB};"
                "PRAGMA temp_store = FILE;" + _SCHEMA
            )
        except sqlite3.Error as exc:
            self._remove()
            raise _failed(exc) from None
        except BaseException:
            self._remove()
            raise
        self._loose: list[bytes] = []
        self._files: dict[str, int] = {}
        self._names: list[str] = []

    def __enter__(self) -> IndexTables:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
        if isinstance(exc, sqlite3.Error):
            raise _failed(exc) from None

    def close(self) -> None:
        self._db.close()
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        os.close(self._lock)

    def _file(self, name: str) -> int:
        if name not in self._files:
            self._files[name] = len(self._names)
            self._names.append(name)
        return self._files[name]

    def _row(self, file: int, row: int, entry: bytes | None, problem: str | None) -> Row:
        return Row(self._names[file], row, None if entry is None else decode_entry(entry), problem)

    def held(self, idx: int) -> Row | None:
        """The archived row of index `idx` (the last one put there), or None."""
        found = self._db.execute("SELECT file, row, entry, problem FROM archived WHERE idx = ?", (idx,)).fetchone()
        return None if found is None else self._row(*found)

    def hold(self, idx: int, row: Row) -> Row | None:
        """Make `row` the archived row of index `idx`; the row it replaces, or None."""
        entry = None if row.entry is None else row.entry.encode()
        values = (idx, self._file(row.file), row.row, entry, row.problem)
        if self._db.execute("INSERT OR IGNORE INTO archived VALUES (?, ?, ?, ?, ?)", values).rowcount:
            return None
        held = self.held(idx)
        self._db.execute("INSERT OR REPLACE INTO archived VALUES (?, ?, ?, ?, ?)", values)
        return held

    def rows_in_order(self) -> InOrder[Row]:
        """The archived rows, in index order."""
        query = "SELECT idx, file, row, entry, problem FROM archived ORDER BY idx"
        return InOrder((idx, self._row(*rest)) for idx, *rest in self._db.execute(query))

    def first_beyond(self, file: str, size: int) -> int | None:
        """The lowest index at or past `size` whose archived row is in `file`, or None."""
        if file not in self._files:
            return None
        query = "SELECT MIN(idx) FROM archived WHERE file = ? AND idx >= ?"
        found: int | None = self._db.execute(query, (self._files[file], size)).fetchone()[0]
        return found

    def add_loose(self, entry: bytes) -> None:
        """Note the entry of an archived row, at whatever index (or none)."""
        self._loose.append(entry)
        if len(self._loose) >= LOOSE_BATCH:
            self._flush_loose()

    def _flush_loose(self) -> None:
        self._db.executemany("INSERT OR IGNORE INTO loose VALUES (?)", ((e,) for e in self._loose))
        self._loose.clear()

    def is_loose(self, entry: bytes) -> bool:
        """Whether an archived row holds `entry`."""
        if self._loose:
            self._flush_loose()
        return self._db.execute("SELECT 1 FROM loose WHERE entry = ?", (entry,)).fetchone() is not None

    def first_index(self, entry: bytes, idx: int) -> int:
        """The first index `entry` was seen at (called in index order): `idx` the first time."""
        if self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (entry, idx)).rowcount:
            return idx
        first: int = self._db.execute("SELECT idx FROM seen WHERE entry = ?", (entry,)).fetchone()[0]
        return first

    def put_live(self, idx: int, body: bytes) -> None:
        """The bundle's live body of index `idx` (the last one given wins)."""
        self._db.execute("INSERT OR REPLACE INTO live VALUES (?, ?)", (idx, body))

    def live_in_order(self) -> InOrder[bytes]:
        """The bundle's live bodies, in index order."""
        return InOrder((idx, bytes(body)) for idx, body in self._db.execute("SELECT idx, body FROM live ORDER BY idx"))
