"""`siemgate account delete` and `siemgate account deletions`: offboarding an account for good, and
the server's log of it (docs/setup.md, "Deleting an account")."""

from __future__ import annotations

import sys

import orjson
import typer

from siemgate.accounts.actor import CLI
from siemgate.cli.common import services_for, store_for
from siemgate.cli.output import err, print_json, print_table
from siemgate.errors import NotFound
from siemgate.model.timestamps import format_ns

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts.")


def account_delete(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="Account uuid or name."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation (scripts)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete an account and everything it has: events, tokens, keys, rules, alerts, memberships,
    archives. Cannot be undone; asks you to type the account's name unless --yes."""
    with services_for(ctx) as services:
        try:
            target = services.store.get_account(account)
        except NotFound:
            finished = services.offboarding.finish_interrupted(account)
            if finished is None:
                raise
            name, uuid, files = finished
            err.print(
                f"account {name!r} ({uuid}) was already deleted, or being deleted when the deletion was stopped;"
                f" finished it: removed what was left, and its archive folder ({files} files)",
                highlight=False,
            )
            return
        plan = services.offboarding.plan(target)
        err.print(f"[bold]Deleting account {target.name!r} ({target.uuid}) removes, for good:[/bold]", highlight=False)
        for what, count in plan.items():
            err.print(f"  {what}: {count:,}", highlight=False)
        err.print("and every person whose home it is and who belongs to no other account.", highlight=False)
        if not yes:
            if not sys.stdin.isatty():
                raise typer.BadParameter("nothing deleted: confirm interactively, or pass --yes", param_hint="--yes")
            typed = typer.prompt("Type the account's name to delete it")
            if typed != target.name:
                err.print("The name does not match; nothing was deleted.")
                raise typer.Exit(1)
        removed = services.delete_account(CLI, target, target.name)
    if as_json:
        print_json({"deleted": target.uuid, "name": target.name, "removed": removed})
    else:
        err.print(f"deleted account {target.name!r} ({target.uuid}); recorded in `siemgate account deletions`")


def account_deletions(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """The server's log of deleted accounts: when, by whom, what they held."""
    with store_for(ctx) as store:
        rows = [
            {
                "at": format_ns(op.at),
                "actor": op.actor,
                "account": op.account_uuid,
                "name": op.account_name,
                "removed": orjson.loads(op.detail),
            }
            for op in store.list_operations()
            if op.action == "delete account"
        ]
    if as_json:
        print_json(rows)
        return
    cells: list[list[object]] = [
        [r["at"], r["name"], r["account"], r["actor"], ", ".join(f"{k} {v}" for k, v in r["removed"].items())]
        for r in rows
    ]
    print_table("Deleted accounts", ["at", "name", "uuid", "by", "held"], cells)
