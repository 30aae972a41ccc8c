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
from siemgate.retention import archive as archive_module
from siemgate.retention.archive import StreamArchive
from siemgate.store.base import Store
from support.clocks import FixedClock

from .helpers import AUDIT, DAY, NOW, audit, fill, held, open_services


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
    original = StreamArchive.add

    def held_on_the_second_day(self: StreamArchive, batch: Any, day: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(day)
        if len(calls) == 2:  # the first day's file is written: the account's folder exists
            reached.set()
            assert go.wait(30)
        return original(self, batch, day, *args, **kwargs)

    monkeypatch.setattr(StreamArchive, "add", held_on_the_second_day)
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


def _manifest_bytes_of_a_backlog(tmp_path: Path, days: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(bytes written to the stream's manifest, its final size) when one run archives a backlog
    of `days` days of one event each."""
    services = open_services(tmp_path, archive_format="jsonl", retention_days=30)
    account = services.store.create_account(new_id(), "Backlog", NOW)
    first = NOW - 40 * DAY - days * DAY
    for start in range(0, days, 1000):
        batch = [audit(first + d * DAY, d) for d in range(start, min(start + 1000, days))]
        services.writer.write(account.id, AUDIT, batch)
    written: list[int] = []
    original = archive_module._write_json_atomic

    def counted(path: Path, data: dict[str, Any]) -> None:
        original(path, data)
        written.append(path.stat().st_size)

    monkeypatch.setattr(archive_module, "_write_json_atomic", counted)
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == AUDIT]
    assert result.error is None and result.archived == days and held(services, account) == 0
    manifest = services.settings.archive_path / account.uuid / AUDIT.value / "manifest.json"
    services.close()
    return sum(written), manifest.stat().st_size


def test_archiving_a_backlog_writes_the_manifest_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest was rewritten twice per day file: a backlog of n days wrote about n² / 2
    entries of it (365 days: 170 MB; 1,000 days: 1.3 GB). Days are now committed in batches that
    grow with the manifest, so the bytes written stay a few times its final size."""
    written, size = _manifest_bytes_of_a_backlog(tmp_path, 365, monkeypatch)
    assert written <= 12 * size, f"{written} bytes written for a manifest of {size}"
