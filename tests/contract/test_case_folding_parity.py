"""Differential test: the same seeded sequence of identity operations on SQLite and on PostgreSQL
gives the same observable results. Names and emails differ only by the case of letters, ASCII and
not (accented, Greek sigmas, sharp s, dotted and dotless I, the DZ digraphs), so that every
uniqueness decision and every lookup by name or email depends on how each backend folds case
(docs/architecture.md, "The store contract": letters A to Z only, on both).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siemgate.errors import Conflict, NotFound
from siemgate.model.encoding import encode_event
from siemgate.model.facets import extract_facets
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import NewEvent, Store
from siemgate.store.shared.identity import Invitation
from support.stores import make_store

STEMS = ["éve", "Éve", "ÉVE", "eve", "EVE", "σας", "ΣΑΣ", "Σας", "ẞ", "ß", "\u0130", "i", "\u0131", "I", "ǆ", "Ǆ", "ǅ"]
T0 = 1_700_000_000_000_000_000
DAY = 86400 * 10**9
SIGNIN = Feature.SIGNINATTEMPTS


def _text(rng: random.Random) -> str:
    return rng.choice(STEMS) + rng.choice(["", "x", "X"])


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except (Conflict, NotFound) as exc:
        return (type(exc).__name__,)


def _script(store: Store, seed: int) -> list[Any]:
    """Run the seeded operations; what each one observably did (created rows named by the index of
    the operation that created them, so both backends' ids compare)."""
    rng = random.Random(seed)
    made: dict[tuple[str, int], int] = {}  # (kind, id) -> the op that created it
    account = store.create_account(new_id(), f"home-{seed}", T0)
    out: list[Any] = []
    for op in range(120):
        kind = rng.choice(["account", "find_account", "user", "find_user", "integration", "find_integration", "invite"])
        text = _text(rng)
        if kind == "account":
            result = _outcome(lambda t=text: store.create_account(new_id(), t, T0).id)  # type: ignore[misc]
            if result[0] == "ok":
                made[("account", result[1])] = op
                result = ("ok",)
        elif kind == "find_account":
            result = _outcome(lambda t=text: made.get(("account", store.get_account(t).id)))  # type: ignore[misc]
        elif kind == "user":
            email = f"{text}@example.com"
            result = _outcome(lambda e=email: store.create_user(new_id(), e, "n", None, None, T0).id)  # type: ignore[misc]
            if result[0] == "ok":
                made[("user", result[1])] = op
                result = ("ok",)
        elif kind == "find_user":
            result = _outcome(lambda e=f"{text}@EXAMPLE.com": made.get(("user", store.get_user(e).id)))  # type: ignore[misc]
        elif kind == "integration":
            result = _outcome(
                lambda t=text: store.create_integration(account.id, new_id(), "splunk", t, "", T0).id  # type: ignore[misc]
            )
            if result[0] == "ok":
                made[("integration", result[1])] = op
                result = ("ok",)
        elif kind == "find_integration":
            result = _outcome(lambda t=text: made.get(("integration", store.get_integration(account.id, t).id)))  # type: ignore[misc]
        else:
            email = f"{text}@example.com"
            invitation = Invitation(new_id(), account.id, email, "member", new_id(), None, T0, T0 + DAY)
            result = _outcome(lambda i=invitation: store.create_invitation(i, max_pending=1000, now=T0))  # type: ignore[misc]
            lookup = f"{_text(rng)}@example.com"
            result = (*result, sorted(i.email for i in store.invitations_for(lookup, T0)))
        out.append((op, kind, text, result))
    return out


def _search(store: Store, seed: int) -> list[Any]:
    """Forgiving actor searches (`actor~`) over sign-ins by people named from STEMS."""
    rng = random.Random(seed)
    account = store.create_account(new_id(), f"search-{seed}", T0)
    events = []
    for i, stem in enumerate(STEMS):
        email = f"{stem}.{i}@example.com"
        event: dict[str, Any] = {
            "uuid": new_id(),
            "timestamp": f"2023-11-14T22:13:{i:02d}Z",
            "category": "success",
            "type": "credentials_ok",
            "country": "US",
            "target_user": {"uuid": new_id(), "name": stem, "email": email},
            "client": {"app_name": "1Password for Mac", "ip_address": "192.0.2.1"},
        }
        body = encode_event(SIGNIN, event)[0]
        ts = T0 + i * 10**9
        events.append(NewEvent(event["uuid"], ts, body, None, facets=extract_facets(SIGNIN, event)))
    store.insert_events(account.id, SIGNIN, events)
    out = []
    for _ in range(30):
        needle = rng.choice(STEMS)
        rows = store.search_events(account.id, SIGNIN, T0, T0 + DAY, {"actor~": needle}, None, 100)
        out.append((needle, sorted((ts - T0) // 10**9 for ts, _, _ in rows)))
    return out


def test_case_folding_is_the_same_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    stores = {kind: make_store(kind, tmp_path) for kind in ("sqlite", "postgres")}
    try:
        for seed in (1, 2, 3):
            seen = {kind: _script(store, seed) for kind, store in stores.items()}
            for mine, theirs in zip(seen["sqlite"], seen["postgres"], strict=True):
                assert mine == theirs, f"seed {seed}: SQLite {mine} PostgreSQL {theirs}"
        seen = {kind: _search(store, 7) for kind, store in stores.items()}
        assert seen["sqlite"] == seen["postgres"]
    finally:
        for store in stores.values():
            store.close()
