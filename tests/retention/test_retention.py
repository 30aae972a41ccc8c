"""Retention with archive, verify and replay on 24,000 events (102,000 in `make soak`), and the failure cases: an
unwritable archive folder, a full disk (a 1 MiB tmpfs when this machine allows mounting one, and
always a fault injected into the archive writer), a corrupted file. Events are written in-process
through the EventWriter in batches (not over HTTP) to keep this fast."""

from __future__ import annotations

import errno
import fcntl
import gzip
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.accounts.actor import CLI
from siemgate.model.ids import new_id
from siemgate.retention import archive as archive_module
from siemgate.retention.archive import LOCK_FILE, ArchiveError, verify_file
from siemgate.retention.replay import plan_replay, replay
from siemgate.retention.service import RetentionService
from siemgate.retention.survey import manifests, survey
from siemgate.services import Services
from support.soak import sized

from .helpers import AUDIT, DAY, NOW, S, audit, audit_result, fill, held, open_services, stream_uuids


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = open_services(tmp_path / "data", archive_format="jsonl")
    yield s
    s.close()


PER_DAY = sized(1200, 5100)  # 24,000 events in `make test`, 102,000 in `make soak`
TOTAL = 20 * PER_DAY


@pytest.mark.soak
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_archive_verify_replay_round_trip_on_100k_events(tmp_path: Path, fmt: str) -> None:
    services = open_services(tmp_path / "a", archive_format=fmt)
    account = services.store.create_account(new_id(), "Acme", NOW)
    stored = fill(services, account, days=20, per_day=PER_DAY)
    assert stored == TOTAL
    before = stream_uuids(services, account)
    fresh = services.writer.write(account.id, AUDIT, [audit(NOW - DAY, 1)]).stored  # within retention: stays
    result = audit_result(services.retention.apply(accounts=[account]))
    assert result.error is None
    assert (result.archived, result.purged, len(result.files)) == (TOTAL, TOTAL, 20)
    assert held(services, account) == fresh
    [stream] = list(manifests(services.settings.archive_path))
    assert (stream.account, stream.feature, len(stream.files)) == (account.uuid, AUDIT, 20)
    assert all(f.format == fmt and f.events == PER_DAY and len(f.sha256) == 64 for f in stream.files)
    for entry in stream.files:
        verify_file(stream.folder, entry)
    services.close()

    # a new store (a SIEM that joins late) gets last year's events back, uuids and times kept
    target = open_services(tmp_path / "b")
    try:
        late = target.store.create_account(account.uuid, "Acme", NOW)
        plans = plan_replay(target.store, services.settings.archive_path)
        first = replay(target.writer, plans, unchecked=True)  # a new store: its log holds no archived index
        assert (first.files, first.events, first.stored, first.duplicates) == (20, TOTAL, TOTAL, 0)
        assert stream_uuids(target, late) == before
        again = replay(target.writer, plans, unchecked=True)
        assert (again.stored, again.duplicates) == (0, TOTAL)
        assert held(target, late) == TOTAL
    finally:
        target.close()


def test_late_events_are_merged_into_their_day_and_never_purged_unarchived(services: Services) -> None:
    account = services.store.create_account(new_id(), "Acme", NOW)
    fill(services, account, days=2, per_day=100)
    services.retention.apply(accounts=[account])
    day0 = NOW - 202 * DAY
    late = [audit(day0 + 5 * S, 9999)]
    services.writer.write(account.id, AUDIT, late)
    result = audit_result(services.retention.apply(accounts=[account]))
    assert (result.archived, result.purged) == (1, 1)  # merged: the day's file now holds 101 events
    [stream] = list(manifests(services.settings.archive_path))
    assert sorted(f.events for f in stream.files) == [100, 101]
    assert held(services, account) == 0


def test_retention_per_account_and_stream(services: Services) -> None:
    a = services.store.create_account(new_id(), "Keeps", NOW)
    b = services.store.create_account(new_id(), "Default", NOW)
    fill(services, a, days=1, per_day=10)
    fill(services, b, days=1, per_day=10)
    services.retention.set_policy(CLI, a, AUDIT, 400, "none")
    assert services.retention.policy(b.id, AUDIT).days == 120
    services.retention.apply()
    assert held(services, a) == 10 + 1  # 400 days: kept (+1: the change is audited)
    assert held(services, b) == 0


def test_purge_without_archive(tmp_path: Path) -> None:
    s = open_services(tmp_path / "d", archive_format="none")
    try:
        account = s.store.create_account(new_id(), "Acme", NOW)
        fill(s, account, days=3, per_day=10)
        result = audit_result(s.retention.apply(accounts=[account]))
        assert (result.purged, result.files) == (30, [])
        assert not s.settings.archive_path.exists()
    finally:
        s.close()


def test_unwritable_archive_folder_stops_the_purge(services: Services) -> None:
    account = services.store.create_account(new_id(), "Acme", NOW)
    fill(services, account, days=2, per_day=50)
    root = services.settings.archive_path
    root.mkdir(parents=True)
    root.chmod(0o500)
    try:
        if os.access(root, os.W_OK):  # root ignores permission bits: make the folder a file instead
            root.chmod(0o700)
            shutil.rmtree(root)
            root.write_text("not a folder")
        result = audit_result(services.retention.apply(accounts=[account]))
    finally:
        if root.is_dir():
            root.chmod(0o700)
    assert result.error and "cannot write the archive" in result.error
    assert (result.purged, result.archived) == (0, 0)
    assert held(services, account) == 100


def test_disk_full_midway_keeps_everything_not_archived(services: Services) -> None:
    account = services.store.create_account(new_id(), "Acme", NOW)
    fill(services, account, days=4, per_day=500)
    files: list[Any] = []

    def full_on_third_file(written: int) -> None:
        if len(files) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    services.retention.fault = full_on_third_file  # called with the bytes written so far
    add = archive_module.StreamArchive.add  # each day's file, written before its batch is committed

    def counting(self: archive_module.StreamArchive, *args: Any, **kwargs: Any) -> archive_module.FileEntry:
        entry = add(self, *args, **kwargs)
        files.append(entry)
        return entry

    archive_module.StreamArchive.add = counting  # type: ignore[method-assign]
    try:
        result = audit_result(services.retention.apply(accounts=[account]))
    finally:
        archive_module.StreamArchive.add = add  # type: ignore[method-assign]
    assert result.error and "No space left on device" in result.error
    assert (len(result.files), result.archived, result.purged) == (2, 1000, 1000)
    assert held(services, account) == 1000  # the two days not archived stay
    [stream] = list(manifests(services.settings.archive_path))
    assert len(stream.files) == 2
    leftovers = [p for p in stream.folder.rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # the partial temporary file was removed
    services.retention.fault = None
    again = audit_result(services.retention.apply(accounts=[account]))  # space again: the rest goes
    assert again.error is None and again.purged == 1000


def _mount_tiny_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_real_full_disk_on_a_tiny_tmpfs(tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    if not _mount_tiny_tmpfs(mount):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected ENOSPC test covers this")
    try:
        s = open_services(tmp_path / "d", archive_dir=mount, archive_format="jsonl")
        try:
            account = s.store.create_account(new_id(), "Acme", NOW)
            fill(s, account, days=3, per_day=20_000)  # ~1.5 MB compressed per day: the second day cannot fit
            result = audit_result(s.retention.apply(accounts=[account]))
            assert result.error and "No space left on device" in result.error
            kept = held(s, account)
            archived = sum(f.events for st in manifests(mount) for f in st.files)
            assert kept + archived == 60_000 and kept >= 20_000
        finally:
            s.close()
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_verify_finds_tampering_and_replay_refuses_it(services: Services) -> None:
    account = services.store.create_account(new_id(), "Acme", NOW)
    fill(services, account, days=2, per_day=20)
    services.retention.apply(accounts=[account])
    [stream] = list(manifests(services.settings.archive_path))
    path = stream.folder / stream.files[0].path
    lines = gzip.decompress(path.read_bytes()).splitlines()
    path.write_bytes(gzip.compress(b"\n".join(lines[:-1]) + b"\n"))
    with pytest.raises(ArchiveError, match=r"SHA-256|bytes"):
        verify_file(stream.folder, stream.files[0])
    with pytest.raises(ArchiveError):
        replay(services.writer, plan_replay(services.store, services.settings.archive_path))
    assert orjson.loads(lines[0])["uuid"]


def test_processes_sharing_an_archive_folder_take_turns(services: Services) -> None:
    """A run holds a lock on the archive folder: a server's scheduled run that finds it taken
    (another process is applying retention) skips; `retention apply` (wait=True) would wait."""
    account = services.store.create_account(new_id(), "Acme", NOW)
    fill(services, account, days=2, per_day=10)
    root = services.settings.archive_path
    root.mkdir(parents=True)
    (root / LOCK_FILE).write_bytes(b"")  # left by a release that locked a file in the folder
    other_process = os.open(root, os.O_RDONLY)  # flock locks are per open file description
    try:
        fcntl.flock(other_process, fcntl.LOCK_EX)
        assert services.retention.apply_shared() == []
        assert held(services, account) == 20
    finally:
        os.close(other_process)
    result = audit_result(services.retention.apply_shared(wait=True))
    assert (result.archived, result.purged) == (20, 20)
    assert survey(root).problems == []  # an old lock file is not a problem for `archive verify`


def test_a_run_holds_the_archive_folder_when_lock_files_are_deleted(services: Services) -> None:
    """The lock was a file in the folder (`.retention.lock`): deleting it while a run held it (a
    cleanup of stale lock files) let a second run in beside the first, both writing the same days
    and manifests. Now the folder itself is locked: a run started meanwhile skips."""
    account = services.store.create_account(new_id(), "Acme", NOW)
    other = services.store.create_account(new_id(), "Other", NOW)
    fill(services, account, days=2, per_day=10)
    root = services.settings.archive_path
    beside: list[list[Any]] = []

    def meanwhile(what: str, done: int) -> None:
        if not beside:
            beside.append([])
            for leftover in root.iterdir():
                if leftover.name.endswith(".lock"):
                    leftover.unlink()
            r = services.retention  # another process's service: its own in-process lock
            second = RetentionService(r.settings, r.store, r.people, r.audit, r.clock)
            beside[0] = list(second.apply_shared(accounts=[other]))

    result = audit_result(services.retention.apply_shared(meanwhile, [account]))
    assert beside == [[]]
    assert (result.archived, result.purged) == (20, 20)
