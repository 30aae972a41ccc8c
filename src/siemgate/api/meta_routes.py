"""Service endpoints: JWKS, the log keys, health, Prometheus metrics."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from siemgate import __version__
from siemgate.api.errors import JSON
from siemgate.api.metrics import MetricsAccess
from siemgate.api.schemas import ErrorBody
from siemgate.services import Services


def meta_router() -> APIRouter:
    router = APIRouter(tags=["Service"])

    @router.get(
        "/.well-known/jwks.json",
        summary="Public keys that sign SIEM tokens (JWKS)",
        response_class=Response,
        responses={
            200: {
                "description": "A JSON Web Key Set.",
                "content": {"application/jwk-set+json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def jwks(request: Request) -> Response:
        services: Services = request.app.state.services
        keys = await run_in_threadpool(services.keys.jwks)  # read from the store: never on the event loop
        return Response(orjson.dumps(keys), media_type="application/jwk-set+json")

    @router.get(
        "/.well-known/siemgate-log-keys",
        summary="Public keys that sign the event logs' checkpoints (docs/integrity.md)",
        response_class=Response,
        responses={
            200: {
                "description": "The public key file `siemgate-verify --key` reads.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            404: {"model": ErrorBody, "description": "This server runs no log signer, or its keys cannot be had now."},
        },
    )
    async def log_keys(request: Request) -> Response:
        services: Services = request.app.state.services
        keys = await run_in_threadpool(services.log_keys.public)
        return Response(keys.text(), media_type="text/plain; charset=utf-8")

    @router.get("/healthz", summary="Liveness and store reachability")
    async def health(request: Request) -> Response:
        services: Services = request.app.state.services
        # one row, not every account: anyone may ask, and the time must not grow with the tenants
        await run_in_threadpool(services.store.check_readable)
        return Response(orjson.dumps({"status": "ok", "version": __version__}), media_type=JSON)

    @router.get(
        "/metrics",
        summary="Prometheus metrics (the operator only: over loopback, or with the metrics token)",
        response_class=Response,
        responses={
            200: {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}},
            401: {
                "model": ErrorBody,
                "description": "Not the operator: scrape over loopback (127.0.0.1, ::1), or send the secret of"
                " metrics_token_file as a bearer token.",
            },
        },
    )
    async def metrics(request: Request) -> Response:
        access: MetricsAccess = request.app.state.metrics_access
        access.check(request.client.host if request.client else None, request.headers)
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
