"""The OpenAPI document of the app: the Events API's request schemas and security schemes added,
request validation errors described as the 400 ErrorBody they are, the admin API's errors and
links completed (siemgate.api.admin.openapi). Served at /openapi.json; built once, on first use."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from siemgate.api.admin.openapi import complete_admin_responses
from siemgate.api.events_routes import EXTRA_SCHEMAS
from siemgate.api.proof_routes import PROOF_LEAF_SCHEMA
from siemgate.api.schemas import ErrorBody


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` return the completed document (call once every route is mounted)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in EXTRA_SCHEMAS:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model_schema.get("title", model.__name__)] = model_schema
            components["ProofLeaf"] = PROOF_LEAF_SCHEMA
            schema["components"].setdefault("securitySchemes", {})["EventsToken"] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT-SA",
                "description": "A SIEM token (ES256 JWT) issued by siemgate.",
            }
            schema["components"]["securitySchemes"]["IngestKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An ingest key (sgi_...).",
            }
            _errors_are_error_bodies(schema)
            complete_admin_responses(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _errors_are_error_bodies(schema: dict[str, Any]) -> None:
    """Request validation errors are 400 with the ErrorBody shape here, not FastAPI's 422."""
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault(
                    "400",
                    {
                        "description": "Invalid request: the message says which field and why.",
                        "content": {"application/json": {"schema": error}},
                    },
                )
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
