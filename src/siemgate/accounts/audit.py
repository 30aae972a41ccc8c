"""siemgate's own audit trail: every change to accounts, people, integrations and credentials is
recorded as an event in the account's `auditevents` stream, and console sign-ins in its
`signinattempts` stream, so the SIEM sees who changed its own access (docs/audit.md).

Events are written through EventWriter with strict validation, like any producer's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from siemgate.accounts.actor import SYSTEM_EMAIL, SYSTEM_IP, SYSTEM_NAME, SYSTEM_UUID, Actor
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account, Store, User
from siemgate.store.ingest import EventWriter

CONSOLE_APP = "siemgate Console"


class AuditRecorder:
    def __init__(self, store: Store, writer: EventWriter, clock: Callable[[], int], version: str) -> None:
        self.store = store
        self.writer = writer
        self.clock = clock
        self.version = version
        self.started_at = clock()  # the login_time of siemgate's own session in this process

    def _person(self, account: Account, user: User) -> tuple[dict[str, Any], str, str]:
        """(UserV2 details, user_type, home account uuid) of a person acting in `account`."""
        home = account.uuid
        if user.home_account_id is not None and user.home_account_id != account.id:
            home = self.store.get_account_by_id(user.home_account_id).uuid
        kind = "user" if home == account.uuid else "external_user"
        details = {
            "uuid": user.uuid,
            "name": user.name,
            "email": user.email,
            "user_type": kind,
            "user_account_uuid": home,
        }
        return details, kind, home

    def record(
        self,
        account: Account,
        actor: Actor,
        action: str,
        object_type: str,
        *,
        object_uuid: str | None = None,
        object_user: User | None = None,
        aux_uuid: str | None = None,
        aux_info: dict[str, Any] | str | None = None,
        uuid: str | None = None,
        at: int | None = None,
        stamp_on_receipt: bool = False,
    ) -> dict[str, Any]:
        """Write one audit event to the account's auditevents stream; returns it.

        Every event carries the fields the Events API always has (actor_uuid, session, and in v2
        actor_details, actor_type, actor_account_uuid, account_uuid), siemgate's own included: it
        acts as the system actor (accounts.actor). `uuid` and `at` (the timestamp) default to a
        new id and now; a caller that may write the same event again passes both, so the repeat is
        a duplicate. With `stamp_on_receipt` the store stamps the event when it stores it (never a
        late event) and recognises a repeat by its `uuid` alone (alert deliveries)."""
        event = self.event(
            account, actor, action, object_type, object_uuid=object_uuid, object_user=object_user, aux_uuid=aux_uuid,
            aux_info=aux_info, uuid=uuid, at=at, stamp_on_receipt=stamp_on_receipt,
        )  # fmt: skip
        self.writer.write(account.id, Feature.AUDITEVENTS, [event])
        return event

    def event(
        self,
        account: Account,
        actor: Actor,
        action: str,
        object_type: str,
        *,
        object_uuid: str | None = None,
        object_user: User | None = None,
        aux_uuid: str | None = None,
        aux_info: dict[str, Any] | str | None = None,
        uuid: str | None = None,
        at: int | None = None,
        stamp_on_receipt: bool = False,
    ) -> dict[str, Any]:
        """The audit event `record` writes, not written (a caller writing several at once)."""
        now = self.clock() if at is None else at
        event: dict[str, Any] = {"uuid": uuid or new_id()}
        if not stamp_on_receipt:
            event["timestamp"] = format_ns(now)
        details, kind, home = self._actor(account, actor)
        event["actor_uuid"] = details["uuid"]
        event["actor_details"] = details
        event["action"] = action
        event["object_type"] = object_type
        if object_user is not None:
            event["object_uuid"] = object_user.uuid
            event["object_details"] = {"uuid": object_user.uuid, "name": object_user.name, "email": object_user.email}
        elif object_uuid is not None:
            event["object_uuid"] = object_uuid
        if aux_uuid is not None:
            event["aux_uuid"] = aux_uuid
        if aux_info is not None:
            event["aux_info"] = aux_info if isinstance(aux_info, str) else orjson.dumps(aux_info).decode()
        event["session"] = self._session(actor)
        event["actor_type"] = kind
        event["actor_account_uuid"] = home
        event["account_uuid"] = account.uuid
        return event

    def record_for(self, user: User, actor: Actor, action: str, object_type: str, **fields: Any) -> int:
        """Record the same change in every account the person belongs to (a change to their own
        credentials changes who can access each of them); returns how many accounts."""
        memberships = self.store.list_memberships(user.id)
        for member in memberships:
            self.record(self.store.get_account_by_id(member.account_id), actor, action, object_type, **fields)
        return len(memberships)

    def record_everywhere(self, actor: Actor, action: str, object_type: str, **fields: Any) -> int:
        """Record a server-wide change (signing keys) in every account; returns how many."""
        accounts = self.store.list_accounts()
        for account in accounts:
            self.record(account, actor, action, object_type, object_uuid=account.uuid, **fields)
        return len(accounts)

    def _actor(self, account: Account, actor: Actor) -> tuple[dict[str, Any], str, str]:
        if actor.user is not None:
            return self._person(account, actor.user)
        details = {
            "uuid": SYSTEM_UUID,
            "name": SYSTEM_NAME,
            "email": SYSTEM_EMAIL,
            "user_type": "user",
            "user_account_uuid": account.uuid,
        }
        return details, "user", account.uuid

    def _session(self, actor: Actor) -> dict[str, Any]:
        """The Session of an audit event: the person's API key or console session (its id is also
        the device), or siemgate's own session since this process started."""
        if actor.user is None:
            return {
                "uuid": SYSTEM_UUID,
                "login_time": format_ns(self.started_at),
                "device_uuid": actor.device,
                "ip": SYSTEM_IP,
            }
        credential = actor.credential_id or actor.user.uuid
        login = actor.credential_created_at if actor.credential_created_at is not None else self.started_at
        return {"uuid": credential, "login_time": format_ns(login), "device_uuid": credential, "ip": actor.ip}

    def sign_in(
        self,
        account: Account,
        user: User,
        *,
        success: bool,
        ip: str,
        user_agent: str,
        session_id: str | None,
        category: str | None = None,
        type: str | None = None,
        details: str | None = None,
    ) -> dict[str, Any]:
        """Write a console sign-in attempt to the account's signinattempts stream; returns it.
        `category`/`type` default to a password sign-in that succeeded or failed; `details`
        becomes `details.value` (which second factor was given), null without it."""
        person, _, _ = self._person(account, user)
        event: dict[str, Any] = {
            "uuid": new_id(),
            "session_uuid": session_id or new_id(),
            "timestamp": format_ns(self.clock()),
            "category": category or ("success" if success else "credentials_failed"),
            "type": type or ("credentials_ok" if success else "password_secret_bad"),
            "country": "",
            "details": {"value": details} if details else None,
            "target_user": person,
            "client": {
                "app_name": CONSOLE_APP,
                "app_version": self.version,
                "platform_name": _browser(user_agent),
                "platform_version": "",
                "os_name": _os(user_agent),
                "os_version": "",
                "ip_address": ip,
            },
            "account_uuid": account.uuid,
        }
        self.writer.write(account.id, Feature.SIGNINATTEMPTS, [event])
        return event


def _browser(user_agent: str) -> str:
    for marker, name in (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")):
        if marker in user_agent:
            return name
    return user_agent.split("/", 1)[0][:40] if user_agent else ""


def _os(user_agent: str) -> str:
    for marker, name in (
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("Linux", "Linux"),
    ):
        if marker in user_agent:
            return name
    return ""
