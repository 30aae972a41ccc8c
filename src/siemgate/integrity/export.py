"""`siemgate log export`: a stream's log as a bundle that `siemgate-verify bundle` checks offline
(docs/integrity.md, "Bundle" and "Exporting").

The bundle covers the stream up to its newest stored checkpoint: that many entries, the body of
every event the store holds for those indices, the stored checkpoints of the last day and the first
of each earlier UTC day (the day-close checkpoints), the recovery statements, consistency
proofs from the **stored** tree between checkpoint sizes, and the stream's purge records (the
account's audit events recording each retention run that purged it). Event rows
past the checkpoint that have no log entry (rows written outside siemgate) are exported too, so
the verifier names them; rows past it that have their entry are events committed after the
checkpoint and are left for the next export.
"""

from __future__ import annotations

import itertools
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from siemgate.errors import BadRequest, StoreError
from siemgate.integrity.tree import StoredTree
from siemgate.model.features import Feature
from siemgate.store.base import Store
from siemgate.tlog.bundle import BundleError, Manifest, write_bundle
from siemgate.tlog.checkpoint import Checkpoint, unverified_text
from siemgate.tlog.entry import HOLE_TS, Entry, EntryError, decode_entry
from siemgate.tlog.proof import consistency_proof
from siemgate.tlog.purges import KIND, parse_purge

CHUNK = 5000
DAY = 86400
RECENT = 86400  # every checkpoint of the last day goes into a bundle


@dataclass(frozen=True)
class Exported:
    manifest: Manifest
    checkpoints: int
    events: int


def export_log(
    store: Store,
    account_id: int,
    feature: Feature,
    out: Path,
    *,
    now: int,
    retention_cutoff_ns: int | None,
) -> Exported:
    """Write the bundle of the stream's log into `out` (a new or empty directory).

    `now` is the export time (unix s); `retention_cutoff_ns` the time before which bodies may have
    been purged (None: kept for ever). Raises StoreError when there is no checkpoint yet or an
    entry the checkpoints cover is missing or malformed (naming its index), BadRequest when `out`
    is not new or empty or cannot be written; nothing is left in `out` then."""
    stored = store.log_checkpoints(account_id, feature)
    if not stored:
        raise StoreError("the log has no signed checkpoint yet: run siemgate log checkpoint first")
    parsed = [(Checkpoint.parse(unverified_text(c.note)), c.note) for c in stored]
    newest = max(parsed, key=lambda p: p[0].time)[0]
    size = newest.size
    distinct = {(cp.size, cp.root): note for cp, note in _selected(parsed, newest.time)}
    notes = [distinct[k] for k in sorted(distinct)]
    sizes = sorted({s for s, _ in distinct if 0 < s <= size})
    tree = StoredTree(store, account_id, feature, size)
    proofs = [(a, b, consistency_proof(a, b, tree)) for a, b in itertools.pairwise(sizes)]
    # Hole entries (docs/integrity.md, "Backfill") are older than any cutoff.
    cutoff = max(retention_cutoff_ns, HOLE_TS + 1) if retention_cutoff_ns is not None else HOLE_TS + 1
    manifest = Manifest(newest.origin, size, now, cutoff)
    counter = [0]
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadRequest(f"{out} exists and is not an empty directory; export into a new directory")
    # Written beside `out` and renamed at the end: a failed export leaves nothing half-written.
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    try:
        write_bundle(
            partial,
            manifest,
            _entries(store, account_id, feature, size),
            _bodies(store, account_id, feature, size, counter),
            notes,
            proofs,
            store.log_recoveries(account_id, feature),
            purge_records(store, account_id, feature),
        )
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except OSError as exc:
        raise BadRequest(f"cannot write the bundle to {out}: {exc.strerror or exc}") from None
    except BundleError as exc:
        raise BadRequest(str(exc)) from None
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return Exported(manifest, len(notes), counter[0])


def _selected(parsed: list[tuple[Checkpoint, str]], newest: int) -> list[tuple[Checkpoint, str]]:
    """The checkpoints a bundle carries, oldest first: every one of the last RECENT seconds, the
    first of each UTC day (the day-close checkpoints), and the newest — so a year of on-change
    checkpoints does not make a bundle of millions. Later ones win for a tree signed twice."""
    by_time = sorted(parsed, key=lambda p: p[0].time)
    first_of_day: dict[int, int] = {}
    for cp, _ in by_time:
        first_of_day.setdefault(cp.time // DAY, cp.time)
    return [
        (cp, note)
        for cp, note in by_time
        if cp.time >= newest - RECENT or first_of_day[cp.time // DAY] == cp.time or cp.time == newest
    ]


def _entries(store: Store, account_id: int, feature: Feature, size: int) -> Iterator[Entry]:
    for begin in range(0, size, CHUNK):
        end = min(size, begin + CHUNK)
        expect = begin
        for idx, data in store.log_entry_rows(account_id, feature, begin, end):
            if idx != expect:
                break
            try:
                yield decode_entry(data)
            except EntryError as exc:
                raise StoreError(
                    f"the stored log entry of index {idx} is damaged ({exc}): see docs/integrity.md"
                ) from None
            expect += 1
        if expect < end:
            raise StoreError(f"the stored log has no entry for index {expect}: see docs/integrity.md")


def _bodies(
    store: Store, account_id: int, feature: Feature, size: int, counter: list[int]
) -> Iterator[tuple[int, bytes]]:
    """(index, body) of every event up to `size`, then of every later one that has no entry."""
    after = 0
    while True:
        rows = store.read_events(account_id, feature, after, -(2**63), None, CHUNK)
        if not rows:
            return
        beyond = [seq for seq, _, _ in rows if seq > size]
        logged: set[int] = set()
        if beyond:
            logged = {i + 1 for i, _ in store.log_entry_rows(account_id, feature, beyond[0] - 1, beyond[-1])}
        for seq, body, _ in rows:
            if seq <= size or seq not in logged:
                counter[0] += 1
                yield seq - 1, body
        after = rows[-1][0]


def purge_records(store: Store, account_id: int, feature: Feature) -> Iterator[tuple[int, bytes]]:
    """(audit index, stored bytes) of every audit event of the account recording a purge of
    `feature` (docs/retention.md, "Retention and the signed log"), in index order."""
    after = 0
    marker = KIND.encode()
    while True:
        rows = store.read_events(account_id, Feature.AUDITEVENTS, after, -(2**63), None, CHUNK)
        if not rows:
            return
        for seq, body, _ in rows:
            if marker in body:
                try:
                    found = parse_purge(seq - 1, body, feature.value)
                except ValueError:
                    continue  # an event that merely mentions the word
                if found is not None:
                    yield seq - 1, body
        after = rows[-1][0]
