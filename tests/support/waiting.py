"""Polling with a deadline: the one way tests wait for something (never a fixed sleep)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")
POLL = 0.02  # seconds between two looks at something we are waiting for


class Watched(Protocol):
    """A process whose exit ends a wait at once (support.procs.Proc)."""

    name: str
    popen: subprocess.Popen[bytes]

    def output(self) -> str: ...


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 20.0, *, proc: Watched | None = None) -> T:
    """Poll `check` until it returns something truthy, and return that.

    Raises AssertionError naming `what` after `timeout` seconds; when `proc` is given and exits
    meanwhile, at once, with what it wrote."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.popen.poll() is not None:
            code = proc.popen.returncode
            raise AssertionError(f"{proc.name} exited ({code}) while waiting for {what}:\n{proc.output()}")
        if time.monotonic() > deadline:
            detail = f"\n{proc.output()}" if proc is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(POLL)
