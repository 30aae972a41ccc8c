"""Admin API: the signed-in person, sessions, personal API keys, accounts and members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from siemgate.accounts import views
from siemgate.accounts.actor import Actor
from siemgate.api.admin import models
from siemgate.api.admin.deps import AccountDep, ActorDep, CursorQuery, LimitQuery, ServicesDep, client_ip, paginate
from siemgate.api.services import Services
from siemgate.auth.sessions import COOKIE, IDLE_NS
from siemgate.errors import BadRequest, NotFound, Unauthorized
from siemgate.model.durations import parse_duration
from siemgate.model.timestamps import NS_PER_SECOND

router = APIRouter(prefix="/api/admin/v1", tags=["Admin API"])


def _me(services: Services, actor: Actor) -> dict[str, Any]:
    assert actor.user is not None
    memberships = services.store.list_memberships(actor.user.id)
    accounts = [views.account_view(services.store.get_account_by_id(m.account_id), m.role) for m in memberships]
    return {"uuid": actor.user.uuid, "email": actor.user.email, "name": actor.user.name, "accounts": accounts}


@router.get("/me", response_model=models.Me, summary="The signed-in person and their accounts")
def me(actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return _me(services, actor)


@router.post("/session", response_model=models.SessionOut, summary="Sign in to the console (sets a session cookie)")
def sign_in(body: models.SignIn, request: Request, response: Response, services: ServicesDep) -> dict[str, Any]:
    ip, agent = client_ip(request), request.headers.get("user-agent", "")
    try:
        result = services.sessions.sign_in(body.email, body.password, ip, agent)
    except Unauthorized:
        _record_failed_sign_in(services, body.email, ip, agent)
        raise
    for member in services.store.list_memberships(result.user.id):
        account = services.store.get_account_by_id(member.account_id)
        services.audit.sign_in(
            account, result.user, success=True, ip=ip, user_agent=agent, session_id=result.session.id
        )
    response.set_cookie(
        COOKIE,
        result.cookie,
        max_age=IDLE_NS // NS_PER_SECOND,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    actor = Actor(result.user, "session", result.session.id, result.session.created_at, ip)
    return {
        "user": _me(services, actor),
        "csrf_token": result.session.csrf_token,
        "expires_at": views.when(result.session.expires_at),
    }


def _record_failed_sign_in(services: Services, email: str, ip: str, agent: str) -> None:
    try:
        user = services.store.get_user(email.strip())
    except NotFound:
        return  # no account to record it in; the failure still counts towards the rate limit
    for member in services.store.list_memberships(user.id):
        account = services.store.get_account_by_id(member.account_id)
        services.audit.sign_in(account, user, success=False, ip=ip, user_agent=agent, session_id=None)


@router.delete("/session", status_code=204, summary="Sign out of the console")
def sign_out(request: Request, response: Response, actor: ActorDep, services: ServicesDep) -> Response:
    if actor.via == "session" and actor.credential_id is not None:
        services.store.delete_session(actor.credential_id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/me/api-keys", response_model=models.Page[models.ApiKeyOut], summary="Your personal API keys")
def list_api_keys(
    actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    assert actor.user is not None
    now = services.clock()
    items = [views.api_key_view(k, now) for k in services.store.list_api_keys(actor.user.id)]
    return paginate(items, lambda k: f"{k['created_at']}|{k['id']}", limit, cursor)


@router.post("/me/api-keys", response_model=models.CreatedApiKey, status_code=201, summary="Create a personal API key")
def create_api_key(body: models.ApiKeyCreate, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    assert actor.user is not None
    try:
        expires = parse_duration(body.expires)
    except ValueError as exc:
        raise BadRequest(f"Bad Request: expires: {exc}") from None
    secret, key = services.api_keys.create(actor.user, body.name, expires)
    return {**views.api_key_view(key, services.clock()), "key": secret}


@router.delete("/me/api-keys/{key_id}", response_model=models.ApiKeyOut, summary="Revoke a personal API key")
def revoke_api_key(key_id: str, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    assert actor.user is not None
    key = services.store.revoke_api_key(actor.user.id, key_id, services.clock())
    return views.api_key_view(key, services.clock())


@router.get("/accounts", response_model=models.Page[models.AccountOut], summary="Accounts you are a member of")
def list_accounts(
    actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    accounts = _me(services, actor)["accounts"]
    return paginate(accounts, lambda a: a["uuid"], limit, cursor)


@router.post(
    "/accounts", response_model=models.AccountOut, status_code=201, summary="Create an account; you become its owner"
)
def create_account(body: models.AccountCreate, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    account, _ = services.people.create_account(actor, body.name, None, None, None)
    return views.account_view(account, "owner")


@router.get("/accounts/{account}", response_model=models.AccountOut, summary="An account and your role in it")
def get_account(account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return views.account_view(account, services.people.role(actor, account))


@router.patch(
    "/accounts/{account}", response_model=models.AccountOut, summary="Rename an account (owners and administrators)"
)
def rename_account(
    body: models.AccountUpdate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    renamed = services.people.rename_account(actor, account, body.name)
    return views.account_view(renamed, services.people.role(actor, renamed))


@router.get(
    "/accounts/{account}/members", response_model=models.Page[models.MemberOut], summary="Members and their roles"
)
def list_members(
    account: AccountDep, actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    members = [views.member_view(m) for m in services.people.members(actor, account)]
    return paginate(members, lambda m: m["email"].lower(), limit, cursor)


@router.post("/accounts/{account}/members", response_model=models.MemberOut, status_code=201, summary="Add a member")
def add_member(
    body: models.MemberCreate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    try:
        member = services.people.add_member(actor, account, body.email, body.name, body.role, body.password)
    except ValueError as exc:  # a weak password
        raise BadRequest(f"Bad Request: password: {exc}") from None
    return views.member_view(member)


@router.patch("/accounts/{account}/members/{person}", response_model=models.MemberOut, summary="Change a member's role")
def set_role(
    person: str, body: models.MemberUpdate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    return views.member_view(services.people.set_role(actor, account, person, body.role))


@router.delete("/accounts/{account}/members/{person}", status_code=204, summary="Remove a member")
def remove_member(person: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> Response:
    services.people.remove_member(actor, account, person)
    return Response(status_code=204)
