"""The server's log worker (docs/integrity.md, "In the store"): it integrates every stream's new
entries and asks the signer for the checkpoints that are due. `serve` runs it every few seconds;
`siemgate log checkpoint` runs it for one stream."""

from __future__ import annotations

import logging
from collections.abc import Callable

from siemgate.integrity.tree import Integrated, integrate
from siemgate.model.features import Feature
from siemgate.store.base import Store

log = logging.getLogger("siemgate.integrity")

WORKER_SECONDS = 2.0


class LogService:
    """Integration and checkpoints of every stream's log; thread-safe as far as the store is."""

    def __init__(self, store: Store, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    def integrate_all(self) -> dict[tuple[int, Feature], Integrated]:
        """Integrate every stream that has entries past its integrated size."""
        done = {}
        for account_id, feature, head, size, stopped in self.store.log_overview():
            if head > size and not stopped:
                done[(account_id, feature)] = integrate(self.store, account_id, feature, self.clock())
        return done

    def run(self) -> None:
        """One round of the worker."""
        self.integrate_all()
