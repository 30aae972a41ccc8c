"""The outbound-address policy: where destinations that tenants set (alert webhooks, Slack hooks,
syslog receivers) may point.

By default only global unicast addresses are allowed: loopback, link-local (169.254.169.254, the
cloud metadata service), private, shared (100.64.0.0/10), multicast, unspecified and reserved
addresses are refused. The operator's allow-list (`SIEMGATE_OUTBOUND_ALLOW`: networks such as
`10.20.0.0/16` or host names such as `hooks.internal`) lets chosen local receivers through.

Names are checked after DNS resolution, and the connection goes to the address that was checked
(`resolve` returns it; `guarded_http_client` connects through it), so a DNS answer that changes
between the check and the connection (rebinding) cannot move it. An HTTP redirect opens a new
connection, which is checked the same way. Errors say which address was refused and why, never
anything the destination replied. Operator-configured destinations (forwarder sinks, the SMTP
server) do not go through this policy.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from siemgate.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOW_SETTING = "SIEMGATE_OUTBOUND_ALLOW"
MAX_REDIRECTS = 5


class OutboundRefused(BadRequest):
    """A destination that the outbound policy does not allow; the message says why and how to allow it."""


def _kind(ip: IPAddress) -> str | None:
    """Why `ip` is refused by default (None: a global unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address carried in IPv6 (mapped, 6to4, Teredo's server and client) is judged as
        # itself: a 6to4 or Teredo relay would deliver to it.
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        for inner in (v4 for v4 in embedded if v4 is not None):
            kind = _kind(inner)
            if kind is not None:
                return kind
        if ip.ipv4_mapped is not None:
            return None
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None if ip.is_global else "non-global"


@dataclass(frozen=True)
class OutboundPolicy:
    """Allowed: global unicast addresses, plus the operator's `networks` and host `names`."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def from_allow_list(cls, entries: Iterable[str]) -> OutboundPolicy:
        """Entries are networks (`10.0.0.0/8`, `127.0.0.1`, `::1`) or host names; raises ValueError."""
        networks: list[IPNetwork] = []
        names: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not all(part.isalnum() or "-" in part for part in entry.split(".")):
                    raise ValueError(f"{entry!r} is neither a network (10.0.0.0/8) nor a host name") from None
                names.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(names))

    def refusal(self, ip: IPAddress, host: str | None = None) -> str | None:
        """Why connecting to `ip` (reached as `host`) is refused, or None when it is allowed."""
        if host is not None and host.lower().rstrip(".") in self.names:
            return None
        if any(ip in network for network in self.networks):
            return None
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in network for network in self.networks):
            return None
        kind = _kind(ip)
        if kind is None:
            return None
        shown = f"{host} ({ip})" if host and host != str(ip) else str(ip)
        return (
            f"the destination {shown} is a {kind} address, which alert actions may not reach;"
            f" the operator can allow it with {ALLOW_SETTING}"
        )

    def check_host(self, host: str) -> None:
        """Refuse, without resolving, a host that is an IP literal or `localhost` the policy does
        not allow (the early check when a destination is saved); raises OutboundRefused."""
        name = host.strip("[]").lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            problem = self.refusal(ipaddress.ip_address("127.0.0.1"), name)
        else:
            ip = _ip_literal(name)
            if ip is None:
                return
            problem = self.refusal(ip, name)
        if problem is not None:
            raise OutboundRefused(problem)

    def resolve(self, host: str, port: int, kind: int = socket.SOCK_STREAM) -> list[tuple[Any, ...]]:
        """getaddrinfo entries (family, type, proto, canonname, sockaddr) of `host` that the policy
        allows, in resolver order; raises OutboundRefused when none is, OSError when it does not
        resolve. Connect to these sockaddrs, not to the name, so the checked address is the one used."""
        bare = host.strip("[]")
        try:
            infos = socket.getaddrinfo(bare, port, type=kind)
        except UnicodeError:  # a label over 63 characters, or one IDNA cannot encode
            raise OutboundRefused(f"{bare[:80]!r} is not a valid host name") from None
        allowed, problems = [], []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            problem = self.refusal(ip, bare)
            if problem is None:
                allowed.append(info)
            else:
                problems.append(problem)
        if not allowed:
            raise OutboundRefused(problems[0] if problems else f"{host} has no address")
        return allowed


def _ip_literal(name: str) -> IPAddress | None:
    """The address `name` is, read as the resolver reads it (inet_aton's forms too: 2130706433,
    0x7f.1, 127.1 and 017700000001 are 127.0.0.1), or None for a host name."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if not name or not all(c in "0123456789abcdefx." for c in name):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


def connect_tcp(policy: OutboundPolicy, host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first allowed address of `host` that answers, every attempt ending
    by `deadline` (time.monotonic()); the socket's timeout is then what is left. Raises
    OutboundRefused, or OSError (TimeoutError once the deadline has passed)."""
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in policy.resolve(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(time_left(deadline))
            sock.connect(sockaddr)
            sock.settimeout(time_left(deadline))
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"cannot connect to {host}:{port}")


def time_left(deadline: float) -> float:
    """Seconds left before `deadline` (time.monotonic()); TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out: the destination did not answer within the time allowed")
    return left


def _time_left(deadline: float | None, timeout: float | None) -> float | None:
    """`timeout` cut to what is left before `deadline` (time.monotonic()); httpcore's ReadTimeout
    once it has passed."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("timed out: the destination did not finish within the time allowed")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline (httpx's timeouts bound each
    operation, so a destination that sends a byte now and then would otherwise hold a request for
    ever) and that reads at most `max_read` bytes (httpx reads a redirect's body in full)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float | None, max_read: int | None) -> None:
        self._inner, self._deadline, self._left = inner, deadline, max_read

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, _time_left(self._deadline, timeout))
        if self._left is not None:
            self._left -= len(data)
            if self._left < 0:
                raise httpcore.ReadError("the destination sent more than its reply may hold")
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(self._deadline, timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _time_left(self._deadline, timeout))
        return _BoundedStream(tls, self._deadline, self._left)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend with every TCP connection checked (and pinned) by the policy,
    and bounded by the deadline and the bytes it may read when they are given."""

    def __init__(self, policy: OutboundPolicy, deadline: float | None, max_read: int | None) -> None:
        self.policy = policy
        self.deadline = deadline
        self.max_read = max_read

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for _, _, _, _, sockaddr in self.policy.resolve(host, port):
            try:
                left = _time_left(self.deadline, timeout)
                stream = super().connect_tcp(str(sockaddr[0]), port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
                continue
            if self.deadline is None and self.max_read is None:
                return stream
            return _BoundedStream(stream, self.deadline, self.max_read)
        raise last or httpcore.ConnectError(f"cannot connect to {host}:{port}")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: OutboundPolicy, ssl_context: ssl.SSLContext, backend: _GuardedBackend) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend)


def guarded_http_client(
    policy: OutboundPolicy, timeout: float, *, deadline: float | None = None, max_read: int | None = None
) -> httpx.Client:
    """An httpx client whose every connection (redirects included, at most MAX_REDIRECTS) goes
    only where the policy allows; environment proxies are ignored (they would hide the
    destination). A refused destination raises OutboundRefused from the request. With `deadline`
    (a time.monotonic() value) nothing on its connections goes on past it (httpx.ReadTimeout):
    `timeout` alone bounds each read and write, not a request. With `max_read`, a connection that
    receives more bytes than that fails (httpx.ReadError)."""
    backend = _GuardedBackend(policy, deadline, max_read)
    transport = _GuardedTransport(policy, httpx.create_ssl_context(), backend)
    return httpx.Client(
        transport=transport, timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS, trust_env=False
    )


def allow_list(value: str | Sequence[str] | None) -> list[str]:
    """The allow-list setting as entries: a list, or one string separated by commas or spaces."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return list(value)
