"""Archive files: one per (account, stream, UTC day), and a manifest per (account, stream).

    <archive>/<account uuid>/<feature>/manifest.json
    <archive>/<account uuid>/<feature>/<YYYY>/<YYYY-MM-DD>.jsonl.gz   (or .parquet)

A JSON Lines file holds the stored events (v2 JSON), one per line, gzip-compressed; a Parquet file
has columns `timestamp_ns` (int64), `uuid` (string) and `event` (string, the same JSON) and typed
columns of the events' fields beside them (`retention.parquet`), zstd-compressed. Rows are in
(timestamp, uuid) order. The manifest lists each file with its day,
format, event count, byte size and SHA-256, and is rewritten atomically after each file.

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
LOCK_FILE = ".retention.lock"  # in the archive folder: one retention run at a time
MANIFEST_VERSION = 1


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


def _encode(rows: list[Row], fmt: str, feature: Feature, out: Any) -> None:
    if fmt == "parquet":
        parquet.write(rows, feature, out)
        return
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        for start in range(0, len(rows), 10_000):
            gz.write(b"".join(body + b"\n" for _, _, body in rows[start : start + 10_000]))


def read_rows(path: Path, fmt: str | None = None) -> Iterator[Row]:
    """The rows of an archive file (format `fmt`, else from its name); raises ArchiveError when
    unreadable."""
    fmt = fmt or ("parquet" if path.name.endswith(".parquet") else "jsonl")
    try:
        if fmt == "parquet":
            yield from parquet.read(path)
            return
        with gzip.open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if line:
                    event = orjson.loads(line)
                    yield parse_ns(event["timestamp"]), str(event["uuid"]), line
    except (OSError, EOFError, ValueError, KeyError, pa.ArrowException) as exc:
        raise ArchiveError(f"{path}: cannot read the archive file: {exc}") from None


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

    def write_day(self, day: str, rows: list[Row]) -> FileEntry:
        """Write (or merge into) the day's file; returns its manifest entry once it is durable and
        checked. Raises ArchiveError (the previous file and manifest are left as they were), also
        when what is archived for the day cannot be read and checked first (see `_archived`)."""
        manifest = self.manifest()
        relative = day_path(day, self.format)
        target = self.dir / relative
        merged = {(ts, uuid): body for ts, uuid, body in rows}
        archived = self._archived(manifest, relative)
        for ts, uuid, body in archived:
            merged.setdefault((ts, uuid), body)
        ordered = [(ts, uuid, merged[(ts, uuid)]) for ts, uuid in sorted(merged)]
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                _encode(ordered, self.format, self.feature, _Sink(f, self.fault))
                f.flush()
                os.fsync(f.fileno())
            entry = FileEntry(
                relative,
                day,
                self.format,
                len(ordered),
                tmp.stat().st_size,
                sha256_file(tmp),
                format_ns(ordered[0][0]) if ordered else None,
                format_ns(ordered[-1][0]) if ordered else None,
            )
            verify_file(self.dir, entry, path=tmp, expect=ordered)
            if entry.events < len(archived):  # cannot happen (a merge only adds): never lose a row
                raise ArchiveError(f"{target}: would hold {entry.events} events instead of {len(archived)}")
            os.replace(tmp, target)
            _fsync_dir(target.parent)
            manifest["files"][relative] = entry.as_json()
            manifest["updated_at"] = format_ns(dt_now_ns())
            _write_json_atomic(self.dir / MANIFEST, manifest)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ArchiveError(f"cannot write the archive {target}: {exc.strerror or exc}") from None
        except ArchiveError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return entry

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


def verify_file(folder: Path, entry: FileEntry, *, path: Path | None = None, expect: list[Row] | None = None) -> None:
    """Check a file against its manifest entry: size, SHA-256, readable, event count, first and last
    timestamps, every row within its day and in (timestamp, uuid) order (and, with `expect`,
    exactly those rows). Raises ArchiveError saying what is wrong."""
    name = folder / entry.path
    target = path or name
    if not target.exists():
        raise ArchiveError(f"{name}: missing (the manifest lists it with {entry.events} events)")
    size = target.stat().st_size
    if size != entry.bytes:
        raise ArchiveError(f"{name}: {size} bytes, the manifest says {entry.bytes}")
    digest = sha256_file(target)
    if digest != entry.sha256:
        raise ArchiveError(f"{name}: SHA-256 {digest} differs from the manifest's {entry.sha256}")
    start = day_start(entry.day)
    count, first, last = 0, None, None
    previous: tuple[int, str] | None = None
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
        count += 1
    if count != entry.events:
        raise ArchiveError(f"{name}: {count} events, the manifest says {entry.events}")
    if (first, last) != (entry.first_ts, entry.last_ts):
        raise ArchiveError(
            f"{name}: events from {first} to {last}, the manifest says {entry.first_ts} to {entry.last_ts}"
        )
