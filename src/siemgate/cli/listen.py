"""The server's listening socket, taken before any other work, and telling the user once it answers."""

from __future__ import annotations

import errno
import signal
import socket
import socketserver
import threading
from collections.abc import Callable
from types import FrameType

from siemgate.errors import ConfigError

READY_POLL_SECONDS = 0.1


def bind(host: str, port: int, *, hint: str = "--port") -> socket.socket:
    """A TCP socket bound to host:port (not yet listening), for uvicorn to serve on.

    Raises ConfigError saying which address is taken (or cannot be used) and what to change: `hint`
    names the option that chooses another port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use by another program;"
                f" stop it or choose another port with {hint}"
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; check the address and {hint}"
        ) from None
    sock.set_inheritable(True)
    return sock


def when_answering(url: str, then: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """Start a thread that polls GET `url` until it answers 200, then calls `then` (once); it gives up
    silently when `stop` is set first (the server failed or was stopped)."""
    import httpx  # only `siemgate demo` polls: the other commands start without it (start-up time)

    def watch() -> None:
        with httpx.Client(timeout=2, trust_env=False) as client:
            while not stop.is_set():
                try:
                    if client.get(url).status_code == 200:
                        if not stop.is_set():
                            then()
                        return
                except httpx.TransportError:
                    pass
                stop.wait(READY_POLL_SECONDS)

    thread = threading.Thread(target=watch, name="siemgate-ready", daemon=True)
    thread.start()
    return thread


def host_port(listen: str, example: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) split; ConfigError showing `example` otherwise."""
    host, _, port_text = listen.rpartition(":")
    if not port_text.isdigit() or not host:
        raise ConfigError(f"--listen {listen!r} must be host:port, e.g. {example}")
    return host.strip("[]"), int(port_text)


def serve_until_stopped(server: socketserver.BaseServer, banner: str, close: Callable[[], None]) -> None:
    """Print `banner`, serve until SIGTERM or Ctrl-C, then close the server and call `close`.

    The signal asks the serving loop to end (from a thread: `shutdown` waits for the loop) rather
    than raising in the main thread: an exception raised wherever the signal lands (inside a
    request thread's start) could be turned into another and swallowed by socketserver, the
    signal lost and the process left running."""

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, name="siemgate-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(banner, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        close()
