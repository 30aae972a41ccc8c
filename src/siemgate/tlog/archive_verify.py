"""Offline verification of one stream's archive folder against the signed log (docs/integrity.md,
"Verifying archives"): `siemgate-verify archive DIR --key K [--entries BUNDLE]`. Standard library
and `cryptography`; `pyarrow` only when a Parquet file is read.

The tree is rebuilt from the archived bodies (each row carries its log index: Parquet `log_index`,
JSON Lines sidecar) and, with `--entries`, the entries and live bodies of an exported bundle; its
root must equal every day-close checkpoint the manifest names (and the bundle's checkpoints).
Each index is then one of: valid (a live body in the bundle), archived (a body in an archive
file), purged(ts) (only its entry is left, legitimately: its committed timestamp is older than
the cutoff of a recorded purge whose index bound covers it), duplicate-of j (the same entry as an
earlier index: a re-insertion, e.g. a replay), or INVALID with the reason.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from siemgate.model.timestamps import format_ns
from siemgate.tlog.archive_index import folder_files, read_sidecar
from siemgate.tlog.archive_tables import IndexTables, Row
from siemgate.tlog.bundle import (
    CHECKPOINTS,
    ENTRIES,
    EVENTS,
    BundleError,
    bounded_lines,
    note_files,
    read_lines,
    read_manifest,
    read_purges,
    read_small,
)
from siemgate.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from siemgate.tlog.cosignature import WitnessPolicy
from siemgate.tlog.entry import ENTRY_SIZE, HOLE_TS, Entry, EntryError, body_timestamp_ns, decode_entry, entry_for
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.merkle import CompactRange, leaf_hash
from siemgate.tlog.note import NoteError
from siemgate.tlog.parquet_bounds import batches
from siemgate.tlog.purges import Purge, archiving, covering, parse_purge
from siemgate.tlog.verify import prove_purges

MANIFEST = "manifest.json"
MAX_PROBLEMS = 50
MAX_RANGES = 1000
# The largest manifest read (retention.archive.MAX_MANIFEST_BYTES, written again for the same reason)
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class ArchiveInputError(ValueError):
    """The archive folder or the entries cannot be used at all (not a folder, no bundle)."""


@dataclass
class ArchiveReport:
    folder: Path
    origin: str = "?"
    size: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    ranges: list[list[Any]] = field(default_factory=list)  # [first, last, status, duplicate-of first, last]
    counts: dict[str, int] = field(default_factory=dict)
    stale: str | None = None
    newest: str | None = None
    proven: set[int] = field(default_factory=set)  # audit indices of purge records this log holds
    unindexed: int = 0  # archived rows that carry no log index

    @property
    def ok(self) -> bool:
        return not self.problems and self.stale is None

    def add(self, message: str, index: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((index, message))

    def mark(self, index: int, status: str, earlier: int | None = None) -> None:
        """Index `index` has `status`; a duplicate names the `earlier` index holding its entry.
        Consecutive indices of one status (duplicates of consecutive indices) make one range."""
        kind = status.split("(")[0]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        last = self.ranges[-1] if self.ranges else None
        if (
            last is not None
            and last[1] == index - 1
            and last[2] == status
            and (earlier is None or last[4] == earlier - 1)
        ):
            last[1] = index
            if earlier is not None:
                last[4] = earlier
        elif len(self.ranges) < MAX_RANGES:
            self.ranges.append([index, index, status, earlier, earlier])

    def lines(self) -> list[str]:
        out = [f"Verifying {self.origin} archive {self.folder}: indices 0..{self.size - 1}"]
        out += [f"NOTICE {n}" for n in self.notices]
        for first, last, status, of_first, of_last in self.ranges:
            where = f"{first}..{last}" if first != last else f"{first}"
            of = "" if of_first is None else f" {of_first}..{of_last}" if of_first != of_last else f" {of_first}"
            out.append(f"{where} {status}{of}")
        out += [
            f"INVALID {f'index {i}' if i is not None else 'archive'}: {m}"
            for i, m in sorted(self.problems, key=lambda p: (p[0] is None, p[0] or 0))
        ]
        if self.newest:
            out.append(self.newest)
        if self.stale:
            out.append(f"STALE: {self.stale}")
        summary = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
        if self.problems:
            indices = [i for i, _ in self.problems if i is not None]
            first = f", first bad index {min(indices)}" if indices else ""
            out.append(f"Result: INVALID ({len(self.problems)} problems{first}; {summary})")
        elif self.stale:
            out.append(f"Result: STALE ({summary})")
        else:
            out.append(f"Result: VALID ({summary})")
        return out


class _Entries:
    """The entries of an exported bundle (`entries.bin`), read from the open file an entry at a time."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.size = os.fstat(f.fileno()).st_size // ENTRY_SIZE

    def get(self, idx: int) -> bytes:
        self._f.seek(idx * ENTRY_SIZE)
        return self._f.read(ENTRY_SIZE)


def _member(folder: Path, name: object) -> Path:
    """The file `name` (a relative path) of the archive folder. Raises FileNotFoundError when it is
    not there, ValueError when it names a place outside the folder or something other than a
    regular file (a folder, a FIFO, a device: reading those would fail or never end)."""
    relative = PurePosixPath(str(name))
    if not isinstance(name, str) or relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"{name!r} is not a path inside the archive folder")
    path = folder / relative
    if not stat.S_ISREG(path.lstat().st_mode) or os.path.realpath(path) != os.path.join(
        os.path.realpath(folder), *relative.parts
    ):
        raise ValueError(f"{path} is not a regular file in the folder (a symbolic link is never followed)")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _rows(folder: Path, path: Path, entry: dict[str, Any]) -> Iterator[tuple[int | None, int, bytes]]:
    """(log index, timestamp ns, body) of each row of the listed file `path`; a Parquet file is read
    a bounded batch at a time (parquet_bounds), a JSON Lines one a line at a time, at most bundle.MAX_LINE_BYTES (never
    whole, however well it compresses; ValueError past it)."""
    if entry.get("format") == "parquet":
        for batch in batches(path, ["timestamp_ns", "event", "log_index"]):
            names = batch.schema.names
            cols = [batch.column(n).to_pylist() for n in ("timestamp_ns", "event")]
            idx = batch.column("log_index").to_pylist() if "log_index" in names else [None] * batch.num_rows
            for i, ts, body in zip(idx, *cols, strict=True):
                yield i, int(ts), str(body).encode()
        return
    sidecar = entry.get("index_file")
    indices: Iterator[tuple[int | None, int]] = iter(()) if not sidecar else read_sidecar(_member(folder, sidecar))
    with gzip.open(path, "rb") as f:
        for n, body in enumerate(bounded_lines(f), 1):
            if not body:
                raise ValueError(f"line {n} is empty, which no archived event is")
            yield next(indices, (None, 0))[0], body_timestamp_ns(body), body


def _purges(
    manifest: dict[str, Any], bundled: list[tuple[int, bytes]], feature: str, report: ArchiveReport
) -> list[Purge]:
    """The purge records of the manifest and of the bundle, once each; a manifest record that
    differs from the bundle's at the same audit index is a problem (the bundle's is kept)."""
    found: dict[int, Purge] = {}
    listed = manifest.get("purges") or []
    if not isinstance(listed, list):
        report.add(f"the purge records in {MANIFEST} are not a list")
        listed = []
    for record in listed:
        try:
            purge = parse_purge(int(record["audit_index"]), str(record["event"]).encode(), feature)
        except (KeyError, TypeError, ValueError) as exc:
            report.add(f"a purge record in {MANIFEST} is not valid ({exc})")
            continue
        if purge is not None:
            found.setdefault(purge.audit_index, purge)
    for idx, body in bundled:
        try:
            purge = parse_purge(idx, body, feature)
        except ValueError as exc:
            report.add(f"the bundle's purge record at audit index {idx} is {exc}")
            continue
        if purge is not None:
            listed_one = found.get(idx)
            if listed_one is not None and listed_one.entry != purge.entry:
                report.add(f"the purge record at audit index {idx} in {MANIFEST} is not the bundle's record there")
            found[idx] = purge
    return sorted(found.values(), key=lambda p: p.audit_index)


def _own_purges(
    purges: list[Purge], size: int, bundle_entries: _Entries | None, tables: IndexTables, report: ArchiveReport
) -> list[Purge]:
    """The purge records of the auditevents stream are leaves of this very log: those that are the
    event the log holds at their index, the others reported (a forged record) or, when nothing
    here holds that index, left unused with a notice."""
    kept = []
    for purge in purges:
        idx = purge.audit_index
        held: Entry | None = None
        if 0 <= idx < size and bundle_entries is not None:  # the manifest may say any index
            with contextlib.suppress(EntryError):
                held = decode_entry(bundle_entries.get(idx))
        elif 0 <= idx < size and (row := tables.held(idx)) is not None:
            held = row.entry
        if held is None:
            report.notices.append(
                f"the purge record at audit index {idx} is not used: this log's index {idx} is not here to prove it"
            )
        elif held != purge.entry:
            report.add("the purge record at this index is not the event the log holds here", idx)
        else:
            kept.append(purge)
    return kept


def _signed(
    notes: Sequence[str],
    origin: str | None,
    keys: PublicKeyring,
    report: ArchiveReport,
    witnesses: WitnessPolicy | None,
    as_of: int | None,
) -> tuple[list[Checkpoint], str | None]:
    """The checkpoints that verify and are of `origin` — when the manifest names none, of the log
    of the first one that verifies (an archive is one log's: another log's checkpoint, however
    well signed, proves nothing here) — and that origin."""
    out = []
    for note in notes:
        try:
            cp = open_checkpoint(note, keys, witnesses, as_of).checkpoint
        except (NoteError, CheckpointError) as exc:
            report.add(f"a checkpoint does not verify: {exc}")
            continue
        origin = cp.origin if origin is None else origin
        if cp.origin != origin:
            report.add(f"{cp.describe()} is of another log than {origin}")
            continue
        out.append(cp)
    return out, origin


def _bundle(path: Path) -> Path:
    return path.parent if path.is_file() and path.name == ENTRIES else path


def verify_archive(
    folder: Path,
    keys: PublicKeyring,
    entries: Path | None = None,
    max_age: int = 7200,
    as_of: int | None = None,
    witnesses: WitnessPolicy | None = None,
    audit: Path | None = None,
) -> ArchiveReport:
    """Verify one stream's archive folder (see the module docstring); with `witnesses`, every
    checkpoint needs their quorum of cosignatures; with `audit` (the account's auditevents bundle),
    another stream's purge records must be leaves of that log to be used (`verify.prove_purges`).
    Raises ArchiveInputError when the folder or the bundle cannot be used at all, TablesError when
    the temporary tables cannot be made or written (archive_tables); every other problem is in the
    report."""
    if not folder.is_dir():
        raise ArchiveInputError(f"{folder} is not a folder (give <archive>/<account uuid>/<stream>)")
    report = ArchiveReport(folder)
    try:
        path = _member(folder, MANIFEST)
        if (length := path.stat().st_size) > MAX_MANIFEST_BYTES:
            raise ValueError(f"it is {length} bytes, more than the {MAX_MANIFEST_BYTES} siemgate reads")
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        files = sum(1 for _ in folder_files(folder))
        report.add(f"{folder / MANIFEST} is missing: the {files} file(s) here cannot be tied to the log")
        return report
    except (OSError, ValueError) as exc:
        report.add(f"{folder / MANIFEST} cannot be read: {exc}")
        return report
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        report.add(f"{folder / MANIFEST} is not a siemgate archive manifest")
        return report
    if "pending" in manifest:
        report.add(
            f"{folder / MANIFEST}: a write of a day was stopped (killed) after it was checked; the next"
            " `siemgate retention apply` completes it"
        )
    origin = manifest.get("origin")
    report.origin = str(origin or "?")
    with IndexTables() as tables, contextlib.ExitStack() as stack:
        notes: list[str] = []
        for name, entry in sorted(manifest["files"].items()):
            if not isinstance(entry, dict):
                report.add(f"{folder / MANIFEST}: the entry of {name} is not an object")
                continue
            if entry.get("checkpoint"):
                notes.append(str(entry["checkpoint"]))
            _read_file(folder, name, entry, tables, report)
        if report.unindexed:
            report.notices.append(f"{report.unindexed} archived rows carry no log index (archived before indices)")
        _unlisted(folder, manifest["files"], report)
        bundle_entries: _Entries | None = None
        records: list[tuple[int, bytes]] = []
        if entries is not None:
            directory = _bundle(entries)
            try:
                bundle = read_manifest(directory)
                bundle_entries = _Entries(stack.enter_context((directory / ENTRIES).open("rb")))
            except (BundleError, OSError) as exc:
                raise ArchiveInputError(f"--entries: {exc}") from None
            if origin is not None and bundle.origin != origin:
                raise ArchiveInputError(f"--entries: the bundle is of {bundle.origin}, the archive of {origin}")
            report.origin = bundle.origin
            origin = bundle.origin
            try:
                notes += [read_small(p) for p in note_files(directory, CHECKPOINTS)]
                for idx, body in _live(directory / EVENTS):
                    tables.put_live(idx, body)
                records = read_purges(directory)
            except BundleError as exc:
                raise ArchiveInputError(f"--entries: {exc}") from None
        checkpoints, origin = _signed(
            notes, origin if isinstance(origin, str) else None, keys, report, witnesses, as_of
        )
        report.origin = origin or report.origin
        by_size: dict[int, Checkpoint] = {}
        for cp in sorted(checkpoints, key=lambda c: c.time):
            other = by_size.setdefault(cp.size, cp)
            if other.root != cp.root:
                report.add(f"two checkpoints of size {cp.size} have different roots: the log forked", cp.size - 1)
        report.checkpoints = sorted(by_size.values(), key=lambda c: c.size)
        for name, entry in sorted(manifest["files"].items()):
            if isinstance(entry, dict):
                _check_covered(name, entry, tables, keys, report, as_of)
        size = bundle_entries.size if bundle_entries is not None else max(by_size, default=0)
        report.size = size
        feature = origin.rsplit("/", 1)[-1] if isinstance(origin, str) else str(manifest.get("feature"))
        if manifest.get("feature") not in (None, feature):
            report.add(f"{MANIFEST} names stream {manifest.get('feature')!r}, but its log is {origin}")
        purges = _purges(manifest, records, feature, report)
        if feature == "auditevents":
            purges = _own_purges(purges, size, bundle_entries, tables, report)
        elif audit is not None and purges and isinstance(origin, str):
            purges, problems = prove_purges(
                purges, audit, origin, keys, max_age=max_age, as_of=as_of, witnesses=witnesses
            )
            for message in problems:
                report.add(message)
            report.proven |= {p.audit_index for p in purges}
        _walk(size, bundle_entries, tables, purges, by_size, report)
        for purge in purges:
            if purge.audit_index not in report.proven:
                report.notices.append(
                    f"the purge recorded at audit index {purge.audit_index} is proven by the account's auditevents"
                    " log, not by this one: pass that stream's bundle with --audit-bundle to check it"
                )
        _freshness(report, max_age, as_of)
    return report


def _unlisted(folder: Path, files: dict[str, Any], report: ArchiveReport) -> None:
    """Every file of the folder is the manifest, a listed file or its listed sidecar (temporary
    files of a run in progress, `.<name>.tmp-<pid>`, aside): a file the manifest does not list is
    not tied to the log, and a manifest put back from an older copy leaves newer files unlisted."""
    listed = {MANIFEST}
    for name, entry in files.items():
        listed.add(name)
        if isinstance(entry, dict) and isinstance(entry.get("index_file"), str):
            listed.add(entry["index_file"])
    for name in folder_files(folder):
        temporary = PurePosixPath(name).name.startswith(".") and ".tmp-" in name
        if not temporary and name not in listed:
            report.add(f"{folder / name} is not in the manifest: nothing ties it to the log")


def _read_file(folder: Path, name: str, entry: dict[str, Any], tables: IndexTables, report: ArchiveReport) -> None:
    """Read one listed file's rows into the archived table (by log index), and the entry of every
    row into the loose one (rows without an index, and rows whose event was also replayed under
    another index)."""
    try:
        path = _member(folder, name)
        digest = _sha256(path)
    except FileNotFoundError:
        report.add(f"{folder / name} is missing (the manifest lists it with {entry.get('events')} events)")
        return
    except (OSError, ValueError) as exc:
        report.add(f"{folder / name} cannot be read: {exc}")
        return
    if digest != entry.get("sha256"):
        report.add(f"{path}: SHA-256 {digest} differs from the manifest's (the file was changed or replaced)")
    if entry.get("path", name) != name:
        report.add(f"{path}: the manifest lists it under {name} but names {entry.get('path')!r}")
    try:
        for n, (idx, ts, body) in enumerate(_rows(folder, path, entry)):
            with contextlib.suppress(EntryError):
                tables.add_loose(entry_for(ts, body).encode())
            if idx is None:
                report.unindexed += 1
                continue
            if type(idx) is not int or idx < 0:
                report.add(f"{name} row {n}: its log index {idx!r} is not an index of the log")
                continue
            row = Row(name, n, None)
            try:
                row.entry = entry_for(ts, body)
                if body_timestamp_ns(body) != ts:
                    row.problem = "its timestamp column differs from the event's timestamp"
            except EntryError as exc:
                row.problem = str(exc)
            held = tables.hold(idx, row)
            if held is not None and held.entry != row.entry:
                report.add(f"{name} row {n} and {held.file} row {held.row} hold different events for it", idx)
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as exc:
        report.add(f"{path} cannot be read: {exc}")
    except Exception as exc:  # pyarrow's errors, without importing pyarrow for JSON Lines
        report.add(f"{path} cannot be read: {exc}")


def _check_covered(
    name: str,
    entry: dict[str, Any],
    tables: IndexTables,
    keys: PublicKeyring,
    report: ArchiveReport,
    as_of: int | None,
) -> None:
    """Every index of a file lies inside the checkpoint the manifest ties it to."""
    note = entry.get("checkpoint")
    if not note:
        report.notices.append(f"{name} names no day-close checkpoint (archived before the log was signed)")
        return
    try:
        size = open_checkpoint(str(note), keys, now=as_of).checkpoint.size
    except (NoteError, CheckpointError):
        return  # reported with the checkpoints
    beyond = tables.first_beyond(name, size)
    if beyond is not None:
        report.add(f"{name} holds index {beyond}, beyond its day-close checkpoint of size {size}", beyond)


def _live(path: Path) -> Iterator[tuple[int, bytes]]:
    if not path.exists():
        return
    for _, line in read_lines(path):
        idx, _, body = line.partition(b"\t")
        if idx.isdigit():
            yield int(idx), body


def _walk(
    size: int,
    bundle_entries: _Entries | None,
    tables: IndexTables,
    purges: list[Purge],
    by_size: dict[int, Checkpoint],
    report: ArchiveReport,
) -> None:
    """Classify every index, rebuild the tree and compare it with the checkpoints."""
    rng = CompactRange()
    rows, live = tables.rows_in_order(), tables.live_in_order()
    good = 0
    failed = False
    records = {(p.audit_index, p.entry.encode()) for p in purges}
    for idx in range(size):
        row = rows.at(idx)
        entry: Entry | None = None
        if bundle_entries is not None:
            try:
                entry = decode_entry(bundle_entries.get(idx))
            except EntryError as exc:
                report.add(f"the bundle's entry is malformed: {exc}", idx)
        elif row is not None:
            entry = row.entry
        status = _status(idx, entry, row, live.at(idx), purges, tables, report)
        if entry is None:
            report.mark(idx, "INVALID")
            if not failed:
                report.add("no entry and no archived event: pass the stream's exported bundle with --entries", idx)
                failed = True
            rng.append_leaf(leaf_hash(bytes(ENTRY_SIZE)))
            continue
        data = entry.encode()
        earlier = tables.first_index(data, idx)
        if earlier != idx and status in ("archived", "valid"):
            report.mark(idx, "duplicate-of", earlier)
        else:
            report.mark(idx, status)
        report.proven |= {i for i, e in records if i == idx and e == data}
        rng.append_leaf(leaf_hash(data))
        cp = by_size.get(idx + 1)
        if cp is not None:
            if rng.root() == cp.root:
                good = idx + 1
            elif not failed:
                failed = True
                report.add(
                    f"the leaves do not rebuild the root of {cp.describe()}: an index between {good} and {idx} was"
                    " changed, removed or inserted",
                    good,
                )
    for cp in by_size.values():
        if cp.size > size:
            report.add(f"{cp.describe()} covers indices {size}..{cp.size - 1}, which nothing here holds", size)


def _status(
    idx: int,
    entry: Entry | None,
    row: Row | None,
    body: bytes | None,
    purges: list[Purge],
    tables: IndexTables,
    report: ArchiveReport,
) -> str:
    if entry is None:
        return "INVALID"
    if row is not None:
        if row.problem is not None or row.entry != entry:
            report.add(
                f"{row.file} row {row.row}: the archived event does not match its log entry"
                f" ({row.problem or 'the archive file was altered'})",
                idx,
            )
            return "INVALID(altered)"
        return "archived"
    if body is not None:
        if entry_for(entry.ts_ns, body) != entry:
            report.add("the bundle's event body does not match its log entry", idx)
            return "INVALID(altered)"
        return "valid"
    if entry.ts_ns == HOLE_TS:
        return "purged(before the log)"
    if covering(purges, idx, entry.ts_ns) is not None:
        run = archiving(purges, idx, entry.ts_ns)
        if run is not None and not tables.is_loose(entry.encode()):
            report.add(
                f"its event ({format_ns(entry.ts_ns)}) was purged by the run recorded at audit index"
                f" {run.audit_index}, which archived ({run.archive}) everything it purged, but no archive file"
                " here holds it: a file or rows were removed from the archive",
                idx,
            )
            return "INVALID(unarchived)"
        return f"purged({format_ns(entry.ts_ns)[:10]})"
    report.add(
        f"its event ({format_ns(entry.ts_ns)}) is neither archived nor held, and no recorded purge covers it:"
        " it is younger than the cutoff of the policy in force, or beyond its index bound",
        idx,
    )
    return "INVALID(deleted)"


def _freshness(report: ArchiveReport, max_age: int, as_of: int | None) -> None:
    if not report.checkpoints:
        report.add("no signed checkpoint ties this archive to the log")
        return
    newest = max(report.checkpoints, key=lambda c: c.time)
    now = int(time.time()) if as_of is None else as_of
    age = now - newest.time
    report.newest = (
        f"Newest checkpoint: size {newest.size} signed {format_ns(newest.time * 1_000_000_000)} ({age} s old)"
    )
    if max_age and age > max_age:
        report.stale = (
            f"the newest checkpoint was signed {age} s before {format_ns(now * 1_000_000_000)}, more than"
            f" {max_age} s: newer events may be missing"
        )
