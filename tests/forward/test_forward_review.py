"""Adversarial review of the forwarder: bad TLS files in the configuration, damaged checkpoint
files, and destinations or sources that answer without end."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from siemgate.forward.checkpoint import CheckpointStore


def forward_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`siemgate forward ARGS` as a real process, bounded in time."""
    return subprocess.run(
        [sys.executable, "-m", "siemgate", "forward", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "FORWARD_TEST_TOKEN": "not-used", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", [("check",), ("--once",), ("status",)])
def test_tls_files_that_do_not_load_are_configuration_errors_naming_the_key(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A missing CA file for the source was a traceback when connecting; a CA file without
    certificates for a sink said only "[Errno 2]"-style reasons without the key. Now each is a
    configuration error (exit 2) naming the key, before anything is contacted."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    config = tmp_path / "forward.toml"
    config.write_text(
        f"""
[forwarder]
state_dir = "{tmp_path / "state"}"

[sources.src]
url = "https://127.0.0.1:9"
token = {{ env = "FORWARD_TEST_TOKEN" }}
ca_file = "{tmp_path / "missing.pem"}"
sinks = ["hook", "sys"]

[sinks.hook]
type = "webhook"
url = "https://127.0.0.1:9/x"
ca_file = "{junk}"

[sinks.sys]
type = "syslog"
host = "127.0.0.1"
cert_file = "{junk}"
"""
    )
    done = forward_cli(*command[:1], "--config", str(config), *command[1:])
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert f"sources.src.ca_file: cannot read the CA file {tmp_path / 'missing.pem'}: No such file" in done.stderr
    assert f"sinks.hook.webhook.ca_file: {junk} holds no PEM CA certificate" in done.stderr
    assert "sinks.sys.syslog: cert_file, key_file: not a PEM certificate and its private key" in done.stderr


def _hand_edited(path: Path) -> None:
    """A checkpoints table rebuilt by hand without the start_time column."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE checkpoints (stream TEXT PRIMARY KEY, cursor TEXT, events INTEGER, updated_at TEXT)")
        db.execute("INSERT INTO checkpoints VALUES ('src/signinattempts', 'abc', 0, 'now')")
    db.close()


def _damaged_page(path: Path) -> None:
    """A real checkpoint file of many streams, with one of its later pages overwritten."""
    with CheckpointStore(path) as store:
        store.commit((f"src/stream-{n}", f"cursor-{n}", 1) for n in range(1000))
    with path.open("r+b") as f:
        f.seek(4096 * 5 + 200)
        f.write(b"\xff" * 1000)


@pytest.mark.parametrize("damage", [_hand_edited, _damaged_page])
@pytest.mark.parametrize("command", ["status", "reset"])
def test_a_damaged_checkpoint_file_is_an_error_saying_what_to_do(tmp_path: Path, damage: Any, command: str) -> None:
    """A checkpoint table edited by hand (a column missing) or a file with a damaged page opened
    fine and failed later with a traceback (sqlite3.OperationalError, DatabaseError); now opening
    it says what is wrong and what to do."""
    state = tmp_path / "state"
    state.mkdir()
    damage(state / "checkpoints.db")
    config = tmp_path / "forward.toml"
    config.write_text(
        f'[forwarder]\nstate_dir = "{state}"\n[sources.src]\nurl = "http://127.0.0.1:9"\n'
        'token = { env = "FORWARD_TEST_TOKEN" }\nsinks = ["n"]\n[sinks.n]\ntype = "null"\n'
    )
    extra = ["--source", "src", "--feature", "signinattempts", "--start-time", "2026-11-01T00:00:00Z"]
    done = forward_cli(command, "--config", str(config), *(extra if command == "reset" else []))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert f"cannot use the checkpoint file {state / 'checkpoints.db'}" in done.stderr
    assert "Restore it from a backup, or move it aside" in done.stderr
