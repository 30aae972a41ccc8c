"""Limits on failed sign-ins, shared by every server process through Redis when `redis_url` is set
(in memory, per process, otherwise), with the `limits` library like the Events API's rate limits.

Failures are counted per (address, client IP) pair and per client IP, never per address alone:
failures from one IP slow down that IP only, so they can never refuse a correct password sent
from another (no lock-out of the owner by strangers). The pair's windows make the delay grow with
the failures (docs/security.md, "Sign-in"):

    5 failures a minute, 10 in 15 minutes, 20 an hour, 50 a day for one address from one IP;
    100 in 15 minutes and 1000 a day from one IP, whatever the addresses;
    10 authenticator (TOTP) codes in 15 minutes and 30 a day per person, right or wrong;
    10 recovery codes in 15 minutes and 30 a day per person and IP, and 100 in 15 minutes and
    1000 a day per IP, right or wrong.

An IPv6 client counts as its /64: one host or site is given a /64 (2^64 addresses), so counting per
address let one attacker make every attempt from a new one, past every per-IP window.

Six-digit codes are limited per person, from anywhere: their 10^6 space is guessable from many
IPs. Recovery codes (50 bits) are not, so they are never limited per person alone: whoever holds
the password but not the phone can use up the person's TOTP windows, and the person still signs
in with a recovery code from their own IP. A correct password clears the pair's count, a right
code at sign-in its own count (the person's for TOTP, the person and IP's for a recovery code,
never the other kind's, so a password holder gains no guesses from the person's sign-ins). A refusal is
a RateLimited (429) with Retry-After. A password (at sign-in, or confirming a change) is counted
in its pair's windows before it is checked, in one atomic step per window (`limits`' hit), and in
its IP's once found wrong; a second-factor code is counted before it is checked in every window
it counts in. So attempts sent at once, to one process or several, cannot all pass a check made
before any of them counted: 200 wrong passwords for one address sent at once were checked 42
times, not 5 (tests/security/test_identity_signin.py). A right password clears its pair, its own
attempt included. The IP's windows count failures only (a right password there would hold an
office behind one address), so passwords checked at once from one IP may pass them by as many as
are checked at once (at most one per thread of each process).

Counters are named by an HMAC (SHA-256, under the store's secret `signin-limit-key`, the same for
every process of a store) of the address, IP or person they count, never by the address or IP
itself: whoever reads the shared Redis learns neither who tried to sign in nor from where, and
cannot check a guessed address against it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import limits
from limits import strategies

from siemgate.auth.ratelimit import SharedLimits, limit_storage
from siemgate.errors import RateLimited

PAIR_WINDOWS = ((5, 60), (10, 15 * 60), (20, 3600), (50, 86400))
IP_WINDOWS = ((100, 15 * 60), (1000, 86400))
SECOND_FACTOR_WINDOWS = ((10, 15 * 60), (30, 86400))
SIGNIN_LIMIT_KEY = "signin-limit-key"  # the store secret that names the counters
T = TypeVar("T")


def _items(windows: Sequence[tuple[int, int]]) -> list[limits.RateLimitItem]:
    return [limits.RateLimitItemPerSecond(amount, seconds) for amount, seconds in windows]


# IPv4 clients translated to IPv6 (RFC 6052's well-known prefix, as SIIT and NAT64 gateways in front
# of an IPv6-only server use it) carry their IPv4 address in the last 32 bits: all of them are in one /64.
_TRANSLATED = ipaddress.IPv6Network("64:ff9b::/96")


def client_network(ip: str) -> str:
    """What failures from `ip` are counted under: an IPv4 address as it is; an IPv6 address as its
    /64 network (an IPv4-mapped or translated one, 64:ff9b::/96, as its IPv4 address); anything
    else (no address) as given."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address in _TRANSLATED:
            return str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class SignInLimiter:
    """Counts failures and refuses further attempts while a window is full."""

    def __init__(self, key: bytes, redis_url: str | None = None, *, namespace: str = "siemgate-signin") -> None:
        """`key`: the secret that names the counters (`name`); every process sharing `redis_url`
        must be given the same one (the store's `signin-limit-key`), or each counts apart."""
        self._key = key
        self._shared = SharedLimits(redis_url, "sign-in limits")
        self._limiter = strategies.MovingWindowRateLimiter(limit_storage(redis_url))
        self._namespace = namespace
        self._pair, self._ip, self._second = _items(PAIR_WINDOWS), _items(IP_WINDOWS), _items(SECOND_FACTOR_WINDOWS)

    def name(self, kind: str, *parts: str) -> str:
        """The counter of `kind` for `parts` (an address, an IP, a person's uuid): `kind:` and the
        HMAC of the parts, so that no address or IP is kept in clear in Redis."""
        digest = hmac.new(self._key, "\n".join((kind, *parts)).encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest}"

    def _keys(self, address: str, ip: str) -> list[tuple[list[limits.RateLimitItem], str]]:
        return [(self._pair, self._pair_name(address, ip)), (self._ip, self.name("ip", client_network(ip)))]

    def _pair_name(self, address: str, ip: str) -> str:
        """The counter of one address (any case, outer spaces ignored) from one client network."""
        return self.name("pair", address.strip().lower(), client_network(ip))

    def check(self, address: str, ip: str) -> None:
        """Raise RateLimited while this address and IP, or this IP, has failed too often."""
        self._refuse_if_full(self._keys(address, ip), "too many failed sign-ins from your address")

    def failed(self, address: str, ip: str) -> None:
        self._hit(self._keys(address, ip))

    def password_attempt(self, address: str, ip: str) -> None:
        """Count a password for this address and IP before it is checked: RateLimited, counting
        nothing, while the IP has failed too often; else counted in the pair's windows at once
        (RateLimited when one is full), so passwords sent at once cannot all pass. Then
        `password_failed` when it is wrong, `succeeded` when it is right."""
        [pair, by_ip] = self._keys(address, ip)
        self._refuse_if_full([by_ip], "too many failed sign-ins from your address")
        self._take([pair], "too many failed sign-ins from your address")

    def password_failed(self, address: str, ip: str) -> None:
        """A password counted by `password_attempt` was wrong: the IP counts the failure too."""
        [_, by_ip] = self._keys(address, ip)
        self._hit([by_ip])

    def succeeded(self, address: str, ip: str) -> None:
        """A correct password: the pair starts afresh (the IP's count stays)."""
        key = self._pair_name(address, ip)

        def clear() -> None:
            for item in self._pair:
                self._limiter.clear(item, self._namespace, key)

        self._call(clear)

    def _second_factor_keys(
        self, user_uuid: str, ip: str, recovery_code: bool
    ) -> list[tuple[list[limits.RateLimitItem], str]]:
        """The windows a code counts in, the one a right code clears first."""
        if recovery_code:
            network = client_network(ip)
            return [
                (self._second, self.name("recovery", user_uuid, network)),
                (self._ip, self.name("recovery-ip", network)),
            ]
        return [(self._second, self.name("2fa", user_uuid))]

    def second_factor_attempt(self, user_uuid: str, ip: str, *, recovery_code: bool) -> None:
        """Count an attempt at one of the person's second factors, before its code is checked;
        RateLimited when a window it counts in is full: the person's for an authenticator code
        (whatever the session or IP), the person and IP's or the IP's for a recovery code."""
        keys = self._second_factor_keys(user_uuid, ip, recovery_code)
        self._take(keys, "too many recovery codes from your address" if recovery_code else "too many two-factor codes")

    def second_factor_succeeded(self, user_uuid: str, ip: str, *, recovery_code: bool) -> None:
        """A right code at sign-in: the count of its kind for the person (and IP, for a recovery
        code) starts afresh, as a right password clears its pair's, so people are never held by
        their own sign-ins. The IP's count of recovery codes stays."""
        [(items, key), *_] = self._second_factor_keys(user_uuid, ip, recovery_code)

        def clear() -> None:
            for item in items:
                self._limiter.clear(item, self._namespace, key)

        self._call(clear)

    # ---------------------------------------------------------------------------------------------
    def _refuse_if_full(self, keys: list[tuple[list[limits.RateLimitItem], str]], what: str) -> None:
        def wait() -> int | None:
            longest = None
            for items, key in keys:
                for item in items:
                    if not self._limiter.test(item, self._namespace, key):
                        reset = self._limiter.get_window_stats(item, self._namespace, key).reset_time
                        seconds = max(1, math.ceil(reset - time.time()))
                        longest = seconds if longest is None else max(longest, seconds)
            return longest

        seconds = self._call(wait)
        if seconds is not None:
            raise RateLimited(f"Too Many Requests: {what}; try again in {seconds} seconds", seconds)

    def _take(self, keys: list[tuple[list[limits.RateLimitItem], str]], what: str) -> None:
        """Count one attempt in every window of `keys`, each in one atomic step, before the attempt
        is checked; RateLimited naming `what` when a window is full (the windows before it in
        `keys` have counted it)."""

        def take() -> bool:
            return all(self._limiter.hit(item, self._namespace, key) for items, key in keys for item in items)

        if not self._call(take):
            self._refuse_if_full(keys, what)
            raise RateLimited(f"Too Many Requests: {what}; try again in 1 seconds", 1)  # a window just moved on

    def _hit(self, keys: list[tuple[list[limits.RateLimitItem], str]]) -> None:
        self._call(lambda: [self._limiter.hit(item, self._namespace, key) for items, key in keys for item in items])

    def _call(self, job: Callable[[], T]) -> T:
        """`job` on the counters; Unavailable (503) when Redis does not answer (SharedLimits)."""
        return self._shared.call(job)
