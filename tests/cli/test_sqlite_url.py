"""SQLite store locations as users write them: `sqlite:///srv/x.db` is absolute (the README's
form), four slashes too, `sqlite:rel/x.db` and plain paths are relative, and an ambiguous URL is
refused with both readings rather than opening or creating the wrong file."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemgate.config import load_settings
from siemgate.errors import ConfigError
from siemgate.store.sqlite.url import sqlite_url_path


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
