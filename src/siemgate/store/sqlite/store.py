"""SQLite backend: one file in WAL mode, one writer at a time, readers on per-thread connections.

With a single writer, seq order is commit order, so a reader can never see seq n+1 before seq n.
Several processes may share the file (SQLite's own locking serialises their writes).

What only SQLite does is split as on PostgreSQL: connection (file, connections, transactions,
migrations), events (the logs and pages), retention (archive reads, purges); errors.py is the
error boundary around every public method. The rest is the SQL of store/shared/, which Store brings.
"""

from __future__ import annotations

from siemgate.store.base import Store
from siemgate.store.shared.dialect import SQLITE
from siemgate.store.sqlite.errors import error_boundary
from siemgate.store.sqlite.events import SQLiteEvents
from siemgate.store.sqlite.retention import SQLiteRetention


@error_boundary
class SQLiteStore(SQLiteEvents, SQLiteRetention, Store):
    """Store on one SQLite file. Safe to share between threads."""

    dialect = SQLITE
