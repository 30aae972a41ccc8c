"""Several `siemgate serve` processes sharing one PostgreSQL database and one Redis: two independent
servers on different ports (each with its own data directory: nothing is shared through files) and
one `serve --workers 2`. Across all of them: rate limits are shared (Redis), a revocation applies
on every process at the next request, a key rotation is seen by all, and events written through
one are read through another."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from siemgate.accounts.actor import CLI
from siemgate.composition.wiring import open_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.services import Services
from support.events import signin
from support.ports import free_port
from support.procs import Proc, cli_env, healthy, run_cli
from support.servers import bearer
from support.stores import drop_pg_schema, new_pg_schema, pg_schema_url
from support.waiting import wait_for

PER_MINUTE = 12


@dataclass
class Cluster:
    url: str  # the database
    env: dict[str, str]  # for CLI commands (their own data dir)
    servers: list[str]  # base URLs
    tmp: Path

    @contextlib.contextmanager
    def services(self) -> Iterator[Services]:
        services = open_services(load_settings(data_dir=self.tmp / "admin", database_url=self.url))
        try:
            yield services
        finally:
            services.close()

    def token(self) -> tuple[str, str]:
        """(token, token id) of a new token for the account."""
        with self.services() as s:
            account = s.store.list_accounts()[0]
            integration = s.store.create_integration(account.id, new_id(), "other", f"i-{new_id()[:8]}", "", s.clock())
            token, record = s.tokens.issue(account, integration, "siem", ALL_FEATURES, None)
            return token, record.id


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_url: str) -> Iterator[Cluster]:
    redis.Redis.from_url(redis_url).ping()  # fail loudly if the machine's Redis is not running
    tmp = tmp_path_factory.mktemp("cluster")
    schema = new_pg_schema()
    url = pg_schema_url(schema)
    procs: list[Proc] = []
    try:
        shared = {
            "SIEMGATE_DATABASE_URL": url,
            "SIEMGATE_REDIS_URL": redis_url,
            "SIEMGATE_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
            "SIEMGATE_DATABASE_POOL_SIZE": "3",
        }
        env = cli_env(tmp / "cli", **shared)
        run_cli(env, "db", "migrate")
        run_cli(env, "account", "create", "Acme")
        servers = []
        for name, extra in (("one", []), ("two", []), ("workers", ["--workers", "2"])):
            port = free_port()
            proc = Proc(name, ["serve", "--port", str(port), *extra], cli_env(tmp / name, **shared), tmp / "logs")
            procs.append(proc)
            servers.append(f"http://127.0.0.1:{port}")
        for proc, base in zip(procs, servers, strict=True):
            wait_for(f"{proc.name} to serve", functools.partial(healthy, base), 60, proc=proc)
        yield Cluster(url, env, servers, tmp)
    finally:
        for proc in procs:
            proc.kill()
        drop_pg_schema(schema)


def _get(base: str, token: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as http:  # a new connection: any worker may answer
        return http.get("/api/v2/auth/introspect", headers=bearer(token))


def test_nothing_is_shared_through_files(cluster: Cluster) -> None:
    for name in ("one", "two", "workers"):
        assert not (cluster.tmp / name / "keys").exists()
        assert not (cluster.tmp / name / "siemgate.db").exists()


def test_rate_limits_are_shared_by_every_process(cluster: Cluster) -> None:
    token, _ = cluster.token()
    statuses = []
    remaining = []
    for n in range(PER_MINUTE + 3):
        response = _get(cluster.servers[n % 3], token)
        statuses.append(response.status_code)
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert statuses == [200] * PER_MINUTE + [429] * 3, statuses
    assert remaining[:PER_MINUTE] == list(range(PER_MINUTE - 1, -1, -1))
    refused = _get(cluster.servers[1], token)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # Another token has its own budget, on every process.
    other, _ = cluster.token()
    assert [_get(base, other).status_code for base in cluster.servers] == [200, 200, 200]


def test_a_revocation_applies_on_every_process_at_the_next_request(cluster: Cluster) -> None:
    token, token_id = cluster.token()
    assert [_get(base, token).status_code for base in cluster.servers] == [200, 200, 200]
    run_cli(cluster.env, "token", "revoke", token_id)
    for base in cluster.servers:
        response = _get(base, token)
        assert response.status_code == 401, base
        assert "revoked" in response.json()["Error"]["Message"]


def test_a_key_rotation_is_seen_by_every_process(cluster: Cluster) -> None:
    old_token, _ = cluster.token()
    assert [_get(base, old_token).status_code for base in cluster.servers] == [200, 200, 200]
    new_kid = run_cli(cluster.env, "keys", "rotate").stdout.strip()
    new_token, _ = cluster.token()  # signed with the new key, which no server has seen yet
    for base in cluster.servers:
        assert _get(base, new_token).status_code == 200, base
        assert _get(base, old_token).status_code == 200, base  # old keys stay while their tokens live
        with httpx.Client(base_url=base, timeout=30) as http:
            kids = {k["kid"] for k in http.get("/.well-known/jwks.json").json()["keys"]}
        assert new_kid in kids, base


def test_events_written_through_one_process_are_read_through_the_others(cluster: Cluster) -> None:
    token, _ = cluster.token()
    with cluster.services() as s:
        key, _ = s.ingest_keys.create(s.store.list_accounts()[0], "producer", ALL_FEATURES)
        now = s.clock()
    sent = {}
    for n, base in enumerate(cluster.servers):
        events = [signin(now - (n * 10 + i) * 1_000_000_000) for i in range(5)]
        sent.update({e["uuid"]: e for e in events})
        with httpx.Client(base_url=base, timeout=30) as http:
            response = http.post("/api/ingest/v2/signinattempts", json=events, headers=bearer(key))
            assert response.status_code == 200 and response.json()["stored"] == 5
    for base in cluster.servers:
        with httpx.Client(base_url=base, timeout=30) as http:
            page = http.post("/api/v2/signinattempts", json={"limit": 1000}, headers=bearer(token)).json()
        assert {i["uuid"] for i in page["items"]} >= set(sent), base


def test_a_retention_policy_set_with_the_cli_applies_on_every_process_at_the_next_request(cluster: Cluster) -> None:
    token, _ = cluster.token()
    day = 86400 * 1_000_000_000
    with cluster.services() as s:
        account = s.store.list_accounts()[0]
        now = s.clock()
        old, recent = (
            {"uuid": new_id(), "timestamp": format_ns(now - age * day), "action": "reveal"} for age in (100, 10)
        )
        s.writer.write(account.id, Feature.ITEMUSAGES, [old, recent])

    def served(base: str) -> list[str]:
        body = {"limit": 100, "start_time": format_ns(now - 110 * day), "end_time": format_ns(now - day)}
        with httpx.Client(base_url=base, timeout=30) as http:
            page = http.post("/api/v2/itemusages", json=body, headers=bearer(token))
        assert page.status_code == 200, page.text
        return [item["uuid"] for item in page.json()["items"]]

    assert [served(base) for base in cluster.servers] == [[old["uuid"], recent["uuid"]]] * 3
    run_cli(cluster.env, "retention", "set", "90", "--features", "itemusages", "--archive", "none")
    try:
        assert [served(base) for base in cluster.servers] == [[recent["uuid"]]] * 3
    finally:
        run_cli(cluster.env, "retention", "set", "365", "--features", "itemusages")
    assert [served(base) for base in cluster.servers] == [[old["uuid"], recent["uuid"]]] * 3


def test_a_revocation_through_one_process_refuses_the_next_page_on_the_others(cluster: Cluster) -> None:
    """A SIEM following its cursor through each process; the token revoked through another's admin
    API: the chain's very next page is refused on every process, though each has already checked
    (and prepared the statements of) that token and that page."""
    token, token_id = cluster.token()
    with cluster.services() as s:
        account = s.store.list_accounts()[0]
        now = s.clock()
        s.writer.write(account.id, Feature.SIGNINATTEMPTS, [signin(now - i * 1_000_000_000) for i in range(40)])
        owner = s.people.add_member(CLI, account, f"owner-{new_id()[:8].lower()}@example.com", "Owner", "owner")
        admin_key, _ = s.api_keys.create(owner.user, "tests")
    revoker, readers = cluster.servers[0], cluster.servers[1:]
    cursors = {}
    for base in readers:
        body: dict[str, object] = {"limit": 5, "start_time": format_ns(now - 3600 * 1_000_000_000)}
        for _ in range(6):  # enough pages for the statements to be prepared on that process
            with httpx.Client(base_url=base, timeout=30) as http:
                page = http.post("/api/v2/signinattempts", json=body, headers=bearer(token))
            assert page.status_code == 200, page.text
            assert len(page.json()["items"]) == 5 and page.json()["has_more"]
            body = {"cursor": page.json()["cursor"]}
        cursors[base] = body
    with httpx.Client(base_url=revoker, timeout=30) as http:
        revoked = http.post(
            f"/api/admin/v1/accounts/{account.uuid}/tokens/{token_id}/revoke", headers=bearer(admin_key)
        )
    assert revoked.status_code == 200, revoked.text
    for base in readers:
        with httpx.Client(base_url=base, timeout=30) as http:
            refused = http.post("/api/v2/signinattempts", json=cursors[base], headers=bearer(token))
        assert refused.status_code == 401, (base, refused.text)
        assert "revoked" in refused.json()["Error"]["Message"]
