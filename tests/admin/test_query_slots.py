"""One account's heavy reads (event searches, exports, dashboard counts) run at most
`admin_queries_per_account` at once per server process (api/admin/slots.py): the rest wait their
turn holding no thread or database connection. Before, one person firing 16 dashboard counts at
once held all 8 of PostgreSQL's pooled connections, and another account's Events API pages took
133 ms instead of 3 (measured on 127.0.0.1, 300,000 events); with queries of seconds, its
requests waited seconds, then failed when no connection came free."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from support.admin import ADMIN, Site
from support.held_calls import held_calls
from support.stores import BOTH_BACKENDS
from support.waiting import wait_for

server_backend = BOTH_BACKENDS
SHARED_SERVER_SETTINGS = {"admin_queries_per_account": 1}


def test_an_accounts_heavy_reads_wait_for_its_slot_and_others_do_not(site: Site) -> None:
    def stats(account: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.get(f"{site.server.base_url}{ADMIN}/accounts/{account}/stats/signinattempts", headers=headers)

    answers: list[int] = []
    busy = [
        threading.Thread(target=lambda: answers.append(stats(site.account.uuid, site.owner.headers).status_code))
        for _ in range(2)
    ]
    with held_calls(site.services.store, "facet_counts", site.account.id) as held:
        try:
            busy[0].start()
            wait_for("the account's first count in the store", lambda: held.inside.get(site.account.id) == 1)
            busy[1].start()
            assert site.server.app is not None
            slots = getattr(site.server.app.state, "query_slots", None)  # None before they existed
            wait_for(
                "the account's second count in the store or waiting for a slot",
                lambda: (
                    held.inside.get(site.account.id) == 2
                    or (slots is not None and slots._holders.get(site.account.id) == 2)
                ),
            )
            other = stats(site.other.uuid, site.outsider.headers)  # another account: not held up
            assert other.status_code == 200 and held.inside.get(site.account.id) == 1, other.text
        finally:
            held.release.set()
            for thread in busy:
                thread.join(30)
    assert answers == [200, 200]
    assert held.most[site.account.id] == 1, "two of the account's counts ran at once past its one slot"


def test_an_export_holds_its_slot_while_it_streams(site: Site) -> None:
    """An export reads the store as its body is sent, after the route returned: its slot is held
    until then."""
    store = site.services.store
    search = store.search_events
    assert site.server.app is not None
    held_while_reading: list[int] = []

    def reading(account_id: int, *args: Any, **kwargs: Any) -> Any:
        slots = getattr(site.server.app.state, "query_slots", None)  # type: ignore[union-attr]
        held_while_reading.append(slots._holders.get(account_id, 0) if slots is not None else 0)
        return search(account_id, *args, **kwargs)

    store.search_events = reading  # type: ignore[method-assign]
    try:
        url = f"{site.server.base_url}{ADMIN}/accounts/{site.account.uuid}/events/signinattempts/export"
        response = httpx.get(url, headers=site.owner.headers)
    finally:
        del store.search_events
    assert response.status_code == 200, response.text
    assert held_while_reading and set(held_while_reading) == {1}
