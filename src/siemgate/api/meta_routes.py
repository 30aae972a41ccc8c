"""Service endpoints: JWKS, health, Prometheus metrics."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from siemgate import __version__
from siemgate.api.errors import JSON
from siemgate.api.services import Services


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
        return Response(orjson.dumps(services.keys.jwks()), media_type="application/jwk-set+json")

    @router.get("/healthz", summary="Liveness and store reachability")
    async def health(request: Request) -> Response:
        services: Services = request.app.state.services
        services.store.list_accounts()
        return Response(orjson.dumps({"status": "ok", "version": __version__}), media_type=JSON)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}
        },
    )
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
