"""PostgreSQL backend: psycopg 3 with a connection pool, for several siemgate processes on one or
more machines sharing one database.

What only PostgreSQL does is split by concern (each part's module says what it holds): connection
(pool, transactions, migrations, errors), events (the logs: seqs under a per-stream lock, COPY, day
partitions), retention (archive reads, purges); the rest is the SQL of store/shared/,
written once for both backends. `siemgate db copy` is a tool
outside the backends (siemgate.dbcopy). Design notes: docs/cursors.md, "PostgreSQL".
"""

from __future__ import annotations

from siemgate.store.base import Store
from siemgate.store.postgres.events import PgEvents
from siemgate.store.postgres.retention import PgRetention
from siemgate.store.shared.dialect import POSTGRES


class PostgresStore(PgEvents, PgRetention, Store):
    """Store on a PostgreSQL database named by a `postgresql://` URL (a schema other than `public`
    can be chosen with `?options=-csearch_path%3Dname`). Safe to share between threads."""

    dialect = POSTGRES
    _account_extra_tables = ("event_buckets",)

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 8, connect_timeout: float = 10, prepare: bool = True
    ) -> None:
        """`prepare`: use prepared statements (store/postgres/connection.py says when to turn them off);
        `connect_timeout`: seconds to keep trying to connect at start. Raises StoreError if no
        connection succeeds within them."""
        super().__init__(url, min_size=min_size, max_size=max_size, connect_timeout=connect_timeout, prepare=prepare)
        self._partitions = set()
        self._page_days = {}
