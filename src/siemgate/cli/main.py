"""Entry point of the `siemgate` command."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from siemgate import __version__
from siemgate.cli.admin_cmds import account_app, ingest_key_app, keys_app, token_app
from siemgate.cli.alert_cmds import alerts_app
from siemgate.cli.audit_cmds import audit_app
from siemgate.cli.common import CliState
from siemgate.cli.data_cmds import db_app, ingest, simulate
from siemgate.cli.demo_cmd import demo
from siemgate.cli.forward_cmds import forward_app
from siemgate.cli.log_cmds import log_app
from siemgate.cli.offboard_cmds import account_delete, account_deletions
from siemgate.cli.people_cmds import api_key_app, integration_app, user_app
from siemgate.cli.retention_cmds import archive_app, retention_app
from siemgate.cli.serve_cmds import serve
from siemgate.cli.signer_cmds import signer_app
from siemgate.cli.witness_cmds import witness_app
from siemgate.errors import ConfigError, SiemgateError
from siemgate.private import private_process

app = typer.Typer(
    help="siemgate: self-hosted Events Reporting with a 1Password Events API-compatible REST API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
account_app.command("delete")(account_delete)
account_app.command("deletions")(account_deletions)
app.add_typer(account_app, name="account")
app.add_typer(token_app, name="token")
app.add_typer(ingest_key_app, name="ingest-key")
app.add_typer(keys_app, name="keys")
app.add_typer(user_app, name="user")
app.add_typer(integration_app, name="integration")
app.add_typer(api_key_app, name="api-key")
app.add_typer(db_app, name="db")
app.add_typer(forward_app, name="forward")
app.add_typer(alerts_app, name="alerts")
app.add_typer(retention_app, name="retention")
app.add_typer(archive_app, name="archive")
app.add_typer(signer_app, name="signer")
app.add_typer(witness_app, name="witness")
app.add_typer(log_app, name="log")
app.add_typer(audit_app, name="audit")
app.command()(serve)
app.command()(demo)
app.command()(ingest)
app.command()(simulate)


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Path = typer.Option(
        None, "--data-dir", "-d", help="Data directory (default $SIEMGATE_DATA_DIR or ./siemgate-data)."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    ctx.obj = CliState(data_dir)


def main() -> None:
    private_process()  # every file made from here on is 0600, every directory 0700
    try:
        app()
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except SiemgateError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(1)
