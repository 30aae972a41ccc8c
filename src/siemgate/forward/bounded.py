"""HTTP clients whose every request is bounded as a whole, for the forwarder's sources and sinks.

httpx's timeout bounds each connect, read and write, not a request: a peer that sends a byte now
and then (a tarpit, a half-dead proxy) held a request, and with it the pipeline and a stop, for
ever; and a reply was read whole into memory, however large. A BoundedClient ends every request
(its reply read in full) `total` seconds after it started (httpx.ReadTimeout or WriteTimeout) and
refuses a reply of more than `max_reply` bytes, as sent or decoded (ReplyTooLarge). Both are
httpx.TransportError, which the forwarder retries like any network error. Environment proxies
keep working: every transport the client holds is bounded.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class ReplyTooLarge(httpx.ReadError):
    """The peer sent more than a reply may hold."""


class _Bounds(threading.local):
    """The current request's deadline (time.monotonic()) and the bytes it may still read, per thread
    (a pooled connection serves the request of whichever thread holds it)."""

    def __init__(self, total: float, max_reply: int) -> None:
        self.total, self.max_reply = total, max_reply
        self.deadline = 0.0
        self.left = max_reply

    def begin(self) -> None:
        self.deadline = time.monotonic() + self.total
        self.left = self.max_reply

    def time_left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error(f"the request did not finish within {self.total:g} s")
        return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, bounds: _Bounds) -> None:
        self._inner, self._bounds = inner, bounds

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, self._bounds.time_left(timeout, httpcore.ReadTimeout))
        self._bounds.left -= len(data)
        if self._bounds.left < 0:
            raise httpcore.ReadError(f"the reply is larger than {self._bounds.max_reply} bytes")
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._bounds.time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = self._bounds.time_left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, left), self._bounds)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, bounds: _Bounds) -> None:
        self._inner, self._bounds = inner, bounds

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._bounds.time_left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.connect_tcp(host, port, left, local_address, socket_options), self._bounds)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        left = self._bounds.time_left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.connect_unix_socket(path, left, socket_options), self._bounds)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class BoundedClient(httpx.Client):
    """An httpx.Client (same arguments) whose every request ends within `total` seconds and reads
    at most `max_reply` bytes (module docstring). `stream=True` requests are bounded on the wire
    only: their caller reads the body."""

    def __init__(self, *, total: float, max_reply: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bounds = _Bounds(total, max_reply)
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
                if len(body) > self._bounds.max_reply:
                    raise ReplyTooLarge(
                        f"the reply is larger than {self._bounds.max_reply} bytes once decoded", request=request
                    )
        finally:
            response.close()
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=request, extensions=response.extensions
        )
