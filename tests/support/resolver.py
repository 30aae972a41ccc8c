"""A resolver that hangs for one name (socket.getaddrinfo patched), for the tests of name lookups
bounded by a timeout (alert actions, the forwarder)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

HUNG = "hung.example"


@contextlib.contextmanager
def hung_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While in the block, looking up HUNG hangs (30 s, then EAI_AGAIN) and every other name
    resolves as usual; lookups still hanging are let go on exit."""
    real = socket.getaddrinfo
    release = threading.Event()

    def hanging(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != HUNG:
            return real(host, port, *args, **kwargs)
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        yield
    finally:
        release.set()
