"""Admin API, the signed-in person: console sign-in (password, then the two-factor step), sign-out,
their password, two-factor sign-in and recovery codes, personal API keys, and the invitations
addressed to them (accept, decline, or join as someone new)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from siemgate.accounts import views
from siemgate.accounts.actor import Actor
from siemgate.accounts.signin import Challenge, Client
from siemgate.api.admin import models
from siemgate.api.admin.deps import ActorDep, CursorQuery, LimitQuery, ServicesDep, client_ip, errors, paginate
from siemgate.auth.sessions import SignIn
from siemgate.errors import BadRequest
from siemgate.model.durations import parse_duration
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.services import Services

router = APIRouter(prefix="/api/admin/v1", tags=["Admin API"])


def me_view(services: Services, actor: Actor) -> dict[str, Any]:
    assert actor.user is not None
    memberships = services.store.list_memberships(actor.user.id)
    accounts = [views.account_view(services.store.get_account_by_id(m.account_id), m.role) for m in memberships]
    return {
        "uuid": actor.user.uuid,
        "email": actor.user.email,
        "name": actor.user.name,
        "two_factor": services.people.has_two_factor(actor.user),
        "accounts": accounts,
    }


def _client(request: Request) -> Client:
    return Client(client_ip(request), request.headers.get("user-agent", ""))


def _set_cookie(services: Services, request: Request, response: Response, value: str) -> None:
    cookie = services.sessions.cookie(request.url.scheme)
    response.set_cookie(
        cookie.name,
        value,
        max_age=services.sessions.lifetime_ns // NS_PER_SECOND,  # the session cannot outlive it
        httponly=True,
        samesite="strict",
        secure=cookie.secure,
        path="/",
    )


def _renew_cookie(services: Services, request: Request, response: Response, actor: Actor) -> None:
    """After a change that ended the person's other sessions: a new cookie for the actor's own
    session, so that a copy of its old value (a thief's) ends too. Nothing for an API key."""
    if actor.via == "session" and actor.credential_id is not None:
        _set_cookie(services, request, response, services.sessions.renew(actor.credential_id))


def _signed_in(services: Services, request: Request, response: Response, result: SignIn) -> dict[str, Any]:
    """Set the session cookie, ending the session this browser presented if it was the same
    person's (SessionService.replace); the body has the person and the CSRF token."""
    services.sessions.replace(services.sessions.presented(request.url.scheme, request.cookies), result)
    _set_cookie(services, request, response, result.cookie)
    actor = Actor(result.user, "session", result.session.id, result.session.created_at, client_ip(request))
    return {
        "user": me_view(services, actor),
        "csrf_token": result.session.csrf_token,
        "expires_at": views.when(result.session.expires_at),
    }


@router.get("/me", response_model=models.Me, summary="The signed-in person and their accounts")
def me(actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return me_view(services, actor)


# sign-in ------------------------------------------------------------------------------------------
@router.post(
    "/session",
    response_model=models.SessionOut | models.SecondFactorRequired,
    summary="Sign in to the console (sets a session cookie, or asks for the second factor)",
    responses=errors(401, 429),
)
def sign_in(body: models.SignIn, request: Request, response: Response, services: ServicesDep) -> dict[str, Any]:
    result = services.signin.password(body.email, body.password, _client(request))
    if isinstance(result, Challenge):
        return {"second_factor_required": True, "challenge": result.challenge}
    return _signed_in(services, request, response, result)


@router.post(
    "/session/second-factor",
    response_model=models.SessionOut,
    summary="The second sign-in step: a code of your authenticator app, or a recovery code",
    responses=errors(401, 429),
)
def second_factor(
    body: models.SecondFactor, request: Request, response: Response, services: ServicesDep
) -> dict[str, Any]:
    result = services.signin.second_factor(body.challenge, body.code, _client(request))
    return _signed_in(services, request, response, result)


@router.delete("/session", status_code=204, summary="Sign out of the console", responses=errors(401, 403))
def sign_out(actor: ActorDep, request: Request, services: ServicesDep) -> Response:
    services.personal.sign_out(actor)
    return _signed_out(services, request)


@router.delete(
    "/me/sessions",
    response_model=models.SessionsEnded,
    summary="Sign out everywhere: every console session of yours ends, this one included",
    responses=errors(401, 403),
)
def sign_out_everywhere(actor: ActorDep, request: Request, services: ServicesDep) -> Response:
    assert actor.user is not None
    ended = services.personal.sign_out_everywhere(actor, actor.user)
    return _signed_out(services, request, models.SessionsEnded(ended_sessions=ended).model_dump_json())


def _signed_out(services: Services, request: Request, body: str | None = None) -> Response:
    """A 204 (or 200 with a JSON `body`) that deletes the session cookie from the browser."""
    response = Response(status_code=204) if body is None else Response(body, media_type="application/json")
    cookie = services.sessions.cookie(request.url.scheme)
    response.delete_cookie(cookie.name, path="/", secure=cookie.secure, httponly=True, samesite="strict")
    return response


@router.put(
    "/me/password",
    status_code=204,
    summary="Change your password (your other console sessions end; this one gets a new cookie)",
    responses=errors(401, 403, 429),
)
def change_password(body: models.PasswordChange, actor: ActorDep, request: Request, services: ServicesDep) -> Response:
    assert actor.user is not None
    services.personal.change_password(actor, actor.user, body.current_password, body.new_password)
    response = Response(status_code=204)
    _renew_cookie(services, request, response, actor)
    return response


# two-factor ---------------------------------------------------------------------------------------
@router.get("/me/two-factor", response_model=models.TwoFactorStatus, summary="Whether you sign in with two factors")
def two_factor_status(actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    assert actor.user is not None
    enabled = services.people.has_two_factor(actor.user)
    left = services.store.recovery_codes_left(actor.user.id) if enabled else 0
    return {"enabled": enabled, "recovery_codes_left": left}


@router.post(
    "/me/two-factor",
    response_model=models.TwoFactorEnrolment,
    status_code=201,
    summary="Start two-factor enrolment: a new secret for your authenticator app",
    responses=errors(401, 403, 409),
)
def begin_two_factor(actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    assert actor.user is not None
    enrolment = services.personal.begin_two_factor(actor.user)
    return {"secret": enrolment.secret, "otpauth_uri": enrolment.uri}


@router.post(
    "/me/two-factor/confirm",
    response_model=models.RecoveryCodes,
    summary="Turn two-factor on with the app's current code and your password; returns your recovery codes",
    responses=errors(401, 403, 409, 429),
)
def confirm_two_factor(
    body: models.TwoFactorConfirm, actor: ActorDep, request: Request, response: Response, services: ServicesDep
) -> dict[str, Any]:
    assert actor.user is not None
    codes = services.personal.confirm_two_factor(actor, actor.user, body.code, body.password)
    _renew_cookie(services, request, response, actor)
    return {"recovery_codes": codes}


@router.post(
    "/me/two-factor/recovery-codes",
    response_model=models.RecoveryCodes,
    summary="New recovery codes (the old ones stop working), with your password and a current code",
    responses=errors(401, 403, 409, 429),
)
def new_recovery_codes(body: models.SecondFactorConfirm, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    assert actor.user is not None
    return {"recovery_codes": services.personal.new_recovery_codes(actor, actor.user, body.password, body.code)}


@router.post(
    "/me/two-factor/disable",
    status_code=204,
    summary="Turn two-factor off with your password and a current code (not while an account you belong to"
    " requires it)",
    responses=errors(401, 403, 409, 429),
)
def disable_two_factor(body: models.SecondFactorConfirm, actor: ActorDep, services: ServicesDep) -> Response:
    assert actor.user is not None
    services.personal.disable_two_factor(actor, actor.user, body.password, body.code)
    return Response(status_code=204)


# personal API keys --------------------------------------------------------------------------------
@router.get(
    "/me/api-keys",
    response_model=models.Page[models.ApiKeyOut],
    summary="Your personal API keys",
    responses=errors(401),
)
def list_api_keys(
    actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    assert actor.user is not None
    now = services.clock()
    items = [views.api_key_view(k, now) for k in services.store.list_api_keys(actor.user.id)]
    return paginate(items, lambda k: f"{k['created_at']}|{k['id']}", limit, cursor)


@router.post(
    "/me/api-keys",
    response_model=models.CreatedApiKey,
    status_code=201,
    summary="Create a personal API key",
    responses=errors(401, 403, 409),
    openapi_extra={
        "responses": {
            "201": {
                "links": {
                    "RevokeApiKey": {
                        "operationId": "revoke_api_key",
                        "parameters": {"key_id": "$response.body#/id"},
                    }
                }
            }
        }
    },
)
def create_api_key(body: models.ApiKeyCreate, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    assert actor.user is not None
    try:
        expires = parse_duration(body.expires)
    except ValueError as exc:
        raise BadRequest(f"Bad Request: expires: {exc}") from None
    secret, key = services.personal.create_api_key(actor, actor.user, body.name, expires, body.password)
    return {**views.api_key_view(key, services.clock()), "key": secret}


@router.delete(
    "/me/api-keys/{key_id}",
    response_model=models.ApiKeyOut,
    summary="Revoke a personal API key",
    operation_id="revoke_api_key",
    responses=errors(401, 403, 404),
)
def revoke_api_key(key_id: str, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    assert actor.user is not None
    key = services.personal.revoke_api_key(actor, actor.user, key_id)
    return views.api_key_view(key, services.clock())


# invitations addressed to me ----------------------------------------------------------------------
@router.get(
    "/me/invitations",
    response_model=list[models.Offer],
    summary="Pending invitations addressed to you",
    responses=errors(401),
)
def my_invitations(actor: ActorDep, services: ServicesDep) -> list[dict[str, Any]]:
    assert actor.user is not None
    return [views.offer_view(o.invitation, o.account) for o in services.invitations.offers(actor.user)]


@router.post(
    "/me/invitations/{invitation_id}/accept",
    response_model=models.AccountOut,
    summary="Accept an invitation with its code: you join the account",
    responses=errors(401, 403, 404, 409),
)
def accept_invitation(
    invitation_id: str, body: models.InvitationAnswer, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    account, role = services.invitations.accept(actor, invitation_id, body.code)
    return views.account_view(account, role)


@router.post(
    "/me/invitations/{invitation_id}/decline",
    status_code=204,
    summary="Decline an invitation (with its code)",
    responses=errors(401, 403, 404),
)
def decline_invitation(
    invitation_id: str, body: models.InvitationAnswer, actor: ActorDep, services: ServicesDep
) -> Response:
    services.invitations.decline(actor, invitation_id, body.code)
    return Response(status_code=204)


@router.post(
    "/join",
    response_model=models.SessionOut,
    status_code=201,
    summary="Someone new takes up an invitation: choose your name and password (signs you in)",
    responses=errors(404, 409, 429),
)
def join(body: models.Join, request: Request, response: Response, services: ServicesDep) -> dict[str, Any]:
    client = _client(request)
    services.signin.limiter.check(body.email, client.ip)
    opened: list[SignIn] = []

    def signed_in_as(user: Any) -> Actor:
        result = services.sessions.open(user, client.ip, client.user_agent)
        opened.append(result)
        return Actor(user, "session", result.session.id, result.session.created_at, client.ip)

    try:
        services.invitations.join(body.code, body.email, body.name, body.password, signed_in_as)
    except Exception:
        services.signin.limiter.failed(body.email, client.ip)
        raise
    return _signed_in(services, request, response, opened[0])
