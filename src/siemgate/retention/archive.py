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
followed an archive, and is rewritten atomically after each file.

Writing is all-or-nothing per file: the file is written to a temporary name, flushed and fsynced,
read back and checked (count and digest), then renamed into place and the directory fsynced;
only then is the manifest updated. A day written again (late events) is merged with its file,
without duplicates by (timestamp, uuid): the file is verified against the manifest and read first,
and when that cannot be done (manifest missing or unreadable, file missing, altered, or not
listed) the write fails and nothing is replaced. A file is never replaced by one holding fewer
events.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from siemgate.errors import SiemgateError
from siemgate.model.features import Feature
from siemgate.model.timestamps import NS_PER_SECOND, format_ns, parse_ns
from siemgate.retention import parquet
from siemgate.retention.parquet import Row

DAY_NS = 86400 * NS_PER_SECOND
FORMATS = ("jsonl", "parquet")
SUFFIX = {"jsonl": ".jsonl.gz", "parquet": ".parquet"}
MANIFEST = "manifest.json"
LOCK_FILE = ".retention.lock"  # the lock file of releases before the folder itself was locked: ignored
MANIFEST_VERSION = 2  # 2: log indices, checkpoints, rewrites and purges (1 is still read)
MANIFEST_VERSIONS = (1, 2)
INDEX_FORMAT = "siemgate-archive-index/v1"
# The longest JSON Lines line read: far above any event an ingest setting allows in practice. A
# file holding a longer event fails when it is written (it is read back), so nothing is purged.
MAX_LINE_BYTES = 64 * 1024 * 1024


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


def archive_files(folder: Path) -> Iterator[Path]:
    """Every file under a stream folder other than its manifest and temporary files."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path != folder / MANIFEST and not is_temporary(path.name):
            yield path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require_regular(path: Path, listed: Path, what: str) -> None:
    """Raise ArchiveError when `path` is not a regular file (a folder, FIFO or device in its place:
    reading it would fail or never end); `listed` and `what` say what the manifest expects there."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ArchiveError(f"{listed}: missing (the manifest lists it {what})") from None
    except OSError as exc:
        raise ArchiveError(f"{listed}: cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise ArchiveError(f"{listed}: not a regular file (the manifest lists it {what})")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _encode(rows: list[Row], indices: list[int | None], fmt: str, feature: Feature, out: Any) -> None:
    if fmt == "parquet":
        parquet.write(rows, feature, out, indices)
        return
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        for start in range(0, len(rows), 10_000):
            gz.write(b"".join(body + b"\n" for _, _, body in rows[start : start + 10_000]))


def read_rows(path: Path, fmt: str | None = None) -> Iterator[Row]:
    """The rows of an archive file (format `fmt`, else from its name); raises ArchiveError when
    unreadable, naming the line of a JSON Lines file, and without reading a line longer than
    MAX_LINE_BYTES (a damaged or hostile file of one huge line, however well it compresses)."""
    fmt = fmt or ("parquet" if path.name.endswith(".parquet") else "jsonl")
    number = 0
    try:
        if fmt == "parquet":
            yield from parquet.read(path)
            return
        with gzip.open(path, "rb") as f:
            while line := f.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    raise ArchiveError(
                        f"{path}: line {number} is longer than {MAX_LINE_BYTES} bytes, which no archived event"
                        " is: the file is damaged or was not written by siemgate"
                    )
                line = line.rstrip(b"\n")
                if line:
                    event = orjson.loads(line)
                    yield parse_ns(event["timestamp"]), str(event["uuid"]), line
    except (OSError, EOFError, ValueError, KeyError, pa.ArrowException) as exc:
        where = f" at line {number}" if number else ""
        raise ArchiveError(f"{path}: cannot read the archive file{where}: {exc}") from None


def _index_bytes(data_name: str, rows: list[Row], indices: list[int | None]) -> bytes:
    """The sidecar of a JSON Lines file: `[index, timestamp ns]` per row, in the file's order."""
    lines = [orjson.dumps({"format": INDEX_FORMAT, "file": data_name, "rows": len(rows)})]
    lines += [orjson.dumps([idx, row[0]]) for row, idx in zip(rows, indices, strict=True)]
    return b"\n".join(lines) + b"\n"


def read_indices(
    folder: Path, entry: FileEntry, *, path: Path | None = None, sidecar: Path | None = None
) -> list[int | None]:
    """The log index of each row of the file of `entry` (None: archived before indices), from its
    `log_index` column or its sidecar (`path`/`sidecar`: read those files instead of the listed
    ones). Raises ArchiveError when they cannot be read."""
    target = path or folder / entry.path
    if entry.format == "parquet":
        try:
            return parquet.read_indices(target)
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveError(f"{target}: cannot read the log indices: {exc}") from None
    if entry.index_file is None:
        return [None] * entry.events
    sidecar = sidecar or folder / entry.index_file
    try:
        lines = sidecar.read_bytes().splitlines()
        header = orjson.loads(lines[0]) if lines else None
        if not isinstance(header, dict) or header.get("format") != INDEX_FORMAT:
            raise ValueError(f"the first line is not a {INDEX_FORMAT} header")
        out: list[int | None] = []
        for line in lines[1:]:
            idx, _ts = orjson.loads(line)
            out.append(None if idx is None else int(idx))
        return out
    except FileNotFoundError:
        raise ArchiveError(f"{sidecar}: missing (the manifest lists it as the log indices of {entry.path})") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ArchiveError(f"{sidecar}: cannot read the log indices: {exc}") from None


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
        """Write (or merge into) the day's file; returns its manifest entry once it is durable and
        checked. `indices` gives the log index of each new row by (timestamp, uuid); rows already
        archived keep theirs. `checkpoint` is the signed day-close checkpoint the rows were checked
        against. A merge into a day already archived is recorded in the manifest's `rewrites`.
        Raises ArchiveError (the previous file and manifest are left as they were), also when what
        is archived for the day cannot be read and checked first (see `_archived`)."""
        manifest = self.manifest()
        relative = day_path(day, self.format)
        target = self.dir / relative
        merged = {(ts, uuid): body for ts, uuid, body in rows}
        known: dict[tuple[int, str], int | None] = dict(indices or {})
        previous = manifest["files"].get(relative)
        archived = self._archived(manifest, relative)
        if archived:
            old = read_indices(self.dir, FileEntry(**previous))
            for (ts, uuid, body), idx in zip(archived, old, strict=True):
                merged.setdefault((ts, uuid), body)
                if idx is not None or (ts, uuid) not in known:
                    known[(ts, uuid)] = idx
        ordered = [(ts, uuid, merged[(ts, uuid)]) for ts, uuid in sorted(merged)]
        order = [known.get(row[:2]) for row in ordered]
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        sidecar = index_path(day) if self.format == "jsonl" else None
        side_tmp = (self.dir / sidecar).with_name(f".{Path(sidecar).name}.tmp-{os.getpid()}") if sidecar else None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                _encode(ordered, order, self.format, self.feature, _Sink(f, self.fault))
                f.flush()
                os.fsync(f.fileno())
            index_sha = None
            if side_tmp is not None:
                data = _index_bytes(target.name, ordered, order)
                with open(side_tmp, "wb") as f:
                    _Sink(f, self.fault).write(data)
                    f.flush()
                    os.fsync(f.fileno())
                index_sha = hashlib.sha256(data).hexdigest()
            entry = FileEntry(
                relative,
                day,
                self.format,
                len(ordered),
                tmp.stat().st_size,
                sha256_file(tmp),
                format_ns(ordered[0][0]) if ordered else None,
                format_ns(ordered[-1][0]) if ordered else None,
                sum(1 for i in order if i is not None),
                sidecar,
                index_sha,
                checkpoint,
            )
            verify_file(self.dir, entry, path=tmp, expect=ordered, index_path=side_tmp)
            if self.format == "parquet" and read_indices(self.dir, entry, path=tmp) != order:
                raise ArchiveError(f"{target}: the log indices read back differ from those written")
            if entry.events < len(archived):  # cannot happen (a merge only adds): never lose a row
                raise ArchiveError(f"{target}: would hold {entry.events} events instead of {len(archived)}")
            if side_tmp is not None and sidecar is not None:
                os.replace(side_tmp, self.dir / sidecar)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
            manifest["version"] = MANIFEST_VERSION
            if checkpoint is not None:
                manifest["origin"] = checkpoint.split("\n", 1)[0]
            manifest["files"][relative] = entry.as_json()
            if archived:
                manifest.setdefault("rewrites", []).append(
                    {
                        "path": relative,
                        "at": format_ns(dt_now_ns()),
                        "events_before": len(archived),
                        "events_after": entry.events,
                        "sha256_before": previous["sha256"],
                        "sha256_after": entry.sha256,
                    }
                )
            manifest["updated_at"] = format_ns(dt_now_ns())
            _write_json_atomic(self.dir / MANIFEST, manifest)
        except OSError as exc:
            for path in (tmp, side_tmp):
                if path is not None:
                    with contextlib.suppress(OSError):
                        path.unlink()
            raise ArchiveError(f"cannot write the archive {target}: {exc.strerror or exc}") from None
        except ArchiveError:
            for path in (tmp, side_tmp):
                if path is not None:
                    with contextlib.suppress(OSError):
                        path.unlink()
            raise
        return entry

    def record_purge(self, audit_index: int, event: bytes) -> None:
        """Keep in the manifest the audit event (as stored, with its index in the account's audit
        log) that recorded a purge of this stream, so that an auditor holding only the archive sees
        the policy in force. Raises ArchiveError when the manifest cannot be written."""
        manifest = self.manifest()
        manifest["version"] = MANIFEST_VERSION
        manifest.setdefault("purges", []).append({"audit_index": audit_index, "event": event.decode()})
        manifest["updated_at"] = format_ns(dt_now_ns())
        try:
            _write_json_atomic(self.dir / MANIFEST, manifest)
        except OSError as exc:
            raise ArchiveError(f"cannot write {self.dir / MANIFEST}: {exc.strerror or exc}") from None

    def _archived(self, manifest: dict[str, Any], relative: str) -> list[Row]:
        """The rows already archived for the file `relative` (none for a new day). Raises
        ArchiveError when they cannot be known for sure: the manifest is missing although the
        folder holds archive files, or lists the file but it is missing or does not verify, or the
        file exists without being listed (a manifest rolled back or replaced)."""
        target = self.dir / relative
        if not (self.dir / MANIFEST).exists() and any(archive_files(self.dir)):
            raise ArchiveError(
                f"{self.dir / MANIFEST}: missing, but the folder holds archive files; nothing is written or"
                " purged until it is restored (see `siemgate archive verify`)"
            )
        listed = manifest["files"].get(relative)
        if listed is None:
            if target.exists():
                raise ArchiveError(
                    f"{target}: exists but the manifest does not list it; late events cannot be merged into"
                    " it until the manifest is restored (see `siemgate archive verify`)"
                )
            return []
        try:
            entry = FileEntry(**listed)
        except TypeError as exc:
            raise ArchiveError(f"{self.dir / MANIFEST}: the entry of {relative} is not valid ({exc})") from None
        verify_file(self.dir, entry)
        return list(read_rows(target, entry.format))


def dt_now_ns() -> int:
    return time.time_ns()


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.exists():
        return None
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
    expect: list[Row] | None = None,
    index_path: Path | None = None,
) -> None:
    """Check a file against its manifest entry: size, SHA-256, readable, event count, first and last
    timestamps, every row within its day and in (timestamp, uuid) order (and, with `expect`,
    exactly those rows); its log indices: the sidecar's SHA-256 and one line per row with the row's
    timestamp (JSON Lines), as many indices as the entry says (both). Raises ArchiveError saying
    what is wrong."""
    name = folder / entry.path
    target = path or name
    _require_regular(target, name, f"with {entry.events} events")
    size = target.stat().st_size
    if size != entry.bytes:
        raise ArchiveError(f"{name}: {size} bytes, the manifest says {entry.bytes}")
    digest = sha256_file(target)
    if digest != entry.sha256:
        raise ArchiveError(f"{name}: SHA-256 {digest} differs from the manifest's {entry.sha256}")
    start = day_start(entry.day)
    count, first, last = 0, None, None
    previous: tuple[int, str] | None = None
    times = []
    for index, row in enumerate(read_rows(target, entry.format)):
        if expect is not None and (index >= len(expect) or row[:2] != expect[index][:2]):
            raise ArchiveError(f"{target}: read back differs from what was written at row {index}")
        if not start <= row[0] < start + DAY_NS:
            raise ArchiveError(f"{name}: row {index} ({format_ns(row[0])}) is not on {entry.day}")
        if previous is not None and row[:2] <= previous:
            raise ArchiveError(f"{name}: row {index} is out of (timestamp, uuid) order or repeated")
        previous = row[:2]
        first = first or format_ns(row[0])
        last = format_ns(row[0])
        times.append(row[0])
        count += 1
    if count != entry.events:
        raise ArchiveError(f"{name}: {count} events, the manifest says {entry.events}")
    if (first, last) != (entry.first_ts, entry.last_ts):
        raise ArchiveError(
            f"{name}: events from {first} to {last}, the manifest says {entry.first_ts} to {entry.last_ts}"
        )
    _verify_indices(folder, entry, target, times, index_path)


def _verify_indices(folder: Path, entry: FileEntry, target: Path, times: list[int], sidecar: Path | None) -> None:
    if entry.index_file is not None:
        listed = folder / entry.index_file
        actual = sidecar or listed
        _require_regular(actual, listed, f"as the log indices of {entry.path}")
        digest = sha256_file(actual)
        if digest != entry.index_sha256:
            raise ArchiveError(f"{listed}: SHA-256 {digest} differs from the manifest's {entry.index_sha256}")
        lines = actual.read_bytes().splitlines()[1:]
        try:
            stamps = [int(orjson.loads(line)[1]) for line in lines]
        except (ValueError, TypeError, IndexError) as exc:
            raise ArchiveError(f"{listed}: cannot read the log indices: {exc}") from None
        if stamps != times:
            raise ArchiveError(f"{listed}: its rows do not match the rows of {entry.path}")
    indices = read_indices(folder, entry, path=target, sidecar=sidecar)
    for row, idx in enumerate(indices):
        if idx is not None and idx < 0:
            raise ArchiveError(f"{folder / entry.path}: row {row} carries log index {idx}, not an index of the log")
    held = sum(1 for i in indices if i is not None)
    if len(indices) != entry.events or held != entry.indexed:
        raise ArchiveError(f"{folder / entry.path}: {held} rows carry a log index, the manifest says {entry.indexed}")
