"""Retention racing other work on the same account, on every store backend, interleaved
deterministically (the run is held at a chosen point by events, never by sleeps)."""

from __future__ import annotations

import os
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
from siemgate.services import Services
from siemgate.store.base import Account, Store
from support.clocks import FixedClock
from support.waiting import wait_for

from .helpers import AUDIT, DAY, NOW, audit, fill, held, open_services


def _leaving(tmp_path: Path, store: Store) -> tuple[Services, Account]:
    """Services archiving to JSON Lines after 30 days, and an account with 3 days to archive."""
    settings = load_settings(data_dir=tmp_path, alerts_enabled=False, archive_format="jsonl", retention_days=30)
    services = build_services(settings, store, FixedClock(NOW))
    account = store.create_account(new_id(), "Leaving", NOW)
    fill(services, account, 3, 5)
    return services, account


def test_an_account_deleted_during_its_retention_run_leaves_no_archive(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run has read a day's events and is about to write its file when the account is deleted
    (rows, then archive folder): the run must not put back a folder, file or manifest of it."""
    services, account = _leaving(tmp_path, store)
    settings = services.settings
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


def test_an_account_deleted_while_its_run_writes_a_file_in_a_folder_being_removed(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion has emptied a year folder of the account's archive and is about to remove it
    when the run creates its next day file there: the removal found the folder not empty and the
    deletion failed ("Directory not empty"), the rows gone and the folder left. It now lists the
    folder again (a bounded number of times) and the run removes what it wrote after."""
    services, account = _leaving(tmp_path, store)
    settings = services.settings
    emptied, written = threading.Event(), threading.Event()
    calls: list[str] = []
    original_add, original_rmdir = StreamArchive.add, os.rmdir

    def add_once_the_folder_is_emptied(self: StreamArchive, batch: Any, day: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(day)
        if len(calls) == 2:  # the first day's files are in the year folder
            assert emptied.wait(30)
        return original_add(self, batch, day, *args, **kwargs)

    def on_write(_written: int) -> None:
        if emptied.is_set():
            written.set()  # the second day's file is open in the year folder

    def rmdir_after_the_write(path: Any, *, dir_fd: int | None = None) -> None:
        if str(path).isdigit() and not emptied.is_set():  # a year folder, its files removed
            emptied.set()
            assert written.wait(30)
        original_rmdir(path, dir_fd=dir_fd)

    monkeypatch.setattr(StreamArchive, "add", add_once_the_folder_is_emptied)
    monkeypatch.setattr(os, "rmdir", rmdir_after_the_write)
    services.retention.fault = on_write
    results: list[Any] = []
    run = threading.Thread(target=lambda: results.extend(services.retention.apply_shared(wait=True)))
    run.start()
    folder = settings.archive_path / account.uuid
    try:
        wait_for("the run at its second day", lambda: len(calls) == 2 or not run.is_alive() or None)
        services.delete_account(SYSTEM, account, account.name)
    finally:
        emptied.set()
        written.set()
        run.join(30)
    assert not run.is_alive()
    assert not folder.exists(), sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert [r.error for r in results if r.account == account.uuid and r.error] == []
