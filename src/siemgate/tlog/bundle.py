"""The export bundle of one log (docs/integrity.md, "Bundle"): what `siemgate log export` writes
and `siemgate-verify bundle` reads.

    DIR/bundle.json          {"format": "siemgate-log-bundle/v1", "origin", "size",
                              "exported_at" (unix s), "retention_cutoff_ns" (int or null)}
    DIR/entries.bin          `size` entries of 41 bytes, index order (src/siemgate/tlog/entry.py)
    DIR/events.tsv           "<index>\\t<stored v2 bytes>\\n" per event body held, index order
    DIR/checkpoints/*.checkpoint   signed checkpoints (any names)
    DIR/recoveries/*.recovery      signed recovery statements, if the log was ever recovered
    DIR/proofs/<m>-<n>.consistency consistency proofs from the stored tree between checkpoint sizes
    DIR/purges.tsv           "<audit index>\t<stored v2 bytes>\n" per audit event recording a
                             purge of this stream (tlog.purges), oldest first

Stored v2 bytes are compact JSON, so they hold no tab or newline. A proof file is one base64 hash
per line (the form tlog-witness uses), empty for an empty proof. Only the checkpoints and recovery
statements are signed: everything else is checked against them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from siemgate.tlog.entry import Entry
from siemgate.tlog.merkle import HASH_SIZE

BUNDLE_FORMAT = "siemgate-log-bundle/v1"
MANIFEST = "bundle.json"
ENTRIES = "entries.bin"
EVENTS = "events.tsv"
CHECKPOINTS = "checkpoints"
RECOVERIES = "recoveries"
PROOFS = "proofs"
PURGES = "purges.tsv"
_PROOF_NAME = re.compile(r"(0|[1-9][0-9]*)-(0|[1-9][0-9]*)\.consistency")
MAX_PROOF_LINES = 128
# The longest line of events.tsv, purges.tsv or an archive's JSON Lines file read: an index, a tab
# and a stored event, which is at most config.MAX_EVENT_BYTES (16 MiB); a longer line is never read
# whole (bounded_lines; the server's archive reader uses it too).
MAX_LINE_BYTES = 64 * 1024 * 1024
# The largest bundle.json, checkpoint or recovery note and consistency proof read: a few KiB when
# siemgate writes them; a longer one (a damaged or hostile bundle) is never read whole.
MAX_NOTE_BYTES = 1024 * 1024


class BundleError(ValueError):
    """A bundle file is missing or malformed; the message names the file."""


def format_hashes(hashes: Sequence[bytes]) -> str:
    """A proof file: one base64 hash per line."""
    return "".join(base64.b64encode(h).decode() + "\n" for h in hashes)


def parse_hashes(text: str, where: str) -> list[bytes]:
    """Parse a proof file; BundleError naming the line that is not a base64 SHA-256 hash."""
    lines = text.splitlines()
    if len(lines) > MAX_PROOF_LINES:
        raise BundleError(f"{where}: a proof has at most {MAX_PROOF_LINES} hashes")
    out: list[bytes] = []
    for n, line in enumerate(lines, 1):
        try:
            h = base64.b64decode(line.strip().encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise BundleError(f"{where} line {n} is not base64") from None
        if len(h) != HASH_SIZE:
            raise BundleError(f"{where} line {n} is not a {HASH_SIZE}-byte hash")
        out.append(h)
    return out


@dataclass(frozen=True)
class Manifest:
    origin: str
    size: int
    exported_at: int
    retention_cutoff_ns: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "exported_at": self.exported_at,
            "retention_cutoff_ns": self.retention_cutoff_ns,
        }


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    try:
        data = json.loads(read_small(path))
    except FileNotFoundError:
        raise BundleError(f"{path} is missing: is {directory} a bundle written by siemgate log export?") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"{path} is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: format must be {BUNDLE_FORMAT!r}")
    origin, size, exported = data.get("origin"), data.get("size"), data.get("exported_at", 0)
    cutoff = data.get("retention_cutoff_ns")
    if not isinstance(origin, str) or not isinstance(size, int) or size < 0 or not isinstance(exported, int):
        raise BundleError(f"{path}: origin (string), size and exported_at (non-negative integers) are required")
    if cutoff is not None and not isinstance(cutoff, int):
        raise BundleError(f"{path}: retention_cutoff_ns must be an integer or null")
    return Manifest(origin, size, exported, cutoff)


def proof_files(directory: Path) -> list[tuple[int, int, Path]]:
    """(size1, size2, path) of every proof file, by size; BundleError for a misnamed file."""
    folder = directory / PROOFS
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.iterdir()):
        match = _PROOF_NAME.fullmatch(path.name)
        if match is None:
            raise BundleError(f"{path}: proof files are named <size1>-<size2>.consistency")
        out.append((int(match[1]), int(match[2]), path))
    return sorted(out)


def note_files(directory: Path, folder: str) -> list[Path]:
    path = directory / folder
    return sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else []


def write_bundle(
    directory: Path,
    manifest: Manifest,
    entries: Iterable[Entry],
    events: Iterable[tuple[int, bytes]],
    checkpoints: Iterable[str],
    proofs: Iterable[tuple[int, int, Sequence[bytes]]] = (),
    recoveries: Iterable[str] = (),
    purges: Iterable[tuple[int, bytes]] = (),
) -> None:
    """Write a bundle into `directory` (created; must be empty). Streams entries and events;
    `purges` are the (audit index, stored bytes) of the stream's purge records."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise BundleError(f"{directory} is not empty; export into a new directory")
    count = 0
    with (directory / ENTRIES).open("wb") as f:
        for entry in entries:
            f.write(entry.encode())
            count += 1
    if count != manifest.size:
        raise BundleError(f"the bundle declares {manifest.size} entries but {count} were written")
    for name, rows in ((EVENTS, events), (PURGES, purges)):
        with (directory / name).open("wb") as f:
            for idx, body in rows:
                if b"\n" in body or b"\t" in body:
                    raise BundleError(f"the body of index {idx} holds a tab or newline; stored bodies are compact JSON")
                f.write(b"%d\t%s\n" % (idx, body))
    for folder, notes, suffix in ((CHECKPOINTS, checkpoints, "checkpoint"), (RECOVERIES, recoveries, "recovery")):
        for n, note in enumerate(notes):
            (directory / folder).mkdir(exist_ok=True)
            (directory / folder / f"{n:06d}.{suffix}").write_text(note, encoding="utf-8")
    for size1, size2, hashes in proofs:
        (directory / PROOFS).mkdir(exist_ok=True)
        (directory / PROOFS / f"{size1}-{size2}.consistency").write_text(format_hashes(hashes), encoding="utf-8")
    (directory / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")


def read_purges(directory: Path) -> list[tuple[int, bytes]]:
    """(audit index, stored bytes) of each purge record of the bundle (none in bundles written
    before purges were recorded); BundleError naming a malformed line."""
    path = directory / PURGES
    if not path.exists():
        return []
    out = []
    for n, line in read_lines(path):
        idx, tab, body = line.partition(b"\t")
        if not tab or not idx.isdigit():
            raise BundleError(f"{PURGES} line {n} is not '<audit index>\\t<event>'")
        out.append((int(idx), body))
    return out


class LineTooLong(ValueError):
    """A line longer than MAX_LINE_BYTES, not read whole; `number` is its line number (from 1)."""

    def __init__(self, number: int) -> None:
        super().__init__(f"line {number} is longer than {MAX_LINE_BYTES} bytes, which no archived event is")
        self.number = number


class _Readable(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def bounded_lines(f: _Readable) -> Iterator[bytes]:
    """Each line of the binary file `f` (a bundle file, or an archive's JSON Lines read through
    gzip) without its newline, read a line at a time. Raises LineTooLong for a line longer than
    MAX_LINE_BYTES (a damaged or hostile file of one huge line, however well it compresses) before
    it is read whole."""
    number = 0
    while line := f.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise LineTooLong(number)
        yield line.rstrip(b"\n")


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(number, line without its newline) of each line of the bundle file `path`, read a line at a
    time. Raises BundleError naming the file and the line when a line is longer than
    MAX_LINE_BYTES, before it is read whole."""
    with path.open("rb") as f:
        try:
            yield from enumerate(bounded_lines(f), 1)
        except LineTooLong as exc:
            raise BundleError(
                f"{path.name} line {exc.number} is longer than {MAX_LINE_BYTES} bytes, which no stored event is"
            ) from None


def read_small(path: Path) -> str:
    """The text of the bundle file `path` (bundle.json, a note, a proof). Raises BundleError naming
    the file when it is longer than MAX_NOTE_BYTES, before it is read whole; UnicodeDecodeError
    when it is not UTF-8; OSError (FileNotFoundError) when it cannot be read."""
    with path.open("rb") as f:
        data = f.read(MAX_NOTE_BYTES + 1)
    if len(data) > MAX_NOTE_BYTES:
        raise BundleError(f"{path.name} is longer than {MAX_NOTE_BYTES} bytes, which no file siemgate exports is")
    return data.decode("utf-8")
