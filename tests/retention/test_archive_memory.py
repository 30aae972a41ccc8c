"""Archive files are read a bounded part at a time: a damaged or hostile file of many ordinary rows
that compresses extremely well is never held in memory whole by verify, replay or the merge."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from siemgate.retention import parquet
from siemgate.retention.archive import FileEntry, StreamArchive, day_path, index_path
from siemgate.tlog.archive_tables import TablesError
from siemgate.tlog.archive_verify import ArchiveInputError, verify_archive
from siemgate.tlog.bundle import MAX_LINE_BYTES, MAX_NOTE_BYTES, Manifest, write_bundle
from siemgate.tlog.entry import entry_for
from siemgate.tlog.keys import PublicKeyring, SignerKeyring
from siemgate.tlog.merkle import CompactRange
from siemgate.tlog.signer import Signer

from .helpers import NOW, peak_growth_mib

ROWS = 50_000
BODY = 2_000  # bytes of each event: ROWS of them are 100 MB read whole, a few KiB on disk
MANY = 60_000  # tiny archived events, each at its log index: ~45 MiB of Python objects before
ACCOUNT = "A" * 26
ORIGIN = f"events.test.example/siemgate/{ACCOUNT}/auditevents"


def _repetitive_parquet(path: Path) -> None:
    """A Parquet archive of ROWS copies of one event, dictionary-encoded: a few KiB on disk."""
    event = orjson.dumps({"uuid": "u", "timestamp": format_ns(NOW), "padding": "x" * BODY}).decode()
    same = pa.array([0] * ROWS, pa.int32())
    columns = [
        pa.array([NOW] * ROWS, pa.int64()),
        pa.DictionaryArray.from_arrays(same, pa.array(["u"])),
        pa.DictionaryArray.from_arrays(same, pa.array([event])),
    ]
    fields = [f for f in parquet.schema(Feature.AUDITEVENTS) if f.name in parquet.STORED]
    table = pa.Table.from_arrays(columns, names=[f.name for f in fields])
    pq.write_table(table, path, compression="zstd", store_schema=False)  # read back as strings


def _peak_growth_mib(code: str, path: Path) -> float:
    """peak_growth_mib of `code` reading `path` (bound in it as `path`); the rows read must be ROWS."""
    return peak_growth_mib(f"path = Path({str(path)!r})\n{code}\nassert rows == {ROWS}, rows")


def test_a_parquet_file_that_expands_a_lot_is_read_a_batch_at_a_time(tmp_path: Path) -> None:
    """parquet.read loaded the file's stored columns whole and made Python lists of them, so a
    file of a few KiB holding 100 MB of rows took hundreds of MiB to verify or replay. Now it is
    read BATCH_ROWS rows at a time, by `read_rows` and by `siemgate-verify archive` alike."""
    path = tmp_path / "2026-01-01.parquet"
    _repetitive_parquet(path)
    assert path.stat().st_size < 100_000
    read = "rows = sum(1 for _ in siemgate.retention.archive.read_rows(path))"
    assert _peak_growth_mib(read, path) < 40
    verify = "rows = sum(1 for _ in siemgate.tlog.archive_verify._rows(path.parent, path, {'format': 'parquet'}))"
    assert _peak_growth_mib(verify, path) < 40


def _signed_archive(tmp: Path, rows: int, origin: str = ORIGIN) -> tuple[Path, Path, Path]:
    """An archive folder of `rows` tiny events at log indices 0..rows-1 (one day, JSON Lines), its
    day-close checkpoint signed, and a bundle of the log's entries: (folder, public key, bundle)."""
    keyring = SignerKeyring.create(tmp / "signer.keys", origin.rsplit("/", 2)[0])
    public = tmp / "log.pub"
    public.write_text(keyring.public().text())
    data, entries, tree = [], [], CompactRange()
    for i in range(rows):
        ts, uuid = NOW + i * 1000, f"u{i:09d}"
        body = orjson.dumps({"uuid": uuid, "timestamp": format_ns(ts)})
        data.append((ts, uuid, body))
        entries.append(entry_for(ts, body))
        tree.append_leaf(entries[-1].leaf())
    note = Signer(keyring, tmp / "signer.state").sign(origin, rows, tree.root(), 0, [])
    archive = StreamArchive(tmp / "archive", ACCOUNT, "Acme", Feature.AUDITEVENTS, "jsonl")
    archive.write_day(format_ns(NOW)[:10], data, {(ts, uuid): i for i, (ts, uuid, _) in enumerate(data)}, note)
    write_bundle(tmp / "bundle", Manifest(origin, rows, 0, None), entries, [], [note], [], [])
    return archive.dir, public, tmp / "bundle"


def test_verifying_an_archive_of_many_rows_keeps_no_record_per_index_in_memory(tmp_path: Path) -> None:
    """`siemgate-verify archive` kept a record per archived index, the entry of every row and of
    every index, and the bundle's entries whole: its memory grew with the archive (an archive of
    hundreds of millions of events; a hostile folder of countless tiny rows, a few bytes each on
    disk). They are now in a SQLite file in a temporary directory (tlog/archive_tables.py)."""
    folder, public, bundle = _signed_archive(tmp_path, MANY)
    code = (
        "from siemgate.tlog.keys import PublicKeyring\n"
        f"report = siemgate.tlog.archive_verify.verify_archive(Path({str(folder)!r}),"
        f" PublicKeyring.load(Path({str(public)!r})), Path({str(bundle)!r}), max_age=0)\n"
        f"assert report.ok and report.counts == {{'archived': {MANY}}}, report.lines()\n"
    )
    assert peak_growth_mib(code) < 25  # 45 MiB before, 11 after (150,000 rows: 106 before, 12 after)


def test_the_verifiers_temporary_tables_are_removed_on_success_and_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, public, bundle = _signed_archive(tmp_path, 3)
    keys = PublicKeyring.load(public)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    assert verify_archive(folder, keys, bundle, max_age=0).ok
    assert list(temporary.iterdir()) == []
    (tmp_path / "other").mkdir()
    _, _, other_bundle = _signed_archive(tmp_path / "other", 3, origin=ORIGIN.replace(ACCOUNT, "B" * 26))
    with pytest.raises(ArchiveInputError, match="the bundle is of"):
        verify_archive(folder, keys, other_bundle, max_age=0)
    assert list(temporary.iterdir()) == []
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "nowhere"))
    with pytest.raises(TablesError, match=r"temporary tables in .*nowhere failed .*: set TMPDIR to a folder"):
        verify_archive(folder, keys, bundle, max_age=0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _verifier_folders(temporary: Path) -> list[Path]:
    return sorted(temporary.glob("siemgate-verify-*"))


def _holding_tables(temporary: Path) -> subprocess.Popen[str]:
    """A real process holding a verification's tables in `temporary` until its stdin closes."""
    code = (
        "import sys\nfrom siemgate.tlog.archive_tables import IndexTables\n"
        "with IndexTables():\n    print('ready', flush=True)\n    sys.stdin.read()\n"
    )
    env = {**os.environ, "TMPDIR": str(temporary), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_a_killed_verifiers_folder_is_removed_by_the_next_run_never_a_running_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`siemgate-verify archive` killed with SIGKILL mid-run left its folder (~180 bytes per
    archived row) in TMPDIR for good. Now the next verification removes the folders of dead
    verifiers, told apart from running ones by a lock their process holds."""
    folder, public, bundle = _signed_archive(tmp_path, MANY)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary), "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["-c", "from siemgate.tlog.verify_cli import entry_point; entry_point()", "archive", str(folder)]
    args += ["--key", str(public), "--entries", str(bundle), "--max-age", "0"]
    killed = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sum(_size(f / "tables.sqlite") for f in _verifier_folders(temporary)) < 256 * 1024:  # mid-run
        assert killed.poll() is None and time.monotonic() < deadline, "the verifier never filled its tables"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=20)
    [dead] = _verifier_folders(temporary)
    assert dead.joinpath("tables.sqlite").stat().st_size > 0
    running = _holding_tables(temporary)  # the next verifier, still running below
    try:
        [alive] = _verifier_folders(temporary)
        assert alive != dead  # the killed one's folder is gone
        monkeypatch.setattr(tempfile, "tempdir", str(temporary))
        (tmp_path / "small").mkdir()
        small, small_public, small_bundle = _signed_archive(tmp_path / "small", 3)
        assert verify_archive(small, PublicKeyring.load(small_public), small_bundle, max_age=0).ok
        assert _verifier_folders(temporary) == [alive]  # a running verifier's folder is never removed
    finally:
        running.communicate("", timeout=20)
    assert running.returncode == 0 and _verifier_folders(temporary) == []


def _many_streams(root: Path, streams: int, days: int) -> None:
    """`streams` archived streams (one account each) of `days` listed files (the files themselves
    absent), each entry with a day-close checkpoint as retention writes it."""
    note = "events.test.example/siemgate/ACCOUNT/auditevents\n1\n" + "A" * 44 + "\n\n— events.test.example " + "B" * 88
    for s in range(streams):
        account = "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(s // 26**k) % 26] for k in range(26))
        folder = root / account / "auditevents"
        folder.mkdir(parents=True)
        files = {}
        for i in range(days):
            day = format_ns(NOW + i * 86400 * 10**9)[:10]
            entry = FileEntry(
                day_path(day, "jsonl"), day, "jsonl", 1, 1, "a" * 64, None, None, 1, index_path(day), "b" * 64, note
            )
            files[entry.path] = entry.as_json()
        manifest = {"version": 2, "account": account, "account_name": "Acme", "feature": "auditevents", "files": files}
        (folder / "manifest.json").write_bytes(orjson.dumps(manifest))


def test_listing_an_archive_holds_one_stream_at_a_time(tmp_path: Path) -> None:
    """`siemgate archive list` (and `archive verify`) surveyed the whole folder first, holding the
    entry of every file of every account's streams (about 1.3 KB each: 20,000 here, 27 MiB; 100
    accounts' three years, 130 MiB; a hosted deployment's, GBs). They now read a stream at a time
    (`survey.walk`), keeping only its summary or its problems."""
    _many_streams(tmp_path / "archive", 40, 500)
    _many_streams(tmp_path / "small", 1, 1)

    def listing(folder: Path) -> str:
        return (
            f"sys.argv = ['siemgate', 'archive', 'list', {str(folder)!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc\n"
        )

    # a first listing of a one-file archive loads the modules the command imports when it runs
    setup = "import sys\nfrom siemgate.cli.main import main\n" + listing(tmp_path / "small")
    growth = peak_growth_mib(listing(tmp_path / "archive"), setup, traced=True)
    assert growth < 12, growth  # 27 MiB before, 6 after


HUGE_LINE = 384 * 1024 * 1024  # a line without a newline: a sparse file, nothing of it on disk


def _verifiers_said(tmp_path: Path, name: str, start: bytes, most_mib: int) -> list[str]:
    """The bundle file `name` of a signed archive given `start` and HUGE_LINE bytes more without a
    newline (a sparse file); what `siemgate-verify bundle` and `siemgate-verify archive --entries`
    each said of it (the report, or the error that stopped it), run in fresh processes whose peak
    memory each grows by less than `most_mib`."""
    folder, public, bundle = _signed_archive(tmp_path, 10)
    with (bundle / name).open("ab") as f:
        f.write(start)
        f.truncate(f.tell() + HUGE_LINE)
    said = tmp_path / "said.txt"
    setup = (
        "from siemgate.tlog.keys import PublicKeyring\nfrom siemgate.tlog.bundle import BundleError\n"
        f"keys = PublicKeyring.load(Path({str(public)!r}))\n"
    )
    bundle_check = (
        "import siemgate.tlog.verify\n"
        "try:\n"
        f"    report = siemgate.tlog.verify.verify_bundle(Path({str(bundle)!r}), keys, max_age=0)\n"
        f"    Path({str(said)!r}).write_text('\\n'.join(report.lines()))\n"
        "except BundleError as exc:\n"
        f"    Path({str(said)!r}).write_text(str(exc))\n"
    )
    archive_check = (
        "try:\n"
        f"    siemgate.tlog.archive_verify.verify_archive(Path({str(folder)!r}), keys, Path({str(bundle)!r}))\n"
        "except siemgate.tlog.archive_verify.ArchiveInputError as exc:\n"
        f"    Path({str(said)!r}).write_text(str(exc))\n"
    )
    out = []
    for code in (bundle_check, archive_check):
        said.write_text("")
        assert peak_growth_mib(code, setup) < most_mib, code
        out.append(said.read_text())
    return out


@pytest.mark.parametrize("name", ["events.tsv", "purges.tsv"])
def test_a_bundle_line_longer_than_any_event_is_named_not_read_whole(tmp_path: Path, name: str) -> None:
    """A bundle's events.tsv and purges.tsv were read a line at a time however long the line
    (purges.tsv whole), so a hostile or damaged bundle of one huge line without a newline made
    `siemgate-verify bundle` and `siemgate-verify archive --entries` hold all of it in memory (864
    MiB for a line of 384). Now a line is read up to MAX_LINE_BYTES, and the file and line are named."""
    for said in _verifiers_said(tmp_path, name, b"10\t{", 200):  # the line is 384 MiB; read up to 64 MiB
        assert f"{name} line 1 is longer than {MAX_LINE_BYTES} bytes" in said, said


@pytest.mark.parametrize("name", ["checkpoints/000000.checkpoint", "bundle.json"])
def test_a_bundle_file_longer_than_any_export_is_named_not_read_whole(tmp_path: Path, name: str) -> None:
    """Past the bound on events.tsv and purges.tsv lines, a bundle's other files were still read
    whole: a checkpoint note or the manifest (bundle.json) of 384 MiB (a hostile or damaged bundle)
    was held in memory by `siemgate-verify bundle` and `siemgate-verify archive --entries` (768 MiB
    for bundle.json, 1,152 for the note). siemgate writes them a few KiB long: a file longer than
    MAX_NOTE_BYTES is named, not read."""
    for said in _verifiers_said(tmp_path, name, b"", 100):  # the file is 384 MiB; read up to 1 MiB
        assert f"{Path(name).name} is longer than {MAX_NOTE_BYTES} bytes" in said, said


def test_an_archive_line_longer_than_any_event_is_not_held_in_memory(tmp_path: Path) -> None:
    """A JSON Lines archive holding one line of 384 MiB without a newline (a few hundred KiB of
    gzip) was read whole by `read_rows` (replay, archive verify, the merge) and by
    `siemgate-verify archive` (read_rows before 0b7c441: 1,043 MiB peak RSS); they now read up to
    MAX_LINE_BYTES and name the line."""
    path = tmp_path / "2026-01-01.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(b'{"uuid": "u", "padding": "')
        for _ in range(HUGE_LINE // (1 << 20)):
            f.write(b"x" * (1 << 20))
    assert path.stat().st_size < 2 * 1024 * 1024
    for code in (
        "rows = sum(1 for _ in siemgate.retention.archive.read_rows(path))",
        "rows = sum(1 for _ in siemgate.tlog.archive_verify._rows(path.parent, path, {'format': 'jsonl'}))",
    ):
        reading = (
            f"try:\n    {code}\nexcept (ValueError, siemgate.retention.archive.ArchiveError) as exc:\n"
            f"    assert 'line 1 is longer than {MAX_LINE_BYTES} bytes' in str(exc), exc\n"
            "else:\n    raise AssertionError('read')\n"
        )
        assert peak_growth_mib(reading, f"path = Path({str(path)!r})") < 200, code  # read up to 64 MiB
