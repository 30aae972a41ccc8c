"""`siemgate audit ...`: the operator's reviews of who can access what (docs/security.md)."""

from __future__ import annotations

import time

import typer

from siemgate.cli.common import store_for
from siemgate.cli.output import err, print_json, print_table

audit_app = typer.Typer(help="Reviews of access for the operator.", no_args_is_help=True)


@audit_app.command("memberships")
def memberships(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every membership of a person in an account that is not their home, how they joined, and the
    API keys and SIEM tokens they hold there: review them after upgrading from 0.1.0."""
    from siemgate.accounts.review import foreign_memberships

    with store_for(ctx) as store:
        rows = foreign_memberships(store, time.time_ns())
    if as_json:
        print_json(rows)
        return
    print_table(
        "People in accounts other than their home",
        ["account", "person", "role", "home account", "joined", "API keys", "SIEM tokens"],
        [
            [
                r["account"]["name"],
                r["person"]["email"],
                r["role"],
                r["home_account"]["name"] if r["home_account"] else "(none)",
                r["joined_by"],
                len(r["live_api_keys"]),
                len(r["live_siem_tokens_issued"]),
            ]
            for r in rows
        ],
    )
    if any(r["joined_by"] == "added directly" for r in rows):
        err.print(
            "Memberships 'added directly' were made without the person's consent (before invitations):"
            " check them with the account's owners; `siemgate user remove`, `siemgate user password`"
            " (revokes the person's API keys) and `siemgate token revoke` undo them."
        )
