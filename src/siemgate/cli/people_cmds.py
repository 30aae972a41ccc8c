"""People, integrations and personal API keys from the command line."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from siemgate.accounts.actor import CLI
from siemgate.accounts.catalog import SIEM_TYPES
from siemgate.cli.common import find_account, read_password, services_for, store_for
from siemgate.cli.output import err, print_json, print_table
from siemgate.model.durations import parse_duration

user_app = typer.Typer(help="People and their roles in an account.", no_args_is_help=True)
integration_app = typer.Typer(help="Integrations: one per SIEM application.", no_args_is_help=True)
api_key_app = typer.Typer(help="Personal API keys for the admin API.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts.")
ACCOUNT_OPTION = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one).")
ROLE_HELP = "owner, administrator or member"


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    email: str,
    account: str = ACCOUNT_OPTION,
    name: str = typer.Option(None, "--name", help="Full name (default: from the email)."),
    role: str = typer.Option("member", "--role", help=ROLE_HELP),
    password_file: Path = typer.Option(None, "--password-file", help="Console password, from a file."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the console password from stdin."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a new person to an account (or one whose home it is). People who already have a
    sign-in elsewhere are invited instead (`siemgate user invite`)."""
    from siemgate.accounts import views

    password = read_password(password_file, password_stdin)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        try:
            member = services.people.add_member(CLI, acct, email, name, role, password)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        view = views.member_view(member, services.people.has_two_factor(member.user))
    if as_json:
        print_json(view)
    else:
        print(member.user.uuid)
        err.print(f"{member.user.email} is now {member.role} of {acct.name!r}")


@user_app.command("list")
def user_list(ctx: typer.Context, account: str = ACCOUNT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List an account's members and roles."""
    from siemgate.accounts import views

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        rows = [
            views.member_view(m, services.people.has_two_factor(m.user)) for m in services.people.members(CLI, acct)
        ]
    if as_json:
        print_json(rows)
    else:
        columns = ["uuid", "email", "name", "role", "joined_at", "two_factor"]
        print_table(f"Members of {acct.name}", columns, [[r[c] for c in columns] for r in rows])


@user_app.command("invite")
def user_invite(
    ctx: typer.Context,
    email: str,
    account: str = ACCOUNT_OPTION,
    role: str = typer.Option("member", "--role", help=ROLE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Invite someone to an account; prints the invitation code once (valid 7 days). They accept it
    signed in with their own credentials, or join with it as someone new (/console/join)."""
    from siemgate.accounts import views

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        code, invitation = services.invitations.invite(CLI, acct, email, role)
        view = {**views.invitation_view(invitation, services.clock()), "code": code}
        join_url = f"{services.settings.base_url}/console/join"
    if as_json:
        print_json({**view, "join_url": join_url})
    else:
        print(code)
        err.print(
            f"invited {invitation.email} as {invitation.role} of {acct.name!r} until {view['expires_at']};"
            f" give them the code (shown only once). New people join at {join_url}."
        )


@user_app.command("invitations")
def user_invitations(ctx: typer.Context, account: str = ACCOUNT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List an account's invitations and their status."""
    from siemgate.accounts import views

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        now = services.clock()
        rows = [views.invitation_view(i, now) for i in services.invitations.list_invitations(CLI, acct)]
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "email", "role", "status", "expires_at"]
        print_table(f"Invitations to {acct.name}", columns, [[r[c] for c in columns] for r in rows])


@user_app.command("revoke-invitation")
def user_revoke_invitation(ctx: typer.Context, invitation_id: str, account: str = ACCOUNT_OPTION) -> None:
    """Withdraw a pending invitation."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        invitation = services.invitations.revoke(CLI, acct, invitation_id)
    err.print(f"invitation {invitation.id} for {invitation.email} revoked")


@user_app.command("set-role")
def user_set_role(ctx: typer.Context, person: str, role: str, account: str = ACCOUNT_OPTION) -> None:
    """Change a member's role (uuid or email)."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        member = services.people.set_role(CLI, acct, person, role)
    err.print(f"{member.user.email} is now {member.role} of {acct.name!r}")


@user_app.command("remove")
def user_remove(ctx: typer.Context, person: str, account: str = ACCOUNT_OPTION) -> None:
    """Remove a member from an account (an account always keeps an owner)."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        services.people.remove_member(CLI, acct, person)
    err.print(f"{person} removed from {acct.name!r}")


@user_app.command("password")
def user_password(
    ctx: typer.Context,
    person: str,
    password_file: Path = typer.Option(None, "--password-file", help="The new password, from a file."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin."),
) -> None:
    """Reset a person's console password. As the person did not choose it, every personal API key
    of theirs is revoked and every session ends; recorded in each of their accounts."""
    password = read_password(password_file, password_stdin)
    if password is None:
        raise typer.BadParameter("give the password with --password-file or --password-stdin")
    with services_for(ctx) as services:
        user = services.store.get_user(person)
        reset = services.personal.reset_password(CLI, user, password)
    err.print(
        f"password set for {user.email}; revoked {len(reset.revoked_api_keys)} API key(s),"
        f" ended {reset.ended_sessions} session(s)"
    )


@user_app.command("reset-two-factor")
def user_reset_two_factor(ctx: typer.Context, person: str) -> None:
    """Turn a person's two-factor sign-in off (a lost phone). Every personal API key of theirs is
    revoked and every session ends; they sign in with their password and enrol again."""
    with services_for(ctx) as services:
        user = services.store.get_user(person)
        reset = services.personal.reset_two_factor(CLI, user)
    err.print(
        f"two-factor sign-in reset for {user.email}; revoked {len(reset.revoked_api_keys)} API key(s),"
        f" ended {reset.ended_sessions} session(s)"
    )


@integration_app.command("create")
def integration_create(
    ctx: typer.Context,
    name: str,
    siem: str = typer.Option("other", "--type", "-t", help=f"SIEM type: {', '.join(SIEM_TYPES)}."),
    description: str = typer.Option("", "--description", help="What it is for."),
    account: str = ACCOUNT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an integration for a SIEM."""
    from siemgate.accounts import views

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        integration = services.integrations.create(CLI, acct, siem, name, description)
    if as_json:
        print_json(views.integration_view(integration))
    else:
        print(integration.uuid)
        err.print(f"created integration {integration.name!r} ({SIEM_TYPES[integration.type].name}) in {acct.name!r}")


@integration_app.command("list")
def integration_list(ctx: typer.Context, account: str = ACCOUNT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List an account's integrations."""
    from siemgate.accounts import views

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        rows = [views.integration_view(i) for i in services.integrations.list_integrations(CLI, acct)]
    if as_json:
        print_json(rows)
    else:
        columns = ["uuid", "type", "name", "created_at"]
        print_table(f"Integrations of {acct.name}", columns, [[r[c] for c in columns] for r in rows])


@integration_app.command("show")
def integration_show(
    ctx: typer.Context, integration: str, account: str = ACCOUNT_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """An integration's connection guide, tokens, their status and consumer lag."""
    from siemgate.accounts import views

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        data = views.details_view(services.integrations.details(CLI, acct, integration), services.clock())
    if as_json:
        print_json(data)
        return
    guide = data["connection_guide"]
    err.print(f"[bold]{data['name']}[/bold] — {data['siem']['name']} ({guide['connector']})")
    err.print(guide["url_note"])
    for warning in guide["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for number, step in enumerate(guide["steps"], start=1):
        err.print(f"  {number}. {step}")
    rows = []
    for token in data["tokens"]:
        lag = ", ".join(
            f"{s['feature']}: {'never read' if s['events_behind'] is None else str(s['events_behind']) + ' behind'}"
            for s in token["streams"]
        )
        rows.append(
            [token["id"], token["name"], token["status"], token["expires_at"] or "never", token["last_used_at"], lag]
        )
    print_table("Tokens", ["id", "name", "status", "expires", "last used", "consumer"], rows)


@integration_app.command("rename")
def integration_rename(ctx: typer.Context, integration: str, name: str, account: str = ACCOUNT_OPTION) -> None:
    """Rename an integration."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        updated = services.integrations.update(CLI, acct, integration, name, None)
    err.print(f"integration {updated.uuid} is now {updated.name!r}")


@integration_app.command("delete")
def integration_delete(ctx: typer.Context, integration: str, account: str = ACCOUNT_OPTION) -> None:
    """Delete an integration; its tokens are revoked at once."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        revoked = services.integrations.delete(CLI, acct, integration)
    err.print(f"deleted integration {integration!r}; revoked {len(revoked)} token(s)")


@api_key_app.command("create")
def api_key_create(
    ctx: typer.Context,
    person: str = typer.Option(..., "--user", "-u", help="Whose key (uuid or email); it acts as them."),
    name: str = typer.Option(..., "--name", "-n", help="What will use the key."),
    expires: str = typer.Option("never", "--expires", "-e", help="never, or a duration such as 90d."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a personal API key for the admin API; printed once, alone on stdout."""
    from siemgate.accounts import views

    try:
        expires_in = parse_duration(expires)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with services_for(ctx) as services:
        user = services.store.get_user(person)
        secret, key = services.personal.create_api_key(CLI, user, name, expires_in)
        view = views.api_key_view(key, services.clock())
    if as_json:
        print_json({**view, "key": secret, "user": user.email})
    else:
        print(secret)
        err.print(f"created API key {key.id} ({key.name}) for {user.email}; it is shown only once")


@api_key_app.command("list")
def api_key_list(
    ctx: typer.Context, person: str = typer.Option(..., "--user", "-u"), as_json: bool = JSON_OPTION
) -> None:
    """List a person's API keys."""
    from siemgate.accounts import views

    with store_for(ctx) as store:
        user = store.get_user(person)
        rows = [views.api_key_view(k, time.time_ns()) for k in store.list_api_keys(user.id)]
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "name", "prefix", "status", "expires_at", "last_used_at"]
        print_table(f"API keys of {user.email}", columns, [[r[c] for c in columns] for r in rows])


@api_key_app.command("revoke")
def api_key_revoke(ctx: typer.Context, key_id: str, person: str = typer.Option(..., "--user", "-u")) -> None:
    """Revoke a personal API key."""
    with services_for(ctx) as services:
        user = services.store.get_user(person)
        key = services.personal.revoke_api_key(CLI, user, key_id)
    err.print(f"API key {key.id} ({key.name}) revoked")
