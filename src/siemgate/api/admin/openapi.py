"""The admin API's OpenAPI document, completed: every operation lists the errors it can answer
(docs/security.md, "OWASP API9"), and creations link to the operations that use what they made
(schemathesis follows these links in tests/security/test_identity_openapi.py).

Rules, applied to every operation under /api/admin/v1 (an operation may list more itself):
400 when it takes parameters or a body; 401 and 429 (the person's rate limit) unless it is one of
the sign-in steps (which list their own 429); 403 for every
change (a console session needs its CSRF token) and for everything inside an account (role,
two-factor requirement); 404 when the path names something; 409 for changes inside an account.
"""

from __future__ import annotations

from typing import Any

from siemgate.api.admin.deps import ERRORS

PREFIX = "/api/admin/v1"
PUBLIC = {("post", f"{PREFIX}/session"), ("post", f"{PREFIX}/session/second-factor"), ("post", f"{PREFIX}/join")}
CHANGES = {"post", "put", "patch", "delete"}
ERROR = {"$ref": "#/components/schemas/ErrorBody"}
LINKS = {
    ("post", f"{PREFIX}/accounts/{{account}}/integrations"): {
        "GetIntegration": (
            "integration_details_api_admin_v1_accounts__account__integrations__integration__get",
            "uuid",
        ),
        "DeleteIntegration": (
            "delete_integration_api_admin_v1_accounts__account__integrations__integration__delete",
            "uuid",
        ),
    },
}


def complete_admin_responses(schema: dict[str, Any]) -> None:
    """Add the documented errors and links to every admin API operation of `schema`, in place."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for method, operation in operations.items():
            for status in _statuses(path, method, operation):
                operation.setdefault("responses", {}).setdefault(
                    str(status), {"description": ERRORS[status], "content": {"application/json": {"schema": ERROR}}}
                )
            _link(path, method, operation)


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    statuses = []
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.append(400)
    if (method, path) not in PUBLIC:
        statuses += [401, 429]
    in_account = "{account}" in path
    if method in CHANGES or in_account:
        statuses.append(403)
    if "{" in path:
        statuses.append(404)
    if method in CHANGES and in_account:
        statuses.append(409)
    return sorted(statuses)


def _link(path: str, method: str, operation: dict[str, Any]) -> None:
    for name, (operation_id, field) in LINKS.get((method, path), {}).items():
        created = operation.get("responses", {}).get("201")
        if created is None:
            continue
        created.setdefault("links", {})[name] = {
            "operationId": operation_id,
            "parameters": {"account": "$request.path.account", "integration": f"$response.body#/{field}"},
        }
