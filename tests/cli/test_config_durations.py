"""Durations in the configuration that are not finite numbers (inf, nan), or past their bound,
are a configuration error naming the setting (exit 2): `inf` seconds used to pass validation and
stop `siemgate serve` at start with 'OverflowError: cannot convert float infinity to integer'."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.ports import free_port
from support.procs import SIEMGATE, cli_env


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIEMGATE_RETENTION_INTERVAL_SECONDS", "inf"),
        ("SIEMGATE_ALERTS_RETRY_SECONDS", "inf"),
        ("SIEMGATE_ALERTS_RETRY_SECONDS", "1e308"),
        ("SIEMGATE_ALERTS_CHECK_SECONDS", "Infinity"),
        ("SIEMGATE_SMTP_TIMEOUT", "inf"),
        ("SIEMGATE_SMTP_TIMEOUT", "61"),  # past the delivery lease (75 s) with what comes before
    ],
)
def test_a_duration_that_is_not_finite_or_too_long_stops_serve_with_a_clear_error(
    tmp_path: Path, name: str, value: str
) -> None:
    done = subprocess.run(
        [*SIEMGATE, "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path / "data", **{name: value}),
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stderr
    setting = name.removeprefix("SIEMGATE_").lower()
    assert f"invalid configuration: {setting}" in done.stderr and "Traceback" not in done.stderr, done.stderr
