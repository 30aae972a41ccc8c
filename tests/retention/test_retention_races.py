"""Retention racing other work on the same account, on every store backend, interleaved
deterministically (the run is held at a chosen point by events, never by sleeps)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from siemgate.accounts.actor import SYSTEM
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.ids import new_id
from siemgate.retention.archive import StreamArchive
from siemgate.store.base import Store
from support.clocks import FixedClock

from .helpers import NOW, fill


def test_an_account_deleted_during_its_retention_run_leaves_no_archive(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run has read a day's events and is about to write its file when the account is deleted
    (rows, then archive folder): the run must not put back a folder, file or manifest of it."""
    settings = load_settings(data_dir=tmp_path, alerts_enabled=False, archive_format="jsonl", retention_days=30)
    services = build_services(settings, store, FixedClock(NOW))
    account = store.create_account(new_id(), "Leaving", NOW)
    fill(services, account, 3, 5)
    reached, go = threading.Event(), threading.Event()
    calls: list[str] = []
    original = StreamArchive.write_sorted

    def held_on_the_second_day(self: StreamArchive, day: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(day)
        if len(calls) == 2:  # the first day's file is written: the account's folder exists
            reached.set()
            assert go.wait(30)
        return original(self, day, *args, **kwargs)

    monkeypatch.setattr(StreamArchive, "write_sorted", held_on_the_second_day)
    results: list[Any] = []
    run = threading.Thread(target=lambda: results.extend(services.retention.apply_shared(wait=True)))
    run.start()
    try:
        assert reached.wait(30)
        folder = settings.archive_path / account.uuid
        assert folder.is_dir()
        removed = services.delete_account(SYSTEM, account, account.name)
        assert removed["archive files"] > 0 and not folder.exists()
    finally:
        go.set()
        run.join(30)
    assert not run.is_alive()
    assert not folder.exists(), sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert [r.error for r in results if r.account == account.uuid and r.error] == []
