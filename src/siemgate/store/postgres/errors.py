"""The PostgreSQL backend's error translation, used at its one boundary (`PgBase._conn`): driver
errors become siemgate.errors by their class and SQLSTATE, never by the message text, and messages
never carry SQL text, values or secrets (the database URL's password is redacted).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from siemgate.errors import StoreError
from siemgate.store.errors import IntegrityConflict


def redacted(url: str) -> str:
    """The URL without its password, for messages: the one after the user name, and a
    `password=` parameter of the query (libpq's URI form takes either)."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        netloc = (f"{parts.username}:***@" if parts.username else "") + host
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key == "password" for key, _ in pairs):
            query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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
