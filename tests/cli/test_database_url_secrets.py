"""A PostgreSQL URL's password never appears in what siemgate prints, in either of the forms libpq
takes: after the user name, or as a `password=` parameter of the query. A database that does not
answer is waited for `database_connect_seconds` (1 s here, 10 by default), then named."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from support.procs import cli_env, make_account, run_cli

SECRET = "s3cret-Pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://siem:{SECRET}@127.0.0.1:1/siemgate",
        f"postgresql://siem@127.0.0.1:1/siemgate?password={SECRET}",
        f"postgresql://siem@127.0.0.1:1/siemgate?sslmode=disable&password={SECRET}&connect_timeout=2",
    ],
)
def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path, url: str) -> None:
    env = cli_env(tmp_path / "data", SIEMGATE_DATABASE_URL=url, SIEMGATE_DATABASE_CONNECT_SECONDS="1")
    started = time.monotonic()
    done = run_cli(env, "db", "migrate", ok=False)
    assert time.monotonic() - started < 8  # waited the 1 s set, not the default 10 s
    assert done.returncode != 0
    assert "cannot connect to PostgreSQL at postgresql://siem" in done.stderr, done.stderr
    assert "Connection refused" in done.stderr.splitlines()[-1], done.stderr  # why, in the error itself
    assert SECRET not in done.stderr + done.stdout, done.stderr


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"path": "/siemgate_no_such_database"}, 'database "siemgate_no_such_database" does not exist'),
        ({"netloc": f"siemgate_no_such_role:{SECRET}@{{host}}"}, 'role "siemgate_no_such_role" does not exist'),
        ({"query": f"sslmode=sometimes&password={SECRET}"}, 'invalid sslmode value: "sometimes"'),
    ],
)
def test_a_refused_connection_says_why(tmp_path: Path, pg_url: str, change: dict[str, str], reason: str) -> None:
    """The error said only "check that it is running, the database exists and the user may
    connect": which of them (or a wrong option) was only in the pool's log lines above it."""
    parts = urlsplit(pg_url)
    host = parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else ""
    url = urlunsplit(parts._replace(**{k: v.format(host=host) for k, v in change.items()}))
    env = cli_env(tmp_path / "data", SIEMGATE_DATABASE_URL=url, SIEMGATE_DATABASE_CONNECT_SECONDS="1")
    done = run_cli(env, "account", "list", ok=False)
    assert done.returncode != 0
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: cannot connect to PostgreSQL at ") and reason in error, done.stderr
    assert SECRET not in done.stderr + done.stdout, done.stderr


def test_a_target_that_is_not_postgresql_is_named_without_its_password(tmp_path: Path) -> None:
    source = tmp_path / "site"
    make_account(source)
    env = cli_env(tmp_path / "data")
    target = f"mysql://siem:{SECRET}@db/x"
    done = run_cli(env, "db", "copy", "--from", str(source / "siemgate.db"), "--to", target, ok=False)
    assert done.returncode == 2 and "--to must be a postgresql:// URL" in done.stderr, done.stderr
    assert SECRET not in done.stderr + done.stdout, done.stderr
