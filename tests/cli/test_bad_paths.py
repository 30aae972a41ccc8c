"""A data directory, store path or output directory that cannot be used is a clear error saying
which setting to fix (exit 2, no traceback), and nothing is created (docs/configuration.md)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import siemgate

SRC = str(Path(siemgate.__file__).resolve().parents[1])  # this checkout's code, whatever the cwd


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIEMGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "siemgate", *args],
        capture_output=True,
        text=True,
        env={**base, "PYTHONPATH": SRC, "SIEMGATE_LOG_FORMAT": "text", **env},
        cwd=tmp_path,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", [["db", "migrate"], ["account", "list"], ["serve", "--port", "1"]])
@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path, command: list[str], where: str) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    data_dir = blocker if where == "file" else blocker / "data"
    result = _run(tmp_path, *command, SIEMGATE_DATA_DIR=str(data_dir))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert str(blocker) in result.stderr and "a file is in the way" in result.stderr, result.stderr
    assert "SIEMGATE_DATA_DIR" in result.stderr, result.stderr
    assert blocker.read_text() == "x"


def test_a_sqlite_url_below_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    url = f"sqlite:///{blocker}/siemgate.db"
    result = _run(tmp_path, "db", "migrate", SIEMGATE_DATA_DIR=str(tmp_path / "data"), SIEMGATE_DATABASE_URL=url)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "SIEMGATE_DATABASE_URL" in result.stderr and "a file is in the way" in result.stderr, result.stderr


def test_a_sqlite_url_naming_a_directory_is_refused_and_the_directory_left_as_it_was(tmp_path: Path) -> None:
    """`sqlite:///` (or any URL naming a directory) made that directory 0600 before failing: with
    `sqlite:///` the root directory, which no other user of the machine (PostgreSQL's server
    included) could then enter. Now it is refused, and nothing is changed."""
    directory = tmp_path / "a-directory"
    directory.mkdir()
    os.chmod(directory, 0o750)  # noqa: S103 (a mode to see left alone)
    result = _run(tmp_path, "db", "migrate", SIEMGATE_DATABASE_URL=f"sqlite:///{directory}")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "is a directory" in result.stderr, result.stderr
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750


def test_a_shared_directory_given_as_data_dir_is_not_made_private(tmp_path: Path) -> None:
    """SIEMGATE_DATA_DIR=/var/lib (a careless operator's) made /var/lib 0700, and every service
    running as another user lost it. A directory holding things that are not siemgate's is now left
    as it is, with a warning; one of siemgate's own is still made 0700."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "postgresql").mkdir()
    os.chmod(shared, 0o755)  # noqa: S103 (a shared directory's mode, to see left alone)
    result = _run(tmp_path, "account", "list", SIEMGATE_DATA_DIR=str(shared))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert "also holds postgresql" in result.stderr, result.stderr
    own = tmp_path / "own"
    own.mkdir()
    os.chmod(own, 0o755)  # noqa: S103 (an earlier version's mode, to see tightened)
    assert _run(tmp_path, "account", "list", SIEMGATE_DATA_DIR=str(own)).returncode == 0
    assert stat.S_IMODE(own.stat().st_mode) == 0o700


def test_a_bad_configuration_file_found_in_the_working_directory_is_named(tmp_path: Path) -> None:
    """./siemgate.toml is read when present, unasked: an error in it must say which file it is."""
    config = tmp_path / "siemgate.toml"
    for text, said in (
        ("port = [\n", "invalid configuration file"),
        ('port = "eighty"\n', "invalid configuration: port"),
    ):
        config.write_text(text)
        result = _run(tmp_path, "account", "list", SIEMGATE_DATA_DIR=str(tmp_path / "data"))
        assert result.returncode == 2, result.stderr
        assert said in result.stderr and str(config) in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_a_configuration_file_with_a_key_or_table_twice_names_the_line(tmp_path: Path) -> None:
    """TOML refuses a key given twice (tomllib says "Cannot overwrite a value"); the error also
    shows the line, for siemgate.toml and forward.toml alike."""
    config = tmp_path / "siemgate.toml"
    config.write_text("port = 8081\nretention_days = 30\nport = 9090\n")
    result = _run(tmp_path, "account", "list", SIEMGATE_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "line 3 ('port = 9090') sets a key or table an earlier line set; set each once" in result.stderr
    config.unlink()
    forward = tmp_path / "forward.toml"
    forward.write_text('[sinks.out]\ntype = "file"\n\n[sinks.out]\ntype = "file"\n')
    result = _run(tmp_path, "forward", "check", "--config", str(forward))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "line 4 ('[sinks.out]') sets a key or table an earlier line set" in result.stderr + result.stdout
