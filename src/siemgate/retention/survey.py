"""What an archive folder holds, checked for layout: every stream folder has a readable manifest
that names its account and stream as the folder does, lists each file under the name its day and
format give, and lists every archive file in the folder; nothing lies outside a stream folder.

`survey` reports each departure as a Problem (which stream it concerns and what is wrong) and
returns the streams whose manifests could be read; verifying the files' contents against their
entries is `archive.verify_file`'s part. Temporary files of a run in progress are not problems.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.retention.archive import (
    FORMATS,
    LOCK_FILE,
    MANIFEST,
    MANIFEST_VERSION,
    MANIFEST_VERSIONS,
    ArchiveError,
    FileEntry,
    archive_files,
    day_path,
    index_path,
    is_temporary,
    load_manifest,
)

STREAM_NAMES = ", ".join(ALL_FEATURES)
MAX_UNLISTED = 100  # unlisted files named one by one per stream; the rest are counted


@dataclass(frozen=True)
class StreamManifest:
    folder: Path
    account: str
    account_name: str
    feature: Feature
    files: list[FileEntry]


@dataclass(frozen=True)
class Problem:
    """Something wrong in an archive folder; `account`/`feature` say which stream (None: none)."""

    account: str | None
    feature: str | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Survey:
    streams: list[StreamManifest]
    problems: list[Problem]

    def accounts(self) -> dict[str, str]:
        """Archived account uuid -> name (the uuid when no readable manifest names it)."""
        names = {p.account: p.account for p in self.problems if p.account is not None}
        names.update({s.account: s.account_name for s in self.streams})
        return dict(sorted(names.items()))


def survey(root: Path) -> Survey:
    """Survey the archive folder `root`, every stream held at once (`walk` holds one at a time).
    Raises ArchiveError when it is not a folder."""
    found = Survey([], [])
    for stream, problems in walk(root):
        found.problems += problems
        if stream is not None:
            found.streams.append(stream)
    return found


def walk(root: Path) -> Iterator[tuple[StreamManifest | None, list[Problem]]]:
    """Survey the archive folder `root` a stream (or a misplaced entry) at a time, in order of
    account and stream: what it holds, when its manifest could be read, and the problems found
    there. Nothing of a stream is kept once the next is read, so an archive of every account's
    years is surveyed in the memory of its largest manifest (and of its account folders' names).
    The stray entries of the folder, then of each account's folder, come first, at most
    MAX_UNLISTED named per folder and the rest counted (`_scan`). Raises ArchiveError (when first
    iterated) when `root` is not a folder."""
    if not root.is_dir():
        raise ArchiveError(
            f"{root}: no archive folder there (give the folder that holds <account uuid>/<stream>/{MANIFEST})"
        )
    accounts, strays = _scan(root, _root_stray, "not part of any stream archive")
    yield from ((None, [Problem(None, None, message)]) for message in strays)
    for account in accounts:
        account_dir = root / account
        features, strays = _scan(account_dir, _account_stray, "not stream archive folders")
        yield from ((None, [Problem(account, None, message)]) for message in strays)
        for feature in features:
            yield _survey_stream(account_dir / feature, account, Feature(feature))


def _scan(folder: Path, stray: Callable[[os.DirEntry[str]], str | None], what: str) -> tuple[list[str], list[str]]:
    """(the names of the folder's entries that `stray` accepts (None), sorted; what it says of the
    first MAX_UNLISTED others, then how many more there are): the folder is read an entry at a
    time, and of its strays only MAX_UNLISTED are held, however many a hostile folder has."""
    kept: list[str] = []
    named: list[str] = []
    more = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            message = stray(entry)
            if message is None:
                kept.append(entry.name)
            elif not message:
                continue  # ignored: a temporary file, the lock file of older releases
            elif len(named) < MAX_UNLISTED:
                named.append(message)
            else:
                more += 1
    named.sort()
    if more:
        named.append(f"{folder}: {more} more entries {what}")
    return sorted(kept), named


def _root_stray(entry: os.DirEntry[str]) -> str | None:
    """None for an account's folder; what is wrong with anything else ("" when nothing is)."""
    if entry.is_symlink():
        return f"{entry.path}: a symbolic link; siemgate reads none"
    if entry.is_dir(follow_symlinks=False):
        return None
    if is_temporary(entry.name) or entry.name == LOCK_FILE:
        return ""
    return f"{entry.path}: not part of any stream archive"


def _account_stray(entry: os.DirEntry[str]) -> str | None:
    """None for a stream's folder; what is wrong with anything else."""
    if entry.name in ALL_FEATURES and not entry.is_symlink() and entry.is_dir(follow_symlinks=False):
        return None
    return f"{entry.path}: not a stream archive folder (streams are {STREAM_NAMES})"


def _survey_stream(folder: Path, account: str, feature: Feature) -> tuple[StreamManifest | None, list[Problem]]:
    def problem(message: str) -> Problem:
        return Problem(account, feature.value, message)

    try:
        data = load_manifest(folder)
    except ArchiveError as exc:
        return None, [problem(str(exc))]
    if data is None:
        count = sum(1 for _ in archive_files(folder))
        if not count:
            return None, []
        return None, [
            problem(
                f"{folder / MANIFEST}: missing, so its {count} archive file(s) cannot be verified"
                " (restore it from a backup)"
            )
        ]
    try:
        entries = _entries(data, account, feature)
    except ValueError as exc:
        return None, [problem(f"{folder / MANIFEST}: {exc}")]
    listed = set(entries) | {e.index_file for e in entries.values() if e.index_file is not None}
    unlisted = (name for name in archive_files(folder) if name not in listed)
    problems = [problem(f"{folder / name}: not in the manifest") for name in sorted(islice(unlisted, MAX_UNLISTED))]
    more = sum(1 for _ in unlisted)
    if more:
        problems.append(problem(f"{folder}: {more} more files not in the manifest"))
    if "pending" in data:
        problems.append(
            problem(
                f"{folder / MANIFEST}: a write of {_pending_path(data)} was stopped (killed) after it was checked;"
                " the next `siemgate retention apply` completes it"
            )
        )
    problems += [
        problem(
            f"{folder / path}: missing from the manifest, which records that the purge at audit index {at} archived it"
        )
        for at, path in _purged_files(data, feature)
        if path not in entries
    ]
    problems += [problem(message) for message in _rolled_back(folder, data, entries)]
    name = str(data.get("account_name") or account)
    ordered = sorted(entries.values(), key=lambda f: f.day)
    return StreamManifest(folder, account, name, feature, ordered), problems


def _pending_path(data: dict[str, Any]) -> str:
    """The file(s) of the pending record (one day's, or a batch's: a list), as far as it says."""
    pending = data.get("pending")
    records = pending if isinstance(pending, list) else [pending]
    entries = [r.get("entry") for r in records if isinstance(r, dict)]
    paths = [str(e.get("path")) for e in entries if isinstance(e, dict)]
    if len(paths) > 1:
        return f"{len(paths)} days ({paths[0]} to {paths[-1]})"
    return paths[0] if paths else "a day"


def _rolled_back(folder: Path, data: dict[str, Any], entries: dict[str, FileEntry]) -> list[str]:
    """A file whose entry is not what the manifest's last rewrite of it made (a day merged with
    late events, then the file and its entry put back from an older copy)."""
    last: dict[str, dict[str, Any]] = {}
    rewrites = data.get("rewrites") or []
    for rewrite in rewrites if isinstance(rewrites, list) else []:
        if isinstance(rewrite, dict) and isinstance(rewrite.get("path"), str):
            last[rewrite["path"]] = rewrite
    out = []
    for path, rewrite in last.items():
        entry = entries.get(path)
        if entry is not None and (rewrite.get("sha256_after"), rewrite.get("events_after")) != (
            entry.sha256,
            entry.events,
        ):
            out.append(
                f"{folder / path}: the manifest lists SHA-256 {entry.sha256} with {entry.events} events, but its last"
                f" rewrite (at {rewrite.get('at')}) made {rewrite.get('sha256_after')} with"
                f" {rewrite.get('events_after')}: the file and its entry were put back from an older copy"
            )
    return out


def _purged_files(data: dict[str, Any], feature: Feature) -> list[tuple[object, str]]:
    """(audit index, file) of each file the manifest's purge records say a run archived (and
    merged) before purging: every one of them must still be listed. Records that cannot be read
    name nothing here (the offline verifier reports them)."""
    found: list[tuple[object, str]] = []
    records = data.get("purges") or []
    for record in records if isinstance(records, list) else []:
        try:
            info = orjson.loads(orjson.loads(record["event"])["aux_info"])
            if info.get("feature") == feature.value and info.get("archive") in FORMATS:
                found += [(record["audit_index"], str(path)) for path in info.get("files") or []]
        except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
            continue
    return found


def _entries(data: Any, account: str, feature: Feature) -> dict[str, FileEntry]:
    """The manifest's file entries by path; raises ValueError saying what does not fit."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ValueError("not a siemgate archive manifest (no files object)")
    if data.get("version") not in MANIFEST_VERSIONS:
        raise ValueError(f"version {data.get('version')!r}, this siemgate reads versions up to {MANIFEST_VERSION}")
    if data.get("account") != account or data.get("feature") != feature.value:
        raise ValueError(
            f"names account {data.get('account')!r} stream {data.get('feature')!r}, but lies in the folder of"
            f" account {account!r} stream {feature.value!r}"
        )
    entries = {}
    for key, value in data["files"].items():
        try:
            entry = FileEntry(**value)
            dt.date.fromisoformat(entry.day)
            for name in ("events", "bytes", "indexed"):
                number = getattr(entry, name)
                if type(number) is not int or number < 0:
                    raise ValueError(f"{name} is {number!r}, not a count")
            if not isinstance(entry.sha256, str):
                raise ValueError(f"sha256 is {entry.sha256!r}, not a digest")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the entry of {key} is not valid ({exc})") from None
        sidecar_ok = entry.index_file in (None, index_path(entry.day)) and (
            entry.index_file is None or entry.format == "jsonl"
        )
        if (
            entry.format not in FORMATS
            or key != entry.path
            or entry.path != day_path(entry.day, entry.format)
            or not sidecar_ok
        ):
            raise ValueError(
                f"the entry of {key} names path {entry.path!r}, day {entry.day!r}, format {entry.format!r},"
                f" log indices {entry.index_file!r}"
            )
        entries[key] = entry
    return entries


def manifests(root: Path) -> list[StreamManifest]:
    """The archived streams under `root` whose manifests can be read (see `survey` for problems)."""
    return survey(root).streams
