"""The store's dashboard counts (`facet_counts`) watched while a test runs: how many run now and
the most at once, per account and in all; those of `site.account` wait until `release` is set."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from support.admin import Site


@dataclass
class HeldCounts:
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
def held_counts(site: Site) -> Iterator[HeldCounts]:
    """The site's store counting (and holding `site.account`'s) dashboard counts for the block;
    `release` is set when it ends."""
    store = site.services.store
    counts = store.facet_counts
    held = HeldCounts()

    def counting(account_id: int, *args: Any, **kwargs: Any) -> Any:
        held.moved(account_id, 1)
        try:
            if account_id == site.account.id:
                assert held.release.wait(20)
            return counts(account_id, *args, **kwargs)
        finally:
            held.moved(account_id, -1)

    store.facet_counts = counting  # type: ignore[method-assign]
    try:
        yield held
    finally:
        held.release.set()
        del store.facet_counts
