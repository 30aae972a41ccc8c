"""Sign-in resists enumeration and lock-out (finding 3 of the identity review): an unknown address
costs exactly one password-hash verification, like a known one; failures are limited per address
and IP (never per address alone), with a growing delay, and the limit is shared by every server
process through Redis."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from argon2 import PasswordHasher

from siemgate.accounts.actor import CLI
from siemgate.auth.signin_limits import client_network
from siemgate.errors import RateLimited
from siemgate.model.features import Feature
from support.ports import free_port
from support.procs import Proc, cli_env, healthy, running, services_at
from support.servers import LiveServer
from support.waiting import wait_for

from .identity_support import ADMIN, PASSWORD, Tenants, client, error, ok, password_hash, source_ip


@pytest.fixture
def tenants(server: Any) -> Tenants:
    return Tenants(server)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification made in this process (the test server runs in a thread here)."""
    calls: list[str] = []
    original = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.append(str(hash)[:20])
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return calls


def test_an_unknown_address_costs_exactly_one_verification(tenants: Tenants, verifications: list[str]) -> None:
    """Unknown addresses answered in about 1 ms and known ones in 100-390 ms: the count of argon2
    verifications is what made the difference (none for an unknown address)."""
    nobody_has_a_password = tenants.services.people.add_member(
        CLI, tenants.a, f"nopass-{tenants.tag}@acme.example", None, "member"
    )
    cases = {
        "unknown address": f"nobody-{tenants.tag}@nowhere.example",
        "known, wrong password": tenants.alice.email,
        "known, no password": nobody_has_a_password.user.email,
    }
    for case, email in cases.items():
        verifications.clear()
        with client(tenants.server.base_url, source_ip()) as http:
            message = error(
                http.post("/api/admin/v1/session", json={"email": email, "password": "wrong-password"}), 401
            )
        assert message == "Unauthorized: the email or password is not right", case
        assert len(verifications) == 1, f"{case}: {len(verifications)} verifications"
    verifications.clear()
    with client(tenants.server.base_url, source_ip()) as http:
        ok(http.post("/api/admin/v1/session", json={"email": tenants.alice.email, "password": PASSWORD}))
    assert len(verifications) == 1


def test_failures_from_one_ip_never_refuse_a_correct_password_from_another(tenants: Tenants) -> None:
    """5 wrong attempts by anyone locked the owner out for 15 minutes."""
    attacker, owner = source_ip(), source_ip()
    with client(tenants.server.base_url, attacker) as http:
        statuses = [
            http.post(
                "/api/admin/v1/session", json={"email": tenants.alice.email, "password": f"guess {n}"}
            ).status_code
            for n in range(12)
        ]
        assert statuses == [401] * 5 + [429] * 7
        refused = http.post("/api/admin/v1/session", json={"email": tenants.alice.email, "password": PASSWORD})
        assert "try again in" in error(refused, 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    with client(tenants.server.base_url, owner) as http:
        ok(http.post("/api/admin/v1/session", json={"email": tenants.alice.email, "password": PASSWORD}))


def test_a_person_has_one_count_of_failures_whatever_they_are_called(tenants: Tenants) -> None:
    """The password step also took the person's uuid for their email, and the limiter counted the
    two apart: 5 guesses a minute became 10. People sign in with their email only; a uuid is an
    address no one has, limited under itself like any other."""
    alice = tenants.alice
    with client(tenants.server.base_url, source_ip()) as http:

        def sign_in(login: str, password: str) -> int:
            return http.post("/api/admin/v1/session", json={"email": login, "password": password}).status_code

        assert sign_in(alice.user.uuid, PASSWORD) == 401
        assert [sign_in(alice.email.upper(), f"guess {n}") for n in range(5)] == [401] * 5
        assert [sign_in(login, PASSWORD) for login in (alice.email, f" {alice.email.title()} ")] == [429, 429]
        assert sign_in(alice.user.uuid, PASSWORD) == 401  # no way in, nor a second count
        assert [sign_in(alice.user.uuid, f"guess {n}") for n in range(4)] == [401] * 3 + [429]
    failures = [e for e in tenants.events(tenants.a, Feature.SIGNINATTEMPTS) if e["category"] != "success"]
    assert len(failures) == 5  # the guesses under her email; the uuid is no one's


def test_the_delay_grows_with_the_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per address and IP: 5 a minute, 10 in 15 minutes, 20 an hour, 50 a day; a correct password
    starts the pair afresh. The clock is moved by hand (limits reads time.time())."""
    from siemgate.auth.signin_limits import SignInLimiter  # here: the HTTP tests also run on older code

    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    limiter = SignInLimiter(b"test key")
    address, ip = "ada@example.com", "192.0.2.7"
    waits = []
    for _ in range(4):
        for _ in range(5):
            limiter.check(address, ip)
            limiter.failed(address, ip)
        with pytest.raises(RateLimited) as refused:
            limiter.check(address, ip)
        waits.append(refused.value.retry_after)
        now[0] += refused.value.retry_after
    # 5 failures: a minute at most; 10: until the 15-minute window frees; 20: until the hour's does
    assert waits[0] <= 60 < waits[1] <= 15 * 60 < waits[3] <= 3600, waits
    limiter.check("ada@example.com", "192.0.2.8")  # another IP is not slowed
    limiter.succeeded(address, ip)
    limiter.check(address, ip)


def test_one_ip_is_limited_across_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    from siemgate.auth.signin_limits import SignInLimiter

    now = [2_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    limiter = SignInLimiter(b"test key")
    for n in range(100):
        limiter.check(f"person{n}@example.com", "198.51.100.1")
        limiter.failed(f"person{n}@example.com", "198.51.100.1")
    with pytest.raises(RateLimited):
        limiter.check("someone-else@example.com", "198.51.100.1")
    limiter.check("someone-else@example.com", "198.51.100.2")


@contextlib.contextmanager
def owner_behind_workers(tmp_path: Path, redis_url: str, workers: int) -> Iterator[tuple[Proc, str]]:
    """`serve --workers N` sharing Redis, serving a store whose account's owner is
    owner@acme.example with PASSWORD: (the process, its base URL), killed on exit."""
    data_dir = tmp_path / "data"
    with services_at(data_dir) as services:
        _, owner = services.people.create_account(CLI, "Acme", "owner@acme.example", "Owner", None)
        assert owner is not None
        services.store.set_password(owner.id, password_hash())
    port = free_port()
    env = cli_env(data_dir, SIEMGATE_REDIS_URL=redis_url, SIEMGATE_ALERTS_ENABLED="false")
    base_url = f"http://127.0.0.1:{port}"
    with running(
        Proc("workers", ["serve", "--port", str(port), "--workers", str(workers)], env, tmp_path / "logs")
    ) as proc:
        wait_for("the workers to serve", lambda: healthy(base_url), 60)
        yield proc, base_url


def test_the_limit_is_shared_by_every_worker_through_redis(tmp_path: Path, redis_url: str) -> None:
    """With `serve --workers 3` and Redis, 15 of 30 wrong passwords were checked: each process kept
    its own count. Now exactly 5 are, whichever worker answers."""
    with owner_behind_workers(tmp_path, redis_url, 3) as (proc, base_url):
        assert len(proc.children()) >= 3, proc.children()
        ip = source_ip()
        statuses = []
        for n in range(30):
            with client(base_url, ip) as http:  # a new connection each time: any worker may take it
                body = {"email": "owner@acme.example", "password": f"guess {n}"}
                statuses.append(http.post("/api/admin/v1/session", json=body).status_code)
        assert statuses.count(401) == 5 and statuses.count(429) == 25, statuses
        with client(base_url, source_ip()) as http:
            ok(http.post("/api/admin/v1/session", json={"email": "owner@acme.example", "password": PASSWORD}))
        proc.stop()


def test_wrong_passwords_sent_at_once_to_several_workers_cannot_pass_the_limit(tmp_path: Path, redis_url: str) -> None:
    """A password was checked against the limit, then counted once found wrong: 200 wrong
    passwords for one address from one IP, sent at once to `serve --workers 2` sharing Redis, were
    checked 42 (one worker) and 44 times (two), not 5: every attempt arriving while the first ones
    were being hashed passed the check. Each is now counted in the pair's windows before its
    password is checked, in one atomic step, whichever worker takes it."""
    with owner_behind_workers(tmp_path, redis_url, 2) as (proc, base_url):
        ip = source_ip()

        def attempt(n: int) -> int:
            with client(base_url, ip) as http:  # a connection each: both workers take some
                body = {"email": "owner@acme.example", "password": f"guess {n}"}
                return http.post("/api/admin/v1/session", json=body).status_code

        with ThreadPoolExecutor(100) as pool:
            statuses = list(pool.map(attempt, range(100)))
        assert (statuses.count(401), statuses.count(429)) == (5, 95), statuses
        proc.stop()


def test_a_session_holder_guessing_the_password_at_once_is_held_to_the_limit(make_server: Any, redis_url: str) -> None:
    """Changes confirmed with the password (a personal API key, a new password) counted a wrong one
    after checking it, like sign-in: a thief with a copied session cookie sending 100 guesses at
    once (one server, Redis) had 16 of them checked, not 5. A right password still
    clears the count, so people confirming their changes are never held by them."""
    tenants = Tenants(make_server(redis_url=redis_url))
    ip = source_ip()
    with client(tenants.server.base_url, ip) as thief:
        signed_in = ok(thief.post(f"{ADMIN}/session", json={"email": tenants.adam.email, "password": PASSWORD}))
        thief.headers["X-CSRF-Token"] = signed_in["csrf_token"]
        for n in range(7):  # right passwords: more than the pair's 5 a minute, all taken
            ok(thief.post(f"{ADMIN}/me/api-keys", json={"name": f"key {n}", "password": PASSWORD}), 201)

        def guess(n: int) -> int:
            return thief.post(f"{ADMIN}/me/api-keys", json={"name": "backdoor", "password": f"guess {n}"}).status_code

        with ThreadPoolExecutor(100) as pool:
            statuses = list(pool.map(guess, range(100)))
    assert (statuses.count(403), statuses.count(429)) == (5, 95), statuses


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    """Uvicorn believed X-Forwarded-For from loopback, undocumented: any local client could pick
    the IP that the audit trail records and the limits count. Now only `trusted_proxies` are."""
    data_dir = tmp_path / "data"
    with services_at(data_dir) as services:
        account, owner = services.people.create_account(CLI, "Acme", "owner@acme.example", "Owner", None)
        assert owner is not None
        services.store.set_password(owner.id, password_hash())
    for trusted, expected in (
        ("[]", "127.0.0.1"),
        ('["127.0.0.1"]', "203.0.113.9"),
        ("10.0.0.0/8, 127.0.0.1", "203.0.113.9"),
    ):
        port = free_port()
        env = cli_env(data_dir, SIEMGATE_TRUSTED_PROXIES=trusted, SIEMGATE_ALERTS_ENABLED="false")
        base_url = f"http://127.0.0.1:{port}"
        with running(Proc("serve", ["serve", "--port", str(port)], env, tmp_path / "logs")) as proc:
            wait_for("the server", functools.partial(healthy, base_url), 60)
            with httpx.Client(base_url=base_url, timeout=30) as http:
                body = {"email": "owner@acme.example", "password": PASSWORD}
                ok(http.post("/api/admin/v1/session", json=body, headers={"X-Forwarded-For": "203.0.113.9"}))
            proc.stop()
        with services_at(data_dir) as services:
            batches = services.store.iter_events(account.id, Feature.SIGNINATTEMPTS, 0, 2**62)
            ips = [orjson.loads(row[3])["client"]["ip_address"] for batch in batches for row in batch]
        assert ips[-1] == expected, ips


@pytest.mark.parametrize(
    ("ip", "counted_as"),
    [
        ("2001:db8:5:6:1::2", "2001:db8:5:6::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("64:ff9b::198.51.100.7", "198.51.100.7"),  # an IPv4 client through a SIIT/NAT64 gateway
        ("64:ff9b::198.51.100.8", "198.51.100.8"),  # ... and its neighbour: another client
        ("64:ff9b:0:0:1::1", "64:ff9b::/64"),  # outside the /96: an IPv6 network like any other
        ("198.51.100.7", "198.51.100.7"),
    ],
)
def test_each_client_is_counted_under_its_own_network(ip: str, counted_as: str) -> None:
    """IPv4 clients translated to IPv6 by a gateway in front of an IPv6-only server (RFC 6052's
    64:ff9b::/96) all fell in one /64: every such client shared one per-IP window, so a stranger's
    guesses held up everyone's sign-ins. Each counts as its IPv4 address."""
    assert client_network(ip) == counted_as


def test_an_ipv6_client_is_limited_as_its_64_network(make_server: Any) -> None:
    """Failures were counted per address, so anyone given an IPv6 /64 (every VPS, many homes: 2^64
    addresses) made each guess from a new one and passed every per-IP window: unlimited guesses
    at one person's password, and argon2 work the whole server pays for. Now a /64 counts as one
    client; another /64 is another client. Remote clients reach the server through a trusted proxy."""
    server: LiveServer = make_server(trusted_proxies=["127.0.0.1"])
    tenants = Tenants(server)

    def sign_in(ip: str, password: str) -> int:
        body = {"email": tenants.bob.email, "password": password}
        return server.http.post("/api/admin/v1/session", json=body, headers={"X-Forwarded-For": ip}).status_code

    attempts = [sign_in(f"2001:db8:5:6:{n:x}::{n + 1:x}", f"guess {n}") for n in range(6)]
    assert attempts == [401] * 5 + [429]
    assert sign_in("2001:db8:5:6:ffff::1", PASSWORD) == 429  # the right password too, from that /64
    assert sign_in("2001:db8:5:7::1", PASSWORD) == 200  # the neighbouring /64: someone else
