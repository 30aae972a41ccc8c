"""Archive files: one per (account, stream, UTC day), and a manifest per (account, stream).

    <archive>/<account uuid>/<feature>/manifest.json
    <archive>/<account uuid>/<feature>/<YYYY>/<YYYY-MM-DD>.jsonl.gz   (or .parquet)

A JSON Lines file holds the stored events (v2 JSON), one per line, gzip-compressed; a Parquet file
has columns `timestamp_ns` (int64), `uuid` (string) and `event` (string, the same JSON) and typed
columns of the events' fields beside them (`retention.parquet`), zstd-compressed. Rows are in
(timestamp, uuid) order. Each row carries its event's log index (the leaf in the stream's
tamper-evident log, docs/integrity.md): Parquet in its `log_index` column, JSON Lines in a sidecar
`<YYYY-MM-DD>.log.json` beside the file (its lines cannot change). The manifest lists each file with
its day, format, event count, byte size, SHA-256, sidecar and the day-close checkpoint its indices
were checked against; it records every rewrite of a day (late events merged) and every purge that
followed an archive, and is rewritten atomically after each batch of files (`DayBatch`).

Writing is all-or-nothing per file: the file is written to a temporary name, flushed and fsynced,
read back and checked (count and digest); a batch of such days is recorded in the manifest as
pending, then renamed into place and the directory fsynced; only then does the manifest list
them. A day written again (late events) is merged with its file, without duplicates by
(timestamp, uuid): the file is verified against the manifest and read first, and when that
cannot be done (manifest missing or unreadable, file missing, altered, or not listed) the write
fails and nothing is replaced. A file is never replaced by one holding fewer events.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import orjson

from siemgate.errors import SiemgateError
from siemgate.model.features import Feature
from siemgate.model.timestamps import NS_PER_SECOND, format_ns, parse_ns
from siemgate.tlog.archive_index import INDEX_FORMAT, folder_files, read_sidecar
from siemgate.tlog.bundle import MAX_LINE_BYTES, LineTooLong, bounded_lines
from siemgate.tlog.durable import fsync_dir, write_durably

if TYPE_CHECKING:  # pyarrow loads when a Parquet file is written or read, not with the services (start-up time)
    from siemgate.retention.parquet import Row

log = logging.getLogger("siemgate.retention")
DAY_NS = 86400 * NS_PER_SECOND
FORMATS = ("jsonl", "parquet")
SUFFIX = {"jsonl": ".jsonl.gz", "parquet": ".parquet"}
MANIFEST = "manifest.json"
LOCK_FILE = ".retention.lock"  # the lock file of releases before the folder itself was locked: ignored
MANIFEST_VERSION = 2  # 2: log indices, checkpoints, rewrites and purges (1 is still read)
MANIFEST_VERSIONS = (1, 2)
# The largest manifest read: a manifest lists a stream's days, rewrites and purges (a few KiB a day).
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# Days committed together by a run (DayBatch): at least BATCH_DAYS, at most BATCH_BYTES of files.
BATCH_DAYS = 8
BATCH_BYTES = 256 * 1024 * 1024


class ArchiveError(SiemgateError):
    """An archive could not be written or does not check out; nothing was purged because of it."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the stream folder
    day: str
    format: str
    events: int
    bytes: int
    sha256: str
    first_ts: str | None
    last_ts: str | None
    indexed: int = 0  # rows that carry their log index (0 in files written before indices)
    index_file: str | None = None  # JSON Lines: the sidecar holding the rows' log indices
    index_sha256: str | None = None
    checkpoint: str | None = None  # the signed day-close checkpoint the indices were checked against

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def day_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts // NS_PER_SECOND, dt.UTC).date().isoformat()


def day_start(day: str) -> int:
    d = dt.date.fromisoformat(day)
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()) * NS_PER_SECOND


def stream_dir(root: Path, account_uuid: str, feature: Feature) -> Path:
    return root / account_uuid / feature.value


def day_path(day: str, fmt: str) -> str:
    """The file of a day, relative to its stream folder."""
    return f"{day[:4]}/{day}{SUFFIX[fmt]}"


def index_path(day: str) -> str:
    """The sidecar of a JSON Lines day file (the rows' log indices), relative to its stream folder."""
    return f"{day[:4]}/{day}.log.json"


def is_temporary(name: str) -> bool:
    """A file being written (or left by a run that was killed): `.<name>.tmp-<pid>`."""
    return name.startswith(".") and ".tmp-" in name


def archive_files(folder: Path) -> Iterator[str]:
    """Every entry under a stream folder that is not a folder (symbolic links included, not
    followed), relative, other than its manifest and temporary files; unsorted, never listed whole."""
    for name in folder_files(folder):
        if name != MANIFEST and not is_temporary(PurePosixPath(name).name):
            yield name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require_regular(path: Path, listed: Path, what: str, folder: Path) -> None:
    """Raise ArchiveError when `path` is not a regular file inside `folder`: a folder, FIFO or device
    in its place (reading it would fail or never end), or a symbolic link, itself or a folder on
    the way (the archive reads nothing outside its folder); `listed` and `what` say what the
    manifest expects there."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ArchiveError(f"{listed}: missing (the manifest lists it {what})") from None
    except OSError as exc:
        raise ArchiveError(f"{listed}: cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode) or not os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep):
        raise ArchiveError(
            f"{listed}: a symbolic link, or under one (the manifest lists it {what}); siemgate writes none and"
            " reads nothing outside the archive folder"
        )
    if not stat.S_ISREG(mode):
        raise ArchiveError(f"{listed}: not a regular file (the manifest lists it {what})")


# Writing ------------------------------------------------------------------------------------------
class _Sink(io.RawIOBase):
    """A file that reports every write to a hook (tests inject faults such as ENOSPC there)."""

    def __init__(self, f: Any, hook: Callable[[int], None] | None) -> None:
        self.f, self.hook, self.written = f, hook, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n: int = self.f.write(data)
        self.written += n
        if self.hook is not None:
            self.hook(self.written)
        return n


class _DayWriter:
    """Writes a day file a row at a time: Parquet row groups (parquet.Writer), or gzip-compressed
    JSON Lines in buffers of about 1 MiB; the rows' `[index, ns]` lines go to `indices`."""

    def __init__(self, fmt: str, feature: Feature, out: Any, indices: Any) -> None:
        from siemgate.retention import parquet

        self.indices = indices
        self.parquet = parquet.Writer(feature, out) if fmt == "parquet" else None
        self.gz = None if self.parquet else gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0)
        self.buffer: list[bytes] = []
        self.size = 0

    def add(self, row: Row, index: int | None) -> None:
        self.indices.write(orjson.dumps([index, row[0]]) + b"\n")
        if self.parquet is not None:
            self.parquet.add(row, index)
            return
        self.buffer.append(row[2] + b"\n")
        self.size += len(row[2]) + 1
        if self.size >= 1 << 20:
            self._flush()

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        elif self.gz is not None:
            self._flush()
            self.gz.close()

    def _flush(self) -> None:
        if self.gz is not None and self.buffer:
            self.gz.write(b"".join(self.buffer))
        self.buffer, self.size = [], 0


def read_rows(path: Path, fmt: str | None = None) -> Iterator[Row]:
    """The rows of an archive file (format `fmt`, else from its name); raises ArchiveError when
    unreadable, naming the line of a JSON Lines file, and without reading a line longer than
    MAX_LINE_BYTES (a damaged or hostile file of one huge line, however well it compresses)."""
    import pyarrow as pa

    from siemgate.retention import parquet

    fmt = fmt or ("parquet" if path.name.endswith(".parquet") else "jsonl")
    number = 0
    try:
        if fmt == "parquet":
            yield from parquet.read(path)
            return
        with gzip.open(path, "rb") as f:
            for number, line in enumerate(bounded_lines(f), 1):
                if not line:  # also what makes a gzip bomb of newlines stop at once
                    raise ArchiveError(f"{path}: line {number} is empty, which siemgate never writes")
                event = orjson.loads(line)
                yield parse_ns(event["timestamp"]), str(event["uuid"]), line
    except LineTooLong as exc:
        raise ArchiveError(
            f"{path}: line {exc.number} is longer than {MAX_LINE_BYTES} bytes, which no archived event is: the file"
            " is damaged or was not written by siemgate"
        ) from None
    except (OSError, EOFError, ValueError, KeyError, pa.ArrowException) as exc:
        where = f" at line {number}" if number else ""
        raise ArchiveError(f"{path}: cannot read the archive file{where}: {exc}") from None


def read_indices(
    folder: Path, entry: FileEntry, *, path: Path | None = None, sidecar: Path | None = None
) -> Iterator[int | None]:
    """The log index of each row of the file of `entry`, in order (None: archived before indices),
    from its `log_index` column or its sidecar (`path`/`sidecar`: read those files instead of the
    listed ones), a part at a time. Raises ArchiveError when they cannot be read."""
    return (idx for idx, _ in _index_rows(folder, entry, path, sidecar))


def _index_rows(
    folder: Path, entry: FileEntry, path: Path | None, sidecar: Path | None
) -> Iterator[tuple[int | None, int | None]]:
    """(log index, the sidecar's timestamp of the row, None for Parquet) of each row of the file."""
    target = path or folder / entry.path
    if entry.format == "parquet":
        import pyarrow as pa

        from siemgate.retention import parquet

        try:
            yield from ((idx, None) for idx in parquet.read_indices(target))
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ArchiveError(f"{target}: cannot read the log indices: {exc}") from None
        return
    if entry.index_file is None:
        yield from ((None, None) for _ in range(entry.events))
        return
    listed = folder / entry.index_file
    try:
        yield from read_sidecar(sidecar or listed)
    except FileNotFoundError:
        raise ArchiveError(f"{listed}: missing (the manifest lists it as the log indices of {entry.path})") from None
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{listed}: cannot read the log indices: {exc}") from None


def _merge(
    fresh: Iterator[tuple[Row, int | None]], old: Iterator[tuple[Row, int | None]]
) -> Iterator[tuple[Row, int | None]]:
    """The rows of `fresh` and of `old` (an archived file's), each with its log index, in
    (timestamp, uuid) order, each once: a row in both keeps the new body and the archived index
    (the new one when it has none). Both are read one row at a time. Raises ArchiveError when
    `fresh` is not in strictly increasing (timestamp, uuid) order."""
    a, b = next(old, None), next(fresh, None)
    previous: tuple[int, str] | None = None
    while a is not None or b is not None:
        if b is None or (a is not None and a[0][:2] < b[0][:2]):
            assert a is not None
            yield a
            a = next(old, None)
            continue
        if previous is not None and b[0][:2] <= previous:
            raise ArchiveError(f"the rows to archive are out of (timestamp, uuid) order or repeated at {b[0][1]}")
        previous = b[0][:2]
        if a is None or b[0][:2] < a[0][:2]:
            yield b
        else:
            yield b[0], a[1] if a[1] is not None else b[1]
            a = next(old, None)
        b = next(fresh, None)


def _row_digest(digest: Any, row: Row, index: int | None) -> None:
    """What the read-back check of a written file compares: each row's (timestamp, uuid, index)."""
    digest.update(f"{row[0]} {row[1]} {index}\n".encode())


@dataclass
class DayBatch:
    """Days written (`StreamArchive.add`) and not yet committed, on the stream's manifest as held
    in memory (what `commit` writes). Committed together, a backlog of n days writes the manifest
    about log(n) times instead of 2n (each write being the whole manifest: n² bytes)."""

    manifest: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    temporary: list[Path | None] = field(default_factory=list)
    bytes: int = 0

    def full(self) -> bool:
        """Whether to commit now: as many days as half those listed (at least BATCH_DAYS), or
        BATCH_BYTES of files; what a killed run loses, and how long its purges wait, stay bounded."""
        listed = len(self.manifest["files"])
        return len(self.records) >= max(BATCH_DAYS, listed // 2) or self.bytes >= BATCH_BYTES


class StreamArchive:
    """The archive of one (account, stream): its files and manifest."""

    def __init__(
        self,
        root: Path,
        account_uuid: str,
        account_name: str,
        feature: Feature,
        fmt: str,
        *,
        fault: Callable[[int], None] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ArchiveError(f"unknown archive format {fmt!r}; use jsonl or parquet")
        self.dir = stream_dir(root, account_uuid, feature)
        self.account_uuid, self.account_name, self.feature, self.format = account_uuid, account_name, feature, fmt
        self.fault = fault
        self.stop: Callable[[str], None] | None = None  # tests: called at each step of a write (see _step)

    def manifest(self) -> dict[str, Any]:
        return load_manifest(self.dir) or {
            "version": MANIFEST_VERSION,
            "account": self.account_uuid,
            "account_name": self.account_name,
            "feature": self.feature.value,
            "files": {},
        }

    def day_file(self, day: str) -> str:
        """The day's file, relative to the stream folder."""
        return day_path(day, self.format)

    def write_day(
        self,
        day: str,
        rows: list[Row],
        indices: dict[tuple[int, str], int] | None = None,
        checkpoint: str | None = None,
    ) -> FileEntry:
        """`write_sorted` of `rows` in any order (a row repeated by (timestamp, uuid): the last is
        kept), `indices` giving the log index of each by (timestamp, uuid)."""
        known = indices or {}
        fresh = sorted({(r[0], r[1]): r[2] for r in rows}.items())
        return self.write_sorted(
            day, (((ts, uuid, body), known.get((ts, uuid))) for (ts, uuid), body in fresh), checkpoint
        )

    def write_sorted(
        self, day: str, rows: Iterable[tuple[Row, int | None]], checkpoint: str | None = None
    ) -> FileEntry:
        """Write (or merge into) the day's file; returns its manifest entry once it is durable and
        checked. `rows` are the new rows with their log indices, in strictly increasing (timestamp,
        uuid) order, read once as the file is written (a generator reading a store a batch at a
        time: the day is never held whole); rows already archived keep their indices. `checkpoint`
        is the signed day-close checkpoint the rows were checked against. A merge into a day already
        archived is recorded in the manifest's `rewrites`; it streams the archived file (verified
        first) into the new one. Raises ArchiveError (the previous file and manifest are left as
        they were, the temporary files removed), also when `rows` are out of order or what is
        archived for the day cannot be read and checked first (see `_archived`); an error `rows`
        raises is raised as it is, with nothing written either. One day committed on its own:
        `begin`, `add`, `commit`."""
        batch = self.begin()
        entry = self.add(batch, day, rows, checkpoint)
        self.commit(batch)
        return entry

    def begin(self) -> DayBatch:
        """A batch of days to write and commit together, on the manifest as `recover` leaves it."""
        return DayBatch(self.recover())

    def add(
        self, batch: DayBatch, day: str, rows: Iterable[tuple[Row, int | None]], checkpoint: str | None = None
    ) -> FileEntry:
        """Write the day's file (and sidecar) under temporary names, durably, and check them, as
        `write_sorted` says; `commit` puts them in place and lists them. A day at most once per
        batch. Raises as `write_sorted` does, with this day's temporary files removed and the
        batch's other days kept."""
        manifest = batch.manifest
        relative = day_path(day, self.format)
        target = self.dir / relative
        archived = self._archived(manifest, relative)
        old: Iterator[tuple[Row, int | None]] = iter(())
        if archived is not None:
            old = zip(read_rows(target, archived.format), read_indices(self.dir, archived), strict=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        sidecar = index_path(day) if self.format == "jsonl" else None
        side_tmp = (self.dir / sidecar).with_name(f".{Path(sidecar).name}.tmp-{os.getpid()}") if sidecar else None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            digest, count, held, first, last = hashlib.sha256(), 0, 0, None, None
            with open(tmp, "wb") as f, tempfile.TemporaryFile(dir=target.parent) as lines:
                writer = _DayWriter(self.format, self.feature, _Sink(f, self.fault), lines)
                for row, idx in _merge(iter(rows), old):
                    writer.add(row, idx)
                    _row_digest(digest, row, idx)
                    count, held, last = count + 1, held + (idx is not None), row[0]
                    first = row[0] if first is None else first
                writer.close()
                f.flush()
                os.fsync(f.fileno())
                index_sha = self._write_sidecar(side_tmp, target.name, count, lines) if side_tmp else None
            entry = FileEntry(
                relative,
                day,
                self.format,
                count,
                tmp.stat().st_size,
                sha256_file(tmp),
                None if first is None else format_ns(first),
                None if last is None else format_ns(last),
                held,
                sidecar,
                index_sha,
                checkpoint,
            )
            verify_file(self.dir, entry, path=tmp, expect=digest.hexdigest(), index_path=side_tmp)
            if archived is not None and entry.events < archived.events:  # cannot happen: never lose a row
                raise ArchiveError(f"{target}: would hold {entry.events} events instead of {archived.events}")
            self._step("written")
            replace = [[f"{day[:4]}/{side_tmp.name}", sidecar]] if side_tmp and sidecar else []
            replace.append([f"{day[:4]}/{tmp.name}", relative])  # the data file last: see `recover`
            rewrite = None
            if archived is not None:
                rewrite = {
                    "path": relative,
                    "at": format_ns(dt_now_ns()),
                    "events_before": archived.events,
                    "events_after": entry.events,
                    "sha256_before": archived.sha256,
                    "sha256_after": entry.sha256,
                }
        except OSError as exc:
            _remove(tmp, side_tmp)
            raise ArchiveError(f"cannot write the archive {target}: {exc.strerror or exc}") from None
        except BaseException:  # ArchiveError, or what `rows` raised (the store failed): nothing is written
            _remove(tmp, side_tmp)
            raise
        batch.records.append({"entry": entry.as_json(), "replace": replace, "rewrite": rewrite})
        batch.temporary += [tmp, side_tmp]
        batch.bytes += entry.bytes
        return entry

    def commit(self, batch: DayBatch) -> None:
        """Put the batch's days in place and list them: the manifest is written once with them as
        `pending` (the commit point, see `recover`), the files renamed, and the manifest written
        once more listing them; the batch is then empty, to be added to again. Raises ArchiveError:
        before the commit point, with the batch's temporary files removed (none of its days is
        archived); after it, the next run completes the renames."""
        if not batch.records:
            return
        manifest = batch.manifest
        manifest["pending"] = batch.records[0] if len(batch.records) == 1 else list(batch.records)
        try:
            _write_json_atomic(self.dir / MANIFEST, manifest)  # the commit point: see `recover`
        except OSError as exc:
            del manifest["pending"]
            self.abandon(batch)
            raise ArchiveError(f"cannot write {self.dir / MANIFEST}: {exc.strerror or exc}") from None
        batch.records, batch.temporary, batch.bytes = [], [], 0
        self._step("committed")
        try:
            self._finish(manifest)
        except OSError as exc:
            raise ArchiveError(
                f"cannot write the archive {self.dir}: {exc.strerror or exc}; the next run completes it"
            ) from None

    def abandon(self, batch: DayBatch) -> None:
        """Remove the temporary files of the batch's days not committed (none of them is archived)."""
        _remove(*batch.temporary)
        batch.records, batch.temporary, batch.bytes = [], [], 0

    def _write_sidecar(self, path: Path, data_name: str, rows: int, lines: Any) -> str:
        """Write the sidecar (header, then the `[index, ns]` lines spooled in `lines`) durably; its SHA-256."""
        digest = hashlib.sha256()
        lines.seek(0)
        with open(path, "wb") as f:
            sink = _Sink(f, self.fault)
            header = orjson.dumps({"format": INDEX_FORMAT, "file": data_name, "rows": rows}) + b"\n"
            for chunk in (header, *iter(lambda: lines.read(1 << 20), b"")):
                sink.write(chunk)
                digest.update(chunk)
            f.flush()
            os.fsync(f.fileno())
        return digest.hexdigest()

    def recover(self) -> dict[str, Any]:
        """Complete a write stopped after its commit point (killed while it replaced the files),
        then return the manifest. A write records in the manifest (`pending`) the checked entry it
        makes and the files it puts in place (fsynced temporary files) before replacing anything;
        until the manifest lists the entry, readers report the day as interrupted (`survey`). Raises
        ArchiveError when the record is not one siemgate writes or the files no longer verify."""
        manifest = self.manifest()
        if "pending" in manifest:
            self._finish(manifest, check=True)
        self._remove_temporary_files()
        return manifest

    def _remove_temporary_files(self) -> None:
        """Remove the temporary files (`is_temporary`) in the stream folder and its year folders:
        those of a run stopped before its commit point (killed, a power loss). Called once a
        pending write is finished (none is then part of the archive) and before this run writes:
        runs write one at a time (retention's lock), so none is being written. A symlink is
        removed itself, never what it points to."""
        folders = [self.dir]
        with contextlib.suppress(OSError):  # no folder, or not one: the write says why, if it writes
            folders += [Path(e.path) for e in os.scandir(self.dir) if e.is_dir(follow_symlinks=False)]
        stale = []
        for folder in folders:
            with contextlib.suppress(OSError):
                stale += [
                    Path(e.path)
                    for e in os.scandir(folder)
                    if is_temporary(e.name) and not e.is_dir(follow_symlinks=False)
                ]
        if stale:
            _remove(*stale)
            log.warning("%s: removed %d temporary files a stopped run left", self.dir, len(stale))

    def _finish(self, manifest: dict[str, Any], *, check: bool = False) -> None:
        """Put the pending write's files in place and list its entry (see `recover`)."""
        pending = manifest["pending"]
        writes = [self._pending_write(record) for record in (pending if isinstance(pending, list) else [pending])]
        for _, moves, _ in writes:
            for source, dest in moves:
                if (self.dir / source).exists():
                    os.replace(self.dir / source, self.dir / dest)
                    self._step("replaced")
        for folder in sorted({(self.dir / entry.path).parent for entry, _, _ in writes}):
            fsync_dir(folder)
        manifest["version"] = MANIFEST_VERSION
        for entry, _, rewrite in writes:
            if check:
                verify_file(self.dir, entry)
            if entry.checkpoint is not None:
                manifest["origin"] = entry.checkpoint.split("\n", 1)[0]
            manifest["files"][entry.path] = entry.as_json()
            if rewrite:
                manifest.setdefault("rewrites", []).append(rewrite)
        del manifest["pending"]
        manifest["updated_at"] = format_ns(dt_now_ns())
        _write_json_atomic(self.dir / MANIFEST, manifest)

    def _pending_write(self, record: Any) -> tuple[FileEntry, list[tuple[str, str]], Any]:
        """(entry, renames, rewrite) of one day of a pending record. Raises ArchiveError when the
        record is not one siemgate writes: renames other than of temporary files into the day's
        file and sidecar."""
        try:
            entry = FileEntry(**record["entry"])
            moves = [(str(a), str(b)) for a, b in record["replace"]]
            rewrite = record.get("rewrite")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveError(f"{self.dir / MANIFEST}: its pending write is not valid ({exc})") from None
        allowed = {entry.path, entry.index_file} if entry.path == day_path(entry.day, entry.format) else set()
        for source, dest in moves:
            folder = PurePosixPath(dest).parent
            name = PurePosixPath(source).name
            if dest not in allowed or PurePosixPath(source).parent != folder or not is_temporary(name):
                raise ArchiveError(f"{self.dir / MANIFEST}: its pending write names {source!r} -> {dest!r}")
        return entry, moves, rewrite

    def _step(self, name: str) -> None:
        if self.stop is not None:
            self.stop(name)

    def record_purge(self, audit_index: int, event: bytes) -> None:
        """Keep in the manifest the audit event (as stored, with its index in the account's audit
        log) that recorded a purge of this stream, so that an auditor holding only the archive sees
        the policy in force. Raises ArchiveError when the manifest cannot be written."""
        try:
            manifest = self.recover()
            manifest["version"] = MANIFEST_VERSION
            manifest.setdefault("purges", []).append({"audit_index": audit_index, "event": event.decode()})
            manifest["updated_at"] = format_ns(dt_now_ns())
            _write_json_atomic(self.dir / MANIFEST, manifest)
        except OSError as exc:
            raise ArchiveError(f"cannot write {self.dir / MANIFEST}: {exc.strerror or exc}") from None

    def _archived(self, manifest: dict[str, Any], relative: str) -> FileEntry | None:
        """The verified entry of the file `relative` (None for a new day). Raises ArchiveError when
        what it holds cannot be known for sure: the manifest is missing although the folder holds
        archive files, or lists the file but it is missing or does not verify, or the file exists
        without being listed (a manifest rolled back or replaced)."""
        target = self.dir / relative
        if not (self.dir / MANIFEST).exists() and next(archive_files(self.dir), None) is not None:
            raise ArchiveError(
                f"{self.dir / MANIFEST}: missing, but the folder holds archive files; nothing is written or"
                " purged until it is restored (see `siemgate archive verify`)"
            )
        listed = manifest["files"].get(relative)
        if listed is None:
            if target.exists() or target.is_symlink():
                raise ArchiveError(
                    f"{target}: exists but the manifest does not list it; late events cannot be merged into"
                    " it until the manifest is restored (see `siemgate archive verify`)"
                )
            return None
        try:
            entry = FileEntry(**listed)
        except TypeError as exc:
            raise ArchiveError(f"{self.dir / MANIFEST}: the entry of {relative} is not valid ({exc})") from None
        verify_file(self.dir, entry)
        return entry


def _remove(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def dt_now_ns() -> int:
    return time.time_ns()


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_durably(path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def load_manifest(folder: Path) -> dict[str, Any] | None:
    """The stream folder's manifest (None when there is none). Raises ArchiveError when it cannot
    be read: not a regular file (a symbolic link, a FIFO), larger than MAX_MANIFEST_BYTES, not JSON."""
    path = folder / MANIFEST
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ArchiveError(f"{path}: the manifest cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ArchiveError(f"{path}: the manifest is not a regular file (a symbolic link, folder or device)")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise ArchiveError(
            f"{path}: the manifest is {info.st_size} bytes, more than the {MAX_MANIFEST_BYTES} siemgate reads"
            " (no archive's manifest grows near it)"
        )
    try:
        data: dict[str, Any] = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ArchiveError(f"{path}: the manifest cannot be read: {exc}") from None
    return data


def verify_file(
    folder: Path,
    entry: FileEntry,
    *,
    path: Path | None = None,
    expect: str | None = None,
    index_path: Path | None = None,
) -> None:
    """Check a file against its manifest entry: size, SHA-256, readable, event count, first and last
    timestamps, every row within its day and in (timestamp, uuid) order (and, with `expect`, the
    digest `_row_digest` makes of the rows written); its log indices: the sidecar's SHA-256 and one
    line per row with the row's timestamp (JSON Lines), as many indices as the entry says (both).
    Reads the file and its indices a part at a time, and stops at the first row past the entry's
    count. Raises ArchiveError saying what is wrong."""
    name = folder / entry.path
    target = path or name
    _require_regular(target, name, f"with {entry.events} events", folder)
    size = target.stat().st_size
    if size != entry.bytes:
        raise ArchiveError(f"{name}: {size} bytes, the manifest says {entry.bytes}")
    digest = sha256_file(target)
    if digest != entry.sha256:
        raise ArchiveError(f"{name}: SHA-256 {digest} differs from the manifest's {entry.sha256}")
    if entry.index_file is not None:
        listed = folder / entry.index_file
        actual = index_path or listed
        _require_regular(actual, listed, f"as the log indices of {entry.path}", folder)
        digest = sha256_file(actual)
        if digest != entry.index_sha256:
            raise ArchiveError(f"{listed}: SHA-256 {digest} differs from the manifest's {entry.index_sha256}")
    start = day_start(entry.day)
    count, held, first, last = 0, 0, None, None
    previous: tuple[int, str] | None = None
    written = hashlib.sha256()
    indices = _index_rows(folder, entry, target, index_path)
    mismatch = f"{folder / (entry.index_file or entry.path)}: its rows do not match the rows of {entry.path}"
    for index, row in enumerate(read_rows(target, entry.format)):
        if index >= entry.events:
            raise ArchiveError(f"{name}: more than the {entry.events} events the manifest says")
        if not start <= row[0] < start + DAY_NS:
            raise ArchiveError(f"{name}: row {index} ({format_ns(row[0])}) is not on {entry.day}")
        if previous is not None and row[:2] <= previous:
            raise ArchiveError(f"{name}: row {index} is out of (timestamp, uuid) order or repeated")
        previous = row[:2]
        idx, stamp = next(indices, (None, -1))
        if stamp not in (None, row[0]):
            raise ArchiveError(mismatch)
        if idx is not None and idx < 0:
            raise ArchiveError(f"{name}: row {index} carries log index {idx}, not an index of the log")
        _row_digest(written, row, idx)
        first = first or format_ns(row[0])
        last = format_ns(row[0])
        count, held = count + 1, held + (idx is not None)
    if count != entry.events:
        raise ArchiveError(f"{name}: {count} events, the manifest says {entry.events}")
    if next(indices, None) is not None:
        raise ArchiveError(mismatch)
    if (first, last) != (entry.first_ts, entry.last_ts):
        raise ArchiveError(
            f"{name}: events from {first} to {last}, the manifest says {entry.first_ts} to {entry.last_ts}"
        )
    if held != entry.indexed:
        raise ArchiveError(f"{name}: {held} rows carry a log index, the manifest says {entry.indexed}")
    if expect is not None and written.hexdigest() != expect:
        raise ArchiveError(f"{target}: read back differs from what was written")
