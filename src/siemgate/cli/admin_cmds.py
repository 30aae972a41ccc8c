"""Accounts, SIEM tokens, ingest keys and signing keys. Changes are made as the command line
actor and recorded in the account's audit trail like any other change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from siemgate.accounts.actor import CLI
from siemgate.cli.common import features_option, find_account, parse_expiry, read_password, services_for, store_for
from siemgate.cli.output import err, print_json, print_table
from siemgate.errors import NotFound, SiemgateError
from siemgate.model.durations import DEFAULT_EXPIRY, MAX_EXPIRY, MAX_GRACE, parse_grace
from siemgate.private import private_dir, write_secret

if TYPE_CHECKING:
    from siemgate.store.base import Integration, TokenRecord

account_app = typer.Typer(help="Accounts: every event, token and query belongs to one.", no_args_is_help=True)
token_app = typer.Typer(help="SIEM bearer tokens for the Events API.", no_args_is_help=True)
ingest_key_app = typer.Typer(help="Ingest keys for producers that add events.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts.")
ACCOUNT_OPTION = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one).")


def _cells(rows: list[dict[str, object]], columns: list[str]) -> list[list[object]]:
    """Table cells; lists are shown comma-separated, nested objects by name."""
    cells = []
    for row in rows:
        line: list[object] = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, list):
                value = ",".join(map(str, value))
            elif isinstance(value, dict):
                value = value.get("name")
            line.append(value)
        cells.append(line)
    return cells


@account_app.command("create")
def account_create(
    ctx: typer.Context,
    name: str,
    owner: str = typer.Option(None, "--owner", help="Email of the first owner (created if new)."),
    owner_name: str = typer.Option(None, "--owner-name", help="The owner's name."),
    password_file: Path = typer.Option(None, "--password-file", help="The owner's console password, from a file."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the owner's password from stdin."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an account (with its first owner); prints its uuid on stdout."""
    from siemgate.accounts import views

    password = read_password(password_file, password_stdin)
    with services_for(ctx) as services:
        try:
            account, person = services.people.create_account(CLI, name, owner, owner_name, password)
        except ValueError as exc:  # a weak password
            raise typer.BadParameter(str(exc)) from None
    if as_json:
        print_json({**views.account_view(account), "owner": person.email if person else None})
    else:
        print(account.uuid)
        who = (
            f" with owner {person.email}"
            if person
            else " (no owner yet: add one with `siemgate user add --role owner`)"
        )
        err.print(f"created account {account.name!r}{who}")


@account_app.command("list")
def account_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List accounts."""
    from siemgate.accounts import views

    with store_for(ctx) as store:
        rows = [views.account_view(a) for a in store.list_accounts()]
    if as_json:
        print_json(rows)
    else:
        print_table("Accounts", ["uuid", "name", "created"], _cells(rows, ["uuid", "name", "created_at"]))


@account_app.command("rename")
def account_rename(ctx: typer.Context, account: str, name: str) -> None:
    """Rename an account."""
    with services_for(ctx) as services:
        renamed = services.people.rename_account(CLI, services.store.get_account(account), name)
    err.print(f"account {renamed.uuid} is now {renamed.name!r}")


@token_app.command("issue")
def token_issue(
    ctx: typer.Context,
    account: str = ACCOUNT_OPTION,
    name: str = typer.Option(..., "--name", "-n", help="Token name, e.g. the SIEM host that will use it."),
    features: str = typer.Option(
        "all", "--features", "-f", help="Comma-separated: signinattempts,itemusages,auditevents."
    ),
    expires: str = typer.Option(
        DEFAULT_EXPIRY,
        "--expires",
        "-e",
        help=f"90d by default; never, 30d, 180d, or e.g. 12h, 45d, 2w, 3mo, 30min (at most {MAX_EXPIRY}).",
    ),
    integration: str = typer.Option(
        None, "--integration", "-i", help="Integration uuid or name (default: one named after the token)."
    ),
    integration_type: str = typer.Option("other", "--type", help="SIEM type when a new integration is created."),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the token to this file (mode 0600)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a token. It is printed once, alone on stdout; details go to stderr."""
    from siemgate.accounts import views
    from siemgate.accounts.catalog import siem_type

    chosen = features_option(features)
    expires_in = parse_expiry(expires)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        target = integration or name
        try:
            integ = services.integrations.get(CLI, acct, target)
        except NotFound:
            if integration:
                raise
            integ = services.integrations.create(CLI, acct, integration_type, target)
            err.print(
                f"no --integration given: created integration {integ.name!r} (type {integ.type}) for this token;"
                " give --integration NAME to issue it for an existing one"
            )
        for warning in siem_type(integ.type).warnings(services.settings.address):
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        token, record = services.lifecycle.issue(CLI, acct, integ, name, chosen, expires_in)
        info = views.token_view(record, services.clock(), integ)
        base_url = services.settings.base_url
    if output is not None:
        write_secret(output, token + "\n")
    if as_json:
        print_json({**info, "token": token, "account": acct.uuid, "base_url": base_url})
    else:
        print(token)
        err.print(
            f"issued token {record.id} ({record.name}) for integration {integ.name!r} in account {acct.name!r}:"
            f" features {', '.join(f.value for f in record.features)}, expires {info['expires_at'] or 'never'}."
            f" Point your SIEM at {base_url}. The token is shown only once."
        )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    account: str = typer.Option(None, "--account", "-a", help="Only this account (uuid or name)."),
    expiring: bool = typer.Option(False, "--expiring", help="Only tokens that expire within 14 days."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List tokens (never their secrets); status is active, expiring, expired or revoked."""
    from siemgate.accounts import views

    with store_for(ctx) as store:
        account_id = store.get_account(account).id if account else None
        now = time.time_ns()
        integrations: dict[int, Integration] = {}
        rows = []
        for record in store.list_tokens(account_id):
            if record.integration_id not in integrations:
                integrations[record.integration_id] = store.get_integration_by_id(record.integration_id)
            view = views.token_view(record, now, integrations[record.integration_id])
            if not expiring or view["status"] == "expiring":
                rows.append(view)
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "name", "integration", "features", "status", "expires_at", "last_used_at"]
        print_table("SIEM tokens", columns, _cells(rows, columns))


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token: its next request gets 401."""
    from siemgate.accounts import views

    with services_for(ctx) as services:
        record = services.store.get_token(token_id)
        account = services.store.get_account_by_id(record.account_id)
        revoked = services.lifecycle.revoke(CLI, account, token_id)
    err.print(f"token {revoked.id} ({revoked.name}) revoked at {views.when(revoked.revoked_at)}")


@token_app.command("rotate")
def token_rotate(
    ctx: typer.Context,
    token_id: str = typer.Argument(None, help="The token to replace (or --all)."),
    every: bool = typer.Option(
        False, "--all", help="Replace every live token of the account (after a change of the public address)."
    ),
    account: str = ACCOUNT_OPTION,
    grace: str = typer.Option(
        None,
        "--grace",
        help=f"Revoke the old token after this long (e.g. 2h, 7d, at most {MAX_GRACE}; 0 = now). Default: when"
        " the replacement is first used, at the latest after 24h.",
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the new token to this file (mode 0600)."),
    output_dir: Path = typer.Option(
        None, "--output-dir", help="With --all: write each new token to DIR/<new token id>.token (mode 0600)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a replacement with the same features; the old token stops after the grace period."""
    from siemgate.accounts import views

    if every == (token_id is not None):
        raise typer.BadParameter("give one token id, or --all (with --account) to replace every live token")
    if every and output is not None:
        raise typer.BadParameter("with --all, give --output-dir (one file per token) instead of --output")
    if every and output_dir is None and not as_json:
        raise typer.BadParameter("with --all, give --output-dir DIR or --json: each new token is shown only once")
    grace_ns = None
    if grace is not None:
        try:
            grace_ns = parse_grace(grace)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    if every:
        _rotate_all(ctx, account, grace_ns, output_dir, as_json)
        return
    with services_for(ctx) as services:
        record = services.store.get_token(token_id)
        target = services.store.get_account_by_id(record.account_id)
        token, new = services.lifecycle.rotate(CLI, target, token_id, grace_ns)
        old = services.store.get_token(token_id)
        info = views.token_view(new, services.clock())
    if output is not None:
        write_secret(output, token + "\n")
    if as_json:
        print_json({**info, "token": token, "old_token_revoke_at": views.when(old.revoke_at or old.revoked_at)})
    else:
        print(token)
        err.print(
            f"issued {new.id} to replace {old.id}; the old token is revoked {_revoked_when(old)}. Shown only once."
        )


def _revoked_when(old: TokenRecord) -> str:
    from siemgate.accounts import views

    if old.revoked_at:
        return "now"
    if old.revoke_on_replacement_use:
        return f"when the new token is first used, at the latest {views.when(old.revoke_at)}"
    return str(views.when(old.revoke_at))


def _rotate_all(
    ctx: typer.Context, account: str | None, grace_ns: int | None, output_dir: Path | None, as_json: bool
) -> None:
    """Replace every live token of the account that is not already being replaced."""
    from siemgate.accounts import views
    from siemgate.accounts.lifecycle import token_status

    results = []
    with services_for(ctx) as services:
        target = find_account(services.store, account)
        now = services.clock()
        live = [
            t
            for t in services.store.list_tokens(target.id)
            if token_status(t, now) in ("active", "expiring") and t.revoke_at is None
        ]
        if output_dir is not None:
            private_dir(output_dir, "--output-dir")
        try:
            for old in live:
                token, new = services.lifecycle.rotate(CLI, target, old.id, grace_ns)
                replaced = services.store.get_token(old.id)
                if output_dir is not None:
                    write_secret(output_dir / f"{new.id}.token", token + "\n")
                results.append({**views.token_view(new, services.clock()), "token": token, "replaces": old.id})
                err.print(
                    f"issued {new.id} ({new.name}) to replace {old.id};"
                    f" the old token is revoked {_revoked_when(replaced)}"
                )
        except SiemgateError:
            err.print(f"replaced {len(results)} of {len(live)} tokens of {target.name!r} before this error:")
            raise
        finally:  # the tokens issued are shown whatever stopped the loop: their secrets exist nowhere else
            if as_json:
                print_json(results)
    err.print(
        f"replaced {len(results)} tokens of {target.name!r}" + (f"; new tokens in {output_dir}" if output_dir else "")
    )


@ingest_key_app.command("create")
def ingest_key_create(
    ctx: typer.Context,
    account: str = ACCOUNT_OPTION,
    name: str = typer.Option(..., "--name", "-n", help="What will use the key."),
    features: str = typer.Option("all", "--features", "-f", help="Streams the key may write."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an ingest key; printed once, alone on stdout."""
    from siemgate.accounts import views

    chosen = features_option(features)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        secret, key = services.ingest_key_admin.create(CLI, acct, name, chosen)
    if as_json:
        print_json({**views.ingest_key_view(key), "key": secret, "account": acct.uuid})
    else:
        print(secret)
        err.print(f"created ingest key {key.id} ({key.name}) for account {acct.name!r}; it is shown only once")


@ingest_key_app.command("list")
def ingest_key_list(
    ctx: typer.Context,
    account: str = typer.Option(None, "--account", "-a", help="Only this account."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List ingest keys (prefix only, never the secret)."""
    from siemgate.accounts import views

    with store_for(ctx) as store:
        account_id = store.get_account(account).id if account else None
        rows = [views.ingest_key_view(k) for k in store.list_ingest_keys(account_id)]
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "name", "prefix", "features", "status", "last_used_at"]
        print_table("Ingest keys", columns, _cells(rows, columns))


@ingest_key_app.command("revoke")
def ingest_key_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke an ingest key."""
    with services_for(ctx) as services:
        owner = next((k for k in services.store.list_ingest_keys() if k.id == key_id), None)
        if owner is None:
            raise NotFound(f"ingest key {key_id!r} not found")
        key = services.ingest_key_admin.revoke(CLI, services.store.get_account_by_id(owner.account_id), key_id)
    err.print(f"ingest key {key.id} ({key.name}) revoked")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Sign new tokens with a new key; keys no live token uses are retired."""
    with services_for(ctx) as services:
        keep = services.store.live_token_kids(services.clock())
        new_kid, retired = services.keys.rotate(keep)
        services.audit.record_everywhere(
            CLI,
            "changeks",
            "account",
            aux_info={"kind": "token signing key", "new_kid": new_kid, "retired_kids": sorted(retired)},
        )
    err.print(f"new signing key {new_kid}; retired {len(retired)} unused key(s); {len(keep)} kept for live tokens")
    print(new_kid)


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List signing keys and whether live tokens use them."""
    with services_for(ctx) as services:
        live = services.store.live_token_kids(services.clock())
        active, _ = services.keys.active()
        rows = [{"kid": kid, "active": kid == active, "live_tokens": kid in live} for kid in services.keys.kids()]
    if as_json:
        print_json(rows)
    else:
        print_table(
            "Signing keys", ["kid", "active", "used by live tokens"], _cells(rows, ["kid", "active", "live_tokens"])
        )
