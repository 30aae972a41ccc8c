"""Offline verification of a log bundle and of consistency between two checkpoints
(docs/integrity.md, "Verifying"). Standard library and `cryptography` only.

A bundle is valid when every checkpoint and recovery statement verifies under the trusted keys,
the entries rebuild the root of every checkpoint, every event body hashes to its entry and carries
its committed timestamp (or is missing only because it is older than the retention cutoff), every
stored-tree proof verifies and matches the entries, no two checkpoints of one size differ, every
entry is covered by a checkpoint, and the newest checkpoint is fresh. Each problem names the first
bad index and the checkpoint that covers it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from siemgate.model.timestamps import format_ns
from siemgate.tlog.bundle import (
    CHECKPOINTS,
    ENTRIES,
    EVENTS,
    PURGES,
    RECOVERIES,
    BundleError,
    Manifest,
    note_files,
    parse_hashes,
    proof_files,
    read_lines,
    read_manifest,
    read_purges,
    read_small,
)
from siemgate.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    Recovery,
    SignedCheckpoint,
    check_not_backdated,
    open_checkpoint,
    open_recovery,
)
from siemgate.tlog.cosignature import WitnessPolicy
from siemgate.tlog.entry import ENTRY_SIZE, Entry, EntryError, body_timestamp_ns, decode_entry
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.merkle import CompactRange, ProofError, leaf_hash, root_of, subtree_hash, tree_reader
from siemgate.tlog.note import NoteError
from siemgate.tlog.proof import consistency_ranges, verify_consistency
from siemgate.tlog.purges import Purge, covering, parse_purge

TILE_LEVEL = 8  # perfect nodes from this level up are kept in memory while streaming
MAX_PROBLEMS = 50
DEFAULT_MAX_AGE = 7200
# The shortest retention a stream can have (src/siemgate/retention/service.py: 1 to MAX_DAYS days).
MIN_RETENTION_SECONDS = 86400


@dataclass(frozen=True)
class Problem:
    message: str
    index: int | None = None
    checkpoint: str | None = None

    def line(self) -> str:
        where = f"index {self.index}" if self.index is not None else "bundle"
        cp = f" [{self.checkpoint}]" if self.checkpoint else ""
        return f"INVALID {where}{cp}: {self.message}"


@dataclass
class Report:
    origin: str
    size: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    events: int = 0
    purged: int = 0
    stale: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.stale is None

    def add(self, message: str, index: int | None = None, checkpoint: str | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(message, index, checkpoint))

    def first_bad_index(self) -> int | None:
        indices = [p.index for p in self.problems if p.index is not None]
        return min(indices) if indices else None

    def lines(self) -> list[str]:
        out = [
            f"Verifying {self.origin}: {self.size} entries, {self.events} event bodies, "
            f"{len(self.checkpoints)} checkpoints"
        ]
        out += [f"NOTICE {n}" for n in self.notices]
        out += [p.line() for p in sorted(self.problems, key=lambda p: (p.index is None, p.index or 0))]
        if self.stale:
            out.append(f"STALE: {self.stale}")
        if self.problems:
            first = self.first_bad_index()
            out.append(
                f"Result: INVALID ({len(self.problems)} problems"
                + (f", first bad index {first})" if first is not None else ")")
            )
        elif self.stale:
            out.append("Result: STALE (entries and checkpoints verify, but the newest checkpoint is too old)")
        else:
            newest = max(self.checkpoints, key=lambda c: c.time)
            out.append(
                f"Result: VALID: indices 0..{self.size - 1} verified against checkpoint size {newest.size} "
                f"signed {format_ns(newest.time * 1_000_000_000)}"
                + (f"; {self.purged} bodies purged before the retention cutoff" if self.purged else "")
            )
        return out


def plausible_cutoff(cutoff_ns: int, checkpoint_time: int) -> bool:
    """Whether a declared retention cutoff can be an honest one beside a checkpoint signed at
    `checkpoint_time` (unix s): retention keeps events at least MIN_RETENTION_SECONDS, and a proof
    or export is made with a checkpoint at most DEFAULT_MAX_AGE old (else it is stale). An
    implausible cutoff would let a server call events of this morning purged."""
    return cutoff_ns <= (checkpoint_time + DEFAULT_MAX_AGE - MIN_RETENTION_SECONDS) * 1_000_000_000


def _covering(checkpoints: Sequence[Checkpoint], index: int) -> str | None:
    """The first checkpoint that covers `index`, described."""
    for cp in checkpoints:
        if cp.size > index:
            return cp.describe()
    return None


class _Nodes:
    """Perfect-node hashes for proof checks: tiles kept in memory, small nodes reread from entries."""

    def __init__(self, entries: BinaryIO) -> None:
        self._entries = entries
        self.tiles: list[bytes] = []
        self._upper = tree_reader(self.tiles)

    def read(self, level: int, index: int) -> bytes:
        if level >= TILE_LEVEL:
            return self._upper(level - TILE_LEVEL, index)
        count = 1 << level
        self._entries.seek(index * count * ENTRY_SIZE)
        data = self._entries.read(count * ENTRY_SIZE)
        return root_of(leaf_hash(data[i : i + ENTRY_SIZE]) for i in range(0, len(data), ENTRY_SIZE))


def _events(path: Path, report: Report) -> Iterator[tuple[int, bytes]]:
    if not path.exists():
        return
    last = -1
    try:
        for n, line in read_lines(path):
            idx_text, tab, body = line.partition(b"\t")
            if not tab or not idx_text.isdigit():
                report.add(f"{EVENTS} line {n} is not '<index>\\t<event>'")
                return
            idx = int(idx_text)
            if idx <= last:
                report.add(f"{EVENTS} line {n}: index {idx} is out of order or repeated", idx)
                continue
            last = idx
            yield idx, body
    except BundleError as exc:
        report.add(str(exc))


def _load_checkpoints(
    directory: Path,
    manifest: Manifest,
    keys: PublicKeyring,
    known: Sequence[Path],
    report: Report,
    witnesses: WitnessPolicy | None,
    as_of: int | None,
) -> tuple[list[SignedCheckpoint], list[Recovery]]:
    signed: list[SignedCheckpoint] = []
    for path in [*note_files(directory, CHECKPOINTS), *known]:
        try:
            sc = open_checkpoint(read_small(path), keys, witnesses, as_of)
        except (NoteError, CheckpointError, UnicodeDecodeError, BundleError) as exc:
            report.add(f"checkpoint file {path.name} does not verify: {exc}", checkpoint=str(path))
            continue
        if sc.checkpoint.origin != manifest.origin:
            report.add(f"checkpoint file {path.name} is for {sc.checkpoint.origin}, not {manifest.origin}")
            continue
        signed.append(sc)
    recoveries: list[Recovery] = []
    for path in note_files(directory, RECOVERIES):
        try:
            rec = open_recovery(read_small(path), keys).recovery
        except (NoteError, CheckpointError, UnicodeDecodeError, BundleError) as exc:
            report.add(f"recovery file {path.name} does not verify: {exc}")
            continue
        if rec.origin == manifest.origin:
            recoveries.append(rec)
    return signed, recoveries


def _superseded(cp: Checkpoint, recoveries: Sequence[Recovery]) -> Recovery | None:
    """The recovery that replaced the history `cp` belongs to, if any."""
    for rec in recoveries:
        if cp.time < rec.time and rec.restored_size < cp.size <= rec.previous_size:
            return rec
    return None


def _check_time_order(checkpoints: Sequence[Checkpoint], report: Report) -> None:
    """Report each checkpoint dated before one of a smaller tree (of the same history): the signer
    dates each checkpoint after the one before, so it was signed with a false time."""
    latest: Checkpoint | None = None  # the latest-dated checkpoint of the sizes below the current one
    ordered = sorted(checkpoints, key=lambda c: (c.size, c.time))
    for size in sorted({c.size for c in ordered}):
        group = [c for c in ordered if c.size == size]
        if latest is not None:
            try:
                check_not_backdated(group[0], latest, "given to the verifier")
            except CheckpointError as exc:
                report.add(str(exc), latest.size, group[0].describe())
        top = max(group, key=lambda c: c.time)
        latest = top if latest is None or top.time > latest.time else latest


def verify_bundle(
    directory: Path,
    keys: PublicKeyring,
    known: Sequence[Path] = (),
    max_age: int = DEFAULT_MAX_AGE,
    as_of: int | None = None,
    witnesses: WitnessPolicy | None = None,
    audit: Path | None = None,
) -> Report:
    """Verify the bundle in `directory`; `known` are checkpoints the verifier saved earlier. With
    `witnesses`, a checkpoint without a quorum of valid cosignatures is refused (reported). With
    `audit` (the account's auditevents bundle), the purge records of another stream are checked
    against the leaves of that log (`prove_purges`), and only those that are its leaves are used.

    Raises BundleError when the bundle cannot be read at all; everything else is in the report."""
    manifest = read_manifest(directory)
    report = Report(manifest.origin, manifest.size)
    if not keys.verifiers_for(manifest.origin):
        raise BundleError(f"no key in the key file covers origin {manifest.origin}")
    signed, recoveries = _load_checkpoints(directory, manifest, keys, known, report, witnesses, as_of)
    for rec in recoveries:
        report.notices.append(
            f"RECOVERY signed {format_ns(rec.time * 1_000_000_000)}: the history of size {rec.previous_size} was "
            f"replaced by a restored tree of size {rec.restored_size} ({rec.reason})"
        )
    by_size: dict[int, Checkpoint] = {}
    current: list[Checkpoint] = []
    for sc in sorted(signed, key=lambda s: s.checkpoint.time):
        cp = sc.checkpoint
        replaced_by = _superseded(cp, recoveries)
        if replaced_by is not None:
            report.notices.append(
                f"{cp.describe()} belongs to the history replaced by the recovery at {replaced_by.time}"
            )
            continue
        current.append(cp)
        other = by_size.get(cp.size)
        if other is not None and other.root != cp.root:
            report.add(
                f"two checkpoints of size {cp.size} have different roots (times {other.time} and {cp.time}): "
                "the log forked",
                max(cp.size - 1, 0),
                cp.describe(),
            )
            continue
        by_size.setdefault(cp.size, cp)
    _check_time_order(current, report)
    checkpoints = sorted(by_size.values(), key=lambda c: c.size)
    report.checkpoints = checkpoints
    expected = {cp.size: cp for cp in checkpoints}
    restored = {rec.restored_size: rec for rec in recoveries}
    if not checkpoints:
        report.add("the bundle holds no valid checkpoint for this log")
    for cp in checkpoints:
        if cp.size > manifest.size:
            report.add(
                f"this checkpoint covers {cp.size} entries but the bundle holds {manifest.size}: indices "
                f"{manifest.size}..{cp.size - 1} are missing (newest events removed, or the database was "
                "rolled back)",
                manifest.size,
                cp.describe(),
            )
    cutoff = manifest.retention_cutoff_ns
    if cutoff is not None and checkpoints and not plausible_cutoff(cutoff, max(c.time for c in checkpoints)):
        report.notices.append(
            f"the declared retention cutoff {format_ns(cutoff)} is less than a day (the shortest retention) before"
            " the newest checkpoint, beyond the freshness allowance: it is not a retention cutoff and excuses no"
            " missing body"
        )
        manifest = replace(manifest, retention_cutoff_ns=None)
    entries_path = directory / ENTRIES
    try:
        entries_file = entries_path.open("rb")
    except FileNotFoundError:
        raise BundleError(f"{entries_path} is missing") from None
    purges = _purges(directory, manifest, report)
    if audit is not None and purges and not manifest.origin.endswith("/auditevents"):
        purges, problems = prove_purges(
            purges, audit, manifest.origin, keys, max_age=max_age, as_of=as_of, witnesses=witnesses
        )
        for message in problems:
            report.add(message)
    with entries_file:
        nodes = _stream(directory, manifest, entries_file, expected, restored, checkpoints, report, purges)
        _check_proofs(directory, manifest, expected, nodes, checkpoints, report)
    covered = max((cp.size for cp in checkpoints), default=0)
    if checkpoints and covered < manifest.size:
        report.add(
            f"indices {covered}..{manifest.size - 1} are not covered by any signed checkpoint",
            covered,
            checkpoints[-1].describe(),
        )
    if checkpoints:
        newest = max(checkpoints, key=lambda c: c.time)
        now = int(time.time()) if as_of is None else as_of
        age = now - newest.time
        if max_age and age > max_age:
            report.stale = (
                f"the newest checkpoint (size {newest.size}) was signed {age} s before "
                f"{format_ns(now * 1_000_000_000)}, more than {max_age} s: newer events may be missing"
            )
    return report


def _purges(directory: Path, manifest: Manifest, report: Report) -> list[Purge]:
    """The bundle's purge records of its stream (docs/retention.md); for the auditevents stream
    they are leaves of this very log and checked as such in `_stream` (a record past the log's size
    is not used), for the others a notice says which log proves them."""
    feature = manifest.origin.rsplit("/", 1)[-1]
    found: list[Purge] = []
    try:
        records = read_purges(directory)
    except BundleError as exc:
        report.add(str(exc))
        return found
    for idx, body in records:
        try:
            purge = parse_purge(idx, body, feature)
        except ValueError as exc:
            report.add(f"{PURGES}: the record at audit index {idx} is {exc}")
            continue
        if purge is None:
            continue
        if feature == "auditevents" and idx >= manifest.size:  # its leaf is not here to prove it
            report.notices.append(
                f"{PURGES}: the record at audit index {idx} is not used: it lies past this log's {manifest.size}"
                " entries, so it cannot be checked against its leaf"
            )
            continue
        found.append(purge)
    if found and feature != "auditevents":
        report.notices.append(
            f"{len(found)} purge record(s) are proven by the account's auditevents log (audit indices "
            f"{', '.join(str(p.audit_index) for p in found[:5])}{', ...' if len(found) > 5 else ''}): pass its"
            " bundle with --audit-bundle to check them"
        )
    return found


def prove_purges(
    purges: Sequence[Purge],
    audit: Path,
    origin: str,
    keys: PublicKeyring,
    *,
    max_age: int = DEFAULT_MAX_AGE,
    as_of: int | None = None,
    witnesses: WitnessPolicy | None = None,
) -> tuple[list[Purge], list[str]]:
    """The purge records of the stream `origin` that are leaves of its account's auditevents log,
    read from the bundle `audit` (which must verify: its entries are trusted only then), and the
    problems found. A record that log does not hold at its index is a problem and is left out: it
    must excuse nothing."""
    want = origin.rsplit("/", 1)[0] + "/auditevents"
    try:
        checked = verify_bundle(audit, keys, max_age=max_age, as_of=as_of, witnesses=witnesses)
        if checked.origin != want:
            raise BundleError(f"it is the bundle of {checked.origin}, not of {want}")
        if not checked.ok:
            return [], [f"--audit-bundle {audit} does not verify (siemgate-verify bundle): {checked.lines()[-1]}"]
        kept: list[Purge] = []
        problems: list[str] = []
        with (audit / ENTRIES).open("rb") as entries:
            for purge in purges:
                idx = purge.audit_index
                held = _entry_at(entries, idx) if 0 <= idx < checked.size else b""  # a manifest says any index
                if held == purge.entry.encode():
                    kept.append(purge)
                else:
                    problems.append(
                        f"the purge record at audit index {idx} is not the event the auditevents log holds there"
                    )
    except (BundleError, OSError) as exc:
        return [], [f"--audit-bundle {audit} cannot prove the purge records: {exc}"]
    return kept, problems


def _entry_at(entries: BinaryIO, idx: int) -> bytes:
    """The entry at index `idx` of an open `entries.bin` (fewer bytes past its end): one read, so
    that proving a few purge records does not hold a log's entries in memory (41 bytes each)."""
    entries.seek(idx * ENTRY_SIZE)
    return entries.read(ENTRY_SIZE)


def _stream(
    directory: Path,
    manifest: Manifest,
    entries_file: BinaryIO,
    expected: dict[int, Checkpoint],
    restored: dict[int, Recovery],
    checkpoints: Sequence[Checkpoint],
    report: Report,
    purges: Sequence[Purge] = (),
) -> _Nodes:
    nodes = _Nodes(entries_file)
    rng = CompactRange()
    tile: list[bytes] = []
    events = _events(directory / EVENTS, report)
    pending = next(events, None)
    matched: list[tuple[int, int]] = []  # (size, time) of checkpoints the entries rebuilt
    root_failed = False
    cutoff = manifest.retention_cutoff_ns
    own = {p.audit_index: p for p in purges} if manifest.origin.endswith("/auditevents") else {}
    for idx in range(manifest.size):
        data = entries_file.read(ENTRY_SIZE)
        if len(data) != ENTRY_SIZE:
            report.add(
                f"{ENTRIES} ends at index {idx} but the bundle declares {manifest.size} entries",
                idx,
                _covering(checkpoints, idx),
            )
            break
        try:
            entry: Entry | None = decode_entry(data)
        except EntryError as exc:
            report.add(str(exc), idx, _covering(checkpoints, idx))
            entry = None
        while pending is not None and pending[0] < idx:
            pending = next(events, None)
        record = own.get(idx)
        if record is not None and entry is not None and entry != record.entry:
            report.add(
                f"the purge record of {PURGES} at this index is not the event the log holds here",
                idx,
                _covering(checkpoints, idx),
            )
        if entry is not None:
            if pending is not None and pending[0] == idx:
                report.events += 1
                _check_body(idx, pending[1], entry, checkpoints, report)
                pending = next(events, None)
            elif covering(purges, idx, entry.ts_ns) is not None or (cutoff is not None and entry.ts_ns < cutoff):
                report.purged += 1
            else:
                report.add(
                    "no event body for this entry, and its timestamp "
                    f"{format_ns(entry.ts_ns)} is not older than the retention cutoff nor covered by a recorded"
                    " purge: the event was deleted",
                    idx,
                    _covering(checkpoints, idx),
                )
        leaf = leaf_hash(data)
        rng.append_leaf(leaf)
        tile.append(leaf)
        if len(tile) == 1 << TILE_LEVEL:
            nodes.tiles.append(root_of(tile))
            tile = []
        size = idx + 1
        want = expected.get(size)
        if want is not None or size in restored:
            root = rng.root()
            target = want.root if want is not None else restored[size].restored_root
            when = want.time if want is not None else restored[size].time
            if root == target:
                matched.append((size, when))
            elif not root_failed:
                root_failed = True
                # Only checkpoints signed before this one bound it: later ones may be of another history.
                good = max((s for s, t in matched if t < when), default=0)
                what = want.describe() if want is not None else f"recovery to size {size}"
                report.add(
                    f"the entries do not rebuild the signed root of size {size}: an entry between indices "
                    f"{good} and {size - 1} was changed, removed, inserted or reordered (size {good} "
                    "still matched)",
                    good,
                    what,
                )
    if entries_file.read(1):
        report.add(f"{ENTRIES} holds more than the {manifest.size} declared entries", manifest.size)
    if pending is not None:
        report.add(f"{EVENTS} holds a body for index {pending[0]}, which has no entry", pending[0])
    return nodes


def _check_body(idx: int, body: bytes, entry: Entry, checkpoints: Sequence[Checkpoint], report: Report) -> None:
    if hashlib.sha256(body).digest() != entry.body_sha256:
        report.add(
            "the event body does not hash to its log entry: the stored event was altered or replaced",
            idx,
            _covering(checkpoints, idx),
        )
        return
    try:
        ts = body_timestamp_ns(body)
    except EntryError as exc:
        report.add(str(exc), idx, _covering(checkpoints, idx))
        return
    if ts != entry.ts_ns:
        report.add(
            f"the event's timestamp {format_ns(ts)} is not its committed {format_ns(entry.ts_ns)}",
            idx,
            _covering(checkpoints, idx),
        )


def _check_proofs(
    directory: Path,
    manifest: Manifest,
    expected: dict[int, Checkpoint],
    nodes: _Nodes,
    checkpoints: Sequence[Checkpoint],
    report: Report,
) -> None:
    for size1, size2, path in proof_files(directory):
        old, new = expected.get(size1), expected.get(size2)
        if old is None or new is None:
            report.add(f"proof {path.name} is between sizes that have no checkpoint in the bundle")
            continue
        try:
            proof = parse_hashes(read_small(path), path.name)
        except BundleError as exc:
            report.add(str(exc), size1, new.describe())
            continue
        try:
            verify_consistency(size1, size2, old.root, new.root, proof)
        except ProofError as exc:
            where = _first_wrong_node(size1, size2, proof, manifest, nodes)
            index = where[0] if where else size1
            detail = (
                f"; the stored tree hash over indices {where[0]}..{where[1] - 1} differs from the entries"
                if where
                else ""
            )
            report.add(
                f"the stored tree's consistency proof {size1} -> {size2} does not verify: {exc}{detail}",
                index,
                new.describe(),
            )


def _first_wrong_node(
    size1: int, size2: int, proof: Sequence[bytes], manifest: Manifest, nodes: _Nodes
) -> tuple[int, int] | None:
    if size2 > manifest.size or size2 - size1 <= 0:
        return None
    ranges = consistency_ranges(size1, size2)
    if len(ranges) != len(proof):
        return None
    for (a, b), h in sorted(zip(ranges, proof, strict=True)):
        if subtree_hash(a, b, nodes.read) != h:
            return a, b
    return None
