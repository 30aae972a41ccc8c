"""Facets: the few fields of an event that the explorer filters on and dashboards group by,
pulled out once when the event is stored so that queries over millions of events never parse JSON.

| facet | signinattempts | itemusages | auditevents |
|---|---|---|---|
| actor | target_user.email | user.email | actor_details.email |
| kind | category | action | action |
| detail | type | vault_uuid | object_type |
| country | country (else location.country) | location.country | location.country |
| app | client.app_name | client.app_name | — |
| ip | client.ip_address | client.ip_address | session.ip |
"""

from __future__ import annotations

from typing import Any, NamedTuple

from siemgate.model.features import Feature

FACET_NAMES = ("actor", "kind", "detail", "country", "app", "ip")
MAX_FACET_LENGTH = 200


class Facets(NamedTuple):
    actor: str | None
    kind: str | None
    detail: str | None
    country: str | None
    app: str | None
    ip: str | None


def _get(event: dict[str, Any], outer: str, inner: str) -> str | None:
    obj = event.get(outer)
    if isinstance(obj, dict):
        value = obj.get(inner)
        if isinstance(value, str) and value:
            return value[:MAX_FACET_LENGTH]
    return None


def _top(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    return value[:MAX_FACET_LENGTH] if isinstance(value, str) and value else None


def extract_facets(feature: Feature, event: dict[str, Any]) -> Facets:
    """The facets of a (validated or mirrored) event; missing or non-string values are None."""
    country = _get(event, "location", "country")
    if feature is Feature.SIGNINATTEMPTS:
        return Facets(
            _get(event, "target_user", "email"),
            _top(event, "category"),
            _top(event, "type"),
            _top(event, "country") or country,
            _get(event, "client", "app_name"),
            _get(event, "client", "ip_address"),
        )
    if feature is Feature.ITEMUSAGES:
        return Facets(
            _get(event, "user", "email"),
            _top(event, "action"),
            _top(event, "vault_uuid"),
            country,
            _get(event, "client", "app_name"),
            _get(event, "client", "ip_address"),
        )
    return Facets(
        _get(event, "actor_details", "email"),
        _top(event, "action"),
        _top(event, "object_type"),
        country,
        None,
        _get(event, "session", "ip"),
    )
