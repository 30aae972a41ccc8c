"""Proofs beside the Events API (docs/integrity.md, "Proofs for SIEMs"), never inside it:

    GET  /api/siemgate/v1/log/{feature}/checkpoint                    the newest signed checkpoint
    GET  /api/siemgate/v1/log/{feature}/consistency?old=&new=         consistency proof (base64 lines)
    GET  /api/siemgate/v1/log/{feature}/proof?idx=|uuid=&timestamp=[&size=]   c2sp.org/tlog-proof
    POST /api/siemgate/v1/log/{feature}/page-proof                    the proof of a served page

Same bearer token, feature scopes and rate limit as the Events API (every call counts against the
token's limit); everything is read for the token's account only. Proofs are about the v2 bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from siemgate.api.body import read_body
from siemgate.api.errors import JSON, error_response
from siemgate.api.events_routes import EVENT_ERRORS, RATE_HEADERS, RETRY_AFTER, SECURITY, authorize, page_reader
from siemgate.api.page_request import CursorRequest, parse_page_request
from siemgate.api.pages import PageReader
from siemgate.api.schemas import ErrorBody
from siemgate.auth.tokens import require_feature
from siemgate.errors import BadRequest, SiemgateError
from siemgate.integrity.proofs import PageSpan
from siemgate.model.features import Feature
from siemgate.model.text import excerpt
from siemgate.model.timestamps import TimestampError, parse_stored_ns
from siemgate.services import Services
from siemgate.store.base import TokenRecord
from siemgate.tlog.bundle import format_hashes

MAX_SIZE = 2**63 - 1  # log sizes and indices are the store's 64-bit integers
PREFIX = "/api/siemgate/v1/log"
TEXT = "text/plain; charset=utf-8"
T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A bad parameter, cursor or size; the message says which."},
    401: EVENT_ERRORS[401],
    404: {"model": ErrorBody, "description": "No checkpoint yet, no such event, index or checkpoint size."},
    409: {
        "model": ErrorBody,
        "description": "Not yet covered by a signed checkpoint, and one was signed on demand less than the"
        " checkpoint interval ago: retry after Retry-After seconds.",
        "headers": {"Retry-After": RETRY_AFTER},
    },
    429: EVENT_ERRORS[429],
    500: {"model": ErrorBody, "description": "Internal error, or the stored log is damaged."},
    503: {
        "model": ErrorBody,
        "description": "A checkpoint is needed and the log signer cannot sign now (down, or the log is stopped).",
        "headers": {"Retry-After": RETRY_AFTER},
    },
}


def _text_route(
    router: APIRouter, name: str, summary: str, description: str, example: str
) -> Callable[[Callable[..., Awaitable[Response]]], Callable[..., Awaitable[Response]]]:
    """The decorator of a GET route answering text/plain."""
    reply = {
        "description": description,
        "headers": RATE_HEADERS,
        "content": {"text/plain": {"schema": {"type": "string"}, "example": example}},
    }
    return router.get(
        f"{PREFIX}/{{feature}}/{name}",
        summary=summary,
        response_class=Response,
        responses={200: reply, **_ERRORS},
        openapi_extra=SECURITY,
    )


_CHECKPOINT_EXAMPLE = (
    "events.example.com/siemgate/<account uuid>/auditevents\n1048576\n<base64 root>\ntime 1767225600\n\n"
    "\u2014 events.example.com/siemgate/<account uuid>/auditevents <base64 signature>\n"
)

_PAGE_PROOF_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["response_cursor"],
                    "properties": {
                        "request": {
                            "description": "The page request's body as sent: a reset, a cursor, or null/absent for {}.",
                            "anyOf": [
                                {"$ref": "#/components/schemas/ResetCursor"},
                                {"$ref": "#/components/schemas/Cursor"},
                                {"type": "null"},
                            ],
                        },
                        "response_cursor": {"type": "string", "description": "The cursor the page came with."},
                        "old_size": {
                            "type": ["integer", "null"],
                            "minimum": 0,
                            "description": "The size of the checkpoint you accepted last: the reply adds a"
                            " consistency proof from it.",
                        },
                    },
                }
            }
        },
    },
    **SECURITY,
}

_PAGE_PROOF_REPLY: dict[str, Any] = {
    "description": 'The page proof (docs/integrity.md, "Page proof").',
    "headers": RATE_HEADERS,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["format", "checkpoint", "window", "first_idx", "end_idx", "items", "left", "right"],
                "properties": {
                    "format": {"const": "siemgate-page-proof/v1"},
                    "checkpoint": {"type": "string"},
                    "window": {
                        "type": "object",
                        "properties": {"start_ns": {"type": "integer"}, "end_ns": {"type": ["integer", "null"]}},
                    },
                    "reset": {"type": "boolean"},
                    "tail": {"type": "boolean"},
                    "first_idx": {"type": "integer"},
                    "end_idx": {"type": "integer"},
                    **{
                        name: {"type": "array", "items": {"$ref": "#/components/schemas/ProofLeaf"}}
                        for name in ("items", "omitted", "purged", "pending")
                    },
                    "retention_cutoff_ns": {"type": ["integer", "null"]},
                    "left": {"type": "array", "items": {"type": "string"}},
                    "right": {"type": "array", "items": {"type": "string"}},
                    "old_size": {"type": ["integer", "null"]},
                    "consistency": {"type": "array", "items": {"type": "string"}},
                },
            }
        }
    },
}

PROOF_LEAF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["idx", "ts_ns", "body_sha256"],
    "properties": {
        "idx": {"type": "integer", "description": "Log index (seq - 1)."},
        "ts_ns": {"type": "integer", "description": "The committed timestamp, ns since the epoch."},
        "body_sha256": {"type": "string", "description": "Base64 SHA-256 of the stored v2 bytes."},
    },
}


def _feature(name: str) -> Feature:
    try:
        return Feature(name)
    except ValueError:
        raise BadRequest(
            f"Bad Request: there is no log {excerpt(name)}; use signinattempts, itemusages or auditevents"
        ) from None


async def _run(
    request: Request, feature_name: str, work: Callable[[Services, TokenRecord, Feature], T]
) -> tuple[T | None, dict[str, str], Response | None]:
    """Authenticate and count the request, check the feature, run `work` in the thread pool."""
    services: Services = request.app.state.services
    headers: dict[str, str] = {}
    try:
        record, status = await run_in_threadpool(authorize, services, request.headers.get("authorization"))
        headers = status.headers()
        feature = _feature(feature_name)
        require_feature(record, feature)
        result = await run_in_threadpool(work, services, record, feature)
    except SiemgateError as exc:
        return None, headers, error_response(exc, headers)
    services.usage.record(record.id, services.clock())
    return result, headers, None


def proof_router(services: Services) -> APIRouter:
    """The proof routes, reading cursors as the Events API of `services` issues them."""
    reader = page_reader(services)
    router = APIRouter(tags=["Log proofs"])

    @_text_route(
        router,
        "checkpoint",
        "The stream's newest signed checkpoint (c2sp.org/tlog-checkpoint)",
        "The signed note.",
        _CHECKPOINT_EXAMPLE,
    )
    async def checkpoint(request: Request, feature: str) -> Response:
        result, headers, error = await _run(request, feature, lambda s, r, f: s.proofs.newest(r.account_id, f).note)
        return error or Response(result, media_type=TEXT, headers=headers)

    @_text_route(
        router,
        "consistency",
        "Consistency proof between two checkpoint sizes (one base64 hash per line)",
        "The proof, leaf side first; empty for equal sizes.",
        "<base64>\n<base64>\n",
    )
    async def consistency(
        request: Request,
        feature: str,
        old: int = Query(ge=0, le=MAX_SIZE, description="The older size (a checkpoint you hold)."),
        new: int = Query(ge=0, le=MAX_SIZE, description="The newer size, at most the newest checkpoint's."),
    ) -> Response:
        result, headers, error = await _run(
            request, feature, lambda s, r, f: format_hashes(s.proofs.consistency(r.account_id, f, old, new))
        )
        return error or Response(result, media_type=TEXT, headers=headers)

    @_text_route(
        router,
        "proof",
        "Inclusion proof of one event (c2sp.org/tlog-proof@v1)",
        "The proof with its checkpoint.",
        "c2sp.org/tlog-proof@v1\nindex 41\n...",
    )
    async def proof(
        request: Request,
        feature: str,
        idx: int | None = Query(None, ge=0, le=MAX_SIZE, description="The event's log index (seq - 1)."),
        uuid: str | None = Query(None, max_length=64, description="The event's uuid (with timestamp)."),
        timestamp: str | None = Query(None, max_length=64, description="The event's timestamp, as in the event."),
        size: int | None = Query(
            None, ge=1, le=MAX_SIZE, description="A stored checkpoint's size; default the newest."
        ),
    ) -> Response:
        def work(services: Services, record: TokenRecord, f: Feature) -> str:
            index = _index(services, record, f, idx, uuid, timestamp)
            return services.proofs.event_proof(record.account_id, f, index, size).text()

        result, headers, error = await _run(request, feature, work)
        return error or Response(result, media_type=TEXT, headers=headers)

    @router.post(
        PREFIX + "/{feature}/page-proof",
        summary="Proof that a served page is complete for its time window",
        response_class=Response,
        responses={200: _PAGE_PROOF_REPLY, 413: {"model": ErrorBody, "description": "Body too large."}, **_ERRORS},
        openapi_extra=_PAGE_PROOF_BODY,
    )
    async def page_proof(request: Request, feature: str) -> Response:
        services: Services = request.app.state.services
        try:
            body = await read_body(request, services.settings.events_max_body_bytes)
        except SiemgateError as exc:
            return error_response(exc)

        def work(services: Services, record: TokenRecord, f: Feature) -> bytes:
            data = _page_proof_request(body)
            span = _span(services, reader, record, f, data)
            old_size = data.get("old_size")
            return orjson.dumps(services.proofs.page_proof(record.account_id, f, span, old_size).to_json())

        result, headers, error = await _run(request, feature, work)
        return error or Response(result, media_type=JSON, headers=headers)

    return router


def _index(
    services: Services, record: TokenRecord, feature: Feature, idx: int | None, uuid: str | None, ts: str | None
) -> int:
    if (idx is None) == (uuid is None):
        raise BadRequest("Bad Request: name the event by idx, or by uuid and timestamp (not both)")
    if idx is not None:
        return idx
    if not ts:
        raise BadRequest(
            "Bad Request: a uuid needs the event's timestamp too (timestamp=, as in the event): events are"
            " found by (timestamp, uuid)"
        )
    try:
        ts_ns = parse_stored_ns(ts)  # as events' timestamps are: outside it no event can be
    except TimestampError as exc:
        raise BadRequest(f"Bad Request: timestamp: {exc}") from None
    assert uuid is not None
    return services.proofs.event_index(record.account_id, feature, ts_ns, uuid)


def _page_proof_request(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Bad Request: the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadRequest('Bad Request: send {"request": <the page request body>, "response_cursor": "<its cursor>"}')
    if not isinstance(data.get("response_cursor"), str) or not data["response_cursor"]:
        raise BadRequest("Bad Request: response_cursor must be the cursor of the page to prove")
    old = data.get("old_size")
    if old is not None and (isinstance(old, bool) or not isinstance(old, int) or old < 0):
        raise BadRequest("Bad Request: old_size must be a non-negative whole number or null")
    return data


def _span(
    services: Services, reader: PageReader, record: TokenRecord, feature: Feature, data: dict[str, Any]
) -> PageSpan:
    """What the page covered, from its request and response cursor (both checked: issued by this
    server for this account and stream, and the response continues the request)."""
    account = services.account(record.account_id)
    response = reader.open_cursor(data["response_cursor"], account, feature)
    page_request = parse_page_request(orjson.dumps(data.get("request")))
    mismatch = BadRequest("Bad Request: response_cursor is not the answer to this request (another stream or window)")
    if isinstance(page_request, CursorRequest):
        before = reader.open_cursor(page_request.cursor, account, feature)
        if (before.start, before.end, before.limit) != (response.start, response.end, response.limit):
            raise mismatch
        if before.seq > response.seq:
            raise BadRequest("Bad Request: response_cursor is before the request's cursor")
        return PageSpan(before.seq, response.seq, response.start, response.end, reset=False)
    if page_request.limit != response.limit or (page_request.end is None) != (response.end is None):
        raise mismatch
    if page_request.start is not None and page_request.start > response.start:
        raise mismatch
    position = services.store.start_position(record.account_id, feature, response.start)
    return PageSpan(min(position, response.seq), response.seq, response.start, response.end, reset=True)
