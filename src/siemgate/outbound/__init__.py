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

The HTTP clients that connect so are in `siemgate.outbound.http` (httpx loads with them only).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from siemgate.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOW_SETTING = "SIEMGATE_OUTBOUND_ALLOW"
MAX_REDIRECTS = 5


def host_name(host: str) -> str:
    """A host a connection can be made to: an IP literal, or a name of at most 253 characters in
    labels of 1 to 63 (what DNS carries: a longer one fails at every connection). Raises ValueError."""
    name = host.strip("[]").rstrip(".")
    if ":" in name or name.replace(".", "").isdigit():
        return host
    if not name or len(name) > 253 or any(not 0 < len(label) <= 63 for label in name.split(".")):
        raise ValueError(f"{host[:80]!r} is not a host name (labels of 1 to 63 characters, 253 in all)")
    return host


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

    def resolve(
        self, host: str, port: int, deadline: float | None, kind: int = socket.SOCK_STREAM
    ) -> list[tuple[Any, ...]]:
        """getaddrinfo entries (family, type, proto, canonname, sockaddr) of `host` that the policy
        allows, in resolver order, looked up by `deadline` (see `lookup`); raises OutboundRefused
        when none is, OSError when it does not resolve (TimeoutError: not by the deadline). Connect
        to these sockaddrs, not to the name, so the checked address is the one used."""
        bare = host.strip("[]")
        try:
            infos = lookup(bare, port, deadline, kind)
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
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name)
    if not name or not all(c in "0123456789abcdefx." for c in name):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


MAX_LOOKUPS = 64  # resolver calls in flight at once (each in a thread); past it a lookup waits
_lookups = threading.BoundedSemaphore(MAX_LOOKUPS)


def lookup(host: str, port: int, deadline: float | None, kind: int = socket.SOCK_STREAM) -> list[tuple[Any, ...]]:
    """socket.getaddrinfo(host, port, type=kind), given up at `deadline` (time.monotonic(); None:
    none): a resolver call cannot be interrupted, so it runs in a daemon thread of its own, which a
    hung resolver keeps until it answers, and the caller waits only until the deadline
    (TimeoutError). At most MAX_LOOKUPS run at once: past that a lookup waits for a slot, within its
    deadline. Raises what getaddrinfo raises (OSError, UnicodeError)."""
    late = TimeoutError(f"timed out: {host[:80]} did not resolve within the time allowed")
    if not _lookups.acquire(timeout=-1 if deadline is None else time_left(deadline)):
        raise late
    answer: list[Any] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=kind))
        except Exception as exc:
            answer.append(exc)
        finally:
            _lookups.release()
            done.set()

    threading.Thread(target=resolve, name="siemgate-resolve", daemon=True).start()
    if not done.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
        raise late
    if isinstance(answer[0], Exception):
        raise answer[0]
    infos: list[tuple[Any, ...]] = answer[0]
    return infos


def connect_tcp(policy: OutboundPolicy | None, host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first address of `host` that `policy` allows (None: any, for the
    operator's own servers) and that answers, the lookup and every attempt ending by `deadline`
    (time.monotonic()); the socket's timeout is then what is left. Raises OutboundRefused, or
    OSError (TimeoutError once the deadline has passed)."""
    last: OSError | None = None
    infos = lookup(host.strip("[]"), port, deadline) if policy is None else policy.resolve(host, port, deadline)
    for family, kind, proto, _, sockaddr in infos:
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
