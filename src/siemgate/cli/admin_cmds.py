"""Accounts, SIEM tokens, ingest keys and signing keys."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from siemgate.cli.common import features_option, find_account, parse_expiry, services_for
from siemgate.cli.output import err, print_json, print_table, when
from siemgate.errors import NotFound
from siemgate.model.ids import new_id
from siemgate.store.base import IngestKey, TokenRecord

account_app = typer.Typer(help="Accounts: every event, token and query belongs to one.", no_args_is_help=True)
token_app = typer.Typer(help="SIEM bearer tokens for the Events API.", no_args_is_help=True)
ingest_key_app = typer.Typer(help="Ingest keys for producers that add events.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts.")


@account_app.command("create")
def account_create(ctx: typer.Context, name: str, as_json: bool = JSON_OPTION) -> None:
    """Create an account; prints its uuid on stdout."""
    with services_for(ctx) as services:
        if not name.strip():
            raise typer.BadParameter("the account name must not be empty")
        account = services.store.create_account(new_id(), name.strip(), services.clock())
    if as_json:
        print_json({"uuid": account.uuid, "name": account.name, "created_at": when(account.created_at)})
    else:
        print(account.uuid)
        err.print(f"created account {account.name!r}")


@account_app.command("list")
def account_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List accounts."""
    with services_for(ctx) as services:
        accounts = services.store.list_accounts()
    rows = [{"uuid": a.uuid, "name": a.name, "created_at": when(a.created_at)} for a in accounts]
    if as_json:
        print_json(rows)
    else:
        print_table("Accounts", ["uuid", "name", "created"], [list(r.values()) for r in rows])


def _cells(rows: list[dict[str, object]], columns: list[str]) -> list[list[object]]:
    """Table cells; lists are shown comma-separated."""
    return [[",".join(map(str, v)) if isinstance(v := r[c], list) else v for c in columns] for r in rows]


def _token_dict(record: TokenRecord, integration: str, now: int) -> dict[str, object]:
    if record.revoked_at is not None:
        status = "revoked"
    elif record.expires_at is not None and now >= record.expires_at:
        status = "expired"
    else:
        status = "active"
    return {
        "id": record.id,
        "name": record.name,
        "integration": integration,
        "features": [f.value for f in record.features],
        "status": status,
        "created_at": when(record.created_at),
        "expires_at": when(record.expires_at),
        "revoked_at": when(record.revoked_at),
        "last_used_at": when(record.last_used_at),
    }


@token_app.command("issue")
def token_issue(
    ctx: typer.Context,
    account: str = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one)."),
    name: str = typer.Option(..., "--name", "-n", help="Token name, e.g. the SIEM host that will use it."),
    features: str = typer.Option(
        "all", "--features", "-f", help="Comma-separated: signinattempts,itemusages,auditevents."
    ),
    expires: str = typer.Option("never", "--expires", "-e", help="never, 30d, 90d, 180d, or e.g. 12h, 45d, 2w."),
    integration: str = typer.Option(
        None, "--integration", "-i", help="Integration uuid or name (default: one named after the token)."
    ),
    integration_type: str = typer.Option("other", "--type", help="Integration type when a new one is created."),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the token to this file (mode 0600)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a token. It is printed once, alone on stdout; details go to stderr."""
    chosen = features_option(features)
    expires_in = parse_expiry(expires)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        target = integration or name
        try:
            integ = services.store.get_integration(acct.id, target)
        except NotFound:
            if integration:
                raise
            integ = services.store.create_integration(acct.id, new_id(), integration_type, target, "", services.clock())
        token, record = services.tokens.issue(acct, integ, name, chosen, expires_in)
        info = _token_dict(record, integ.name, services.clock())
        base_url = services.settings.base_url
    if output is not None:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.chmod(output, 0o600)
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
    as_json: bool = JSON_OPTION,
) -> None:
    """List tokens (never their secrets)."""
    with services_for(ctx) as services:
        account_id = services.store.get_account(account).id if account else None
        now = services.clock()
        names: dict[int, str] = {}
        rows = []
        for record in services.store.list_tokens(account_id):
            if record.integration_id not in names:
                names[record.integration_id] = services.store.get_integration_by_id(record.integration_id).name
            rows.append(_token_dict(record, names[record.integration_id], now))
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "name", "integration", "features", "status", "expires_at", "last_used_at"]
        print_table("SIEM tokens", columns, _cells(rows, columns))


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token: its next request gets 401."""
    with services_for(ctx) as services:
        record = services.store.revoke_token(token_id, services.clock())
    err.print(f"token {record.id} ({record.name}) revoked at {when(record.revoked_at)}")


def _key_dict(key: IngestKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "features": [f.value for f in key.features],
        "status": "revoked" if key.revoked_at is not None else "active",
        "created_at": when(key.created_at),
        "last_used_at": when(key.last_used_at),
    }


@ingest_key_app.command("create")
def ingest_key_create(
    ctx: typer.Context,
    account: str = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one)."),
    name: str = typer.Option(..., "--name", "-n", help="What will use the key."),
    features: str = typer.Option("all", "--features", "-f", help="Streams the key may write."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an ingest key; printed once, alone on stdout."""
    chosen = features_option(features)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        secret, key = services.ingest_keys.create(acct, name, chosen)
    if as_json:
        print_json({**_key_dict(key), "key": secret, "account": acct.uuid})
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
    with services_for(ctx) as services:
        account_id = services.store.get_account(account).id if account else None
        rows = [_key_dict(k) for k in services.store.list_ingest_keys(account_id)]
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "name", "prefix", "features", "status", "last_used_at"]
        print_table("Ingest keys", columns, _cells(rows, columns))


@ingest_key_app.command("revoke")
def ingest_key_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke an ingest key."""
    with services_for(ctx) as services:
        key = services.store.revoke_ingest_key(key_id, services.clock())
    err.print(f"ingest key {key.id} ({key.name}) revoked")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Sign new tokens with a new key; keys no live token uses are retired."""
    with services_for(ctx) as services:
        keep = services.store.live_token_kids(services.clock())
        new_kid, retired = services.keys.rotate(keep)
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
        print_table("Signing keys", ["kid", "active", "used by live tokens"], [list(r.values()) for r in rows])
