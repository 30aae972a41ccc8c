"""The PostgreSQL backend: psycopg 3 with a connection pool (`PostgresStore`, in store.py)."""

from siemgate.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
