"""Authentication and shared parameters of the admin API."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from siemgate.accounts.actor import Actor
from siemgate.api.middleware import REPLY_HEADERS
from siemgate.api.schemas import ErrorBody
from siemgate.auth.api_keys import PREFIX as API_KEY_PREFIX
from siemgate.auth.ingest_keys import PREFIX as INGEST_PREFIX
from siemgate.auth.sessions import COOKIE, HOST_COOKIE
from siemgate.errors import BadRequest, Unauthorized
from siemgate.services import Services
from siemgate.store.base import Account

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"

_bearer = HTTPBearer(auto_error=False, scheme_name="PersonalApiKey", description="A personal API key (sgp_...).")


class _SessionCookie(APIKeyCookie):
    """The console session cookie under the name of the request's scheme (SessionService.cookie)."""

    async def __call__(self, request: HTTPConnection) -> str | None:
        return services(request).sessions.presented(request.url.scheme, request.cookies)


_cookie = _SessionCookie(
    name=HOST_COOKIE,
    auto_error=False,
    scheme_name="ConsoleSession",
    description=f"The console's session cookie: {HOST_COOKIE} over https, {COOKIE} over plain http.",
)

T = TypeVar("T")


ERRORS = {
    400: "Invalid request: the message says which field and why.",
    401: "No credential, or one that is unknown, revoked or expired: sign in or send a personal API key.",
    403: "Signed in, but not allowed: the role is too low, the account requires two-factor sign-in, the"
    " console session's X-CSRF-Token is missing or wrong, or the password given to confirm a change is"
    " not right.",
    404: "No such account, person, invitation or key (or you are not a member of the account).",
    409: "The change conflicts with the current state (the message says which).",
    429: "Too many attempts, or the person's admin API requests are over their rate limit: wait the"
    " Retry-After seconds.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of an operation (all have the ErrorBody shape)."""
    return {status: {"model": ErrorBody, "description": ERRORS[status]} for status in statuses}


def services(request: HTTPConnection) -> Services:
    result: Services = request.app.state.services
    return result


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def admin_actor(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Actor:
    """The person making an admin API request, counted against their rate limit (whichever key or
    session they use; RateLimit-* headers on every answer, through ReplyHeadersMiddleware). Raises
    Unauthorized saying what to send, RateLimited (429, Retry-After) when the person is over their
    limit."""
    actor = _authenticate(request, bearer, cookie)
    assert actor.user is not None  # only the operator acts without a person, never over HTTP
    limiter = services(request).admin_rate_limiter
    status = limiter.check(actor.user.uuid, f"{actor.user.email} on the admin API")
    setattr(request.state, REPLY_HEADERS, status.headers())
    return actor


def _authenticate(request: Request, bearer: HTTPAuthorizationCredentials | None, cookie: str | None) -> Actor:
    svc = services(request)
    if bearer is not None:
        secret = bearer.credentials.strip()
        if secret.startswith(API_KEY_PREFIX):
            user, key = svc.api_keys.authenticate(secret)
            svc.usage.record_api_key(key.id, svc.clock())
            return Actor(user, "api_key", key.id, key.created_at, client_ip(request))
        if secret.startswith(INGEST_PREFIX):
            raise Unauthorized("Unauthorized: ingest keys can only add events; use a personal API key (sgp_...)")
        raise Unauthorized(
            "Unauthorized: SIEM tokens can only read events through the Events API; the admin API takes a"
            " personal API key (sgp_..., `siemgate api-key create`) or a console session"
        )
    if cookie:
        user, session = svc.sessions.authenticate(cookie)
        if request.method not in SAFE_METHODS:
            svc.sessions.check_csrf(session, request.headers.get(CSRF_HEADER))
        return Actor(user, "session", session.id, session.created_at, client_ip(request))
    raise Unauthorized("Unauthorized: send a personal API key as 'Authorization: Bearer sgp_...', or sign in")


ActorDep = Annotated[Actor, Depends(admin_actor)]
ServicesDep = Annotated[Services, Depends(services)]


def account_param(account: str, actor: ActorDep, request: Request) -> Account:
    """The `{account}` path parameter (uuid or name), visible to the actor."""
    return services(request).people.account_for(actor, account)


AccountDep = Annotated[Account, Depends(account_param)]
LimitQuery = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
CursorQuery = Annotated[str | None, Query(description="The next_cursor of the previous page.")]


def paginate(items: Sequence[T], key: Callable[[T], str], limit: int, cursor: str | None) -> dict[str, Any]:
    """Keyset pagination over items sorted by `key`: {"items", "next_cursor"}."""
    after = ""
    if cursor:
        after = decode_cursor(cursor)
    ordered = sorted(items, key=key)
    remaining = [item for item in ordered if key(item) > after]
    page = remaining[:limit]
    next_cursor = None
    if len(remaining) > limit:
        next_cursor = encode_cursor(key(page[-1]))
    return {"items": page, "next_cursor": next_cursor}


_CURSOR_PREFIX = b"page1:"
BAD_CURSOR = "Bad Request: cursor is not a next_cursor from this API; start without one"


def encode_cursor(position: str, prefix: bytes = _CURSOR_PREFIX) -> str:
    """A next_cursor for `position`: URL-safe base64 of `prefix` + position, unpadded."""
    return base64.urlsafe_b64encode(prefix + position.encode()).rstrip(b"=").decode()


def keyset_page(
    rows: Sequence[T], limit: int, position: Callable[[T], tuple[int, str]], prefix: bytes
) -> tuple[Sequence[T], str | None]:
    """A page of `rows` (read newest first with one more than `limit`) and the next_cursor that
    encodes the (time, id) of its last row, or None when there is no more."""
    if len(rows) <= limit:
        return rows, None
    at, ident = position(rows[limit - 1])
    return rows[:limit], encode_cursor(f"{at}|{ident}", prefix)


def decode_position(cursor: str | None, prefix: bytes) -> tuple[int, str] | None:
    """The (time, id) a keyset_page cursor encodes, None for no cursor; BadRequest for anything
    this API did not make (also a time outside a 64-bit integer, which the database refuses)."""
    if not cursor:
        return None
    at, bar, ident = decode_cursor(cursor, prefix).partition("|")
    if not bar or not (at.isascii() and at.isdigit()) or int(at) >= 2**63:
        raise BadRequest(BAD_CURSOR)
    return int(at), ident


def decode_cursor(cursor: str, prefix: bytes = _CURSOR_PREFIX) -> str:
    """The position a next_cursor encodes; BadRequest for anything this API did not make."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        text = raw.removeprefix(prefix).decode()
    except (ValueError, UnicodeDecodeError):
        raw, text = b"", ""
    if not raw.startswith(prefix) or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != cursor:
        raise BadRequest(BAD_CURSOR)
    return text
