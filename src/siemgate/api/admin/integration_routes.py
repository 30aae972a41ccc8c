"""Admin API: SIEM types, integrations, their tokens, and ingest keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from siemgate.accounts import views
from siemgate.accounts.catalog import SIEM_TYPES
from siemgate.api.admin import models
from siemgate.api.admin.deps import AccountDep, ActorDep, CursorQuery, LimitQuery, ServicesDep, paginate
from siemgate.errors import BadRequest
from siemgate.model.durations import parse_expiry, parse_grace
from siemgate.model.features import parse_features

router = APIRouter(prefix="/api/admin/v1", tags=["Admin API"])


@router.get("/siem-types", response_model=list[models.SiemTypeOut], summary="The SIEMs an integration can be for")
def siem_types(actor: ActorDep, services: ServicesDep) -> list[dict[str, Any]]:
    address = services.settings.address
    return [
        {
            "key": t.key,
            "name": t.name,
            "connector": t.connector,
            "url_from_token": t.url_from_token,
            "cloud": t.cloud,
            "fields": list(t.fields),
            "base_url": address.url,
            "warnings": t.warnings(address),
        }
        for t in SIEM_TYPES.values()
    ]


@router.get(
    "/accounts/{account}/integrations",
    response_model=models.Page[models.IntegrationListed],
    summary="Integrations, each with its health",
)
def list_integrations(
    account: AccountDep, actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    now = services.clock()
    items = [views.integration_view(i) for i in services.integrations.list_integrations(actor, account)]
    page = paginate(items, lambda i: f"{i['created_at']}|{i['uuid']}", limit, cursor)
    for item in page["items"]:
        item["health"] = views.health_view(services.integrations.details(actor, account, item["uuid"]), now)
    return page


@router.post(
    "/accounts/{account}/integrations",
    response_model=models.IntegrationOut,
    status_code=201,
    summary="Create an integration (owners and administrators)",
)
def create_integration(
    body: models.IntegrationCreate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    return views.integration_view(services.integrations.create(actor, account, body.type, body.name, body.description))


@router.get(
    "/accounts/{account}/integrations/{integration}",
    response_model=models.IntegrationDetailsOut,
    summary="An integration: its connection guide, tokens, their status and how far each consumer is behind",
)
def integration_details(
    integration: str, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    return views.details_view(services.integrations.details(actor, account, integration), services.clock())


@router.patch(
    "/accounts/{account}/integrations/{integration}",
    response_model=models.IntegrationOut,
    summary="Rename an integration or change its description",
)
def update_integration(
    integration: str, body: models.IntegrationUpdate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    return views.integration_view(
        services.integrations.update(actor, account, integration, body.name, body.description)
    )


@router.delete(
    "/accounts/{account}/integrations/{integration}",
    response_model=models.Deleted,
    summary="Delete an integration and revoke its tokens",
)
def delete_integration(integration: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return {"deleted": True, "revoked_tokens": services.integrations.delete(actor, account, integration)}


@router.post(
    "/accounts/{account}/integrations/{integration}/tokens",
    response_model=models.IssuedToken,
    status_code=201,
    summary="Issue a token for the integration (shown once)",
)
def issue_token(
    integration: str, body: models.TokenCreate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    services.people.require(actor, account, "administrator", "issue tokens")
    target = services.integrations.get(actor, account, integration)
    try:
        expires = parse_expiry(body.expires)
    except ValueError as exc:
        raise BadRequest(f"Bad Request: expires: {exc}") from None
    token, record = services.lifecycle.issue(actor, account, target, body.name, parse_features(body.features), expires)
    return {
        **views.token_view(record, services.clock(), target),
        "token": token,
        "base_url": services.settings.base_url,
    }


@router.get("/accounts/{account}/tokens", response_model=models.Page[models.TokenOut], summary="Tokens of the account")
def list_tokens(
    account: AccountDep,
    actor: ActorDep,
    services: ServicesDep,
    status: str | None = Query(None, description="Only tokens with this status: active, expiring, expired, revoked."),
    integration: str | None = Query(None, description="Only this integration's tokens (uuid or name)."),
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    if status is not None and status not in ("active", "expiring", "expired", "revoked"):
        raise BadRequest("Bad Request: status must be active, expiring, expired or revoked")
    integration_id = services.integrations.get(actor, account, integration).id if integration else None
    services.people.role(actor, account)
    now = services.clock()
    integrations = {i.id: i for i in services.store.list_integrations(account.id)}
    items = []
    for record in services.store.list_tokens(account.id, integration_id):
        if record.integration_id not in integrations:  # a deleted integration: still named
            integrations[record.integration_id] = services.store.get_integration_by_id(record.integration_id)
        view = views.token_view(record, now, integrations[record.integration_id])
        if status is None or view["status"] == status:
            items.append(view)
    return paginate(items, lambda t: f"{t['created_at']}|{t['id']}", limit, cursor)


@router.get(
    "/accounts/{account}/tokens/{token}",
    response_model=models.TokenWithStreams,
    summary="A token and its consumer's position",
)
def get_token(token: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    services.people.role(actor, account)
    record = services.lifecycle.find(account, token)
    integration = services.store.get_integration_by_id(record.integration_id)
    return {
        **views.token_view(record, services.clock(), integration),
        "revoked_by": services.integrations.revoked_by(account, record),
        "streams": [views.lag_view(lag, services.clock()) for lag in services.lifecycle.lag(record)],
    }


@router.post("/accounts/{account}/tokens/{token}/revoke", response_model=models.TokenOut, summary="Revoke a token now")
def revoke_token(token: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    record = services.lifecycle.revoke(actor, account, token)
    return views.token_view(record, services.clock(), services.store.get_integration_by_id(record.integration_id))


@router.post(
    "/accounts/{account}/tokens/{token}/rotate",
    response_model=models.IssuedToken,
    status_code=201,
    summary="Issue a replacement with the same features and revoke this token after a grace period",
)
def rotate_token(
    token: str, account: AccountDep, actor: ActorDep, services: ServicesDep, body: models.TokenRotate | None = None
) -> dict[str, Any]:
    services.people.require(actor, account, "administrator", "rotate tokens")
    try:
        grace = None if body is None or body.grace is None else parse_grace(body.grace)
    except ValueError as exc:
        raise BadRequest(f"Bad Request: grace: {exc}") from None
    secret, record = services.lifecycle.rotate(actor, account, token, grace)
    integration = services.store.get_integration_by_id(record.integration_id)
    return {
        **views.token_view(record, services.clock(), integration),
        "token": secret,
        "base_url": services.settings.base_url,
    }


@router.get("/accounts/{account}/ingest-keys", response_model=models.Page[models.IngestKeyOut], summary="Ingest keys")
def list_ingest_keys(
    account: AccountDep, actor: ActorDep, services: ServicesDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> dict[str, Any]:
    items = [views.ingest_key_view(k) for k in services.ingest_key_admin.list_keys(actor, account)]
    return paginate(items, lambda k: f"{k['created_at']}|{k['id']}", limit, cursor)


@router.post(
    "/accounts/{account}/ingest-keys",
    response_model=models.CreatedIngestKey,
    status_code=201,
    summary="Create an ingest key (shown once)",
)
def create_ingest_key(
    body: models.IngestKeyCreate, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    secret, key = services.ingest_key_admin.create(actor, account, body.name, parse_features(body.features))
    return {**views.ingest_key_view(key), "key": secret}


@router.delete(
    "/accounts/{account}/ingest-keys/{key_id}", response_model=models.IngestKeyOut, summary="Revoke an ingest key"
)
def revoke_ingest_key(key_id: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return views.ingest_key_view(services.ingest_key_admin.revoke(actor, account, key_id))
