"""Archives are as strict as the cursor: `archive verify` fails on any missing, extra or altered
file or manifest and names it; retention never replaces an archived day by less than it holds
(late events are merged into what is archived, or the run stops loudly); replay picks one account
out of a shared folder; failures are messages, never tracebacks."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.config import load_settings
from siemgate.errors import ConfigError
from siemgate.model.ids import new_id
from siemgate.retention.archive import MANIFEST, ArchiveError, read_rows
from siemgate.tlog.bundle import MAX_LINE_BYTES

from .helpers import (
    AUDIT,
    DAY,
    NOW,
    REPLAY_RECORD,
    S,
    audit,
    audit_result,
    fill,
    held,
    open_services,
    run_cli,
    stream_uuids,
)

ARCHIVED_DAY = NOW - 201 * DAY  # the one day `fill(days=1)` writes


def _archive(data_dir: Path, names: tuple[str, ...] = ("Acme",), days: int = 2, per_day: int = 20) -> list[str]:
    """A store with these accounts, each with `days` archived and purged days; their uuids."""
    services = open_services(data_dir, archive_format="jsonl")
    try:
        uuids = []
        for name in names:
            account = services.store.create_account(new_id(), name, NOW)
            fill(services, account, days=days, per_day=per_day)
            uuids.append(account.uuid)
        assert all(r.error is None for r in services.retention.apply())
        return uuids
    finally:
        services.close()


def _stream(root: Path, account: str) -> Path:
    return root / account / AUDIT.value


def _rewrite_manifest(folder: Path, change: Callable[[dict[str, Any]], object]) -> None:
    data = orjson.loads((folder / MANIFEST).read_bytes())
    change(data)
    (folder / MANIFEST).write_bytes(orjson.dumps(data))


def _first_entry(data: dict[str, object]) -> dict[str, object]:
    files = data["files"]
    assert isinstance(files, dict)
    return files[min(files)]  # type: ignore[no-any-return]


def _no_traceback(done: object) -> None:
    text = f"{getattr(done, 'stdout', '')}{getattr(done, 'stderr', '')}"
    assert "Traceback" not in text and 'File "' not in text, text


# --- verify ---------------------------------------------------------------------------------------


def _remove_manifest(folder: Path) -> str:
    (folder / MANIFEST).unlink()
    return str(folder / MANIFEST)


def _add_orphan(folder: Path) -> str:
    orphan = folder / "2029" / "2029-01-01.jsonl.gz"
    shutil.copy(next(folder.glob("*/*.jsonl.gz")), orphan)
    return str(orphan)


def _drop_entry(folder: Path) -> str:
    """A manifest rolled back to before the last day was archived."""
    _rewrite_manifest(folder, lambda d: d["files"].pop(max(d["files"])))
    return "not in the manifest"


def _alter_last_ts(folder: Path) -> str:
    _rewrite_manifest(folder, lambda d: _first_entry(d).update(last_ts="2029-01-01T00:00:00Z"))
    return "the manifest says"


def _delete_file(folder: Path) -> str:
    path = next(folder.glob("*/*.jsonl.gz"))
    path.unlink()
    return str(path)


def _move_manifest(folder: Path) -> str:
    """The manifest of one account's stream copied over another's."""
    other = folder.parent.parent / "OTHER22222222222222222222A" / AUDIT.value
    other.mkdir(parents=True)
    shutil.copy(folder / MANIFEST, other / MANIFEST)
    return "lies in the folder of account 'OTHER22222222222222222222A'"


def _stray_file(folder: Path) -> str:
    stray = folder.parent / "notes.txt"
    stray.write_text("hello")
    return str(stray)


def _garbled_manifest(folder: Path) -> str:
    (folder / MANIFEST).write_bytes(b'{"version": 1, "files": ')
    return "the manifest cannot be read"


def _delete_sidecar(folder: Path) -> str:
    path = next(folder.glob("*/*.log.json"))
    path.unlink()
    return f"{path}: missing (the manifest lists it as the log indices of"


def _alter_sidecar(folder: Path) -> str:
    """One row's log index changed in a JSON Lines file's sidecar."""
    path = next(folder.glob("*/*.log.json"))
    lines = path.read_bytes().splitlines()
    index, ts = orjson.loads(lines[1])
    lines[1] = orjson.dumps([index + 1, ts])
    path.write_bytes(b"\n".join(lines) + b"\n")
    return f"{path}: SHA-256"


def _folder_in_place(folder: Path) -> str:
    path = next(folder.glob("*/*.jsonl.gz"))
    path.unlink()
    path.mkdir()
    return f"{path}: not a regular file"


def _fifo_in_place(folder: Path) -> str:
    """A FIFO where a day file was, the manifest saying 0 bytes: reading it would never end."""
    path = next(folder.glob("*/*.jsonl.gz"))
    path.unlink()
    os.mkfifo(path)
    _rewrite_manifest(folder, lambda d: d["files"][path.relative_to(folder).as_posix()].update(bytes=0))
    return f"{path}: not a regular file"


def _folder_for_sidecar(folder: Path) -> str:
    path = next(folder.glob("*/*.log.json"))
    path.unlink()
    path.mkdir()
    return f"{path}: not a regular file"


def _remove_day_with_its_entry(folder: Path) -> str:
    """A day's file, its sidecar and its manifest entry deleted: the folder is consistent with
    itself, but the manifest's purge record names the file as archived."""
    data = orjson.loads((folder / MANIFEST).read_bytes())
    name = min(data["files"])
    entry = data["files"].pop(name)
    (folder / name).unlink()
    (folder / entry["index_file"]).unlink()
    (folder / MANIFEST).write_bytes(orjson.dumps(data))
    return f"{folder / name}: missing from the manifest, which records that the purge at audit index"


def _count_as_text(folder: Path) -> str:
    _rewrite_manifest(folder, lambda d: _first_entry(d).update(events=str(_first_entry(d)["events"])))
    return "events is '20', not a count"


@pytest.mark.parametrize(
    "damage",
    [
        _folder_in_place,
        _fifo_in_place,
        _folder_for_sidecar,
        _count_as_text,
        _remove_day_with_its_entry,
        _delete_sidecar,
        _alter_sidecar,
        _remove_manifest,
        _add_orphan,
        _drop_entry,
        _alter_last_ts,
        _delete_file,
        _move_manifest,
        _stray_file,
        _garbled_manifest,
    ],
)
def test_verify_fails_on_every_missing_extra_or_altered_file_or_manifest(
    tmp_path: Path, damage: Callable[[Path], str]
) -> None:
    data_dir = tmp_path / "data"
    [account] = _archive(data_dir)
    root = data_dir / "archive"
    assert run_cli(data_dir, "archive", "verify").returncode == 0
    said = damage(_stream(root, account))
    done = run_cli(data_dir, "archive", "verify", str(root))
    assert done.returncode == 1, done.stderr
    assert said in done.stderr, done.stderr
    assert "BAD" in done.stderr and "problem(s)" in done.stderr
    _no_traceback(done)


# --- retention never shrinks an archived day --------------------------------------------------------


def _lose_manifest(folder: Path) -> None:
    (folder / MANIFEST).unlink()


def _roll_back_manifest(folder: Path) -> None:
    _rewrite_manifest(folder, lambda d: d.update(files={}))


def _lose_file(folder: Path) -> None:
    next(folder.glob("*/*.jsonl.gz")).unlink()


def _truncate_file(folder: Path) -> None:
    path = next(folder.glob("*/*.jsonl.gz"))
    path.write_bytes(path.read_bytes()[:-40])


@pytest.mark.parametrize("damage", [_lose_manifest, _roll_back_manifest, _lose_file, _truncate_file])
def test_a_late_event_never_replaces_an_archived_day_it_cannot_read(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    """100 events archived and purged; the archive is damaged; a late event for that day arrives.
    The next run stops on that stream (naming the problem), the archive keeps what it held, and
    the late event stays in the store until the archive is whole again."""
    data_dir = tmp_path / "data"
    [uuid] = _archive(data_dir, days=1, per_day=100)
    folder = _stream(data_dir / "archive", uuid)
    [path] = folder.glob("*/*.jsonl.gz")
    saved = {p.name: p.read_bytes() for p in (path, folder / MANIFEST)}
    damage(folder)
    services = open_services(data_dir, archive_format="jsonl")
    try:
        account = services.store.get_account(uuid)
        services.writer.write(account.id, AUDIT, [audit(ARCHIVED_DAY + 5 * S, 1)])
        result = audit_result(services.retention.apply(accounts=[account]))
        assert result.error is not None and (str(folder) in result.error), result.error
        assert (result.archived, result.purged) == (0, 0)
        assert held(services, account) == 1  # the late event waits in the store
        if path.exists() and path.read_bytes() == saved[path.name]:
            assert sum(1 for _ in read_rows(path)) == 100  # what was archived is still there
        # Restored from a backup: the next run merges the late event into the day (101).
        path.write_bytes(saved[path.name])
        (folder / MANIFEST).write_bytes(saved[MANIFEST])
        again = audit_result(services.retention.apply(accounts=[account]))
        assert again.error is None and (again.archived, again.purged) == (1, 1)
        assert sum(1 for _ in read_rows(path)) == 101
    finally:
        services.close()
    assert run_cli(data_dir, "archive", "verify").returncode == 0


# --- replay out of a shared folder ---------------------------------------------------------------


def test_replay_picks_one_account_out_of_a_folder_holding_several(tmp_path: Path) -> None:
    source = tmp_path / "source"
    acme, globex = _archive(source, names=("Acme", "Globex"), days=1, per_day=30)
    root = str(source / "archive")
    restore = tmp_path / "restore"
    services = open_services(restore)
    try:
        target = services.store.create_account(new_id(), "Restore", NOW)
    finally:
        services.close()

    # Into another account: which archived account is ambiguous, and the message says the choices.
    done = run_cli(restore, "archive", "replay", root, "--account", "Restore")
    assert done.returncode == 1, done.stderr
    assert acme in done.stderr and globex in done.stderr and "--archived-account" in done.stderr
    _no_traceback(done)
    # Acme is not in this store: no log here can vouch for its rows, so they are replayed only when told.
    done = run_cli(restore, "archive", "replay", root, "--account", "Restore", "--archived-account", acme)
    assert done.returncode == 1, done.stderr
    assert f"were archived from account {acme}, which is not in this store" in done.stderr, done.stderr
    assert "30 row(s)" in done.stderr and "--unchecked" in done.stderr, done.stderr
    _no_traceback(done)
    args = ("archive", "replay", root, "--account", "Restore", "--archived-account", acme, "--unchecked")
    done = run_cli(restore, *args)
    assert done.returncode == 0, done.stderr
    assert "30 stored" in done.stderr

    # Into the archived account itself, in a store holding both: only that account's archive.
    done = run_cli(source, "archive", "replay", root, "--account", "Globex")
    assert done.returncode == 0, done.stderr
    assert "replayed 30 event(s) from 1 file(s): 30 stored" in done.stderr
    services = open_services(source)
    try:
        acme_account, globex_account = (services.store.get_account(u) for u in (acme, globex))
        assert len(stream_uuids(services, globex_account)) == 30
        assert len(stream_uuids(services, acme_account)) == 0
        replays = [b for batch in services.store.iter_events(globex_account.id, AUDIT, 0, 2**63 - 1) for *_, b in batch]
        assert sum(REPLAY_RECORD in body for body in replays) == 2  # the replayed file: started, then done
    finally:
        services.close()
    services = open_services(restore)
    try:
        assert len(stream_uuids(services, target)) == 30
    finally:
        services.close()


# --- messages, not tracebacks ---------------------------------------------------------------------


def test_archive_failures_are_messages_not_tracebacks(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    [uuid] = _archive(data_dir, days=1, per_day=10)
    root = data_dir / "archive"
    folder = _stream(root, uuid)
    [path] = folder.glob("*/*.jsonl.gz")
    path.write_bytes(path.read_bytes()[:-10])
    for args, said in (
        (("archive", "replay"), f"{path}: "),
        (("archive", "verify"), f"BAD {path}: "),
        (("archive", "verify", str(tmp_path / "nowhere")), "no archive folder there"),
        (("archive", "replay", str(tmp_path / "nowhere")), "no archive folder there"),
        (("archive", "replay", "--archived-account", "NOSUCH"), "holds no archive of account NOSUCH"),
        (("archive", "replay", "--since", "last tuesday"), "YYYY-MM-DD"),
    ):
        done = run_cli(data_dir, *args)
        assert done.returncode in (1, 2), (args, done.stderr)
        assert said in done.stderr, (args, done.stderr)
        _no_traceback(done)
    (folder / MANIFEST).write_text("[1, 2]")
    for args in (("archive", "verify"), ("archive", "replay"), ("archive", "list")):
        done = run_cli(data_dir, *args)
        assert "not a siemgate archive manifest" in done.stderr, (args, done.stderr)
        _no_traceback(done)


def test_replay_of_an_archive_with_one_altered_file_writes_nothing(tmp_path: Path) -> None:
    """Three archived days, one byte of the last day's file flipped inside its compressed data:
    replay names that file and stores none of the days, not even the two sound ones before it."""
    data_dir = tmp_path / "data"
    [uuid] = _archive(data_dir, days=3, per_day=10)
    folder = _stream(data_dir / "archive", uuid)
    path = sorted(folder.glob("*/*.jsonl.gz"))[-1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    done = run_cli(data_dir, "archive", "replay")
    assert done.returncode == 1 and str(path) in done.stderr, done.stderr
    _no_traceback(done)
    services = open_services(data_dir)
    try:
        account = services.store.get_account(uuid)
        assert held(services, account) == 0
        assert not [
            b
            for batch in services.store.iter_events(account.id, AUDIT, 0, 2**62)
            for *_, b in batch
            if REPLAY_RECORD in b
        ]
    finally:
        services.close()


def test_a_merged_day_put_back_from_an_older_copy_is_named(tmp_path: Path) -> None:
    """A day archived, then merged with a late event (the manifest records the rewrite); the day's
    file, sidecar and manifest entry put back as they were before the merge: the folder agrees
    with itself, not with the rewrite its manifest records."""
    data_dir = tmp_path / "data"
    [uuid] = _archive(data_dir, days=1, per_day=10)
    folder = _stream(data_dir / "archive", uuid)
    [path] = folder.glob("*/*.jsonl.gz")
    [sidecar] = folder.glob("*/*.log.json")
    old = {p: p.read_bytes() for p in (path, sidecar)}
    old_entry = orjson.loads((folder / MANIFEST).read_bytes())["files"]
    services = open_services(data_dir, archive_format="jsonl")
    try:
        account = services.store.get_account(uuid)
        services.writer.write(account.id, AUDIT, [audit(ARCHIVED_DAY + 5 * S, 1)])
        result = audit_result(services.retention.apply(accounts=[account]))
        assert result.error is None and len(result.merged) == 1
    finally:
        services.close()
    assert run_cli(data_dir, "archive", "verify").returncode == 0
    for p, data in old.items():
        p.write_bytes(data)
    _rewrite_manifest(folder, lambda d: d.update(files=old_entry))
    done = run_cli(data_dir, "archive", "verify")
    assert done.returncode == 1, done.stderr
    assert f"{path}: the manifest lists SHA-256" in done.stderr and "put back from an older copy" in done.stderr
    _no_traceback(done)


def test_an_archive_line_longer_than_any_event_is_named_not_read_whole(tmp_path: Path) -> None:
    """A JSON Lines file was read a line at a time, however long the line: a damaged or hostile
    file holding one huge line without a newline (a few hundred KiB of gzip) made `archive verify`
    and replay hold all of it in memory. Now a line is read up to MAX_LINE_BYTES, and the error
    names the file and the line."""
    data_dir = tmp_path / "data"
    [uuid] = _archive(data_dir, days=1, per_day=10)
    folder = _stream(data_dir / "archive", uuid)
    [path] = folder.glob("*/*.jsonl.gz")
    hostile = gzip.decompress(path.read_bytes()) + b"a" * (MAX_LINE_BYTES + 1)
    path.write_bytes(gzip.compress(hostile, compresslevel=1))

    def match(data: dict[str, Any]) -> None:  # the manifest rewritten to match (it is not signed)
        entry = _first_entry(data)
        entry["bytes"], entry["sha256"] = path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()

    _rewrite_manifest(folder, match)
    with pytest.raises(ArchiveError, match=f"line 11 is longer than {MAX_LINE_BYTES} bytes"):
        list(read_rows(path))
    done = run_cli(data_dir, "archive", "verify")
    assert done.returncode == 1 and f"BAD {path}: line 11 is longer than" in done.stderr, done.stderr
    _no_traceback(done)


def test_no_setting_lets_in_an_event_longer_than_an_archive_line(tmp_path: Path) -> None:
    """`ingest_max_event_bytes` had no upper bound: set above MAX_LINE_BYTES, an event stored
    under it made its day's archive fail when read back, so that stream's retention stopped for
    good. The setting is now at most a quarter of the line bound, and a larger one is refused at
    start, naming it."""
    with pytest.raises(ConfigError, match="invalid configuration: ingest_max_event_bytes") as info:
        load_settings(data_dir=tmp_path, ingest_max_event_bytes=MAX_LINE_BYTES)
    assert str(MAX_LINE_BYTES // 4) in str(info.value), info.value
    assert load_settings(data_dir=tmp_path, ingest_max_event_bytes=MAX_LINE_BYTES // 4).ingest_max_event_bytes


def test_replay_checks_every_row_against_the_log_also_rows_sharing_an_index(tmp_path: Path) -> None:
    """The log check kept one row per log index (the last), so an event added to a file (and its
    manifest rewritten to match) carrying the index of the genuine row after it was never checked,
    and came back into the archived account as a new leaf. Now every row is checked."""
    data_dir = tmp_path / "data"
    [uuid] = _archive(data_dir, days=1, per_day=10)
    folder = _stream(data_dir / "archive", uuid)
    [path] = folder.glob("*/*.jsonl.gz")
    [sidecar] = folder.glob("*/*.log.json")
    lines = gzip.decompress(path.read_bytes()).splitlines()
    forged = orjson.loads(lines[0]) | {"uuid": "0" * 26, "actor_uuid": "0" * 26}  # sorts before the genuine row
    path.write_bytes(gzip.compress(b"\n".join([orjson.dumps(forged), *lines]) + b"\n"))
    header, first, *rest = sidecar.read_bytes().splitlines()
    sidecar.write_bytes(b"\n".join([header, first, first, *rest]) + b"\n")  # the genuine row's index, twice

    def match(data: dict[str, Any]) -> None:  # the manifest rewritten to match (it is not signed)
        entry = _first_entry(data)
        entry["bytes"], entry["sha256"] = path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()
        entry["index_sha256"] = hashlib.sha256(sidecar.read_bytes()).hexdigest()
        entry["events"], entry["indexed"] = 11, 11

    _rewrite_manifest(folder, match)
    assert run_cli(data_dir, "archive", "verify").returncode == 0  # the folder agrees with itself
    done = run_cli(data_dir, "archive", "replay", str(data_dir / "archive"))
    assert done.returncode == 1 and f"{path}: row 0 is not the event the stream's signed log holds" in done.stderr
    _no_traceback(done)
    services = open_services(data_dir)
    try:
        assert held(services, services.store.get_account(uuid)) == 0  # nothing replayed
    finally:
        services.close()
