"""The Events API reads the store in worker threads: a page waiting on the store (a PostgreSQL
round trip, a slow disk) holds up no other request of the process, another account's included."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from siemgate.api.admin.slots import AccountSlots
from siemgate.config import load_settings
from siemgate.errors import RateLimited
from siemgate.model.features import Feature
from siemgate.store.base import Store
from support.clocks import Clock
from support.events import signin
from support.held_calls import held_calls
from support.servers import LiveServer, start_server, stop_server
from support.waiting import wait_for


@contextlib.contextmanager
def _held(store: Store, read: str, applies: Callable[..., bool]) -> Iterator[threading.Event]:
    """The store's `read` waits, until the block ends, in the calls `applies` picks; yields the
    event set once one waits."""
    entered, release = threading.Event(), threading.Event()
    original = getattr(store, read)

    def held(*args: Any, **kwargs: Any) -> Any:
        if applies(*args, **kwargs):
            entered.set()
            release.wait(30)
        return original(*args, **kwargs)

    setattr(store, read, held)
    try:
        yield entered
    finally:
        release.set()


def test_a_page_waiting_on_the_store_holds_up_no_other_request(store: Store, tmp_path: Path) -> None:
    live, server, thread = start_server(load_settings(data_dir=tmp_path / "server"), store, Clock())
    try:
        slow_account, other_account = live.account(), live.account()
        slow_token, other_token = live.token(slow_account), live.token(other_account)
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=live.base_url, timeout=5) as other:
            with _held(store, "read_page", lambda account_id, *_, **__: account_id == slow_account.id) as entered:
                held = pool.submit(live.page, slow_token, Feature.ITEMUSAGES, {"limit": 10})
                _serves_others(other, other_token, other_account.uuid, entered)
                assert not held.done()
            response = held.result(timeout=30)
            assert response.status_code == 200, response.text
            assert response.json()["has_more"] is False
    finally:
        stop_server(live, server, thread)


def _serves_others(client: httpx.Client, token: str, account_uuid: str, entered: threading.Event) -> None:
    """While the held page waits in the store, the process answers (on the event loop, these would
    time out)."""
    assert entered.wait(10), "the held page never reached the store"
    assert client.get("/healthz").status_code == 200
    page = client.post("/api/v2/itemusages", json={"limit": 10}, headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200, page.text
    introspect = client.get("/api/v2/auth/introspect", headers={"Authorization": f"Bearer {token}"})
    assert introspect.json()["account_uuid"] == account_uuid


def test_an_ingest_request_waiting_on_the_store_holds_up_no_other_request(store: Store, tmp_path: Path) -> None:
    """The ingest key is looked up off the event loop too (it was not: on PostgreSQL a producer's
    request waiting for a pooled connection froze every other account's requests meanwhile)."""
    live, server, thread = start_server(load_settings(data_dir=tmp_path / "server"), store, Clock())
    try:
        producer, other_account = live.account(), live.account()
        key, other_token = live.ingest_key(producer), live.token(other_account)
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=live.base_url, timeout=5) as other:
            with _held(store, "get_ingest_key_by_hash", lambda *_: True) as entered:
                held = pool.submit(live.ingest, key, Feature.SIGNINATTEMPTS, [signin(live.clock())])
                _serves_others(other, other_token, other_account.uuid, entered)
                assert not held.done()
            response = held.result(timeout=30)
            assert response.status_code == 200, response.text
            assert response.json()["stored"] == 1
    finally:
        stop_server(live, server, thread)


@pytest.mark.parametrize(("path", "read"), [("/healthz", "check_readable"), ("/.well-known/jwks.json", "signing_keys")])
def test_a_public_endpoint_waiting_on_the_store_holds_up_no_other_request(
    store: Store, tmp_path: Path, path: str, read: str
) -> None:
    """/healthz and the JWKS read the store off the event loop: anyone may call them (a load
    balancer every few seconds), and on the loop a wait on PostgreSQL froze the process."""
    live, server, thread = start_server(load_settings(data_dir=tmp_path / "server"), store, Clock())
    try:
        token = live.token(live.account())
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=live.base_url, timeout=5) as other:
            # not a background job's read (they run on the event loop's own threads)
            with _held(store, read, lambda *_: not threading.current_thread().name.startswith("asyncio")) as entered:
                waiting = pool.submit(live.http.get, path)
                assert entered.wait(10), f"{path} never reached the store"
                page = other.post(
                    "/api/v2/itemusages", json={"limit": 10}, headers={"Authorization": f"Bearer {token}"}
                )
                assert page.status_code == 200, page.text
                assert not waiting.done()
            assert waiting.result(timeout=30).status_code == 200
    finally:
        stop_server(live, server, thread)


def test_an_accounts_ingest_requests_take_turns_and_hold_no_other_accounts_thread(store: Store, tmp_path: Path) -> None:
    """At most ingest_requests_per_account of an account's ingest requests are stored at once; the
    others wait on the event loop, holding no thread (api/admin/slots.py). Before, a producer on 48
    connections held the process's worker threads, and another account's request rate fell from
    217 to 4 a second (bench/alerts_noisy_tenant.py --rules 0 --a-connections 48, SQLite)."""
    settings = load_settings(data_dir=tmp_path / "server", ingest_requests_per_account=2)
    live, server, thread = start_server(settings, store, Clock())
    try:
        producer, other_account = live.account(), live.account()
        key, other_key = live.ingest_key(producer), live.ingest_key(other_account)
        _five_at_once_take_two_turns(
            live,
            ("insert_events", producer.id, "ingest_slots"),
            lambda _: live.ingest(key, Feature.SIGNINATTEMPTS, [signin(live.clock())]),
            lambda: live.ingest(other_key, Feature.SIGNINATTEMPTS, [signin(live.clock())]),
        )
    finally:
        stop_server(live, server, thread)


def test_an_accounts_event_pages_take_turns_and_hold_no_other_accounts_thread(store: Store, tmp_path: Path) -> None:
    """At most events_pages_per_account of an account's Events API requests (all its tokens
    together) are served at once; the others wait on the event loop, holding no thread. Before,
    an account reading with 48 tokens at once (1000-event pages, within its rate limits) took the
    process's worker threads, and another account's request rate fell from 280 to 4 a second."""
    settings = load_settings(data_dir=tmp_path / "server", events_pages_per_account=2)
    live, server, thread = start_server(settings, store, Clock())
    try:
        reader, other_account = live.account(), live.account()
        tokens, other_token = [live.token(reader) for _ in range(5)], live.token(other_account)
        for token in tokens:  # each token's first request goes ahead: its signature is checked in the thread
            assert live.page(token, Feature.ITEMUSAGES, {"limit": 10}).status_code == 200
        _five_at_once_take_two_turns(
            live,
            ("read_page", reader.id, "page_slots"),
            lambda n: live.page(tokens[n], Feature.ITEMUSAGES, {"limit": 10}),
            lambda: live.page(other_token, Feature.ITEMUSAGES, {"limit": 10}),
        )
    finally:
        stop_server(live, server, thread)


def _five_at_once_take_two_turns(
    live: LiveServer,
    where: tuple[str, int, str],
    send: Callable[[int], httpx.Response],
    other: Callable[[], httpx.Response],
) -> None:
    """Five of an account's requests sent at once (`send(n)`), held in the store's read `where`
    names (with the account's id and the app's slots), with its setting at 2: at most two reach the
    store, the others wait their turn, and another account's request (`other`) is answered meanwhile."""
    read, account_id, slots_name = where
    assert live.app is not None
    slots = getattr(live.app.state, slots_name, None)  # None before they existed
    with ThreadPoolExecutor(5) as pool, held_calls(live.store, read, account_id) as held:
        sent = [pool.submit(send, n) for n in range(5)]
        wait_for(
            "the account's five requests in the store or waiting for their turn",
            lambda: held.inside.get(account_id) == 5 or (slots is not None and slots._holders.get(account_id) == 5),
        )
        answer = other()  # not held up
        assert answer.status_code == 200, answer.text
        assert held.most[account_id] == 2, f"{held.most[account_id]} of the account's requests in the store at once"
        held.release.set()
        assert [f.result(timeout=30).status_code for f in sent] == [200] * 5


def test_a_request_that_waited_past_its_accounts_slots_is_told_the_bound() -> None:
    """429 with Retry-After naming the setting; a waiting request that gave up holds nothing."""
    slots = AccountSlots(1, None, 0.05, what="ingest requests", setting="ingest_requests_per_account")

    async def second_while_first_runs() -> RateLimited:
        async with slots.hold(7):
            with pytest.raises(RateLimited) as refused:
                async with slots.hold(7):
                    pass
        return refused.value

    refused = asyncio.run(second_while_first_runs())
    assert refused.retry_after == 5
    assert "1 of this account's ingest requests (ingest_requests_per_account) are running" in refused.message
    assert slots._holders == {} and slots._slots == {}
