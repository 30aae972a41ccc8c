"""Replaying an archive back into a store through the EventWriter, as a mirror writes (lenient:
events are kept exactly as archived, uuids and timestamps included). An event already in the
store is a duplicate by (timestamp, uuid) and is not stored again, so replaying twice, or
replaying a day that was only partly purged, stores nothing twice. Every file is verified
against its manifest before any of its events are written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from siemgate.model.features import Feature
from siemgate.retention.archive import ArchiveError, FileEntry, manifests, read_rows, verify_file
from siemgate.store.base import Account, Store
from siemgate.store.ingest import EventWriter

BATCH = 5000


@dataclass
class ReplayResult:
    files: int = 0
    events: int = 0
    stored: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class ReplayPlan:
    folder: Path
    account: Account
    feature: Feature
    files: list[FileEntry]

    @property
    def events(self) -> int:
        return sum(f.events for f in self.files)


def plan_replay(
    store: Store,
    root: Path,
    *,
    account: Account | None = None,
    features: tuple[Feature, ...] | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[ReplayPlan]:
    """The files to replay: each archived (account, stream) under `root`, optionally only one
    account's archive (`account`, which also receives them), some streams, days in [since, until].
    Raises ArchiveError when an archived account is not in the store (pass --account)."""
    plans = []
    for stream in manifests(root):
        if features is not None and stream.feature not in features:
            continue
        target = account
        if target is None:
            try:
                target = store.get_account(stream.account)
            except Exception:
                raise ArchiveError(
                    f"the archive {stream.folder} belongs to account {stream.account}, which is not in this store;"
                    " replay it into an account with --account"
                ) from None
        elif len({m.account for m in manifests(root)}) > 1 and stream.account != target.uuid:
            continue  # several accounts archived: --account picks the one with its uuid
        files = [f for f in stream.files if (since is None or f.day >= since) and (until is None or f.day <= until)]
        plans.append(ReplayPlan(stream.folder, target, stream.feature, files))
    return plans


def replay(writer: EventWriter, plans: list[ReplayPlan], progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Verify and write every planned file; returns the counts. Raises ArchiveError on a bad file
    (the files before it are already replayed; replaying again is safe)."""
    result = ReplayResult()
    for plan in plans:
        for entry in plan.files:
            verify_file(plan.folder, entry)
            batch: list[object] = []
            for _, _, body in read_rows(plan.folder / entry.path):
                batch.append(orjson.loads(body))
                if len(batch) >= BATCH:
                    _write(writer, plan, batch, result, progress)
                    batch = []
            if batch:
                _write(writer, plan, batch, result, progress)
            result.files += 1
    return result


def _write(
    writer: EventWriter,
    plan: ReplayPlan,
    batch: list[object],
    result: ReplayResult,
    progress: Callable[[int], None] | None,
) -> None:
    written = writer.write(plan.account.id, plan.feature, batch, strict=False)
    result.events += written.received
    result.stored += written.stored
    result.duplicates += written.duplicates
    if progress is not None:
        progress(written.received)
