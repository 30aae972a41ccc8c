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

Requests bounded as a whole: httpx's timeouts bound each connect, read and write, not a request,
so a peer that sends a byte now and then (a tarpit, a half-dead proxy) would hold a request for
ever, and a reply is read whole into memory, however large. A `BoundedStream` ends every
operation of its connection by the deadline of its `Bounds` and fails once more bytes were read
than they allow. The policy's clients bound each connection so (`deadline`, `max_read`); the
forwarder's `BoundedClient` (long-lived, pooled, no policy) bounds each request it sends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpcore
import httpx

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


class Limits(Protocol):
    def time_left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """`timeout` cut to what is left before the deadline; raises `error` once it has passed."""

    def take(self, count: int) -> None:
        """Count `count` bytes read; raises httpcore.ReadError past the budget."""


class Bounds:
    """A deadline (a time.monotonic() value; None: none) and the bytes that may still be read
    (None: any number)."""

    def __init__(self, deadline: float | None = None, max_read: int | None = None) -> None:
        self.deadline, self.max_read, self.left = deadline, max_read, max_read

    def time_left(self, timeout: float | None, error: type[Exception]) -> float | None:
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error("timed out: the request did not finish within the time allowed")
        return left if timeout is None else min(timeout, left)

    def take(self, count: int) -> None:
        if self.left is not None:
            self.left -= count
            if self.left < 0:
                raise httpcore.ReadError(
                    f"the peer sent more than its reply may hold (larger than {self.max_read} bytes)"
                )


class RequestBounds(threading.local):
    """The bounds of the request the current thread is sending: `total` seconds from `begin()` and
    `max_read` bytes (a pooled connection serves the request of whichever thread holds it)."""

    def __init__(self, total: float, max_read: int) -> None:
        self.total, self.max_read = total, max_read
        self.current = Bounds()

    def begin(self) -> None:
        self.current = Bounds(time.monotonic() + self.total, self.max_read)

    def time_left(self, timeout: float | None, error: type[Exception]) -> float | None:
        return self.current.time_left(timeout, error)

    def take(self, count: int) -> None:
        self.current.take(count)


class BoundedStream(httpcore.NetworkStream):
    """A connection whose reads, writes and TLS handshake end by the deadline of `limits`, and
    whose reads count against its byte budget."""

    def __init__(self, inner: httpcore.NetworkStream, limits: Limits) -> None:
        self._inner, self._limits = inner, limits

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, self._limits.time_left(timeout, httpcore.ReadTimeout))
        self._limits.take(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._limits.time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = self._limits.time_left(timeout, httpcore.ConnectTimeout)
        return BoundedStream(self._inner.start_tls(ssl_context, server_hostname, left), self._limits)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@contextlib.contextmanager
def _lookup_errors(host: str) -> Iterator[None]:
    """A failed lookup of `host` as httpcore's errors: ConnectTimeout past its deadline,
    ConnectError when the name does not resolve."""
    try:
        yield
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(str(exc)) from None
    except (OSError, UnicodeError) as exc:  # does not resolve, or is not a name the resolver takes
        raise httpcore.ConnectError(f"cannot resolve {host[:80]}: {getattr(exc, 'strerror', None) or exc}") from None


class _BoundedBackend(httpcore.NetworkBackend):
    """A network backend whose every connection is a BoundedStream under `limits`: the name is
    looked up (`lookup`) and each of its addresses tried within the connect timeout and the
    deadline of `limits`, so a resolver that hangs holds a request no longer than they allow."""

    def __init__(self, inner: httpcore.NetworkBackend, limits: Limits) -> None:
        self._inner, self._limits = inner, limits

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._limits.time_left(timeout, httpcore.ConnectTimeout)
        deadline = None if left is None else time.monotonic() + left
        with _lookup_errors(host):
            infos = lookup(host, port, deadline)
        last: Exception | None = None
        for _, _, _, _, sockaddr in infos:  # each address the lookup gave, in its order, by the deadline
            try:
                left = None if deadline is None else time_left(deadline)
                stream = self._inner.connect_tcp(str(sockaddr[0]), port, left, local_address, socket_options)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(str(exc)) from None
            except httpcore.ConnectError as exc:
                last = exc
                continue
            return BoundedStream(stream, self._limits)
        raise last or httpcore.ConnectError(f"cannot connect to {host}:{port}")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        left = self._limits.time_left(timeout, httpcore.ConnectTimeout)
        return BoundedStream(self._inner.connect_unix_socket(path, left, socket_options), self._limits)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class ReplyTooLarge(httpx.ReadError):
    """The peer sent more than a reply may hold."""


class BoundedClient(httpx.Client):
    """An httpx.Client (same arguments) whose every request, its reply read in full, ends within
    `total` seconds (httpx.ConnectTimeout, ReadTimeout or WriteTimeout) and reads at most
    `max_reply` bytes, as sent or decoded (ReplyTooLarge or httpx.ReadError). Environment proxies
    keep working: every transport the client holds is bounded. `stream=True` requests are bounded
    on the wire only: their caller reads the body."""

    def __init__(self, *, total: float, max_reply: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bounds = RequestBounds(total, max_reply)
        for transport in (self._transport, *self._mounts.values()):
            pool = getattr(transport, "_pool", None)  # an httpx.HTTPTransport's connection pool (or proxy)
            if isinstance(pool, httpcore.ConnectionPool):
                pool._network_backend = _BoundedBackend(pool._network_backend, self._bounds)

    def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        self._bounds.begin()
        response = super().send(request, stream=True, **kwargs)
        if stream:
            return response
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._bounds.max_read:
                    raise ReplyTooLarge(
                        f"the reply is larger than {self._bounds.max_read} bytes once decoded", request=request
                    )
        finally:
            response.close()
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=request, extensions=response.extensions
        )


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
        ends = [end for end in (self.deadline, None if timeout is None else time.monotonic() + timeout) if end]
        limit = min(ends) if ends else None
        with _lookup_errors(host):
            infos = self.policy.resolve(host, port, limit)
        for _, _, _, _, sockaddr in infos:
            bounds = Bounds(self.deadline, self.max_read)  # the deadline is the request's, the bytes this connection's
            try:
                left = bounds.time_left(timeout, httpcore.ConnectTimeout)
                stream = super().connect_tcp(str(sockaddr[0]), port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
                continue
            if self.deadline is None and self.max_read is None:
                return stream
            return BoundedStream(stream, bounds)
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
