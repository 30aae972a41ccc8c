"""Admin API: alert rules (CRUD; owners and administrators change them, members read), fired
alerts, and the deliveries of their actions (with failures, and retry)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from siemgate.alerts.model import Rule
from siemgate.alerts.service import alert_view, delivery_view
from siemgate.api.admin.deps import (
    AccountDep,
    ActorDep,
    CursorQuery,
    LimitQuery,
    ServicesDep,
    decode_position,
    keyset_page,
    paginate,
)
from siemgate.api.admin.models import Page
from siemgate.errors import BadRequest
from siemgate.model.text import excerpt

router = APIRouter(prefix="/api/admin/v1", tags=["Admin API"])
# Fired alerts and deliveries are paged in the database by (time, id), newest first: an account's
# history is not bounded by a page's worth, and reading it whole for each page would cost as much.
_ALERTS_CURSOR, _DELIVERIES_CURSOR = b"alerts1:", b"deliveries1:"


class SigmaText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sigma: str = Field(description="A Sigma rule (YAML; several documents for a correlation and its rule).")


class RuleToggle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class ActionOut(BaseModel):
    type: str
    target: str


class DeliveryCounts(BaseModel):
    pending: int
    delivered: int
    failed: int
    cancelled: int


class RuleOut(BaseModel):
    id: str
    name: str
    description: str
    source: str
    severity: str
    kind: Literal["match", "threshold", "first_seen"]
    enabled: bool
    origin: Literal["starter", "file", "api"]
    overridden: bool = Field(description="A starter rule this account changed or disabled.")
    status: Literal["active", "disabled", "failing"] = Field(
        description="failing: some action deliveries failed (until retried), or an evaluation failure"
        " (evaluation_failures) under a day old happened after the rule's last change."
    )
    version: int = Field(description="0 for a shipped starter rule; otherwise 1, 2, ... with every change.")
    fired: int
    last_fired_at: str | None
    deliveries: DeliveryCounts
    actions: list[ActionOut]
    updated_at: str | None
    evaluation_failures: int = Field(description="Evaluation steps whose alerts could not be stored.")
    last_failure_at: str | None


class RuleDetails(RuleOut):
    definition: dict[str, Any] = Field(description="The rule; webhook secrets shown as ********.")


class ExplorerFilter(BaseModel):
    feature: str
    start: str
    end: str
    actor: str | None = None


class AccountRef(BaseModel):
    uuid: str
    name: str


class AlertOut(BaseModel):
    id: str
    rule_id: str
    rule_name: str
    rule_version: int = Field(description="The version of the rule that fired it (0: the shipped starter rule).")
    severity: str
    source: str
    summary: str
    account: AccountRef | None
    event_time: str = Field(description="When the activity that completed the rule happened (its event's timestamp).")
    detected_at: str = Field(description="When siemgate evaluated it and fired the alert.")
    fired_at: str = Field(description="Same as detected_at (kept for 0.1 clients).")
    group: dict[str, Any]
    count: int
    events: list[dict[str, Any]] = Field(description="The triggering events: uuid, timestamp and seq.")
    explorer: ExplorerFilter | None = Field(
        description="The event explorer's filter showing the triggering events (stream, time span, actor)."
    )
    state: Literal["open", "acknowledged", "resolved"]
    state_by: str | None = Field(description="Who last changed the state.")
    state_at: str | None


class AlertStateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["open", "acknowledged", "resolved"]


class DeliveryOut(BaseModel):
    id: str
    alert_id: str
    rule_id: str
    type: str
    target: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


class AlertDetails(AlertOut):
    deliveries: list[DeliveryOut]


class RuleDeleted(BaseModel):
    deleted: bool = True


@router.get(
    "/accounts/{account}/alert-rules",
    response_model=Page[RuleOut],
    summary="Alert rules with their status, last firing and action failures",
)
def list_rules(
    account: AccountDep, actor: ActorDep, services: ServicesDep, limit: LimitQuery = 200, cursor: CursorQuery = None
) -> dict[str, Any]:
    return paginate(services.alerts.rule_views(actor, account), lambda r: r["id"], limit, cursor)


@router.post(
    "/accounts/{account}/alert-rules",
    response_model=list[RuleDetails],
    status_code=201,
    summary="Create an alert rule, in siemgate's format or as Sigma (owners and administrators)",
)
def create_rule(
    body: Rule | SigmaText, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> list[dict[str, Any]]:
    alerts = services.alerts
    if isinstance(body, SigmaText):
        entries = alerts.load_text(actor, account, body.sigma, origin="api")
    else:
        entries = [alerts.rules.save(actor, account, body, "api", create=True)]
    return [alerts.rule(actor, account, e.rule.id) for e in entries]


@router.get("/accounts/{account}/alert-rules/{rule_id}", response_model=RuleDetails, summary="An alert rule")
def get_rule(rule_id: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return services.alerts.rule(actor, account, rule_id)


@router.put(
    "/accounts/{account}/alert-rules/{rule_id}",
    response_model=RuleDetails,
    summary="Replace an alert rule (a starter rule's id overrides the shipped rule)",
)
def replace_rule(
    rule_id: str, body: Rule, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    if body.id != rule_id:
        raise BadRequest(f"Bad Request: the body's id {excerpt(body.id)} differs from the path's {excerpt(rule_id)}")
    services.alerts.rules.save(actor, account, body, "api")
    return services.alerts.rule(actor, account, rule_id)


@router.patch(
    "/accounts/{account}/alert-rules/{rule_id}", response_model=RuleDetails, summary="Enable or disable an alert rule"
)
def toggle_rule(
    rule_id: str, body: RuleToggle, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    services.alerts.rules.set_enabled(actor, account, rule_id, body.enabled)
    return services.alerts.rule(actor, account, rule_id)


@router.delete(
    "/accounts/{account}/alert-rules/{rule_id}",
    response_model=RuleDeleted,
    summary="Delete an alert rule (starter rules are disabled instead)",
)
def delete_rule(rule_id: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    services.alerts.rules.delete(actor, account, rule_id)
    return {"deleted": True}


@router.get("/accounts/{account}/alerts", response_model=Page[AlertOut], summary="Fired alerts, newest first")
def list_alerts(
    account: AccountDep,
    actor: ActorDep,
    services: ServicesDep,
    rule: str | None = Query(None, description="Only this rule's alerts."),
    state: Literal["open", "acknowledged", "resolved"] | None = Query(None, description="Only alerts in this state."),
    severity: Literal["low", "medium", "high", "critical"] | None = Query(None, description="Only this severity."),
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    before = decode_position(cursor, _ALERTS_CURSOR)
    records = services.alerts.alerts(actor, account, rule, before, limit + 1, state=state, severity=severity)
    page, next_cursor = keyset_page(records, limit, lambda a: (a.fired_at, a.id), _ALERTS_CURSOR)
    return {"items": [alert_view(a) for a in page], "next_cursor": next_cursor}


@router.patch(
    "/accounts/{account}/alerts/{alert_id}",
    response_model=AlertOut,
    summary="Acknowledge, resolve or reopen an alert (owners and administrators)",
)
def change_alert(
    alert_id: str, body: AlertStateChange, account: AccountDep, actor: ActorDep, services: ServicesDep
) -> dict[str, Any]:
    return alert_view(services.alerts.set_state(actor, account, alert_id, body.state))


@router.get("/accounts/{account}/alerts/{alert_id}", response_model=AlertDetails, summary="An alert and its actions")
def get_alert(alert_id: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    alert = services.alerts.alert(actor, account, alert_id)
    deliveries = services.alerts.deliveries(actor, account, alert_id=alert.id)
    return {**alert_view(alert), "deliveries": [delivery_view(d) for d in deliveries]}


@router.get(
    "/accounts/{account}/alert-deliveries",
    response_model=Page[DeliveryOut],
    summary="Deliveries of alert actions: pending (with the next attempt), delivered, failed (with the error)",
)
def list_deliveries(
    account: AccountDep,
    actor: ActorDep,
    services: ServicesDep,
    status: Literal["pending", "delivered", "failed", "cancelled"] | None = Query(None),
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    before = decode_position(cursor, _DELIVERIES_CURSOR)
    records = services.alerts.deliveries(actor, account, status, limit=limit + 1, before=before)
    page, next_cursor = keyset_page(records, limit, lambda d: (d.created_at, d.id), _DELIVERIES_CURSOR)
    return {"items": [delivery_view(d) for d in page], "next_cursor": next_cursor}


@router.post(
    "/accounts/{account}/alert-deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    summary="Retry a failed or pending delivery now (owners and administrators)",
)
def retry_delivery(delivery_id: str, account: AccountDep, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return delivery_view(services.alerts.retry(actor, account, delivery_id))
