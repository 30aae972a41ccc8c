"""Heavy reads of all accounts together run at most half of `database_pool_size` at once per
server process (api/admin/slots.py, heavy_reads_total), so that a few accounts, each within its
`admin_queries_per_account`, cannot together hold every pooled PostgreSQL connection. Before, 4
accounts x 2 counts held all 8 connections and every other request of the process (Events API
pages, ingest, sign-in) waited for one, up to the pool's 30 s."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx

from siemgate.model.features import Feature
from support.admin import ADMIN, Site
from support.events import auditevent
from support.held_calls import held_calls
from support.stores import BOTH_BACKENDS
from support.waiting import wait_for

server_backend = BOTH_BACKENDS
SHARED_SERVER_SETTINGS = {"admin_queries_per_account": 1, "database_pool_size": 2}  # one heavy read at a time


def stats(site: Site, account: str, headers: dict[str, str]) -> int:
    """The status of a dashboard count of `account`'s sign-ins."""
    url = f"{site.server.base_url}{ADMIN}/accounts/{account}/stats/signinattempts"
    return httpx.get(url, headers=headers, timeout=30).status_code


def test_heavy_reads_of_all_accounts_together_stay_below_the_pool(site: Site) -> None:
    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(stats(site, site.account.uuid, site.owner.headers)))
    second = threading.Thread(target=lambda: answers.append(stats(site, site.other.uuid, site.outsider.headers)))
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


def test_a_download_taken_slowly_holds_no_slot_of_the_process(site: Site) -> None:
    """An export holds a process slot only while it reads a page: a client that stops reading
    (a slow link, or on purpose) keeps its account's slot, not one every account needs. Before,
    two accounts' stalled downloads held the process's slots and every other account's searches,
    exports and counts waited 30 s, then got 429."""
    now = site.services.clock()
    batch = [auditevent(now - i * 1_000_000, aux_info="x" * 900) for i in range(10_000)]
    site.services.writer.write(site.account.id, Feature.AUDITEVENTS, batch)  # ~13 MB to download
    assert site.server.app is not None
    slots = site.server.app.state.query_slots
    with _stalled_download(site, f"{ADMIN}/accounts/{site.account.uuid}/events/auditevents/export"):
        wait_for(  # pages are read until the buffers are full; then the export waits for the client
            "the download waiting for its client, holding no slot of the process's",
            lambda: slots._all is not None and slots._all._value == slots.total,
        )
        assert slots._holders.get(site.account.id) == 1, "the download ended: it must outgrow the buffers"
        assert stats(site, site.other.uuid, site.outsider.headers) == 200  # another account, meanwhile
        assert slots._holders.get(site.account.id) == 1


@contextlib.contextmanager
def _stalled_download(site: Site, path: str) -> Iterator[None]:
    """A GET of `path` as the owner whose reply is read no further than its status line, through
    a receive buffer of 4 KiB: the server waits to send the rest until the block ends."""
    url = urlsplit(site.server.base_url)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((url.hostname, url.port))
        head = [f"GET {path} HTTP/1.1", f"Host: {url.netloc}", "Accept-Encoding: identity", "Connection: close"]
        head += [f"{name}: {value}" for name, value in site.owner.headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        yield
