"""A retention the store cannot compute with (days past what a 64-bit nanosecond time holds) is
refused where it is given, naming the bound: it used to be stored, and then every retention run
of the server stopped on it with a traceback (OSError: value too large), for every account."""

from __future__ import annotations

from pathlib import Path

from support.procs import cli_env, make_account, run_cli


def test_a_retention_over_a_century_is_refused_by_the_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_account(data)
    env = cli_env(data)
    done = run_cli(env, "retention", "set", "99999999999999", ok=False)
    assert done.returncode == 2 and "36500" in done.stderr and "Traceback" not in done.stderr, done.stderr
    shown = run_cli(env, "retention", "show", "--json").stdout
    assert "99999999999999" not in shown
    run_cli(env, "retention", "set", "36500")
    done = run_cli(env, "retention", "apply")
    assert "Traceback" not in done.stderr, done.stderr


def test_a_default_retention_over_a_century_is_a_configuration_error(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data", SIEMGATE_RETENTION_DAYS="99999999999999")
    done = run_cli(env, "retention", "show", ok=False)
    assert done.returncode == 2 and "retention_days" in done.stderr and "Traceback" not in done.stderr, done.stderr
