"""Parse an Events API request body the way deployed SIEM connectors send it (docs/events-api.md).

Tolerant on purpose: any Content-Type (or none), an empty body, `null` values, unknown keys
(e.g. a `ResetCursor` wrapper) are accepted; when `cursor` is present it wins over reset fields.
Strict where a client would otherwise silently get the wrong data: `limit` outside 1..1000,
unparseable times, times after the last one an event can have (2262) or an `end_time` before the
first (1970), `end_time` before `start_time`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from siemgate.errors import BadRequest
from siemgate.model.text import excerpt
from siemgate.model.timestamps import MIN_STORED_NS, TimestampError, check_stored_ns, parse_ns

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ResetRequest:
    limit: int
    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class CursorRequest:
    cursor: str


def parse_page_request(body: bytes) -> ResetRequest | CursorRequest:
    """Raises BadRequest with a message saying what to send instead."""
    text = body.strip().removeprefix(b"\xef\xbb\xbf").strip()
    if not text:
        return ResetRequest(DEFAULT_LIMIT, None, None)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        data = _loads_as_go(text, exc)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest('Bad Request: the body must be a JSON object, e.g. {"limit": 100} or {"cursor": "..."}')
    cursor = data.get("cursor")
    if cursor is not None and cursor != "":
        if not isinstance(cursor, str):
            raise BadRequest("Bad Request: cursor must be the string from a previous response's cursor field")
        return CursorRequest(cursor)
    start, end = _time(data, "start_time"), _time(data, "end_time")
    if start is not None and end is not None and end < start:
        raise BadRequest("Bad Request: end_time is before start_time; swap them or leave end_time out")
    return ResetRequest(_limit(data.get("limit")), start, end)


def _loads_as_go(text: bytes, exc: orjson.JSONDecodeError) -> Any:
    """JSON orjson refuses only for its text: invalid UTF-8 or a lone surrogate escape (`\\ud800`),
    which Go's encoding/json (1Password's server) reads, replacing them with U+FFFD. Read the same
    way here, so such text in a key siemgate ignores is ignored; in `cursor` or a time it is a 400
    as any other bad value. Raises BadRequest (orjson's message) for anything else."""
    refused = BadRequest(f'Bad Request: the body is not valid JSON ({exc}); send {{}} to start, or {{"cursor": "..."}}')
    if "surrogate" not in exc.msg and "UTF-8" not in exc.msg:
        raise refused from None
    try:
        return json.loads(text.decode("utf-8", "replace"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise refused from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"Bad Request: limit must be a whole number from 1 to {MAX_LIMIT}, got {excerpt(value)}")
    if not 1 <= value <= MAX_LIMIT:
        raise BadRequest(f"Bad Request: limit must be from 1 to {MAX_LIMIT}, got {excerpt(value)}")
    return value


def _time(data: dict[str, Any], name: str) -> int | None:
    """The time in ns; a time no event can have is a 400, except a start_time before 1970, which
    (like every start before the retention window) the reader moves to the window's start."""
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        ns = parse_ns(value)
        check_stored_ns(max(ns, MIN_STORED_NS) if name == "start_time" else ns, value)
    except TimestampError as exc:
        raise BadRequest(f"Bad Request: {name}: {exc}") from None
    return ns
