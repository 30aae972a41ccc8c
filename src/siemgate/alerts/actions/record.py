"""The `event` action: record the alert itself as an audit event in the account's own
`auditevents` stream (action `create`, object_type `report`; docs/alerts.md). The event is stamped
when it is stored, so it is never a late event for connectors that poll by time; the time of the
activity that triggered the alert is in its aux_info (`event_time`). Its uuid is the delivery id,
which the store remembers, so delivering it again stores nothing twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from siemgate.accounts.actor import SYSTEM
from siemgate.accounts.audit import AuditRecorder
from siemgate.alerts.actions.base import DeliveryError
from siemgate.errors import SiemgateError
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Account, DeliveryRecord, Store

ALERT_ACTION, ALERT_OBJECT_TYPE, ALERT_KIND = "create", "report", "alert"


def is_alert_event(event: dict[str, Any]) -> bool:
    """Whether an audit event is an alert recorded by this action (rules never evaluate these)."""
    info = event.get("aux_info")
    return (
        event.get("action") == ALERT_ACTION
        and event.get("object_type") == ALERT_OBJECT_TYPE
        and isinstance(info, str)
        and info.startswith('{"kind":"alert"')
    )


class EventSender:
    def __init__(self, store: Store, audit: AuditRecorder) -> None:
        self.store = store
        self.audit = audit

    def __call__(self, alert: dict[str, Any], action: dict[str, Any], delivery: DeliveryRecord) -> None:
        self.record_many(delivery.account_id, [(alert, delivery)])

    def record_many(self, account_id: int, items: Sequence[tuple[dict[str, Any], DeliveryRecord]]) -> None:
        """Record the alerts (payload, delivery) of one account as audit events, in one batch."""
        try:
            account = self.store.get_account_by_id(account_id)
            events = [self._event(account, alert, delivery) for alert, delivery in items]
            self.audit.writer.write(account.id, Feature.AUDITEVENTS, events)
        except SiemgateError as exc:
            raise DeliveryError(f"cannot record the alert as an event: {exc.message}") from None

    def _event(self, account: Account, alert: dict[str, Any], delivery: DeliveryRecord) -> dict[str, Any]:
        info = {
            "kind": ALERT_KIND,
            "rule": alert["rule"]["id"],
            "rule_name": alert["rule"]["name"],
            "severity": alert["rule"]["severity"],
            "summary": alert["summary"],
            "source": alert["source"],
            "count": alert["count"],
            "group": alert.get("group", {}),
            "events": [r["uuid"] for r in alert.get("events", [])][:20],
            "event_time": alert["event_time"],
            "detected_at": alert.get("detected_at", alert["fired_at"]),
        }
        return self.audit.event(
            account,
            SYSTEM,
            ALERT_ACTION,
            ALERT_OBJECT_TYPE,
            object_uuid=alert["id"],
            aux_info=info,
            uuid=_event_uuid(delivery.id),
            stamp_on_receipt=True,
        )


def _event_uuid(delivery_id: str) -> str:
    """The event's uuid: the delivery id when it is an event id already (it is), else a new one."""
    return delivery_id if len(delivery_id) == 26 else new_id()
