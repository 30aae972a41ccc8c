"""Choose and open the concrete backends from Settings."""

from __future__ import annotations

from urllib.parse import urlparse

from siemgate.api.services import Services, build_services
from siemgate.config import Settings
from siemgate.errors import ConfigError
from siemgate.private import private_dir
from siemgate.store.base import Store
from siemgate.store.sqlite_url import sqlite_url_path


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

        store = PostgresStore(url, max_size=settings.database_pool_size)
    else:
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///path/to/siemgate.db"
            " or postgresql://user@host:5432/database"
        )
    if migrate:
        store.migrate()
    return store


def open_services(settings: Settings) -> Services:
    """Store plus every service, ready to use; close with `services.close()`."""
    private_dir(settings.data_dir)
    return build_services(settings, open_store(settings))
