"""SQLite store locations as users write them: `sqlite:///srv/x.db` is absolute (the README's
form), four slashes too, `sqlite:rel/x.db` and plain paths are relative, and an ambiguous URL is
refused with both readings rather than opening or creating the wrong file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import siemgate
from siemgate.config import load_settings
from siemgate.errors import ConfigError
from siemgate.store.sqlite.url import sqlite_url_path
from support.procs import SIEMGATE, cli_env


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///srv/data/siemgate.db", "/srv/data/siemgate.db"),
        ("sqlite:////srv/data/siemgate.db", "/srv/data/siemgate.db"),
        ("sqlite:data/siemgate.db", "data/siemgate.db"),
        ("data/siemgate.db", "data/siemgate.db"),
        ("/srv/data/siemgate.db", "/srv/data/siemgate.db"),
    ],
)
def test_the_forms_users_write(url: str, path: str) -> None:
    assert sqlite_url_path(url) == Path(path)


def test_the_default_store_url_names_the_data_dir_file(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    assert sqlite_url_path(settings.store_url) == (tmp_path / "data" / "siemgate.db").resolve()


@pytest.mark.parametrize("url", ["postgresql://x/y", "sqlite://host/x.db", "sqlite:"])
def test_other_locations_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite:///absolute/path"):
        sqlite_url_path(url, plain=False)


def test_an_ambiguous_url_is_refused_with_both_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nowhere-at-root").mkdir()
    (tmp_path / "nowhere-at-root" / "siemgate.db").write_bytes(b"")
    with pytest.raises(ConfigError) as refused:
        sqlite_url_path("sqlite:///nowhere-at-root/siemgate.db")
    message = refused.value.message
    assert "/nowhere-at-root/siemgate.db, which does not exist" in message
    assert f"{tmp_path}/nowhere-at-root/siemgate.db does" in message
    assert not Path("/nowhere-at-root").exists()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sqlite::memory:", "in-memory database"),
        ("sqlite:///:memory:", "in-memory database"),
        ("sqlite:siemgate.db?mode=ro", "has parameters"),
        ("sqlite:///{tmp}/siemgate.db?cache=shared", "has parameters"),
    ],
)
def test_an_in_memory_database_or_url_parameters_are_refused_and_no_file_is_made(
    tmp_path: Path, url: str, said: str
) -> None:
    """`sqlite::memory:` made an empty file named ':memory:' and stored everything in memory, lost
    at exit (and invisible to the server's other connections); `?mode=ro` became part of a new
    file's name. Both are refused by the command, which makes nothing."""
    src = str(Path(siemgate.__file__).resolve().parents[1])  # this checkout's code, whatever the cwd
    env = cli_env(tmp_path / "data", SIEMGATE_DATABASE_URL=url.format(tmp=tmp_path), PYTHONPATH=src)
    done = subprocess.run(
        [*SIEMGATE, "db", "migrate"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30
    )
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
