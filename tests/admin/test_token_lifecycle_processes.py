"""The token lifecycle job (`run_due`: expiry warnings, expiries, the end of a rotation's grace
period) runs every minute in every server process: two processes running it at the same moment
record each lifecycle event once, as one process does. Two sets of services on one store stand
for two processes, on both backends; a barrier makes both read the due tokens before either
records anything (the race that processes started together run into)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.accounts.actor import CLI
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.services import Services
from siemgate.store.base import Store
from support.clocks import FixedClock

HOUR = 3600 * 10**9
NOW = 1_900_000_000 * 10**9


def _services(tmp_path: Path, store: Store, name: str, now: int) -> Services:
    return build_services(load_settings(data_dir=tmp_path / name, alerts_enabled=False), store, FixedClock(now))


def _audit(store: Store, account_id: int, token_id: str) -> list[str]:
    """The actions of the account's audit events about the token."""
    rows = store.read_events(account_id, Feature.AUDITEVENTS, 0, 0, None, 1000)
    events = [orjson.loads(body) for _, body, _ in rows]
    return [f"{e['action']}:{e['aux_info']}" for e in events if e.get("object_uuid") == token_id]


def _together(step: Any, *, first: bool) -> Any:
    """`step` made to wait for the other thread's call: before running (`first`), or after."""
    barrier = threading.Barrier(2, timeout=20)

    def both(*args: Any, **kwargs: Any) -> Any:
        if first:
            barrier.wait()
        result = step(*args, **kwargs)
        if not first:
            barrier.wait()
        return result

    return both


def test_two_processes_record_each_lifecycle_event_once(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process read the due tokens, recorded the audit event, then marked the token: two
    processes reading before either marked recorded `expire` (expired, expiring soon) twice each,
    into the tamper-evident audit stream SIEMs read and alert rules watch; and two revoking one
    token (a rotation's grace period ended) after both found it unrevoked recorded `trevoke`
    twice. A process now records an event only once it has claimed it (a conditional write that
    one process wins; for a revocation, the revocation time kept is its own)."""
    setup = _services(tmp_path, store, "setup", NOW)
    account = store.create_account(new_id(), "Acme", NOW)
    integration = store.create_integration(account.id, new_id(), "other", "siem", "", NOW)
    _, expiring = setup.tokens.issue(account, integration, "expiring", ALL_FEATURES, HOUR)
    _, warned = setup.tokens.issue(account, integration, "warned", ALL_FEATURES, 30 * 24 * HOUR)
    _, rotated = setup.tokens.issue(account, integration, "rotated", ALL_FEATURES, None)
    setup.lifecycle.rotate(CLI, account, rotated.id, HOUR)
    later = NOW + 20 * 24 * HOUR  # `expiring` expired, `warned` in its last 14 days, the grace ended
    one, two = _services(tmp_path, store, "one", later), _services(tmp_path, store, "two", later + 1)
    # both read the due tokens before either acts, and both found the rotated one unrevoked
    monkeypatch.setattr(store, "due_tokens", _together(store.due_tokens, first=False))
    monkeypatch.setattr(store, "revoke_token", _together(store.revoke_token, first=True))
    runs = [threading.Thread(target=services.lifecycle.run_due) for services in (one, two)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=60)
    monkeypatch.undo()
    assert [len(_audit(store, account.id, t.id)) for t in (expiring, warned)] == [1, 1], [
        _audit(store, account.id, t.id) for t in (expiring, warned)
    ]
    revocations = [a for a in _audit(store, account.id, rotated.id) if a.startswith("trevoke")]
    assert len(revocations) == 1, revocations
