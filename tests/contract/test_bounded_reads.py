"""The reads a tenant can make as large as its data (the event explorer's search, exports,
dashboard counts) are bounded in time (store.errors.too_long): no statement timeout or interrupt
existed, so a count over an account's whole window, or one waiting on a lock, ran for as long as
it took, holding a database connection (PostgreSQL's pool is shared by every account) and a core."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import psycopg
import pytest

from siemgate.errors import Unavailable
from siemgate.model.encoding import encode_event
from siemgate.model.facets import Facets
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import NewEvent, Store
from siemgate.store.postgres import PostgresStore
from support.admin import ADMIN, Site
from support.servers import LiveServer
from support.stores import PG_URL

T0 = 1_700_000_000_000_000_000
SIGNIN = Feature.SIGNINATTEMPTS


def _fill(store: Store, account_id: int, count: int) -> None:
    for first in range(0, count, 1000):
        batch = []
        for i in range(first, min(first + 1000, count)):
            event = {"uuid": new_id(), "timestamp": "2023-11-14T22:13:20Z", "category": "success"}
            facets = Facets(f"p{i % 97}@example.com", "success", "credentials_ok", "FR", "app", "192.0.2.1")
            batch.append(NewEvent(event["uuid"], T0 + i, encode_event(SIGNIN, event)[0], None, False, facets))
        store.insert_events(account_id, SIGNIN, batch)


@contextlib.contextmanager
def _facets_locked(store: Store) -> Iterator[None]:
    """PostgreSQL: another session holds the facets table, so a read of it waits."""
    assert isinstance(store, PostgresStore)
    with psycopg.connect(PG_URL) as other:
        other.execute(f'SET search_path TO "{store.schema}"')
        other.execute("LOCK TABLE facets IN ACCESS EXCLUSIVE MODE")
        yield
        other.rollback()


def test_a_count_and_a_search_stop_past_their_time(store: Store) -> None:
    account = store.create_account(new_id(), f"Large {new_id()[:6]}", T0)
    _fill(store, account.id, 5000)
    counted = store.facet_counts(account.id, SIGNIN, T0, T0 + 10_000, ["actor"], seconds=30)
    assert sum(row[-1] for row in counted) == 5000  # within its time: answered
    if isinstance(store, PostgresStore):
        with _facets_locked(store):
            with pytest.raises(Unavailable, match="narrow the time window"):
                store.facet_counts(account.id, SIGNIN, T0, T0 + 10_000, ["actor"], seconds=0.2)
            with pytest.raises(Unavailable, match="narrow the time window"):
                store.search_events(account.id, SIGNIN, T0, T0 + 10_000, {"actor~": "nobody"}, None, 50, seconds=0.2)
    else:  # SQLite readers never wait; a read that has run its time is interrupted
        with pytest.raises(Unavailable, match="narrow the time window"):
            store.facet_counts(account.id, SIGNIN, T0, T0 + 10_000, ["actor"], seconds=1e-9)
        with pytest.raises(Unavailable, match="narrow the time window"):
            store.search_events(account.id, SIGNIN, T0, T0 + 10_000, {"actor~": "nobody"}, None, 50, seconds=1e-9)
    # the connection serves the next read as before
    assert sum(row[-1] for row in store.facet_counts(account.id, SIGNIN, T0, T0 + 10_000, [])) == 5000


def test_the_admin_api_bounds_its_reads(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(admin_query_seconds=1e-9)
    site = Site(server)
    _fill(server.store, site.account.id, 5000)
    url = f"{ADMIN}/accounts/{site.account.uuid}/stats/signinattempts"
    window = {"start": "2023-11-14T00:00:00Z", "end": "2023-11-15T00:00:00Z", "group_by": "actor"}
    answer = server.http.get(url, params=window, headers=site.owner.headers)
    assert answer.status_code == 503 and "narrow the time window" in answer.text, answer.text
    assert int(answer.headers["retry-after"]) >= 1
