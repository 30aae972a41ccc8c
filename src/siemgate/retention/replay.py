"""Replaying an archive back into a store through the EventWriter, as a mirror writes (lenient:
events are kept exactly as archived, uuids and timestamps included). An event already in the
store is a duplicate by (timestamp, uuid) and is not stored again, so replaying twice, or
replaying a day that was only partly purged, stores nothing twice. Every file chosen is verified
against its manifest before any event is written: a bad file stops the replay with nothing stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson

from siemgate.accounts.actor import SYSTEM, Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.errors import NotFound
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.retention.archive import ArchiveError, FileEntry, read_indices, read_rows, verify_file
from siemgate.retention.signed import index_runs
from siemgate.retention.survey import survey
from siemgate.store.base import Account, Store
from siemgate.store.ingest import EventWriter
from siemgate.tlog.entry import entry_bytes

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
    archived_account: str | None = None,
    features: tuple[Feature, ...] | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[ReplayPlan]:
    """The files to replay: the archived streams under `root` of the accounts chosen, optionally
    only some streams and days in [since, until].

    Which archived accounts: `archived_account` (a uuid) when given; else `account`'s own archive
    when the folder holds one; else every archived account, but only one may go into `account`.
    Each goes into `account`, or into the store's account with the archived uuid. Raises
    ArchiveError when that choice is ambiguous or names nothing, when an archived account is not
    in the store, or when the folder has problems (`survey`) in a chosen stream."""
    found = survey(root)
    archived = found.accounts()
    chosen = _choose(root, archived, account, archived_account)
    wanted = set(features or ALL_FEATURES)
    blocking = [
        p for p in found.problems if p.account in chosen and (p.feature is None or Feature(p.feature) in wanted)
    ]
    if blocking:
        listed = "; ".join(str(p) for p in blocking)
        raise ArchiveError(f"cannot replay from {root}: {listed} (run `siemgate archive verify`)")
    plans = []
    for stream in found.streams:
        if stream.account not in chosen or stream.feature not in wanted:
            continue
        target = account if account is not None else _archived_account(store, stream.account)
        if target is None:
            raise ArchiveError(
                f"the archive {stream.folder} belongs to account {stream.account} ({stream.account_name}),"
                " which is not in this store; replay it into an account with --account"
            )
        files = [f for f in stream.files if (since is None or f.day >= since) and (until is None or f.day <= until)]
        plans.append(ReplayPlan(stream.folder, target, stream.feature, files))
    return plans


def _choose(root: Path, archived: dict[str, str], account: Account | None, archived_account: str | None) -> set[str]:
    """The archived account uuids to replay (see plan_replay)."""
    listed = ", ".join(f"{uuid} ({name})" for uuid, name in archived.items()) or "none"
    if archived_account is not None:
        if archived_account not in archived:
            raise ArchiveError(f"{root} holds no archive of account {archived_account}; it holds: {listed}")
        return {archived_account}
    if account is not None and account.uuid in archived:
        return {account.uuid}
    if account is not None and len(archived) > 1:
        raise ArchiveError(
            f"{root} holds the archives of {len(archived)} accounts: {listed}. Choose the one to replay into"
            f" {account.name} with --archived-account UUID"
        )
    return set(archived)


def replay(
    writer: EventWriter,
    plans: list[ReplayPlan],
    progress: Callable[[int], None] | None = None,
    audit: AuditRecorder | None = None,
    actor: Actor = SYSTEM,
    *,
    unchecked: bool = False,
) -> ReplayResult:
    """Verify every planned file, then write them; returns the counts. With `audit`, each file
    replayed is recorded in the target account's audit stream (`update account`) twice: before its
    first rows are written (aux_info kind `archive-replay-started`), so a replay killed part-way
    leaves no stored row without a record of where it came from, and after its rows (kind
    `archive-replay`, with the counts, `unchecked` among them: its rows replayed without a check
    against the log). Raises ArchiveError naming a bad file before anything is written, also a row
    that cannot be checked against the log (see `_check_log`) unless `unchecked`. The rows written
    are checked again as they are read to be written (`_checked`), so a file that changes while the
    replay runs stops the replay there (the files before it are in; replaying again is safe)."""
    for plan in plans:
        for entry in plan.files:
            verify_file(plan.folder, entry)
            _check_log(writer.store, plan, entry, unchecked)
    result = ReplayResult()
    for plan in plans:
        log = _log_account(writer.store, plan)
        for entry in plan.files:
            verify_file(plan.folder, entry)
            path = plan.folder / entry.path
            started = False  # whether the file's first record is written
            head = writer.store.head_seq(plan.account.id, plan.feature)
            before = (result.stored, result.duplicates)
            written_unchecked = 0  # the rows written that could not be checked, as read to be written
            changed: ArchiveError | None = None
            try:
                for chunk in _checked(writer.store, plan, entry, log):
                    batch: list[object] = []
                    for n, body, why in chunk:
                        if why is not None and not unchecked:
                            raise ArchiveError(f"{path}: row {n} {why}")
                        written_unchecked += why is not None
                        try:
                            batch.append(orjson.loads(body))
                        except orjson.JSONDecodeError:
                            raise ArchiveError(f"{path}: row {n} is not JSON") from None
                    if audit is not None and not started:
                        _record(audit, actor, plan, entry, {"index_from": head}, started=True)
                        head = writer.store.head_seq(plan.account.id, plan.feature)
                        started = True
                    _write(writer, plan, batch, result, progress)
            except ArchiveError as exc:
                changed = ArchiveError(
                    f"{exc}. The file changed since it was checked: the replay stopped there, {result.stored}"
                    " event(s) of the files before it (and of its rows before that one) are stored"
                )
            else:
                result.files += 1
            if audit is not None and started:
                counts = {
                    "stored": result.stored - before[0],
                    "duplicates": result.duplicates - before[1],
                    "unchecked": written_unchecked,
                    "index_from": head,  # the replayed events' leaves lie in [index_from, index_to)
                    "index_to": writer.store.head_seq(plan.account.id, plan.feature),
                }
                _record(audit, actor, plan, entry, counts, started=False)
            if changed is not None:
                raise changed  # after the audit record of the rows stored from the file
    return result


def _record(
    audit: AuditRecorder, actor: Actor, plan: ReplayPlan, entry: FileEntry, fields: dict[str, int], *, started: bool
) -> None:
    """Record the replay of `entry` in the target account's audit stream: as started (before its
    first rows are written) or done (after them, `fields` giving its counts)."""
    info = {
        "kind": "archive-replay-started" if started else "archive-replay",
        "feature": plan.feature.value,
        "file": entry.path,
        "sha256": entry.sha256,
        "events": entry.events,
        **fields,
    }
    audit.record(plan.account, actor, "update", "account", object_uuid=plan.account.uuid, aux_info=info)


def _log_account(store: Store, plan: ReplayPlan) -> Account | None:
    """The account whose log holds the archived events: the one the archive carries, wherever they
    are replayed; None when it is not in the store."""
    archived = plan.folder.parent.name
    return plan.account if plan.account.uuid == archived else _archived_account(store, archived)


def _archived_account(store: Store, uuid: str) -> Account | None:
    """The store's account with this uuid, None when there is none: by uuid only, as
    `get_account` also finds an account by name, and a name can read like another's uuid."""
    try:
        found = store.get_account(uuid)
    except NotFound:
        return None
    return found if found.uuid == uuid else None


def _check_log(store: Store, plan: ReplayPlan, entry: FileEntry, unchecked: bool) -> None:
    """Check each row of the file against the entry the archived account's log holds at the row's
    index, whichever account it is replayed into (the manifest is not signed: a file altered and
    its manifest rewritten to match passes `verify_file`, and its events would come back as new
    leaves of a log). A row without an index (archived
    before indices, or its index removed) or whose index the log does not hold (a store restored
    from an older backup, or an index made up) cannot be checked, nor can any row of an account
    that is not in the store (an archive moved to another store): such rows are refused unless
    `unchecked`. Raises ArchiveError naming the file, row and index of the first row that differs
    or is refused."""
    path = plan.folder / entry.path
    log = _log_account(store, plan)
    if log is None:
        if not unchecked:
            raise ArchiveError(
                f"{path}: its {entry.events} row(s) were archived from account {plan.folder.parent.name}, which is"
                " not in this store, so no log here can check them against the signed log; nothing is replayed."
                " If this archive was moved here from another store on purpose, replay with --unchecked (the"
                " audit record counts them)"
            )
        return
    first: tuple[int, str] | None = None  # the first row that cannot be checked, and why
    count = 0
    try:
        for chunk in _checked(store, plan, entry, log):
            for n, _, why in chunk:
                if why is not None:
                    count += 1
                    first = first or (n, why)
    except ArchiveError as exc:
        raise ArchiveError(f"{exc}; nothing is replayed") from None
    if first is not None and not unchecked:
        row, why = first
        raise ArchiveError(
            f"{path}: row {row} {why}, so it cannot be checked against the signed log ({count} such"
            " row(s) in the file); nothing is replayed. If the archive predates log indices or the store was"
            " restored from an older backup, replay with --unchecked (the audit record counts them)"
        )


def _checked(
    store: Store, plan: ReplayPlan, entry: FileEntry, log: Account | None
) -> Iterator[list[tuple[int, bytes, str | None]]]:
    """The file's rows, BATCH at a time, each as (row number, body, why it cannot be checked or
    None), each checked against the entry `log`'s log holds at its index (`log` None: none can be).
    Raises ArchiveError naming the file, row and index of a row that is not that entry. Every row
    is checked, also rows sharing an index."""
    path = plan.folder / entry.path
    numbered = enumerate(zip(read_rows(path, entry.format), read_indices(plan.folder, entry), strict=True))
    while chunk := list(islice(numbered, BATCH)):
        held: dict[int, bytes] = {}
        if log is not None:
            for begin, end in index_runs(sorted({idx for _, (_, idx) in chunk if idx is not None})):
                held.update(store.log_entry_rows(log.id, plan.feature, begin, end))
        rows: list[tuple[int, bytes, str | None]] = []
        for n, ((ts, _, body), idx) in chunk:
            why: str | None = None
            if log is None:
                why = f"was archived from account {plan.folder.parent.name}, which is not in this store"
            elif idx is None:
                why = "carries no log index"
            elif idx not in held:
                why = f"carries log index {idx}, which the stream's log does not hold"
            elif held[idx] != entry_bytes(ts, body):
                raise ArchiveError(
                    f"{path}: row {n} is not the event the stream's signed log holds at index {idx}"
                    " (the file was altered, or the store's log was restored from a backup since and its history"
                    " replaced)"
                )
            rows.append((n, body, why))
        yield rows


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
