"""PostgreSQL plumbing shared by the parts of PostgresStore: the connection pool, transactions and
migrations; `_conn` is the error boundary, translating driver errors as errors.py says.

Every statement outside `_write()` runs in autocommit mode (one statement, one snapshot). Errors
never carry SQL text or values: a message says what failed and the SQLSTATE class.

Prepared statements: psycopg prepares a statement run five times on a connection (the token's
revocation and a window's start, at every request or reset), and a page's statement from its
first run (`prepare=True` in events.py: its text names the days it reads), which spares
PostgreSQL parsing and planning them at every request (about a fifth of its CPU per 1000-event
page, docs/benchmarks.md). They live in the server connection, so a pooler that hands a
connection's transactions to different server connections must track them (PgBouncer 1.21 or
later with `max_prepared_statements` > 0); `prepare=False` (SIEMGATE_DATABASE_PREPARED_STATEMENTS
=false) turns them off for any other (docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from siemgate.errors import StoreError
from siemgate.store.errors import too_long
from siemgate.store.migrations import APPLIED, pending_migrations
from siemgate.store.postgres.errors import integrity_conflict, redacted, store_error

Params = Sequence[Any] | dict[str, Any]
_PREPARE_AFTER = 5  # runs of a statement on a connection before psycopg prepares it (its default)


def connect_failure(url: str, timeout: float) -> str | None:
    """Why a connection to `url` fails, in the server's or libpq's words (one line, the URL's
    password left out), from one more attempt of at most 5 s; None when it succeeds. The pool only
    logs why each of its attempts failed, so a refusal would otherwise not say which of a wrong
    password, a missing database, a bad option or a server down it was."""
    try:
        psycopg.connect(url, connect_timeout=max(1, min(5, int(timeout)))).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()
        password = urlsplit(url).password or dict(parse_qsl(urlsplit(url).query)).get("password")
        reason = " ".join(line.strip() for line in first[:2])
        return reason.replace(password, "***") if password else reason
    return None


class PgBase:
    """Connections and transactions for one PostgreSQL database (and schema, via the URL's options)."""

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 8, connect_timeout: float = 10, prepare: bool = True
    ) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "prepare_threshold": _PREPARE_AFTER if prepare else None},
            open=False,
            name="siemgate",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except (PoolTimeout, psycopg.Error):
            self._pool.close()
            reason = connect_failure(url, connect_timeout)
            raise StoreError(
                f"cannot connect to PostgreSQL at {redacted(url)}{f' ({reason})' if reason else ''}: check that it is"
                " running, the database exists and the user may connect"
            ) from None
        # Advisory locks are per database: keyed by schema so test schemas do not wait on each other.
        schema = self._value("SELECT current_schema()", ()) or "public"
        self.schema = str(schema)
        self._ddl_key = int.from_bytes(
            hashlib.sha256(f"siemgate-ddl:{schema}".encode()).digest()[:8], "big", signed=True
        )

    # connections ------------------------------------------------------------------------------
    @contextmanager
    def _conn(self, what: str = "the database operation failed") -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in autocommit mode; driver errors become StoreError."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.errors.IntegrityError as exc:
            raise integrity_conflict(exc) from None
        except psycopg.Error as exc:
            raise store_error(exc, what) from None
        except PoolTimeout:
            raise StoreError(f"{what}: no database connection became free in time") from None

    @contextmanager
    def _write(self, what: str = "the write failed") -> Iterator[psycopg.Connection[Any]]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self._conn(what) as conn, conn.transaction():
            yield conn

    _tx = _write  # the shared SQL's write transaction (store/shared/dialect.py)

    def _rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(sql, params).fetchall()

    def _body_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows carrying event bodies, read in binary (no hex decoding of each body)."""
        with self._conn() as conn:
            return conn.cursor(binary=True).execute(sql, params).fetchall()

    def _rows_within(self, sql: str, params: Params, seconds: float, bodies: bool = False) -> list[tuple[Any, ...]]:
        """`_rows` (or `_body_rows`) under a statement_timeout of `seconds`, for this read only:
        Unavailable (store.errors.too_long) past it, waiting for a lock included."""
        with self._conn() as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
            try:
                return conn.cursor(binary=bodies).execute(sql, params).fetchall()
            except psycopg.errors.QueryCanceled:
                raise too_long(seconds) from None

    def _row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        with self._conn() as conn:
            return conn.execute(sql, params).fetchone()

    def _value(self, sql: str, params: Params = ()) -> Any:
        row = self._row(sql, params)
        return None if row is None else row[0]

    # lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations, each in its own transaction, one process at a time."""
        applied: list[str] = []
        with self._conn("migrations failed") as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (self._ddl_key,))
            try:
                with conn.transaction():
                    pending = pending_migrations(conn, "postgres")
                for migration in pending:
                    try:
                        with conn.transaction():
                            conn.execute(migration.sql.encode())
                            conn.execute(
                                f"INSERT INTO {APPLIED} VALUES (%s, %s, %s)",
                                (migration.version, migration.name, time.time_ns()),
                            )
                    except psycopg.Error as exc:
                        raise StoreError(
                            f"migration {migration.version} ({migration.name}) failed: {type(exc).__name__}"
                        ) from None
                    applied.append(f"{migration.version:04d}_{migration.name}")
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self._ddl_key,))
        return applied
