"""Support for the tests of the proof API: a live server (uvicorn on 127.0.0.1) whose log is signed
by a real signer process, and helpers that read proofs the way a SIEM does."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from siemgate.model.features import Feature
from siemgate.store.base import Account
from siemgate.tlog.checkpoint import Checkpoint, unverified_text
from siemgate.tlog.keys import PublicKeyring
from support.events import auditevent
from support.servers import LiveServer

from .tlog_kit import Kit, make_kit, secret_file, signer_process

AUDIT = Feature.AUDITEVENTS
SECOND = 1_000_000_000
PREFIX = "/api/siemgate/v1/log"


@dataclass
class ProofSetup:
    server: LiveServer
    kit: Kit
    keys: PublicKeyring

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def get(self, token: str, path: str, **params: Any) -> httpx.Response:
        return self.server.http.get(PREFIX + path, params=params, headers=self.bearer(token))

    def page_proof(self, token: str, body: Any, feature: str = "auditevents") -> httpx.Response:
        return self.server.http.post(f"{PREFIX}/{feature}/page-proof", json=body, headers=self.bearer(token))

    def ingest(self, account: Account, count: int, start_ns: int, key: str | None = None) -> None:
        key = key or self.server.ingest_key(account)
        for begin in range(0, count, 500):
            n = min(500, count - begin)
            events = [auditevent(start_ns + (begin + i) * SECOND) for i in range(n)]
            response = self.server.ingest(key, AUDIT, events)
            assert response.status_code == 200, response.text

    def newest(self, account: Account) -> Checkpoint | None:
        stored = self.server.store.last_log_checkpoint(account.id, AUDIT)
        return Checkpoint.parse(unverified_text(stored.note)) if stored else None

    def wait_covered(self, account: Account, size: int) -> Checkpoint:
        """Wait (polling) until a stored checkpoint covers `size` entries."""
        deadline = time.monotonic() + 60
        while (cp := self.newest(account)) is None or cp.size < size:
            assert time.monotonic() < deadline, f"no checkpoint of size {size}: newest {cp}"
            time.sleep(0.05)
        return cp


@contextlib.contextmanager
def proof_setup(tmp_path: Path, make_server: Callable[..., LiveServer], **settings: Any) -> Iterator[ProofSetup]:
    """A server signing its logs with a real signer process (checkpoint interval 1 s by default)."""
    kit = make_kit(tmp_path)
    secret = secret_file(tmp_path / "signer.secret")
    with signer_process(kit, secret) as url:
        server = make_server(
            integrity_signer_url=url,
            integrity_signer_secret_file=secret,
            **{"integrity_checkpoint_seconds": 1, "integrity_heartbeat_seconds": 3600, **settings},
        )
        yield ProofSetup(server, kit, kit.keyring.public())
