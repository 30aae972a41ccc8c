"""How many of one account's heavy reads (the event explorer, exports, dashboard counts) run at
once in this server process: at most `per_account`, so that no account can hold every database
connection (PostgreSQL's pool), worker thread and core while other accounts wait. The others wait
their turn on the event loop, holding no thread or connection, for up to `wait_seconds`, then are
refused with 429 (docs/security.md, "Bounds and operator settings")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from siemgate.errors import RateLimited


class AccountSlots:
    def __init__(self, per_account: int, wait_seconds: float = 30.0) -> None:
        self.per_account = per_account
        self.wait_seconds = wait_seconds
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._holders: dict[int, int] = {}  # requests holding or waiting for each account's slots

    @contextlib.asynccontextmanager
    async def hold(self, account_id: int) -> AsyncIterator[None]:
        """A slot of the account's for the block; RateLimited after waiting `wait_seconds`. Only
        accounts with requests holding or waiting take memory."""
        slots = self._slots.setdefault(account_id, asyncio.Semaphore(self.per_account))
        self._holders[account_id] = self._holders.get(account_id, 0) + 1
        try:
            try:
                await asyncio.wait_for(slots.acquire(), self.wait_seconds)
            except TimeoutError:
                raise RateLimited(
                    f"Too Many Requests: {self.per_account} of this account's event searches, exports or counts"
                    " are running and more are waiting; try again shortly, or narrow the time window",
                    retry_after=5,
                ) from None
            try:
                yield
            finally:
                slots.release()
        finally:
            self._holders[account_id] -= 1
            if not self._holders[account_id]:
                del self._holders[account_id], self._slots[account_id]
