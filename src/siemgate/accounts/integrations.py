"""Integrations: one per SIEM application, each with its own tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.catalog import SiemType, siem_type
from siemgate.accounts.lifecycle import StreamLag, TokenLifecycle, token_status
from siemgate.accounts.people import PeopleService, check_name
from siemgate.address import PublicAddress
from siemgate.errors import BadRequest, NotFound
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.text import excerpt
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.store.base import Account, Integration, Store, TokenRecord

MAX_INTEGRATIONS = 100  # per account, not deleted (docs/security.md)


@dataclass(frozen=True, slots=True)
class TokenView:
    record: TokenRecord
    status: str
    lag: list[StreamLag]
    revoked_by: str | None = None  # the e-mail (or name) of whoever revoked it, from the audit trail


@dataclass(frozen=True, slots=True)
class IntegrationDetails:
    integration: Integration
    siem: SiemType
    guide: dict[str, object]
    tokens: list[TokenView]


class IntegrationService:
    def __init__(
        self,
        store: Store,
        people: PeopleService,
        lifecycle: TokenLifecycle,
        audit: AuditRecorder,
        clock: Callable[[], int],
        address: PublicAddress,
    ) -> None:
        self.store = store
        self.people = people
        self.lifecycle = lifecycle
        self.audit = audit
        self.clock = clock
        self.address = address

    def create(self, actor: Actor, account: Account, type: str, name: str, description: str = "") -> Integration:
        self.people.require(actor, account, "administrator", "create integrations")
        try:
            kind = siem_type(type)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if not check_name(name).strip():
            raise BadRequest("the integration needs a name, e.g. 'Splunk production'")
        integration = self.store.create_integration(
            account.id, new_id(), kind.key, name.strip(), description.strip(), self.clock(), limit=MAX_INTEGRATIONS
        )
        self.audit.record(
            account,
            actor,
            "create",
            "sa",
            object_uuid=integration.uuid,
            aux_info={"name": integration.name, "siem": kind.key},
        )
        return integration

    def get(self, actor: Actor, account: Account, ref: str) -> Integration:
        self.people.role(actor, account)
        try:
            return self.store.get_integration(account.id, ref)
        except NotFound:
            raise NotFound(f"Not Found: no integration {excerpt(ref)} in {account.name!r}") from None

    def list_integrations(self, actor: Actor, account: Account) -> list[Integration]:
        self.people.role(actor, account)
        return self.store.list_integrations(account.id)

    def details(self, actor: Actor, account: Account, ref: str) -> IntegrationDetails:
        integration = self.get(actor, account, ref)
        kind = siem_type(integration.type)
        now = self.clock()
        tokens = [
            TokenView(record, token_status(record, now), self.lifecycle.lag(record), self.revoked_by(account, record))
            for record in self.store.list_tokens(account.id, integration.id)
        ]
        return IntegrationDetails(integration, kind, kind.guide(self.address), tokens)

    def revoked_by(self, account: Account, record: TokenRecord) -> str | None:
        """Who revoked the token, read from its `trevoke satoken` audit event (None if not revoked
        or the event is gone)."""
        if record.revoked_at is None:
            return None
        margin = 60 * NS_PER_SECOND
        rows = self.store.search_events(
            account.id,
            Feature.AUDITEVENTS,
            record.revoked_at - margin,
            record.revoked_at + margin,
            {"kind": "trevoke", "detail": "satoken"},
            None,
            50,
        )
        for _ts, _seq, body in rows:
            event = json.loads(body)
            if event.get("object_uuid") == record.id:
                actor = event.get("actor_details") or {}
                return str(actor.get("email") or actor.get("name") or event.get("actor_uuid") or "")
        return None

    def update(
        self, actor: Actor, account: Account, ref: str, name: str | None, description: str | None
    ) -> Integration:
        self.people.require(actor, account, "administrator", "change integrations")
        current = self.get(actor, account, ref)
        new_name = current.name if name is None else check_name(name).strip()
        if not new_name:
            raise BadRequest("the integration needs a name")
        updated = self.store.update_integration(
            current.id, new_name, current.description if description is None else description.strip()
        )
        if updated.name != current.name:
            self.audit.record(
                account,
                actor,
                "changenm",
                "sa",
                object_uuid=current.uuid,
                aux_info={"name": updated.name, "previous": current.name},
            )
        elif updated.description != current.description:
            self.audit.record(
                account, actor, "update", "sa", object_uuid=current.uuid, aux_info={"description": updated.description}
            )
        return updated

    def delete(self, actor: Actor, account: Account, ref: str) -> list[str]:
        """Delete the integration and revoke its tokens; returns the revoked token ids."""
        self.people.require(actor, account, "administrator", "delete integrations")
        integration = self.get(actor, account, ref)
        names = {t.id: t.name for t in self.store.list_tokens(account.id, integration.id)}
        revoked = self.store.delete_integration(integration.id, self.clock())
        for token_id in revoked:
            self.audit.record(
                account,
                actor,
                "trevoke",
                "satoken",
                object_uuid=token_id,
                aux_uuid=integration.uuid,
                aux_info={"name": names.get(token_id, ""), "reason": "integration deleted"},
            )
        self.audit.record(
            account, actor, "delete", "sa", object_uuid=integration.uuid, aux_info={"name": integration.name}
        )
        return revoked
