"""The ingest API: producers add events with an ingest key.

`POST /api/ingest/v2/{feature}` takes a JSON array of events, NDJSON (one event per line), a
single event object, or an Events API page object (its `items`); optionally gzip-encoded.
The batch is stored atomically; the reply counts stored events and duplicates.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from siemgate.api.admin.slots import AccountSlots
from siemgate.api.body import gunzip, is_gzip, receive_body
from siemgate.api.errors import JSON
from siemgate.api.pages import DAY_NS
from siemgate.api.schemas import ErrorBody, IngestResult
from siemgate.errors import NotFound, PayloadTooLarge
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.text import excerpt
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.services import Services
from siemgate.store.ingest import TimeWindow, WriteResult, parse_batch

_FEATURE_NAMES = [f.value for f in ALL_FEATURES]


def ingest_router() -> APIRouter:
    router = APIRouter(tags=["Ingest API"])

    @router.post(
        "/api/ingest/v2/{feature}",
        summary="Add events (producers; needs an ingest key)",
        response_model=IngestResult,
        responses={
            400: {"model": ErrorBody, "description": "Malformed body or invalid events; nothing was stored."},
            401: {"model": ErrorBody, "description": "Missing, unknown or revoked ingest key."},
            404: {"model": ErrorBody, "description": "Unknown feature."},
            413: {"model": ErrorBody, "description": "Body, decoded body, gzip members, lines or batch too large."},
            429: {
                "model": ErrorBody,
                "description": "Over the account's ingest quota (events per minute, or events stored), or more of its"
                " requests at once than ingest_requests_per_account, having waited 10 s.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
            },
        },
        openapi_extra={
            "security": [{"IngestKey": []}],
            "requestBody": {
                "required": True,
                "description": "v2 events of the path's feature (SignInAttemptV2, ItemUsageV2 or AuditEventV2) as a"
                " JSON array, one event object, an Events API page object (its items), or NDJSON; optionally gzip.",
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                {"type": "array", "items": {"type": "object"}},
                                {"type": "object", "description": "One event, or a page with `items`."},
                            ]
                        }
                    },
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            },
        },
    )
    async def ingest(
        request: Request,
        feature: Annotated[str, Path(description="The stream to add to.", json_schema_extra={"enum": _FEATURE_NAMES})],
    ) -> Response:
        services: Services = request.app.state.services
        settings = services.settings
        try:
            target = Feature(feature)
        except ValueError:
            valid = ", ".join(f.value for f in ALL_FEATURES)
            raise NotFound(f"Not Found: unknown feature {excerpt(feature)}; use one of {valid}") from None
        # The key is looked up in a worker thread: on PostgreSQL a lookup (or a wait for a pooled
        # connection) on the event loop would hold up every request of the process.
        key = await run_in_threadpool(services.ingest_keys.authenticate, request.headers.get("authorization"), target)
        gzipped = is_gzip(request, allow_gzip=True)
        # At most ingest_requests_per_account of the account's requests are received and stored at
        # once: the others wait here, on the event loop, holding no worker thread, connection or
        # body, so that one account's producers cannot take every thread from other accounts.
        slots: AccountSlots = request.app.state.ingest_slots
        async with slots.hold(key.account_id):
            raw = await receive_body(request, settings.ingest_max_body_bytes)
            result = await run_in_threadpool(_store_batch, services, key.account_id, target, raw, gzipped)
        services.usage.record_ingest(key.id, services.clock())
        return Response(orjson.dumps(result.as_dict()), media_type=JSON)

    return router


def _store_batch(services: Services, account_id: int, feature: Feature, raw: bytes, gzipped: bool) -> WriteResult:
    """Decode, parse, admit (quotas) and store one request's batch; blocking, so it runs in a
    worker thread: nothing proportional to the body's size runs on the event loop."""
    settings = services.settings
    limit = settings.ingest_max_decoded_bytes
    if gzipped:
        body = gunzip(raw, max_bytes=limit, max_members=settings.ingest_max_gzip_members)
    elif len(raw) > limit:
        raise PayloadTooLarge(f"the body is {len(raw)} bytes; the limit is {limit} bytes: send smaller batches")
    else:
        body = raw
    items = parse_batch(body, max_events=settings.ingest_max_batch, max_lines=settings.ingest_max_lines)
    account = services.account(account_id)
    services.quotas.admit(account, len(items))
    result = services.writer.write(account.id, feature, items, window=_window(services, account.id, feature))
    services.quotas.stored(account, result.stored)
    return result


def _window(services: Services, account_id: int, feature: Feature) -> TimeWindow:
    """The event times the ingest API accepts now: within the stream's retention window and
    ingest_max_past_days, and at most ingest_max_future_seconds ahead (docs/events.md, "Event times")."""
    now = services.clock()
    settings = services.settings
    ahead, past_days = settings.ingest_max_future_seconds, settings.ingest_max_past_days
    retention = services.retention.retention_ns(account_id, feature)
    if retention <= past_days * DAY_NS:
        oldest = now - retention
        why_oldest = f"the stream keeps {retention // DAY_NS} days: to send older events, raise its retention first"
        why_oldest += f" (`siemgate retention set`; events more than ingest_max_past_days = {past_days} days old"
        why_oldest += " are refused whatever the retention)"
    else:
        oldest = now - past_days * DAY_NS
        why_oldest = f"ingest_max_past_days = {past_days}, whatever the stream's retention: ask the operator to"
        why_oldest += " write older events with `siemgate ingest`"
    return TimeWindow(
        oldest=oldest,
        newest=now + ahead * NS_PER_SECOND,
        why_oldest=why_oldest,
        why_newest=f"the server's time plus ingest_max_future_seconds = {ahead}: check the producer's clock",
    )
