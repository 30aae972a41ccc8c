"""Admin API: accounts, their members and roles, invitations, and the two-factor requirement.

People join an account by invitation only (docs/security.md): the reply to an invitation is the
same whether or not the address is known anywhere on this server.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from siemgate.accounts import views
from siemgate.api.admin import models
from siemgate.api.admin.deps import AccountDep, ActorDep, CursorQuery, LimitQuery, ServicesDep, errors, paginate
from siemgate.api.admin.me_routes import me_view
from siemgate.errors import Forbidden
from siemgate.model.text import fold_case
from siemgate.services import Services
from siemgate.store.base import Member

router = APIRouter(prefix="/api/admin/v1", tags=["Admin API"])
ACCOUNT_ERRORS = (401, 403, 404)


def _member(services: Services, member: Member) -> dict[str, Any]:
    return views.member_view(member, services.people.has_two_factor(member.user))


@router.get(
    "/accounts",
    response_model=models.Page[models.AccountOut],
    summary="Accounts you are a member of",
    responses=errors(401),
)
def list_accounts(
    actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    accounts = me_view(services, actor)["accounts"]
    return paginate(accounts, lambda a: a["uuid"], limit, cursor)


@router.post(
    "/accounts",
    response_model=models.AccountOut,
    status_code=201,
    summary="Create an account; you become its owner (only when the operator allows it)",
    responses=errors(401, 403, 409),
)
def create_account(body: models.AccountCreate, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    if not services.settings.allow_account_creation:
        raise Forbidden(
            "Forbidden: accounts are created by the operator of this server (`siemgate account create`);"
            " ask them, or ask an owner to invite you to an existing account"
        )
    account, _ = services.people.create_account(actor, body.name, None, None, None)
    return views.account_view(account, "owner")


@router.get(
    "/accounts/{account}",
    response_model=models.AccountOut,
    summary="An account and your role in it",
    responses=errors(*ACCOUNT_ERRORS),
)
def get_account(account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return views.account_view(account, services.people.role(actor, account))


@router.patch(
    "/accounts/{account}",
    response_model=models.AccountOut,
    summary="Rename an account (owners and administrators, only when the operator allows account creation)",
    responses=errors(*ACCOUNT_ERRORS, 409),
)
def rename_account(
    body: models.AccountUpdate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    if not services.settings.allow_account_creation:  # a taken name would tell of another tenant
        raise Forbidden(
            "Forbidden: only the operator of this server can rename the account (`siemgate account rename`):"
            " account names are unique across the server, so the operator gives them; ask them"
        )
    renamed = services.people.rename_account(actor, account, body.name)
    return views.account_view(renamed, services.people.role(actor, renamed))


@router.delete(
    "/accounts/{account}",
    response_model=models.AccountDeleted,
    summary="Delete the account and everything it has, for good (owners; confirm with its name)",
    responses=errors(*ACCOUNT_ERRORS, 400),
)
def delete_account(
    account: AccountDep,
    actor: ActorDep,
    services: ServicesDep,
    confirm: str = Query(
        "", max_length=200, description="The account's name, exactly: deleting cannot be undone (docs/setup.md)."
    ),
) -> dict[str, Any]:
    removed = services.delete_account(actor, account, confirm)
    return {"deleted": account.uuid, "name": account.name, "removed": removed}


@router.get(
    "/accounts/{account}/security",
    response_model=models.AccountSecurity,
    summary="The account's sign-in requirements",
    responses=errors(*ACCOUNT_ERRORS),
)
def get_security(account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    services.people.role(actor, account)
    return {"require_two_factor": services.store.requires_two_factor(account.id)}


@router.put(
    "/accounts/{account}/security",
    response_model=models.AccountSecurity,
    summary="Require two-factor sign-in of every member (owners)",
    responses=errors(*ACCOUNT_ERRORS, 409),
)
def set_security(
    body: models.AccountSecurity, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    required = services.personal.require_two_factor(actor, account, body.require_two_factor)
    return {"require_two_factor": required}


# members ------------------------------------------------------------------------------------------
@router.get(
    "/accounts/{account}/members",
    response_model=models.Page[models.MemberOut],
    summary="Members and their roles",
    responses=errors(*ACCOUNT_ERRORS),
)
def list_members(
    account: AccountDep, actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    members = [_member(services, m) for m in services.people.members(actor, account)]
    # by address ignoring case as the store does (A to Z only), then uuid: a key no two members share,
    # or keyset paging skips one (str.lower() made `éve@` and `Éve@`, two people, one key)
    return paginate(members, lambda m: f"{fold_case(m['email'])}\x00{m['uuid']}", limit, cursor)


@router.patch(
    "/accounts/{account}/members/{person}",
    response_model=models.MemberOut,
    summary="Change a member's role",
    responses=errors(*ACCOUNT_ERRORS, 409),
)
def set_role(
    person: str, body: models.MemberUpdate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    return _member(services, services.people.set_role(actor, account, person, body.role))


@router.delete(
    "/accounts/{account}/members/{person}",
    status_code=204,
    summary="Remove a member",
    responses=errors(*ACCOUNT_ERRORS, 409),
)
def remove_member(person: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> Response:
    services.people.remove_member(actor, account, person)
    return Response(status_code=204)


# invitations --------------------------------------------------------------------------------------
@router.post(
    "/accounts/{account}/invitations",
    response_model=models.CreatedInvitation,
    status_code=201,
    summary="Invite someone by email (the same reply whether or not they have a sign-in here)",
    responses=errors(*ACCOUNT_ERRORS, 409),
    openapi_extra={
        "responses": {
            "201": {
                "links": {
                    "RevokeInvitation": {
                        "operationId": "revoke_invitation",
                        "parameters": {"account": "$request.path.account", "invitation_id": "$response.body#/id"},
                    }
                }
            }
        }
    },
)
def invite(
    body: models.InvitationCreate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    code, invitation = services.invitations.invite(actor, account, body.email, body.role)
    return {
        **views.invitation_view(invitation, services.clock()),
        "code": code,
        "join_url": f"{services.settings.base_url}/console/join",
    }


@router.get(
    "/accounts/{account}/invitations",
    response_model=models.Page[models.InvitationOut],
    summary="The account's invitations (owners and administrators)",
    responses=errors(*ACCOUNT_ERRORS),
)
def list_invitations(
    account: AccountDep, actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    now = services.clock()
    items = [views.invitation_view(i, now) for i in services.invitations.list_invitations(actor, account)]
    return paginate(items, lambda i: f"{i['created_at']}|{i['id']}", limit, cursor)


@router.delete(
    "/accounts/{account}/invitations/{invitation_id}",
    response_model=models.InvitationOut,
    summary="Revoke a pending invitation",
    operation_id="revoke_invitation",
    responses=errors(*ACCOUNT_ERRORS, 409),
)
def revoke_invitation(
    invitation_id: str, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    invitation = services.invitations.revoke(actor, account, invitation_id)
    return views.invitation_view(invitation, services.clock())
