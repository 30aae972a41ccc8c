"""The 1Password-compatible Events API: event pages (v1, v2) and token introspection.

Everything that reads the store (the token's revocation, the rate limit when it is in Redis, the
page) runs in the thread pool, as ingest does: on PostgreSQL a page is a network round trip and
1000 rows turned into bytes, and on the event loop it would hold up every other request of the
process (docs/benchmarks.md, "PostgreSQL next to SQLite"). Only receiving the body stays on the
loop; a page request then makes one call into the pool (token check, page read and the page's
bytes together), not one per step. The token's revocation is read afresh at every request, so
a revocation is effective at the next request on every process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from siemgate.api.admin.slots import AccountSlots
from siemgate.api.body import read_body
from siemgate.api.errors import JSON, error_response
from siemgate.api.page_request import parse_page_request
from siemgate.api.pages import Page, PageReader
from siemgate.api.schemas import (
    PAGE_MODELS,
    CursorBody,
    ErrorBody,
    Introspection,
    IntrospectionV2,
    ResetCursor,
)
from siemgate.auth.ratelimit import RateLimitStatus
from siemgate.auth.tokens import require_feature
from siemgate.errors import SiemgateError
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.services import Services
from siemgate.store.base import Account, Integration, TokenRecord

RATE_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed in the tightest window."},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in that window."},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until that window resets."},
}
PROOF_HEADERS = {
    "Siemgate-Log-Range": {
        "schema": {"type": "string"},
        "description": "Only with `Siemgate-Proof: 1`: the log indices `first-last` this page accounts for.",
    },
    "Siemgate-Log-Size": {
        "schema": {"type": "integer"},
        "description": "Only with `Siemgate-Proof: 1`: the size of the stream's newest signed checkpoint.",
    },
    "Link": {
        "schema": {"type": "string"},
        "description": 'Only with `Siemgate-Proof: 1`: `</api/siemgate/v1/log/{feature}/page-proof>; rel="proof"`.',
    },
}
RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Whole seconds to wait before trying again."}
WWW_AUTHENTICATE_HEADER = {"schema": {"type": "string"}, "description": "Always `Bearer`."}
EVENT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed body, limit outside 1..1000, bad time, or bad cursor."},
    401: {
        "model": ErrorBody,
        "description": "Missing, invalid, expired or revoked token, or a missing feature.",
        "headers": {"WWW-Authenticate": WWW_AUTHENTICATE_HEADER},
    },
    413: {"model": ErrorBody, "description": "Request body too large."},
    429: {
        "model": ErrorBody,
        "description": "Rate limit exceeded.",
        "headers": {**RATE_HEADERS, "Retry-After": RETRY_AFTER},
    },
    500: {"model": ErrorBody, "description": "Internal error."},
}
_INTROSPECT_ERRORS = {code: spec for code, spec in EVENT_ERRORS.items() if code not in (400, 413)}
SECURITY: dict[str, Any] = {"security": [{"EventsToken": []}]}
_REQUEST_BODY = {
    "requestBody": {
        "required": False,
        "description": "A reset (limit, start_time, end_time) or a cursor; empty means {}. Any Content-Type.",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/ResetCursor"},
                        {"$ref": "#/components/schemas/Cursor"},
                        {"type": "null", "description": "The same as {}."},
                    ]
                }
            }
        },
    },
    **SECURITY,
}
EXTRA_SCHEMAS = (ResetCursor, CursorBody)

Handler = Callable[[Request], Awaitable[Response]]
PROOF_HEADER = "siemgate-proof"


def authorize(services: Services, authorization: str | None) -> tuple[TokenRecord, RateLimitStatus]:
    """Authenticate the token and count the request against the token's limit and its account's
    (all its tokens together, so that no account's many tokens take the server); raises
    Unauthorized or RateLimited."""
    record = services.tokens.authenticate(authorization)
    status = services.rate_limiter.check(record.id, "this token")
    account = services.account(record.account_id).uuid  # by uuid: ids of two stores sharing Redis may meet
    services.account_rate_limiter.check(account, "this token's account (all its tokens together)")
    return record, status


def _serve_page(
    services: Services,
    reader: PageReader,
    authorization: str | None,
    received: bytes | SiemgateError,
    feature: Feature,
    version: int,
    proof: bool,
) -> tuple[TokenRecord | None, dict[str, str], Page | SiemgateError]:
    """Authorize, parse and read one page (with its proof headers when asked) in one worker-thread
    call: one hop off the event loop per request. Returns the token (None when refused), the
    response headers and the page or the error to answer with. The body's own error (`received`)
    is reported after the token's, as when the body was read after authorizing."""
    headers: dict[str, str] = {}
    record = None
    try:
        record, status = authorize(services, authorization)
        headers = status.headers()
        require_feature(record, feature)
        if isinstance(received, SiemgateError):
            raise received
        page_request = parse_page_request(received)
        page = reader.read(services.account(record.account_id), feature, page_request, v1=version == 1)
        if proof:
            headers.update(proof_headers(services, record, feature, page))
        return record, headers, page
    except SiemgateError as exc:
        return record, headers, exc


def proof_headers(services: Services, record: TokenRecord, feature: Feature, page: Page) -> dict[str, str]:
    """What a page request carrying `Siemgate-Proof: 1` gets besides the page (docs/integrity.md):
    the leaves it accounts for, the newest checkpoint's size and where its proof is."""
    headers = {"Link": f'</api/siemgate/v1/log/{feature.value}/page-proof>; rel="proof"'}
    if page.last_seq > page.first_seq:
        headers["Siemgate-Log-Range"] = f"{page.first_seq}-{page.last_seq - 1}"
    newest = services.store.last_log_checkpoint(record.account_id, feature)
    if newest is not None:
        headers["Siemgate-Log-Size"] = str(newest.size)
    return headers


def _introspect(
    services: Services, authorization: str | None
) -> tuple[TokenRecord, RateLimitStatus, Integration, Account]:
    """The authorized token with its integration and account (a worker thread's job)."""
    record, status = authorize(services, authorization)
    integration = services.store.get_integration_by_id(record.integration_id)
    account = services.store.get_account_by_id(record.account_id)
    return record, status, integration, account


def _page_endpoint(feature: Feature, version: int, reader: PageReader) -> Handler:
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        received: bytes | SiemgateError
        try:
            received = await read_body(request, services.settings.events_max_body_bytes)
        except SiemgateError as exc:
            received = exc
        authorization, proof = request.headers.get("authorization"), request.headers.get(PROOF_HEADER) == "1"
        try:
            async with _turn(request, services, authorization):
                record, headers, page = await run_in_threadpool(
                    _serve_page, services, reader, authorization, received, feature, version, proof
                )
        except SiemgateError as exc:  # waited too long for the account's turn
            return error_response(exc, {})
        if isinstance(page, SiemgateError):
            return error_response(page, headers)
        assert record is not None  # a page is only read for an authorized token
        services.usage.record(record.id, services.clock(), feature, page.last_seq)
        return Response(page.body, media_type=JSON, headers=headers)

    endpoint.__name__ = f"{feature.value}_v{version}"
    return endpoint


def _turn(request: Request, services: Services, authorization: str | None) -> AbstractAsyncContextManager[None]:
    """One of the account's events_pages_per_account turns, on the event loop, when the token is
    known to this process (a token's first request goes ahead: its signature is checked in the
    thread), so that one account's many requests wait here, holding no worker thread, rather than
    queue for the threads ahead of other accounts' (docs/security.md, "Per-account quotas")."""
    account_id = services.tokens.known_account(authorization)
    if account_id is None:
        return contextlib.nullcontext()
    slots: AccountSlots = request.app.state.page_slots
    return slots.hold(account_id)


def _introspect_endpoint(version: int) -> Handler:
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        headers: dict[str, str] = {}
        try:
            record, status, integration, account = await run_in_threadpool(
                _introspect, services, request.headers.get("authorization")
            )
            headers = status.headers()
        except SiemgateError as exc:
            return error_response(exc, headers)
        services.usage.record(record.id, services.clock())
        issued = format_ns(record.created_at // NS_PER_SECOND * NS_PER_SECOND)
        features = [f.value for f in record.features]
        if version == 1:
            data: dict[str, Any] = {"UUID": integration.uuid, "IssuedAt": issued, "Features": features}
        else:
            data = {
                "uuid": integration.uuid,
                "issued_at": issued,
                "features": features,
                "account_uuid": account.uuid,
            }
        return Response(orjson.dumps(data), media_type=JSON, headers=headers)

    endpoint.__name__ = f"introspect_v{version}"
    return endpoint


def page_reader(services: Services) -> PageReader:
    """The reader of pages and cursors over `services`' store."""
    return PageReader(
        services.store,
        services.keys.cursor_key,
        services.settings.retention_days,
        services.clock,
        services.retention.retention_ns,
    )


def events_router(services: Services) -> APIRouter:
    """The Events API's routes, reading pages from `services`' store."""
    reader = page_reader(services)
    router = APIRouter(tags=["Events API"])
    router.add_api_route(
        "/api/auth/introspect",
        _introspect_endpoint(1),
        methods=["GET"],
        summary="Introspect a token (v1, PascalCase; deprecated upstream)",
        responses={200: {"model": Introspection, "headers": RATE_HEADERS}, **_INTROSPECT_ERRORS},
        deprecated=True,
        openapi_extra=SECURITY,
    )
    router.add_api_route(
        "/api/v2/auth/introspect",
        _introspect_endpoint(2),
        methods=["GET"],
        summary="Introspect a token: its integration, features and account",
        responses={200: {"model": IntrospectionV2, "headers": RATE_HEADERS}, **_INTROSPECT_ERRORS},
        openapi_extra=SECURITY,
    )
    for version in (1, 2):
        for feature in ALL_FEATURES:
            router.add_api_route(
                f"/api/v{version}/{feature.value}",
                _page_endpoint(feature, version, reader),
                methods=["POST"],
                summary=f"Page through {feature.value} (v{version})",
                description=(
                    "Send a reset to start a stream, then the returned cursor forever. has_more is exact;"
                    " at the end of data the same cursor comes back with no items. Requires the token"
                    f" feature `{feature.value}`. With the request header `Siemgate-Proof: 1` the reply also"
                    " carries the log headers below (the body is the same); proofs are served under"
                    f" /api/siemgate/v1/log/{feature.value}/."
                ),
                responses={
                    200: {"model": PAGE_MODELS[(version, feature)], "headers": {**RATE_HEADERS, **PROOF_HEADERS}},
                    **EVENT_ERRORS,
                },
                openapi_extra=_REQUEST_BODY,
            )
    return router
