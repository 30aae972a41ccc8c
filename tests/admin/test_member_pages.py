"""The members list pages through every member exactly once, whatever their addresses: people
whose addresses differ only in the case of a letter outside A to Z are different people on both
backends (docs/architecture.md, "The store contract"), and each has a page of their own."""

from __future__ import annotations

from typing import Any

from support.admin import Site, ok
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # real HTTP, on SQLite and PostgreSQL

LOCALS = ["éve", "Éve", "σίσυφος", "ΣΊΣΥΦΟΣ", "zoë", "ZOË", "straße", "STRASSE"]


def test_members_whose_addresses_differ_in_non_ascii_case_are_each_listed_once(site: Site) -> None:
    for local in LOCALS:
        site.add(local, "member")
    expected = {m.user.email for m in site.services.store.list_members(site.account.id)}
    assert len(expected) == len(LOCALS) + 3  # and the owner, the administrator and the member
    for limit in ("1", "2", "3"):
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(len(expected) + 1):
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = ok(site.call(site.owner, "GET", site.path("/members"), params=params))
            seen.extend(item["email"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(expected), f"limit {limit}: {seen}"
