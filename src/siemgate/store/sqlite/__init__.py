"""The SQLite backend: one file in WAL mode (`SQLiteStore`, in store.py)."""

from siemgate.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
