"""Plain-JSON views of accounts, people and credentials: the one shape the admin API and the
CLI's --json print. Never includes a secret or a hash."""

from __future__ import annotations

from typing import Any

from siemgate.accounts.health import integration_health, seconds_behind
from siemgate.accounts.integrations import IntegrationDetails, TokenView
from siemgate.accounts.lifecycle import StreamLag, token_status
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.store.base import Account, ApiKey, IngestKey, Integration, Member, TokenRecord
from siemgate.store.shared.identity import Invitation


def when(ns: int | None) -> str | None:
    """A stored time in RFC 3339 (seconds precision)."""
    return None if ns is None else format_ns(ns - ns % NS_PER_SECOND)


def account_view(account: Account, role: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"uuid": account.uuid, "name": account.name, "created_at": when(account.created_at)}
    if role is not None:
        view["role"] = role
    return view


def member_view(member: Member, two_factor: bool) -> dict[str, Any]:
    """A member as their account sees them: never whether or how they can sign in, except
    whether they use two factors (an owner who requires it needs to know)."""
    user = member.user
    return {
        "uuid": user.uuid,
        "email": user.email,
        "name": user.name,
        "role": member.role,
        "joined_at": when(member.joined_at),
        "two_factor": two_factor,
    }


def invitation_view(invitation: Invitation, now: int) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "status": invitation.state(now),
        "created_at": when(invitation.created_at),
        "expires_at": when(invitation.expires_at),
    }


def offer_view(invitation: Invitation, account: Account) -> dict[str, Any]:
    """An invitation as the invited person sees it: the account and role, not who invited them."""
    return {
        "id": invitation.id,
        "account": {"uuid": account.uuid, "name": account.name},
        "role": invitation.role,
        "expires_at": when(invitation.expires_at),
    }


def token_view(record: TokenRecord, now: int, integration: Integration | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "features": [f.value for f in record.features],
        "status": token_status(record, now),
        "created_at": when(record.created_at),
        "expires_at": when(record.expires_at),
        "revoked_at": when(record.revoked_at),
        "revoke_at": when(record.revoke_at) if record.revoked_at is None else None,
        "last_used_at": when(record.last_used_at),
        "replaces": record.replaces,
    }
    if integration is not None:
        view["integration"] = {"uuid": integration.uuid, "name": integration.name, "type": integration.type}
    return view


def lag_view(lag: StreamLag, now: int) -> dict[str, Any]:
    return {
        "feature": lag.feature.value,
        "last_seq": lag.last_seq,
        "head_seq": lag.head_seq,
        "events_behind": lag.behind,
        "behind_seconds": seconds_behind(lag, now),
        "last_read_at": when(lag.last_read_at),
    }


def integration_view(integration: Integration) -> dict[str, Any]:
    return {
        "uuid": integration.uuid,
        "type": integration.type,
        "name": integration.name,
        "description": integration.description,
        "created_at": when(integration.created_at),
    }


def health_view(details: IntegrationDetails, now: int) -> dict[str, Any]:
    """The integration's state as a whole (accounts/health.py)."""
    health = integration_health([(v.record, v.status, v.lag) for v in details.tokens], now)
    return {
        "state": health["state"],
        "behind_seconds": health["behind_seconds"],
        "expires_at": when(health["expires_at_ns"]),
    }


def details_view(details: IntegrationDetails, now: int) -> dict[str, Any]:
    def one(view: TokenView) -> dict[str, Any]:
        return {
            **token_view(view.record, now),
            "revoked_by": view.revoked_by,
            "streams": [lag_view(lag, now) for lag in view.lag],
        }

    return {
        **integration_view(details.integration),
        "siem": {"key": details.siem.key, "name": details.siem.name},
        "connection_guide": details.guide,
        "health": health_view(details, now),
        "tokens": [one(view) for view in details.tokens],
    }


def ingest_key_view(key: IngestKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "features": [f.value for f in key.features],
        "status": "revoked" if key.revoked_at is not None else "active",
        "created_at": when(key.created_at),
        "last_used_at": when(key.last_used_at),
    }


def api_key_view(key: ApiKey, now: int) -> dict[str, Any]:
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and now >= key.expires_at:
        status = "expired"
    else:
        status = "active"
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "status": status,
        "created_at": when(key.created_at),
        "expires_at": when(key.expires_at),
        "last_used_at": when(key.last_used_at),
    }
