"""Forgiving facet filters (a facet name ending in "~", store/shared/facets.py) on every backend:
case-insensitive, the person and the app containing the value, country and IP starting with it,
LIKE's wildcards taken literally; counts and searches agree."""

from __future__ import annotations

from typing import Any

from siemgate.model.encoding import encode_event
from siemgate.model.facets import extract_facets
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import NewEvent, Store

T0 = 1_700_000_000_000_000_000
S = 10**9
SIGNIN = Feature.SIGNINATTEMPTS
PEOPLE = ["Alice.Admin@Acme.test", "malice@evil.test", "bob_smith@acme.test", "bobxsmith@acme.test"]
PLACES = [("US", "2001:db8::1"), ("AU", "192.0.2.10"), ("US", "192.0.2.100"), ("DE", "198.51.100.7")]


def _events() -> list[NewEvent]:
    events = []
    for i, (email, (country, ip)) in enumerate(zip(PEOPLE, PLACES, strict=True)):
        event: dict[str, Any] = {
            "uuid": new_id(),
            "timestamp": f"2023-11-14T22:13:2{i}Z",
            "category": "success",
            "type": "credentials_ok",
            "country": country,
            "target_user": {"uuid": new_id(), "name": email, "email": email},
            "client": {"app_name": "1Password for Mac", "ip_address": ip},
        }
        body = encode_event(SIGNIN, event)[0]
        events.append(NewEvent(event["uuid"], T0 + i * S, body, None, facets=extract_facets(SIGNIN, event)))
    return events


def test_forgiving_filters(store: Store) -> None:
    account = store.create_account(new_id(), f"acct-{new_id()}", T0)
    store.insert_events(account.id, SIGNIN, _events())

    def found(**filters: str) -> list[str]:
        rows = store.search_events(account.id, SIGNIN, T0, T0 + 10 * S, filters, None, 50)
        count = store.facet_counts(account.id, SIGNIN, T0, T0 + 10 * S, [], filters=filters)
        assert count[0][-1] == len(rows)
        return sorted(PEOPLE[(ts - T0) // S] for ts, _, _ in rows)

    assert found(**{"actor~": "alice"}) == ["Alice.Admin@Acme.test", "malice@evil.test"]
    assert found(**{"actor~": "@ACME.test"}) == ["Alice.Admin@Acme.test", "bob_smith@acme.test", "bobxsmith@acme.test"]
    assert found(**{"actor~": "bob_"}) == ["bob_smith@acme.test"]  # _ is not a wildcard
    assert found(**{"actor~": "%"}) == []
    assert found(**{"country~": "us"}) == ["Alice.Admin@Acme.test", "bob_smith@acme.test"]
    assert found(**{"country~": "s"}) == []  # the country starts with the value
    assert found(**{"ip~": "192.0.2.10"}) == ["bob_smith@acme.test", "malice@evil.test"]
    assert found(**{"ip~": "2001:DB8"}) == ["Alice.Admin@Acme.test"]
    assert found(**{"app~": "for mac", "country~": "DE"}) == ["bobxsmith@acme.test"]
    assert found(actor="alice.admin@acme.test") == []  # exact filters stay exact
