"""Errors to HTTP, in one place. Every error body is `{"Error": {"Message": "..."}}` (the shape
deployed 1Password connectors parse), plus `Details` when there is a list of problems."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from siemgate.errors import InvalidEventBatch, RateLimited, RetryLater, SiemgateError, Unauthorized, Unavailable
from siemgate.model.text import EXCERPT, excerpt

log = logging.getLogger("siemgate.api")
JSON = "application/json"


def error_body(message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    """The error body as JSON. Text a message echoes from the request that is not UTF-8 (a lone
    surrogate in a field name it names) is shown escaped, `\\ud800`, instead of failing."""
    error: dict[str, Any] = {"Message": message}
    if details:
        error["Details"] = details
    try:
        return orjson.dumps({"Error": error})
    except TypeError:  # orjson writes UTF-8 only
        return orjson.dumps(_printable({"Error": error}))


def _field(loc: Any) -> str:
    """A validation error's field path; a long one (a key the client made up) as a bounded excerpt."""
    field = ".".join(str(part) for part in loc if part != "body")
    return field if len(field) <= EXCERPT else excerpt(field)


def _printable(value: Any) -> Any:
    """`value` with every string (keys included) made valid UTF-8, lone surrogates escaped."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def error_response(exc: SiemgateError, headers: dict[str, str] | None = None) -> Response:
    """The HTTP response for a siemgate error; `headers` are added (e.g. RateLimit-*)."""
    all_headers = dict(headers or {})
    if isinstance(exc, RateLimited):
        all_headers.update(exc.headers)
    if isinstance(exc, RateLimited | RetryLater | Unavailable):
        all_headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    details = exc.details if isinstance(exc, InvalidEventBatch) else None
    phrase = _phrase(exc.status)
    message = exc.message if exc.message.startswith(phrase) else f"{phrase}: {exc.message}"
    return Response(error_body(message, details), status_code=exc.status, media_type=JSON, headers=all_headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SiemgateError)
    async def _siemgate(request: Request, exc: SiemgateError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        phrase = _phrase(exc.status_code)
        if exc.status_code == 404:
            message = f"Not Found: there is no endpoint {request.url.path}; see /openapi.json"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"Method Not Allowed: {request.method} is not supported here; use {allowed}"
        else:
            message = phrase if exc.detail in (None, phrase) else f"{phrase}: {exc.detail}"
        return Response(error_body(message), status_code=exc.status_code, media_type=JSON, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [{"field": _field(err["loc"]), "message": err["msg"]} for err in exc.errors()]
        first = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        return Response(error_body(f"Bad Request: {first}", details), status_code=400, media_type=JSON)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return Response(error_body("Internal Server Error"), status_code=500, media_type=JSON)
