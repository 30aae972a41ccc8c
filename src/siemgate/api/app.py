"""create_app(services) -> the ASGI app: Events API, ingest API, service endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from siemgate import __version__
from siemgate.api.errors import install_error_handlers
from siemgate.api.events_routes import EXTRA_SCHEMAS, events_router
from siemgate.api.ingest_routes import ingest_router
from siemgate.api.meta_routes import meta_router
from siemgate.api.metrics import Metrics
from siemgate.api.middleware import RequestLogMiddleware
from siemgate.api.services import Services

log = logging.getLogger("siemgate.server")
USAGE_FLUSH_SECONDS = 2.0

DESCRIPTION = """\
siemgate serves account activity (sign-in attempts, item usages, audit events) to SIEMs through an
API that is wire-compatible with the 1Password Events API: point any 1Password SIEM connector at
this server with a siemgate token. Producers add events through the ingest API with an ingest key.
"""


def create_app(services: Services) -> FastAPI:
    """Build the app around `services`; the caller owns and closes them."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_flush_usage_forever(services))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(services.usage.flush)

    app = FastAPI(
        title="siemgate",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.include_router(events_router())
    app.include_router(ingest_router())
    app.include_router(meta_router())
    app.add_middleware(RequestLogMiddleware, metrics=app.state.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in EXTRA_SCHEMAS:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model_schema.get("title", model.__name__)] = model_schema
            schema["components"]["securitySchemes"] = {
                "EventsToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT-SA"},
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _flush_usage_forever(services: Services) -> None:
    while True:
        await asyncio.sleep(USAGE_FLUSH_SECONDS)
        try:
            await asyncio.to_thread(services.usage.flush)
        except Exception:
            log.exception("could not record token usage; will retry")
