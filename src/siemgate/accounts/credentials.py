"""Ingest keys managed by people, with the audit trail."""

from __future__ import annotations

from collections.abc import Sequence

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.people import PeopleService, check_name
from siemgate.auth.ingest_keys import IngestKeyService
from siemgate.errors import BadRequest, NotFound
from siemgate.model.features import Feature
from siemgate.model.text import excerpt
from siemgate.store.base import Account, CredentialStore, IngestKey


class IngestKeyAdmin:
    def __init__(
        self, store: CredentialStore, keys: IngestKeyService, people: PeopleService, audit: AuditRecorder
    ) -> None:
        self.store = store
        self.keys = keys
        self.people = people
        self.audit = audit

    def create(self, actor: Actor, account: Account, name: str, features: Sequence[Feature]) -> tuple[str, IngestKey]:
        """Make a key (shown once) and record `create satoken`; BadRequest, writing nothing, for a
        blank name."""
        self.people.require(actor, account, "administrator", "create ingest keys")
        if not check_name(name).strip():
            raise BadRequest("Bad Request: name: an ingest key needs a name, e.g. the producer that uses it")
        secret, key = self.keys.create(account, name, features)
        self.audit.record(
            account,
            actor,
            "create",
            "satoken",
            object_uuid=key.id,
            aux_info={"kind": "ingest key", "name": key.name, "features": [f.value for f in key.features]},
        )
        return secret, key

    def list_keys(self, actor: Actor, account: Account) -> list[IngestKey]:
        self.people.role(actor, account)
        return self.store.list_ingest_keys(account.id)

    def revoke(self, actor: Actor, account: Account, key_id: str) -> IngestKey:
        self.people.require(actor, account, "administrator", "revoke ingest keys")
        if not any(k.id == key_id for k in self.store.list_ingest_keys(account.id)):
            raise NotFound(f"Not Found: no ingest key {excerpt(key_id)} in {account.name!r}")
        key = self.store.revoke_ingest_key(key_id, self.keys.clock())
        self.audit.record(
            account, actor, "trevoke", "satoken", object_uuid=key.id, aux_info={"kind": "ingest key", "name": key.name}
        )
        return key
