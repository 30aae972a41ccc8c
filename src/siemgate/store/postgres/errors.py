"""The PostgreSQL backend's error translation, used at its one boundary (`PgBase._conn`): driver
errors become siemgate.errors by their class and SQLSTATE, never by the message text, and messages
never carry SQL text, values or secrets (the database URL's password is redacted).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from siemgate.errors import StoreError
from siemgate.store.errors import IntegrityConflict


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def store_error(exc: psycopg.Error, what: str) -> StoreError:
    """A StoreError saying what failed, without SQL, values or secrets."""
    if isinstance(exc, psycopg.OperationalError | PoolTimeout) and not getattr(exc, "sqlstate", None):
        return StoreError(f"{what}: PostgreSQL is not reachable; check that it is running and the database URL")
    name = type(exc).__name__
    state = getattr(exc, "sqlstate", None)
    return StoreError(f"{what}: PostgreSQL refused it ({name}{f', SQLSTATE {state}' if state else ''})")


def integrity_conflict(exc: psycopg.errors.IntegrityError) -> IntegrityConflict:
    """The constraint violation by its SQLSTATE class: kind unique, foreign_key or check."""
    diag = getattr(exc, "diag", None)
    constraint = (diag.constraint_name or "") if diag is not None else ""
    if isinstance(exc, pg_errors.UniqueViolation):
        return IntegrityConflict("it already exists", "unique", constraint)
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return IntegrityConflict("what it refers to does not exist", "foreign_key", constraint)
    return IntegrityConflict("it violates a constraint", "check", constraint)
