"""How many heavy reads (the event explorer, exports, dashboard counts) run at once in this server
process: at most `per_account` of one account's, so that no account can hold every database
connection (PostgreSQL's pool), worker thread and core while other accounts wait; and at most
`total` reads of the store by all accounts' together (`reading`, held while a page is read, not
while a client takes it), below the pool's size, so that a few accounts together cannot either:
the Events API, ingest and sign-in always find a connection. The others wait their turn on
the event loop, holding no thread or connection, for up to `wait_seconds`, then are refused with
429 (docs/security.md, "Heavy reads"). The ingest API bounds each account's requests being stored
the same way (`ingest_requests_per_account`), and the Events API each account's requests being
served (`events_pages_per_account`), with no process-wide bound (docs/security.md)."""

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
        self._all: asyncio.Semaphore | None = None

    @contextlib.asynccontextmanager
    async def hold(self, account_id: int) -> AsyncIterator[None]:
        """A slot of the account's for the block; RateLimited after waiting `wait_seconds`. Only
        accounts with requests holding or waiting take memory."""
        slots = self._slots.setdefault(account_id, asyncio.Semaphore(self.per_account))
        self._holders[account_id] = self._holders.get(account_id, 0) + 1
        try:
            async with self._acquired(slots, self._refusal()):
                yield
        finally:
            self._holders[account_id] -= 1
            if not self._holders[account_id]:
                del self._holders[account_id], self._slots[account_id]

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """One of the process's `total` slots for the block (a read of the store, taken inside an
        account's slot); RateLimited after waiting `wait_seconds`. No bound when `total` is None."""
        if self.total is None:
            yield
            return
        if self._all is None:  # made on the event loop, at the first read
            self._all = asyncio.Semaphore(self.total)
        async with self._acquired(self._all, self._refusal(everyone=True)):
            yield

    @contextlib.asynccontextmanager
    async def _acquired(self, semaphore: asyncio.Semaphore, refusal: str) -> AsyncIterator[None]:
        """`semaphore` for the block; RateLimited saying `refusal` after waiting `wait_seconds`."""
        try:
            await asyncio.wait_for(semaphore.acquire(), self.wait_seconds)
        except TimeoutError:
            raise RateLimited(refusal, retry_after=5) from None
        try:
            yield
        finally:
            semaphore.release()

    def _refusal(self, *, everyone: bool = False) -> str:
        """The 429's message: which bound is full (the account's, or with `everyone` the
        process's) and what to do."""
        held = (
            f"{self.total} {self.what} of all accounts (half of database_pool_size)"
            if everyone
            else f"{self.per_account} of this account's {self.what} ({self.setting})"
        )
        return f"Too Many Requests: {held} are running and more waited {self.wait_seconds:g} s; try again shortly" + (
            ", or narrow the time window" if self.what == HEAVY_READS else ", with fewer at once"
        )
