"""A store method watched while a test runs: how many of its calls run now and the most at once,
per account (its first argument) and in all; those of one account wait until `release` is set."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HeldCalls:
    release: threading.Event = field(default_factory=threading.Event)
    inside: dict[int | None, int] = field(default_factory=dict)  # by account id; None: all accounts
    most: dict[int | None, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def moved(self, account_id: int, step: int) -> None:
        with self.lock:
            for key in (account_id, None):
                self.inside[key] = self.inside.get(key, 0) + step
                self.most[key] = max(self.most.get(key, 0), self.inside[key])


@contextlib.contextmanager
def held_calls(store: Any, method: str, held_account: int) -> Iterator[HeldCalls]:
    """`store.<method>(account_id, ...)` counted for the block, and held for `held_account` until
    `release` is set (at the latest when the block ends)."""
    original = getattr(store, method)
    held = HeldCalls()

    def counting(account_id: int, *args: Any, **kwargs: Any) -> Any:
        held.moved(account_id, 1)
        try:
            if account_id == held_account:
                assert held.release.wait(20)
            return original(account_id, *args, **kwargs)
        finally:
            held.moved(account_id, -1)

    setattr(store, method, counting)
    try:
        yield held
    finally:
        held.release.set()
        delattr(store, method)
