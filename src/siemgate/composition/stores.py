"""The composition root's store: choose and open it from Settings, apart from the services
(composition.wiring builds those), so a command that only reads the store builds and loads no
service (docs/benchmarks.md, "CLI start-up")."""

from __future__ import annotations

from urllib.parse import urlparse

from siemgate.config import Settings
from siemgate.errors import ConfigError
from siemgate.private import private_dir
from siemgate.store.base import Store
from siemgate.store.sqlite.url import sqlite_url_path


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The store `settings.store_url` names, migrated; raises ConfigError for an unknown scheme."""
    url = settings.store_url
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from siemgate.store.sqlite import SQLiteStore

        path = sqlite_url_path(url, plain=False)
        store: Store = SQLiteStore(path, synchronous=settings.sqlite_synchronous)
    elif scheme in ("postgresql", "postgres"):
        from siemgate.store.postgres import PostgresStore

        store = PostgresStore(
            url,
            max_size=settings.database_pool_size,
            connect_timeout=settings.database_connect_seconds,
            prepare=settings.database_prepared_statements,
        )
    else:
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///path/to/siemgate.db"
            " or postgresql://user@host:5432/database"
        )
    if migrate:
        store.migrate()
    return store


def open_data_store(settings: Settings) -> Store:
    """The store of the data directory, migrated, once the directory is checked to be private
    (siemgate.private): what every command that opens the store does first."""
    private_dir(settings.data_dir, "the data directory (--data-dir, SIEMGATE_DATA_DIR)")
    return open_store(settings)
