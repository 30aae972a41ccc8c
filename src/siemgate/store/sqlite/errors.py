"""The SQLite backend's error boundary: every sqlite3 error that leaves a public method of the
store becomes one of siemgate.errors (as PgBase._conn does for PostgreSQL), decided by SQLite's
extended result code, never by the message text. Messages say what failed and what to do, and
never carry SQL text or values.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from siemgate.errors import SiemgateError, StoreError
from siemgate.store.errors import IntegrityConflict

T = TypeVar("T", bound=type)

# Primary result codes (the low byte of the extended code) and what to do about them.
_ADVICE = {
    5: "the database is locked by another process or connection (SQLITE_BUSY): retry; check that no other program"
    " holds it open",
    6: "a table is locked (SQLITE_LOCKED): retry",
    8: "the database file is read-only (SQLITE_READONLY): check its permissions and its file system",
    10: "the disk failed to read or write the database (SQLITE_IOERR): check the disk and the file system",
    11: "the database file is damaged (SQLITE_CORRUPT): restore it from a backup",
    13: "the disk is full (SQLITE_FULL): free space, then retry",
    14: "the database file cannot be opened (SQLITE_CANTOPEN): check the path and its permissions",
    26: "the file is not a siemgate database (SQLITE_NOTADB): check the database URL",
}
_UNIQUE = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_ROWID"}


def integrity_conflict(exc: sqlite3.IntegrityError) -> IntegrityConflict:
    """The constraint violation as PostgreSQL reports it: kind unique, foreign_key or check."""
    name = getattr(exc, "sqlite_errorname", "")
    if name in _UNIQUE:
        return IntegrityConflict("it already exists", "unique", "")
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return IntegrityConflict("what it refers to does not exist", "foreign_key", "")
    return IntegrityConflict("it violates a constraint", "check", "")


def store_error(exc: sqlite3.Error, what: str = "the SQLite store failed") -> StoreError:
    """A StoreError saying what failed and what to do, by the error's result code."""
    code = getattr(exc, "sqlite_errorcode", None)
    advice = _ADVICE.get(code & 0xFF) if isinstance(code, int) else None
    if advice is None:
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        advice = (
            f"SQLite refused the statement ({name}); if the database comes from another siemgate version,"
            " run `siemgate db migrate`"
        )
    return StoreError(f"{what}: {advice}")


def translate(exc: sqlite3.Error, what: str = "the SQLite store failed") -> SiemgateError:
    """The siemgate error for a sqlite3 error; a StoreError says `what` failed."""
    return integrity_conflict(exc) if isinstance(exc, sqlite3.IntegrityError) else store_error(exc, what)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            try:
                return (yield from method(*args, **kwargs))
            except sqlite3.Error as exc:
                raise translate(exc) from None

        return generator

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise translate(exc) from None

    return call


def error_boundary(cls: T) -> T:
    """Wrap every public method of `cls`, inherited ones included, in the translation above."""
    for name in dir(cls):
        attribute = inspect.getattr_static(cls, name)
        if not name.startswith("_") and inspect.isfunction(attribute):
            setattr(cls, name, _guarded(attribute))
    return cls
