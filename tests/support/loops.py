"""Asyncio loops that may stay marked running in the main thread for the whole session."""

from __future__ import annotations

# Playwright's sync API (tests/console/conftest.py, the session's browser) runs its loop in the main
# thread while the browser is open; every other loop left running there is a test's leak.
SESSION_LOOPS: set[object] = set()
