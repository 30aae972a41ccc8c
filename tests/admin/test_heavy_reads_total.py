"""Heavy reads of all accounts together run at most half of `database_pool_size` at once per
server process (api/admin/slots.py, heavy_reads_total), so that a few accounts, each within its
`admin_queries_per_account`, cannot together hold every pooled PostgreSQL connection. Before, 4
accounts x 2 counts held all 8 connections and every other request of the process (Events API
pages, ingest, sign-in) waited for one, up to the pool's 30 s."""

from __future__ import annotations

import threading

import httpx

from support.admin import ADMIN, Site
from support.held_calls import held_calls
from support.stores import BOTH_BACKENDS
from support.waiting import wait_for

server_backend = BOTH_BACKENDS
SHARED_SERVER_SETTINGS = {"admin_queries_per_account": 1, "database_pool_size": 2}  # one heavy read at a time


def test_heavy_reads_of_all_accounts_together_stay_below_the_pool(site: Site) -> None:
    def stats(account: str, headers: dict[str, str]) -> int:
        url = f"{site.server.base_url}{ADMIN}/accounts/{account}/stats/signinattempts"
        return httpx.get(url, headers=headers, timeout=30).status_code

    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(stats(site.account.uuid, site.owner.headers)))
    second = threading.Thread(target=lambda: answers.append(stats(site.other.uuid, site.outsider.headers)))
    with held_calls(site.services.store, "facet_counts", site.account.id) as held:
        try:
            first.start()
            wait_for("the first account's count in the store", lambda: held.inside.get(None) == 1)
            second.start()
            assert site.server.app is not None
            slots = site.server.app.state.query_slots
            wait_for(
                "the other account's count answered or waiting for a slot",
                lambda: bool(answers) or slots._holders.get(site.other.id) == 1,
            )
            assert not answers and held.most[None] == 1, "the other account's count ran past the process's one slot"
        finally:
            held.release.set()
            first.join(30)
            second.join(30)
    assert answers == [200, 200]
    assert held.most[None] == 1
