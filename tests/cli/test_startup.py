"""`siemgate` starts without loading what its command does not use (docs/benchmarks.md, "CLI
start-up"): the command modules import the services when a command runs (a command that only
reads the store builds none), and the services import pySigma, pyarrow, httpx and PyJWT when a
rule, an archive, a delivery or a token needs them. What a fresh interpreter has loaded is
checked, not how long it took (a timing would be flaky)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from siemgate.cli.main import app
from support.procs import cli_env, make_account, python_output, run_cli

# Loaded only by the commands that use them (the web stack only by `serve` and `demo`).
NOT_AT_START = (
    "siemgate.composition",
    "siemgate.config",
    "siemgate.accounts.audit",
    "siemgate.alerts.service",
    "siemgate.forward.config",
    "siemgate.retention.service",
    "sigma",
    "pyarrow",
    "jinja2",
    "httpx",
    "pydantic_settings",
    "jwt",
    "limits",
    "prometheus_client",
    "fastapi",
    "uvicorn",
)
# Loaded when a Sigma rule is parsed, an archive written or read as Parquet, an alert delivered,
# a token issued or first checked.
NOT_WITH_THE_SERVICES = ("sigma", "pyarrow", "jinja2", "httpx", "jwt", "prometheus_client", "fastapi", "uvicorn")


def loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` (modules or packages) a fresh interpreter has loaded after `statement`."""
    script = (
        f"import json, sys\n{statement}\n"
        f"names = {names!r}\n"
        "print(json.dumps(sorted(n for n in names if any(m == n or m.startswith(n + '.') for m in sys.modules))))"
    )
    found: list[str] = json.loads(python_output(script))
    return found


def test_the_command_line_starts_without_the_services_or_heavy_libraries() -> None:
    assert loaded_after("import siemgate.cli.main", NOT_AT_START) == []


def test_the_services_load_sigma_parquet_and_http_clients_only_when_used() -> None:
    assert loaded_after("import siemgate.composition.wiring", NOT_WITH_THE_SERVICES) == []


# What building the services loads beyond the store (about 0.45 s): a command that only reads the
# store builds none of them.
THE_SERVICES = ("siemgate.composition.wiring", "siemgate.alerts", "siemgate.retention", "siemgate.integrity", "yaml")


@pytest.mark.parametrize(
    "command",
    [
        ["account", "list"],
        ["token", "list"],
        ["ingest-key", "list"],
        ["account", "deletions"],
        ["audit", "memberships"],
    ],
)
def test_a_command_that_only_reads_the_store_builds_no_service(tmp_path: Path, command: list[str]) -> None:
    """Before, every command that opened the store built every service, and so loaded all of THE_SERVICES."""
    args = ["-d", str(tmp_path), *command, "--json"]
    run = (
        "import contextlib, io\nfrom siemgate.cli.main import app\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    app({args!r}, standalone_mode=False)"
    )
    assert loaded_after(run, THE_SERVICES) == []


SIGMA_RULE = """title: Failed sign-ins
logsource: {product: 1password, service: signinattempts}
detection:
  selection:
    category: credentials_failed
  condition: selection
"""


def test_commands_that_read_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """Building the services asked for their deployment secrets (keys, the TOTP re-seal marker)
    in write transactions: with another connection writing (a server's ingest, a retention run),
    `user list` waited SQLite's busy timeout (30 s) and failed, 'the database is locked'. The
    secrets that exist are now read without taking the write lock."""
    data_dir = tmp_path / "data"
    account = make_account(data_dir)
    env = cli_env(data_dir)
    run_cli(env, "user", "list", "--account", account)  # the first build creates what it needs
    with contextlib.closing(sqlite3.connect(data_dir / "siemgate.db", isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        try:
            for command in (["user", "list"], ["integration", "list"], ["alerts", "list"]):
                result = run_cli(env, *command, "--account", account, ok=False, timeout=20)
                assert result.returncode == 0, (command, result.stderr)
        finally:
            writer.execute("ROLLBACK")


def test_a_sigma_rule_still_loads_pysigma() -> None:
    statement = f"from siemgate.alerts.service import parse_rules_text\nparse_rules_text({SIGMA_RULE!r})"
    assert loaded_after(statement, ("sigma",)) == ["sigma"]


def _groups(command: Any, path: list[str]) -> list[tuple[list[str], list[str]]]:
    """(path, subcommand names) of `command` and of every group under it."""
    if not hasattr(command, "list_commands"):
        return []
    names = command.list_commands(None)
    found = [(path, names)]
    for name in names:
        found += _groups(command.get_command(None, name), [*path, name])
    return found


def test_every_group_answers_help_naming_its_commands() -> None:
    """Every command's options are read from its signature when the CLI is built (so for any
    `--help`): a type imported for checking only would break them all."""
    groups = _groups(typer.main.get_command(app), [])
    assert sum(len(names) for _, names in groups) > 90
    runner = CliRunner()
    for path, names in groups:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, f"siemgate {' '.join(path)} --help: {result.output}"
        for name in names:
            assert f" {name} " in result.output, f"siemgate {' '.join(path)} --help does not list {name}"
