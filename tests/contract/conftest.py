"""Fixtures of the contract tests beyond tests/conftest.py's `store` (every backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from siemgate.store.postgres import PostgresStore
from support.stores import make_store


@pytest.fixture
def pg(tmp_path: Path, pg_url: str) -> Iterator[PostgresStore]:
    """A migrated PostgreSQL store in a fresh schema, for what only PostgreSQL shows (several
    connections interleaving)."""
    store = make_store("postgres", tmp_path)
    assert isinstance(store, PostgresStore)
    yield store
    store.close()
