"""Admin API for the console's event explorer and dashboards (owners and administrators): search
events newest first, export them as JSON Lines or CSV, and count them by facet and time bucket.

Every endpoint takes a time window (`start`, `end`; default the last 24 hours) and exact-match
facet filters (model.facets); the store answers from its facet columns, never by parsing JSON.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from siemgate.api.admin import models
from siemgate.api.admin.deps import (
    BAD_CURSOR,
    AccountDep,
    ActorDep,
    CursorQuery,
    LimitQuery,
    ServicesDep,
    decode_cursor,
    encode_cursor,
)
from siemgate.api.admin.slots import AccountSlots
from siemgate.api.errors import JSON
from siemgate.api.schemas import ErrorBody
from siemgate.errors import BadRequest, NotFound
from siemgate.model import flatten
from siemgate.model.facets import FACET_NAMES
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.text import excerpt
from siemgate.model.timestamps import EXAMPLE, MAX_STORED_NS, NS_PER_SECOND, TimestampError, format_ns, parse_stored_ns
from siemgate.services import Services
from siemgate.store.base import Account, Store
from siemgate.store.shared.facets import FORGIVING, facet_column

router = APIRouter(
    prefix="/api/admin/v1",
    tags=["Admin API"],
    responses={
        401: {"model": ErrorBody, "description": "No personal API key or console session."},
        403: {"model": ErrorBody, "description": "Members may not see the account's events."},
        404: {"model": ErrorBody, "description": "No such account (or not yours), or an unknown feature."},
    },
)

T = TypeVar("T")
DAY_NS = 86400 * NS_PER_SECOND
EXPORT_PAGE = 1000
MAX_BUCKETS = 120
INTERVALS = {"minute": 60, "5m": 300, "15m": 900, "hour": 3600, "6h": 21600, "day": 86400}
_CURSOR_PREFIX = b"events1:"
_POSITION = re.compile(r"([0-9]{1,19}):([0-9]{1,19})")  # timestamp:seq, each a signed 64-bit value
_FEATURES = [f.value for f in ALL_FEATURES]

FeaturePath = Annotated[str, Path(description="The event stream.", json_schema_extra={"enum": _FEATURES})]
TimeQuery = Annotated[str | None, Query(description=f"RFC 3339, such as {EXAMPLE}.")]


def _facet(text: str, alias: str | None = None) -> Any:
    return Query(alias=alias, description=f"Only events whose {text} is exactly this.")


ActorFilter = Annotated[str, _facet("person's email (target_user, user or actor_details)", "actor")]
KindFilter = Annotated[str, _facet("category (sign-ins) or action")]
DetailFilter = Annotated[str, _facet("type (sign-ins), vault_uuid (item usages) or object_type (audit)")]
CountryFilter = Annotated[str, _facet("country (sign-ins' country, else location.country)")]
AppFilter = Annotated[str, _facet("client.app_name")]
IpFilter = Annotated[str, _facet("client.ip_address (audit: session.ip)")]
MatchQuery = Annotated[
    Literal["exact", "forgiving"],
    Query(
        description="exact (the default): each filter is the facet's whole value. forgiving (what the console"
        " sends): case-insensitive, actor and app contain the value, country and ip start with it; kind and"
        " detail stay exact."
    ),
]


@dataclass(frozen=True, slots=True)
class Selection:
    """The events a request is about: a feature of an account, a time window, facet filters."""

    account: Account
    feature: Feature
    start: int
    end: int
    filters: dict[str, str]


def selection(
    feature: FeaturePath,
    account: AccountDep,
    actor: ActorDep,
    services: ServicesDep,
    start: TimeQuery = None,
    end: TimeQuery = None,
    by_actor: ActorFilter = "",
    kind: KindFilter = "",
    detail: DetailFilter = "",
    country: CountryFilter = "",
    app: AppFilter = "",
    ip: IpFilter = "",
    match: MatchQuery = "exact",
) -> Selection:
    """The common parameters, checked: owners and administrators only, a known feature, a window
    (default: the 24 hours up to now) with start <= end, and the non-empty filters."""
    services.people.require(actor, account, "administrator", "see the account's events")
    try:
        stream = Feature(feature)
    except ValueError:
        raise NotFound(f"Not Found: unknown feature {excerpt(feature)}; use one of {', '.join(_FEATURES)}") from None
    end_ns = _time("end", end) if end else services.clock()
    start_ns = _time("start", start) if start else max(0, end_ns - DAY_NS)
    if start_ns > end_ns:
        raise BadRequest("Bad Request: start must be before end")
    values = (by_actor, kind, detail, country, app, ip)
    filters = {name: value for name, value in zip(FACET_NAMES, values, strict=True) if value}
    if match == "forgiving":
        filters = {(f"{name}~" if name in FORGIVING else name): value for name, value in filters.items()}
    return Selection(account, stream, start_ns, end_ns, filters)


SelectionDep = Annotated[Selection, Depends(selection)]


async def query_slot(request: Request, sel: SelectionDep) -> AsyncIterator[None]:
    """One of the account's slots for heavy reads (api/admin/slots.py), held for the whole request
    (an export's streamed body included), taken once the request is checked."""
    slots: AccountSlots = request.app.state.query_slots
    async with slots.hold(sel.account.id):
        yield


HEAVY = [Depends(query_slot)]  # the dependencies of every route that reads many events


async def _read(request: Request, work: Callable[[], T]) -> T:
    """`work` (reads of the store) in a worker thread, holding one of the process's heavy-read
    slots (api/admin/slots.py) only while it runs: not while a slow client takes the reply, so
    that downloads cannot hold them all."""
    slots: AccountSlots = request.app.state.query_slots
    async with slots.reading():
        return await run_in_threadpool(work)


async def _chunks(request: Request, made: Iterator[bytes]) -> AsyncIterator[bytes]:
    """An export's body: each chunk (a page read and formatted) made by `_read`."""
    while (chunk := await _read(request, lambda: next(made, None))) is not None:
        yield chunk


def _time(name: str, text: str) -> int:
    try:
        return parse_stored_ns(text)
    except TimestampError as exc:
        raise BadRequest(f"Bad Request: {name}: {exc}") from None


def _search(
    services: Services, sel: Selection, before: tuple[int, int] | None, limit: int
) -> list[tuple[int, int, bytes]]:
    seconds = services.settings.admin_query_seconds
    return services.store.search_events(
        sel.account.id, sel.feature, sel.start, sel.end, sel.filters, before, limit, seconds
    )


@router.get(
    "/accounts/{account}/events/{feature}",
    response_model=models.Page[dict[str, Any]],
    summary="Search events, newest first (owners and administrators)",
    dependencies=HEAVY,
)
async def search_events(
    request: Request, sel: SelectionDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Response:
    """Each item is the event's v2 JSON object as stored."""
    before = _position(cursor) if cursor else None
    rows = await _read(request, lambda: _search(services, sel, before, limit + 1))
    page = rows[:limit]
    next_cursor = encode_cursor(f"{page[-1][0]}:{page[-1][1]}", _CURSOR_PREFIX) if len(rows) > limit else None
    body = b'{"items":[' + b",".join(r[2] for r in page) + b'],"next_cursor":' + orjson.dumps(next_cursor) + b"}"
    return Response(body, media_type=JSON)


def _position(cursor: str) -> tuple[int, int]:
    """The (timestamp, seq) an events next_cursor encodes."""
    match = _POSITION.fullmatch(decode_cursor(cursor, _CURSOR_PREFIX))
    if match is None or max(int(match[1]), int(match[2])) > MAX_STORED_NS:
        raise BadRequest(BAD_CURSOR)
    return int(match[1]), int(match[2])


@router.get(
    "/accounts/{account}/events/{feature}/export",
    response_class=StreamingResponse,
    summary="Download every matching event, newest first, as JSON Lines or CSV (owners and administrators)",
    dependencies=HEAVY,
    responses={
        200: {
            "description": "An attachment: one v2 JSON object per line, or CSV with one column per field.",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def export_events(
    request: Request,
    sel: SelectionDep,
    services: ServicesDep,
    fmt: Annotated[Literal["jsonl", "csv"], Query(alias="format", description="jsonl or csv.")] = "jsonl",
) -> StreamingResponse:
    """Read from the store a page at a time: an export never holds the whole set in memory."""
    pages = _pages(services, sel)
    name = f"siemgate-{sel.feature.value}-{_stamp(sel.start)}-{_stamp(sel.end)}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        chunks = _chunks(request, _csv(sel.feature, pages))
        return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers=headers)
    lines = (b"".join(body + b"\n" for _, _, body in page) for page in pages)
    return StreamingResponse(_chunks(request, lines), media_type="application/x-ndjson", headers=headers)


def _pages(services: Services, sel: Selection) -> Iterator[list[tuple[int, int, bytes]]]:
    before = None
    while True:
        rows = _search(services, sel, before, EXPORT_PAGE)
        if rows:
            yield rows
        if len(rows) < EXPORT_PAGE:
            return
        before = (rows[-1][0], rows[-1][1])


def _csv(feature: Feature, pages: Iterator[list[tuple[int, int, bytes]]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(flatten.COLUMNS[feature])
    for page in pages:
        writer.writerows(flatten.row(feature, orjson.loads(body)) for _, _, body in page)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()  # the header alone when nothing matched


def _stamp(ns: int) -> str:
    """YYYYMMDDTHHMMSSZ."""
    return format_ns(ns)[:19].replace("-", "").replace(":", "") + "Z"


@router.get(
    "/accounts/{account}/stats/{feature}",
    response_model=models.Stats,
    response_model_exclude_unset=True,
    summary="Count events by facet and time bucket, for dashboards (owners and administrators)",
    dependencies=HEAVY,
)
async def event_stats(
    request: Request,
    sel: SelectionDep,
    services: ServicesDep,
    group_by: Annotated[str, Query(description=f"0 to 2 comma-separated facets: {', '.join(FACET_NAMES)}.")] = "",
    interval: Annotated[
        Literal["none", "auto", "minute", "5m", "15m", "hour", "6h", "day"],
        Query(description=f"Bucket by time; auto: the smallest width giving at most {MAX_BUCKETS} buckets."),
    ] = "none",
    limit: Annotated[int, Query(ge=1, le=5000, description="Rows at most.")] = 100,
) -> dict[str, Any]:
    """Rows are most first, or in time order with an interval; a facet missing from events is null."""
    facets = _group_by(group_by)
    return await _read(request, lambda: _stats(services, sel, facets, interval, limit))


def _stats(services: Services, sel: Selection, facets: list[str], interval: str, limit: int) -> dict[str, Any]:
    """The stats reply: its counts read from the store."""
    seconds = _interval_seconds(interval, sel.start, sel.end)
    bucket_ns = seconds * NS_PER_SECOND if seconds else None
    store, account_id = services.store, sel.account.id
    within = services.settings.admin_query_seconds
    counts = store.facet_counts(
        account_id,
        sel.feature,
        sel.start,
        sel.end,
        facets,
        bucket_ns=bucket_ns,
        filters=sel.filters,
        limit=limit,
        seconds=within,
    )
    first = 1 if bucket_ns else 0  # bucketed rows start with the bucket
    rows = []
    for values in counts:
        bucket = {"bucket": format_ns(values[0])} if bucket_ns else {}
        rows.append({**bucket, **dict(zip(facets, values[first:-1], strict=True)), "count": values[-1]})
    return {
        "feature": sel.feature.value,
        "start": format_ns(sel.start),
        "end": format_ns(sel.end),
        "group_by": facets,
        "interval_seconds": seconds,
        "rows": rows,
        "total": _total(store, sel, facets, bucket_ns, counts, limit, within),
    }


def _total(
    store: Store,
    sel: Selection,
    facets: list[str],
    bucket_ns: int | None,
    counts: list[tuple[Any, ...]],
    limit: int,
    within: float,
) -> int:
    """Every matching event: the rows' sum when no row was cut by the limit (every event is in one
    row, an event without a grouped facet under null), else one more count."""
    if len(counts) < limit or not (facets or bucket_ns):
        return sum(int(values[-1]) for values in counts)
    total = store.facet_counts(sel.account.id, sel.feature, sel.start, sel.end, [], filters=sel.filters, seconds=within)
    return int(total[0][0]) if total else 0


def _group_by(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        for name in names:
            facet_column(name)
    except ValueError as exc:
        raise BadRequest(f"Bad Request: group_by: {exc}") from None
    if len(names) > 2 or len(set(names)) < len(names):
        raise BadRequest(f"Bad Request: group_by takes at most 2 different facets; got {excerpt(', '.join(names))}")
    return names


def _interval_seconds(interval: str, start: int, end: int) -> int | None:
    """The bucket width; auto: the smallest giving at most MAX_BUCKETS aligned buckets, else a day."""
    if interval == "none":
        return None
    if interval != "auto":
        return INTERVALS[interval]
    for seconds in INTERVALS.values():
        size = seconds * NS_PER_SECOND
        if end // size - start // size + 1 <= MAX_BUCKETS:
            return seconds
    return INTERVALS["day"]
