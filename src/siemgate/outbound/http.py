"""HTTP clients bounded as a whole, and those the outbound policy guards (siemgate.outbound).

Requests bounded as a whole: httpx's timeouts bound each connect, read and write, not a request,
so a peer that sends a byte now and then (a tarpit, a half-dead proxy) would hold a request for
ever, and a reply is read whole into memory, however large. A `BoundedStream` ends every
operation of its connection by the deadline of its `Bounds` and fails once more bytes were read
than they allow. The policy's clients bound each connection so (`deadline`, `max_read`); the
forwarder's `BoundedClient` (long-lived, pooled, no policy) bounds each request it sends.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import httpcore
import httpx

from siemgate.outbound import MAX_REDIRECTS, OutboundPolicy, lookup, time_left


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


def _first_connected(
    infos: Iterable[tuple[Any, ...]], host: str, port: int, connect: Callable[[str], httpcore.NetworkStream]
) -> httpcore.NetworkStream:
    """The stream `connect` opens to the first of the lookup's addresses (`infos`, in its order)
    that takes the connection; the last httpcore.ConnectError when none does, ConnectTimeout as soon
    as the time runs out."""
    last: Exception | None = None
    for _, _, _, _, sockaddr in infos:
        try:
            return connect(str(sockaddr[0]))
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from None
        except httpcore.ConnectError as exc:
            last = exc
    raise last or httpcore.ConnectError(f"cannot connect to {host}:{port}")


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

        def connect(address: str) -> httpcore.NetworkStream:
            left = None if deadline is None else time_left(deadline)
            stream = self._inner.connect_tcp(address, port, left, local_address, socket_options)
            return BoundedStream(stream, self._limits)

        return _first_connected(infos, host, port, connect)

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
        ends = [end for end in (self.deadline, None if timeout is None else time.monotonic() + timeout) if end]
        limit = min(ends) if ends else None
        with _lookup_errors(host):
            infos = self.policy.resolve(host, port, limit)

        def connect(address: str) -> httpcore.NetworkStream:
            bounds = Bounds(self.deadline, self.max_read)  # the deadline is the request's, the bytes this connection's
            left = bounds.time_left(timeout, httpcore.ConnectTimeout)
            stream = super(_GuardedBackend, self).connect_tcp(address, port, left, local_address, socket_options)
            if self.deadline is None and self.max_read is None:
                return stream
            return BoundedStream(stream, bounds)

        return _first_connected(infos, host, port, connect)


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
