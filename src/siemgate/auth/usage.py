"""Remember when each credential was last used and how far each token's cursor has read, cheaply.

Uses are buffered in memory (latest per token and feature) and written in one transaction by
`flush()`, which the server calls every few seconds and at shutdown, so the serving path never
waits for a write.
"""

from __future__ import annotations

import threading

from siemgate.model.features import Feature
from siemgate.store.base import Store, TokenUse


class UsageRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: dict[tuple[str, Feature | None], TokenUse] = {}
        self._ingest: dict[str, int] = {}
        self._api_keys: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, token_id: str, at: int, feature: Feature | None = None, seq: int | None = None) -> None:
        with self._lock:
            self._pending[(token_id, feature)] = TokenUse(token_id, at, feature, seq)

    def record_ingest(self, key_id: str, at: int) -> None:
        with self._lock:
            self._ingest[key_id] = at

    def record_api_key(self, key_id: str, at: int) -> None:
        with self._lock:
            self._api_keys[key_id] = at

    def flush(self) -> int:
        """Write buffered uses; returns how many."""
        with self._lock:
            pending, self._pending = self._pending, {}
            ingest, self._ingest = self._ingest, {}
            api_keys, self._api_keys = self._api_keys, {}
        if api_keys:
            self.store.touch_api_keys(api_keys)
        if pending:
            self.store.record_token_uses(list(pending.values()))
        if ingest:
            self.store.touch_ingest_keys(ingest)
        return len(pending) + len(ingest) + len(api_keys)
