"""Adversarial review of the forwarder: bad TLS files in the configuration, damaged checkpoint
files, and destinations or sources that answer without end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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
