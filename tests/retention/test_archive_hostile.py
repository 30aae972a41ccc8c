"""Archive inputs chosen to hurt: every one is a clear error, bounded in time and memory, and
nothing outside the archive folder is read (docs/retention.md, "Reading archives")."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import siemgate
from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from siemgate.retention.archive import (
    MANIFEST,
    ArchiveError,
    FileEntry,
    StreamArchive,
    is_temporary,
    load_manifest,
    read_rows,
    verify_file,
)
from siemgate.retention.survey import MAX_UNLISTED, survey
from siemgate.tlog.archive_verify import verify_archive
from siemgate.tlog.keys import PublicKeyring
from support.soak import sized

from .helpers import NOW, peak_growth_mib

ACCOUNT = "A" * 26
DAY = "2030-03-17"  # NOW's day
ROWS = sized(150_000, 400_000)  # tiny rows: a few MiB on disk, held as lists before: 45 MiB (120 for 400,000)
MERGE_ROWS = sized(150_000, 400_000)  # the merge held ~4.8 KiB a row before (1,935 MiB for 400,000)


def _rows(n: int, start: int = 0) -> list[tuple[int, str, bytes]]:
    """`n` tiny events of DAY, in (timestamp, uuid) order."""
    out = []
    for i in range(start, start + n):
        ts = NOW + i * 1000
        uuid = f"u{i:09d}"
        out.append((ts, uuid, orjson.dumps({"uuid": uuid, "timestamp": format_ns(ts)})))
    return out


def _archive(root: Path, rows: int, fmt: str = "jsonl") -> StreamArchive:
    archive = StreamArchive(root, ACCOUNT, "Acme", Feature.AUDITEVENTS, fmt)
    data = _rows(rows)
    archive.write_day(DAY, data, {(ts, uuid): i for i, (ts, uuid, _) in enumerate(data)})
    return archive


def _entry(archive: StreamArchive) -> FileEntry:
    manifest = load_manifest(archive.dir)
    assert manifest is not None
    return FileEntry(**manifest["files"][archive.day_file(DAY)])


@pytest.mark.soak
def test_verifying_a_file_of_a_million_tiny_rows_keeps_no_list_per_row(tmp_path: Path) -> None:
    """verify_file kept every row's timestamp, the sidecar's bytes, its lines and every index in
    lists: a file of hundreds of millions of tiny rows (a few MiB on disk) grew the reader without
    bound. It now reads the file and its sidecar in step."""
    archive = _archive(tmp_path, ROWS)
    code = (
        f"folder = Path({str(archive.dir)!r})\n"
        "m = archive.load_manifest(folder)\n"
        "entry = archive.FileEntry(**next(iter(m['files'].values())))\n"
        "archive.verify_file(folder, entry)\n"
        f"assert sum(1 for _ in archive.read_indices(folder, entry)) == {ROWS}\n"
    )
    assert peak_growth_mib(code) < 20  # 150,000 rows: 45 MiB before, 2 after (400,000: 120, 2)


@pytest.mark.soak
def test_a_late_event_merged_into_a_large_day_does_not_read_the_day_whole(tmp_path: Path) -> None:
    """The merge made a dict of every archived row, a sorted list and an index list before writing."""
    archive = _archive(tmp_path, MERGE_ROWS)
    late = _rows(1, start=2_000_000)[0]
    code = (
        f"a = archive.StreamArchive(Path({str(tmp_path)!r}), {ACCOUNT!r}, 'Acme', Feature.AUDITEVENTS, 'jsonl')\n"
        f"entry = a.write_day({DAY!r}, [({late[0]}, {late[1]!r}, {late[2]!r})], {{({late[0]}, {late[1]!r}): 7}})\n"
        f"assert entry.events == {MERGE_ROWS + 1}, entry\n"
    )
    assert peak_growth_mib(code) < 40  # 400,000 rows: 1,935 MiB before, 12 after
    entry = _entry(archive)
    verify_file(archive.dir, entry)
    assert entry.events == entry.indexed == MERGE_ROWS + 1


def test_a_symlink_in_the_archive_folder_is_never_read(tmp_path: Path) -> None:
    """A listed file replaced by a symbolic link to a file elsewhere (here, an identical copy: it
    would verify) was read through the link."""
    archive = _archive(tmp_path / "archive", 10)
    path = archive.dir / archive.day_file(DAY)
    outside = tmp_path / "elsewhere.jsonl.gz"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(ArchiveError, match="symbolic link"):
        verify_file(archive.dir, _entry(archive))
    year = archive.dir / DAY[:4]  # a folder on the way that is a link
    moved = tmp_path / "year"
    year.rename(moved)
    moved.joinpath(path.name).unlink()
    moved.joinpath(path.name).write_bytes(outside.read_bytes())
    year.symlink_to(moved)
    with pytest.raises(ArchiveError, match="symbolic link"):
        verify_file(archive.dir, _entry(archive))


def test_a_gzip_bomb_of_empty_lines_stops_at_the_first(tmp_path: Path) -> None:
    """Empty lines were skipped: a file of a few hundred KiB holding GiBs of newlines was read to its
    end. siemgate writes no empty line: the first is an error."""
    archive = _archive(tmp_path, 1)
    path = archive.dir / archive.day_file(DAY)
    with gzip.open(path, "wb") as f:
        for _ in range(256):
            f.write(b"\n" * (1 << 20))
    data = path.read_bytes()
    entry = _entry(archive)
    manifest = orjson.loads((archive.dir / MANIFEST).read_bytes())
    manifest["files"][entry.path].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (archive.dir / MANIFEST).write_bytes(orjson.dumps(manifest))
    with pytest.raises(ArchiveError, match="line 1 is empty"):
        verify_file(archive.dir, _entry(archive))


def test_a_huge_manifest_is_refused_unread(tmp_path: Path) -> None:
    archive = _archive(tmp_path, 1)
    manifest = orjson.loads((archive.dir / MANIFEST).read_bytes())
    manifest["padding"] = "x" * (65 * 1024 * 1024)
    (archive.dir / MANIFEST).write_bytes(orjson.dumps(manifest))
    with pytest.raises(ArchiveError, match="more than the"):
        load_manifest(archive.dir)
    assert any("more than the" in str(p) for p in survey(tmp_path).problems)
    # siemgate-verify archive read it whole (a manifest of any size, however well it compresses)
    report = verify_archive(archive.dir, PublicKeyring(()))
    assert [m for _, m in report.problems] == [
        f"{archive.dir / MANIFEST} cannot be read: it is {(archive.dir / MANIFEST).stat().st_size} bytes,"
        " more than the 67108864 siemgate reads"
    ]


def test_a_folder_of_many_stray_files_is_reported_in_bounded_lines(tmp_path: Path) -> None:
    """Every unlisted file was one problem (a folder of millions of empty files: millions of lines)."""
    archive = _archive(tmp_path, 1)
    stray = archive.dir / "stray"
    stray.mkdir()
    for n in range(3000):
        (stray / f"{n}\nwith a newline").touch()
    problems = survey(tmp_path).problems
    assert 100 <= len(problems) <= 101, len(problems)
    assert "2900 more files not in the manifest" in str(problems[-1])


def _parquet_of(tmp_path: Path, table: object, **options: object) -> Path:
    import pyarrow.parquet as pq

    path = tmp_path / "2030" / f"{DAY}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", **options)  # type: ignore[arg-type,unused-ignore]  # typed in newer pyarrow
    return path


@pytest.mark.parametrize(
    ("what", "expected"),
    [("value", "a page declares"), ("footer", "its footer says"), ("columns", "columns, more than")],
)
def test_a_parquet_file_declaring_too_much_is_refused_before_it_is_read(
    tmp_path: Path, what: str, expected: str
) -> None:
    """pyarrow materialised a 200 MiB value (a few KiB on disk), a footer of 20 MiB of key-value
    metadata, a schema of 3,000 columns, before any check."""
    import pyarrow as pa

    if what == "value":
        table = pa.table({"timestamp_ns": [NOW], "uuid": ["u"], "event": ["a" * (200 * 1024 * 1024)]})
    elif what == "footer":
        table = pa.table({"timestamp_ns": [NOW], "uuid": ["u"], "event": ["{}"]})
        table = table.replace_schema_metadata({"padding": "x" * (20 * 1024 * 1024)})
    else:
        table = pa.table({"timestamp_ns": [NOW], "uuid": ["u"], "event": ["{}"], **{f"c{i}": [i] for i in range(3000)}})
    path = _parquet_of(tmp_path, table)
    del table
    assert what != "value" or path.stat().st_size < 1024 * 1024  # 200 MiB in a few KiB
    with pytest.raises(ArchiveError, match=expected) as raised:
        sum(1 for _ in read_rows(path))
    assert str(path) in str(raised.value)
    if what == "value":
        code = (
            f"try:\n    sum(1 for _ in archive.read_rows(Path({str(path)!r})))\n"
            "except archive.ArchiveError:\n    pass\n"
        )
        assert peak_growth_mib(code) < 30  # 600+ MiB before


def test_a_gzip_file_named_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / f"{DAY}.parquet"
    path.write_bytes(gzip.compress(b"{}\n" * 1000))
    with pytest.raises(ArchiveError, match="not a Parquet file"):
        list(read_rows(path))


_KILLED = """
import sys, time
from pathlib import Path
import orjson
from siemgate.model.features import Feature
from siemgate.retention.archive import StreamArchive
root, account, day, at, ts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
archive = StreamArchive(Path(root), account, "Acme", Feature.AUDITEVENTS, "jsonl")
def stop(step):
    if step == at:
        print(step, flush=True)
        time.sleep(3600)  # killed here by the test
archive.stop = stop
body = orjson.dumps({"uuid": "late", "timestamp": "2030-03-17T12:00:00Z"})
archive.write_day(day, [(ts, "late", body)], {(ts, "late"): 99})
"""


def _merge_killed_at(root: Path, at: str) -> None:
    """A late event merged into DAY's archive by a process killed (SIGKILL) at step `at`."""
    env = {**os.environ, "PYTHONPATH": str(Path(siemgate.__file__).parents[1])}
    late = NOW + 12 * 3600 * 1_000_000_000
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(root), ACCOUNT, DAY, at, str(late)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == at
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("at", ["written", "committed", "replaced"])
def test_a_merge_killed_at_any_step_leaves_the_old_day_or_completes_to_the_new(tmp_path: Path, at: str) -> None:
    """Killed (SIGKILL) between replacing the sidecar and the data file, a merge left a new sidecar
    beside the old file, or a new file under the old manifest entry: an archive that verified
    neither way. Now the manifest records the checked write before anything is replaced: readers
    report it as interrupted, and the next write (or `recover`) completes it."""
    archive = _archive(tmp_path, 100)
    before = _entry(archive)
    _merge_killed_at(tmp_path, at)
    problems = [str(p) for p in survey(tmp_path).problems]
    if at == "written":  # before the commit point: the old day, whole
        assert problems == [] and _entry(archive) == before
        verify_file(archive.dir, before)
    else:
        assert any("was stopped (killed)" in p for p in problems), problems
    recovered = StreamArchive(tmp_path, ACCOUNT, "Acme", Feature.AUDITEVENTS, "jsonl")
    recovered.recover()
    after = _entry(recovered)
    verify_file(recovered.dir, after)
    assert survey(tmp_path).problems == []
    assert after.events == (100 if at == "written" else 101)


@pytest.mark.parametrize("at", ["written", "committed"])
def test_the_next_run_removes_the_temporary_files_a_killed_run_left(tmp_path: Path, at: str) -> None:
    """Killed before its commit point, a write left its temporary files (the day file and its
    sidecar, `.<name>.tmp-<pid>`) for good: readers skip them, nothing removed them. The next
    run's `recover` now removes them, after putting in place those a pending write names; other
    files, a folder named like a temporary file and what a link points to are left alone."""
    archive = _archive(tmp_path, 100)
    year = archive.dir / DAY[:4]
    _merge_killed_at(tmp_path, at)
    left = sorted(p.name for p in year.iterdir() if is_temporary(p.name))
    assert len(left) == 2, left
    (archive.dir / f".{MANIFEST}.tmp-4194303").write_bytes(b'{"half": ')  # a manifest write cut short
    (year / "notes.txt").write_text("the operator's")
    (year / ".kept.tmp-1").mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (year / ".link.tmp-2").symlink_to(victim)  # the link goes, never what it points to
    StreamArchive(tmp_path, ACCOUNT, "Acme", Feature.AUDITEVENTS, "jsonl").recover()
    assert victim.read_text() == "keep"
    assert sorted(p.name for p in archive.dir.iterdir()) == [DAY[:4], MANIFEST]
    names = sorted(p.name for p in year.iterdir())
    assert names == sorted([".kept.tmp-1", f"{DAY}.jsonl.gz", f"{DAY}.log.json", "notes.txt"]), names
    assert _entry(archive).events == (100 if at == "written" else 101)
    verify_file(archive.dir, _entry(archive))


def test_a_pending_write_naming_files_outside_its_day_is_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "archive", 3)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    manifest = orjson.loads((archive.dir / MANIFEST).read_bytes())
    entry = dict(manifest["files"][archive.day_file(DAY)])
    manifest["pending"] = {"entry": entry, "replace": [["../../../victim", entry["path"]]], "rewrite": None}
    (archive.dir / MANIFEST).write_bytes(orjson.dumps(manifest))
    with pytest.raises(ArchiveError, match="pending write names"):
        archive.recover()
    assert victim.read_bytes() == b"keep"


_KILLED_BATCH = """
import sys, time
from pathlib import Path
import orjson
from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from siemgate.retention.archive import StreamArchive, day_of
root, account, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
archive = StreamArchive(Path(root), account, "Acme", Feature.AUDITEVENTS, "jsonl")
replaced = []
def stop(step):
    replaced.append(step)
    if replaced.count("replaced") == 3:  # the first day in place, the second's sidecar: killed here
        print(step, flush=True)
        time.sleep(3600)
archive.stop = stop
batch = archive.begin()
for n in range(3):
    ts = first + n * 86400 * 10**9
    body = orjson.dumps({"uuid": f"u{n}", "timestamp": format_ns(ts)})
    archive.add(batch, day_of(ts), [((ts, f"u{n}", body), n)])
archive.commit(batch)
"""


def test_a_batch_killed_while_its_files_are_put_in_place_completes_whole(tmp_path: Path) -> None:
    """Days committed together are listed in one pending record: killed (SIGKILL) while renaming
    them, readers report the batch as interrupted and the next `recover` puts every day in place."""
    env = {**os.environ, "PYTHONPATH": str(Path(siemgate.__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_BATCH, str(tmp_path), ACCOUNT, str(NOW)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "replaced"
    finally:
        proc.kill()
        proc.wait()
    problems = [str(p) for p in survey(tmp_path).problems]
    assert any("a write of 3 days" in p and "was stopped (killed)" in p for p in problems), problems
    recovered = StreamArchive(tmp_path, ACCOUNT, "Acme", Feature.AUDITEVENTS, "jsonl")
    manifest = recovered.recover()
    assert len(manifest["files"]) == 3 and "pending" not in manifest
    for entry in manifest["files"].values():
        verify_file(recovered.dir, FileEntry(**entry))
    assert survey(tmp_path).problems == []


def test_a_folder_of_many_stray_entries_is_surveyed_within_bounds(tmp_path: Path) -> None:
    """The archive folder and an account's folder were listed whole and sorted, each stray entry
    a problem of its own: 20,000 stray files there were 40,000 problems (and as many paths held
    at once). Now, as for a stream folder's unlisted files, MAX_UNLISTED are named and the rest
    counted, and only folders (accounts) and stream names are held for sorting."""
    archive = _archive(tmp_path, 3)
    for n in range(20_000):
        (tmp_path / f"stray-{n}").touch()
        (archive.dir.parent / f"stray-{n}").touch()
    problems = [str(p) for p in survey(tmp_path).problems]
    assert len(problems) <= 2 * (MAX_UNLISTED + 1), len(problems)
    assert any(f"{20_000 - MAX_UNLISTED} more entries" in p and str(tmp_path) in p for p in problems), problems[-3:]
    assert sum(f"{20_000 - MAX_UNLISTED} more entries" in p for p in problems) == 2
    assert [s.account for s in survey(tmp_path).streams] == [ACCOUNT]
