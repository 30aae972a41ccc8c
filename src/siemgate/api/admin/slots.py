"""How many heavy reads (the event explorer, exports, dashboard counts) run at once in this server
process: at most `per_account` of one account's, so that no account can hold every database
connection (PostgreSQL's pool), worker thread and core while other accounts wait, and at most
`total` of all accounts' together, below the pool's size, so that a few accounts together cannot
either: the Events API, ingest and sign-in always find a connection. The others wait their turn on
the event loop, holding no thread or connection, for up to `wait_seconds`, then are refused with
429 (docs/security.md, "Heavy reads"). The ingest API bounds each account's requests being stored
the same way (`ingest_requests_per_account`, no process-wide bound: docs/security.md, "Per-account
quotas")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from siemgate.errors import RateLimited


def heavy_reads_total(pool_size: int) -> int:
    """The most heavy reads of all accounts running at once in a process whose PostgreSQL pool
    holds `pool_size` connections: half of them (at least one), so the other half is always left
    to the other requests. SQLite has no pool; the same bound keeps worker threads free."""
    return max(1, pool_size // 2)


HEAVY_READS = "event searches, exports or counts"


class AccountSlots:
    """At most `per_account` blocks of one account, and `total` of all accounts (None: no bound),
    at once; `what` names them in the 429 (`setting` the bound's setting)."""

    def __init__(
        self,
        per_account: int,
        total: int | None,
        wait_seconds: float = 30.0,
        what: str = HEAVY_READS,
        setting: str = "admin_queries_per_account",
    ) -> None:
        self.per_account = per_account
        self.total = total
        self.wait_seconds = wait_seconds
        self.what = what
        self.setting = setting
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._holders: dict[int, int] = {}  # requests holding or waiting for each account's slots
        self._all: asyncio.Semaphore | None = None  # made on the event loop, at the first request

    @contextlib.asynccontextmanager
    async def hold(self, account_id: int) -> AsyncIterator[None]:
        """A slot of the account's, then one of the process's, for the block; RateLimited when
        both were not had within `wait_seconds`. Only accounts with requests holding or waiting
        take memory."""
        slots = self._slots.setdefault(account_id, asyncio.Semaphore(self.per_account))
        if self._all is None and self.total is not None:
            self._all = asyncio.Semaphore(self.total)
        self._holders[account_id] = self._holders.get(account_id, 0) + 1
        try:
            async with self._acquired(slots, self._all):
                yield
        finally:
            self._holders[account_id] -= 1
            if not self._holders[account_id]:
                del self._holders[account_id], self._slots[account_id]

    @contextlib.asynccontextmanager
    async def _acquired(self, account: asyncio.Semaphore, process: asyncio.Semaphore | None) -> AsyncIterator[None]:
        """Both semaphores, the account's first (an account's waiting requests never queue for the
        process's slots ahead of other accounts), within `wait_seconds` together."""
        held: list[asyncio.Semaphore] = []
        try:
            try:
                async with asyncio.timeout(self.wait_seconds):
                    for semaphore in (account, process):
                        if semaphore is not None:
                            await semaphore.acquire()
                            held.append(semaphore)
            except TimeoutError:
                raise RateLimited(self._refusal(), retry_after=5) from None
            yield
        finally:
            for semaphore in reversed(held):
                semaphore.release()

    def _refusal(self) -> str:
        """The 429's message: which bound is full and what to do."""
        everyone = f" (or {self.total} of all accounts')" if self.total is not None else ""
        return (
            f"Too Many Requests: {self.per_account} of this account's {self.what}{everyone} are running"
            f" ({self.setting}) and more waited {self.wait_seconds:g} s; try again shortly"
            + (", or narrow the time window" if self.what == HEAVY_READS else ", with fewer at once")
        )
