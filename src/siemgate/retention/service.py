"""Retention policies and applying them: archive first (write, fsync, read back and check), then
purge exactly what was archived.

For each (account, stream): events older than `days` leave the store. With an archive format,
whole UTC days before the cutoff day are archived one file per day and only then purged
(bounded by the stream's head seq when the run started, so events stored meanwhile stay); the
cutoff day itself waits for the next run, so events may stay up to a day longer than `days`.
Without an archive, events older than the cutoff are purged at once. Any archive failure
(disk full, unwritable folder, a file that does not read back) stops that stream's run before
its purge: nothing is deleted that is not in a checked archive file.

Verifiable retention (docs/retention.md, "Retention and the signed log"): when the stream's log is
signed (a signer is configured, or the stream has a checkpoint), a run takes only events covered by
the newest day-close checkpoint (the first of a UTC day), and only days that ended before it was
signed; otherwise it waits and says why. Every archived event is checked against its log entry,
and carries its log index into the archive. A run that purged anything is recorded as an audit
event in the account's audit stream (policy, cutoff, counts, index bound), stamped when stored;
purges delete event bodies, never log entries.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from siemgate.accounts.actor import SYSTEM, Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.offboarding import remove_folder
from siemgate.accounts.people import PeopleService
from siemgate.config import Settings
from siemgate.errors import BadRequest, NotFound
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.retention.archive import DAY_NS, ArchiveError, DayBatch, StreamArchive, day_of, day_start
from siemgate.retention.signed import DayClose, check_entries, day_close, purge_record
from siemgate.store.base import Account, RetentionPolicy, Store

if TYPE_CHECKING:
    from siemgate.retention.parquet import Row

log = logging.getLogger("siemgate.retention")
ARCHIVES = ("none", "jsonl", "parquet")
MAX_DAYS = 36500  # 100 years: back past 1970, the oldest storable event, so "keep everything"
Progress = Callable[[str, int], None]  # (what, events done)
# Events of a day read, checked and written at a time: what archiving a day holds, however many
# events it has (64 MiB of events at the default largest event, 64 KiB; about 1 MiB typically).
ARCHIVE_BATCH = 1000


@dataclass
class StreamResult:
    account: str
    feature: Feature
    cutoff: int
    archived: int = 0
    purged: int = 0
    files: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)  # days archived before, rewritten with late events
    error: str | None = None
    waiting: str | None = None  # why (some) events stay until a later run: no day-close checkpoint yet
    bound: int | None = None  # only indices below this were taken (the day-close checkpoint's size)
    deleted: bool = False  # the account was deleted during the run: nothing of it was kept
    alerts_purged: int = 0  # alerts whose activity is before the cutoff, deleted with their deliveries


class RetentionService:
    def __init__(
        self, settings: Settings, store: Store, people: PeopleService, audit: AuditRecorder, clock: Callable[[], int]
    ) -> None:
        self.settings = settings
        self.store = store
        self.people = people
        self.audit = audit
        self.clock = clock
        self.archive_root: Path = settings.archive_path
        self.fault: Callable[[int], None] | None = None  # tests: called with bytes written to an archive file
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def stop(self, timeout: float) -> bool:
        """Make a run under way end after the day it is archiving (the next run carries on where
        it stopped) and wait up to `timeout` seconds for it; whether it ended (or none was under
        way). Runs started after it returned True run as usual; until then they return at once."""
        self._stopping.set()
        ended = self._lock.acquire(timeout=timeout)
        if ended:
            self._stopping.clear()
            self._lock.release()
        return ended

    # policies -----------------------------------------------------------------------------------
    def policy(self, account_id: int, feature: Feature) -> RetentionPolicy:
        """The account's policy for the stream, or the server default. Read from the store each time
        (one indexed query, made by Events API resets and ingest requests only), so a policy set by any process — the
        CLI, another server — applies to this one's next request."""
        found = self.store.retention_policies(account_id).get(feature)
        if found is not None:
            return found
        return RetentionPolicy(account_id, feature, self.settings.retention_days, self.settings.archive_format, 0)

    def retention_ns(self, account_id: int, feature: Feature) -> int:
        """How far back the Events API serves this stream, and the ingest API accepts events of it
        (the policy's days)."""
        return min(self.policy(account_id, feature).days, MAX_DAYS) * DAY_NS

    def set_policy(
        self, actor: Actor, account: Account, feature: Feature, days: int, archive: str | None = None
    ) -> RetentionPolicy:
        """Set the stream's retention (owners and administrators); recorded as `update account`.
        Raises BadRequest when `days` is not 1 to MAX_DAYS or the archive format is unknown."""
        self.people.require(actor, account, "administrator", "change retention")
        if not 1 <= days <= MAX_DAYS:
            raise BadRequest(f"retention must be 1 to {MAX_DAYS} days (100 years), not {days}")
        current = self.policy(account.id, feature)
        archive = archive or current.archive
        if archive not in ARCHIVES:
            raise BadRequest(f"archive must be one of {', '.join(ARCHIVES)}")
        policy = RetentionPolicy(account.id, feature, days, archive, self.clock())
        self.store.set_retention_policy(policy)
        self.audit.record(
            account,
            actor,
            "update",
            "account",
            object_uuid=account.uuid,
            aux_info={"kind": "retention", "feature": feature.value, "days": days, "archive": archive},
        )
        return policy

    # applying -----------------------------------------------------------------------------------
    def apply(self, progress: Progress | None = None, accounts: list[Account] | None = None) -> list[StreamResult]:
        """Apply every stream's policy (one run at a time). Failures are reported per stream: one
        stream's, whatever it is, stops neither the account's other streams nor other accounts."""
        results: list[StreamResult] = []
        with self._lock:
            for account in accounts or self.store.list_accounts():
                for feature in ALL_FEATURES:
                    if self._stopping.is_set():
                        log.info("retention stopped: the process is stopping; the next run carries on")
                        return results
                    result = self._apply_checked(account, feature, progress)
                    results.append(result)
                    if result.deleted:
                        break
        return results

    def _apply_checked(self, account: Account, feature: Feature, progress: Progress | None) -> StreamResult:
        """`apply_stream`, its failure reported as the result's error, then a check that the
        account was not deleted meanwhile: when it was (whatever the stream's outcome), what the
        stream wrote is removed with the account's archive folder (see `_forget`)."""
        try:
            result = self.apply_stream(account, feature, progress)
        except Exception as exc:  # a store or disk failure of this stream: the next run retries it
            if self._deleted(account):
                return self._forget(account, feature)
            log.exception("retention of %s/%s failed", account.uuid, feature.value)
            result = StreamResult(account.uuid, feature, 0, error=f"{type(exc).__name__}: {exc}")
        if self._deleted(account):
            return self._forget(account, feature)
        if result.error:
            log.error("retention of %s/%s stopped: %s", account.uuid, feature.value, result.error)
        if result.waiting:
            log.info("retention of %s/%s waits: %s", account.uuid, feature.value, result.waiting)
        return result

    def _deleted(self, account: Account) -> bool:
        """Whether the account is deleted or being deleted (a failure to ask: not known to be)."""
        try:
            self.store.get_account_by_id(account.id)
        except NotFound:
            return True
        except Exception:  # the store is down: the stream's own result says so
            return False
        return False

    def _forget(self, account: Account, feature: Feature) -> StreamResult:
        """Remove the archive folder of an account deleted during its run. A deletion marks the
        account deleted before it removes the folder, and the run asks after the stream's last
        write: either the run sees the deletion and removes what it wrote, or everything it wrote
        was there before the deletion began, and the deletion removes it (docs/retention.md)."""
        log.warning("account %s was deleted during its retention run; removing its archive folder", account.uuid)
        try:
            remove_folder(self.archive_root / account.uuid)
        except OSError as exc:
            return StreamResult(account.uuid, feature, 0, deleted=True, error=f"the account was deleted: {exc}")
        return StreamResult(account.uuid, feature, 0, deleted=True, waiting="the account was deleted during the run")

    def apply_shared(
        self, progress: Progress | None = None, accounts: list[Account] | None = None, *, wait: bool = False
    ) -> list[StreamResult]:
        """`apply`, one process at a time among those sharing the archive folder (an flock of the
        folder itself: no lock file that could be deleted under a run): when another is applying
        retention, wait for it (`wait`) or skip this run (a server's schedule: the other run does
        the work)."""
        try:
            self.archive_root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.archive_root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:  # no folder to lock: the run itself reports why it cannot archive
            log.warning("cannot lock %s (%s); applying retention unlocked", self.archive_root, exc)
            return self.apply(progress, accounts)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another process is applying retention to %s; skipping this run", self.archive_root)
                return []
            return self.apply(progress, accounts)
        finally:
            os.close(fd)  # releases the lock

    def apply_stream(self, account: Account, feature: Feature, progress: Progress | None = None) -> StreamResult:
        policy = self.policy(account.id, feature)
        cutoff = self.clock() - min(policy.days, MAX_DAYS) * DAY_NS  # a policy stored before the bound
        result = StreamResult(account.uuid, feature, cutoff)
        # an alert holds the event that completed it: it goes when the stream's events of its time go
        result.alerts_purged = self.store.purge_alerts(account.id, feature, cutoff)
        head = self.store.head_seq(account.id, feature)
        closing: DayClose | None = None
        bound = head
        if self.settings.integrity_signer_url or self.store.last_log_checkpoint(account.id, feature) is not None:
            closing = day_close(self.store, account.id, feature)
            if closing is None:
                result.waiting = (
                    "no day-close checkpoint of this stream's log yet (the first checkpoint signed after a UTC"
                    " midnight); retention waits for one (docs/retention.md)"
                )
                return result
            bound = min(head, closing.size)
        result.bound = bound
        archive: StreamArchive | None = None
        try:
            if policy.archive == "none":
                result.purged = self.store.purge_events(account.id, feature, cutoff, max_seq=bound)
            else:
                archive = StreamArchive(
                    self.archive_root, account.uuid, account.name, feature, policy.archive, fault=self.fault
                )
                self._archive_days(account, feature, archive, cutoff, bound, closing, result, progress)
        except ArchiveError as exc:
            result.error = str(exc)
        if result.purged:
            try:
                self._record_purge(account, feature, policy, result, closing, archive)
            except ArchiveError as exc:
                result.error = result.error or str(exc)
        return result

    def _archive_days(
        self,
        account: Account,
        feature: Feature,
        archive: StreamArchive,
        cutoff: int,
        bound: int,
        closing: DayClose | None,
        result: StreamResult,
        progress: Progress | None,
    ) -> None:
        """Archive and purge each whole UTC day before the cutoff's day, oldest first, taking the
        events with seq <= `bound` that match their log entries. Days are committed in batches
        (`DayBatch`), each purged once committed; a failure commits and purges the days written
        before it, then is raised."""
        run = _BatchRun(account, feature, archive, archive.begin(), bound, result)
        try:
            self._write_days(run, cutoff, closing, progress)
        except Exception:
            self._commit(run)
            raise
        self._commit(run)

    def _write_days(self, run: _BatchRun, cutoff: int, closing: DayClose | None, progress: Progress | None) -> None:
        """Write each day to archive (see `_archive_days`), committing and purging when the batch is full."""
        account, feature, result, bound = run.account, run.feature, run.result, run.bound
        last_day_start = day_start(day_of(cutoff))  # whole days before the cutoff's day
        after = 0
        while True:
            if self._stopping.is_set():
                result.waiting = "the process is stopping; the next run carries on"
                return
            first = next(self.store.iter_events(account.id, feature, after, last_day_start, 1), [])
            if not first:
                return
            day = day_of(first[0][1])
            start = day_start(day)
            after = start + DAY_NS
            if closing is not None and closing.time * NS_PER_SECOND < start + DAY_NS:
                result.waiting = (
                    f"{day} ended after the newest day-close checkpoint (size {closing.size}, signed"
                    f" {format_ns(closing.time * NS_PER_SECOND)}); it waits for the next one"
                )
                return
            events = _DayEvents(self.store, account.id, feature, start, bound)
            if events.empty:
                result.waiting = (
                    f"the events of {day} left were stored after the newest day-close checkpoint (index bound"
                    f" {bound}); they wait for the next one"
                )
                continue
            merged = run.archive.day_file(day) in run.batch.manifest["files"]
            entry = run.archive.add(run.batch, day, events, closing.note if closing is not None else None)
            run.written.append(_Written(start, entry.path, merged, events.count))
            if progress is not None:
                progress(f"{account.name}/{feature.value} {day}", events.count)
            if run.batch.full():
                self._commit(run)

    def _commit(self, run: _BatchRun) -> None:
        """Commit the batch's days, then purge exactly what each holds."""
        run.archive.commit(run.batch)
        result = run.result
        for done in run.written:
            result.files.append(done.path)
            if done.merged:
                result.merged.append(done.path)
            result.archived += done.count
            result.purged += self.store.purge_events(
                run.account.id, run.feature, done.start + DAY_NS, max_seq=run.bound
            )
        run.written.clear()

    def _record_purge(
        self,
        account: Account,
        feature: Feature,
        policy: RetentionPolicy,
        result: StreamResult,
        closing: DayClose | None,
        archive: StreamArchive | None,
    ) -> None:
        """Record the purge in the account's audit stream (and in the stream's archive manifest)."""
        head = self.store.head_seq(account.id, Feature.AUDITEVENTS)
        info = {
            "kind": "retention-purge",
            "feature": feature.value,
            "days": policy.days,
            "archive": policy.archive,
            "cutoff": format_ns(result.cutoff),
            "cutoff_ns": result.cutoff,
            "index_bound": result.bound,
            "checkpoint_size": closing.size if closing is not None else None,
            "archived": result.archived,
            "purged": result.purged,
            "files": result.files,
            "merged": result.merged,
        }
        event = self.audit.record(
            account, SYSTEM, "update", "account", object_uuid=account.uuid, aux_info=info, stamp_on_receipt=True
        )
        if archive is not None:
            index, body = purge_record(self.store, account.id, head, str(event["uuid"]))
            archive.record_purge(index, body)


@dataclass
class _BatchRun:
    """A stream's run archiving days in batches: what `_commit` needs."""

    account: Account
    feature: Feature
    archive: StreamArchive
    batch: DayBatch
    bound: int
    result: StreamResult
    written: list[_Written] = field(default_factory=list)  # in the batch, to purge once committed


@dataclass(frozen=True)
class _Written:
    """A day written in a batch, to be purged once committed."""

    start: int
    path: str
    merged: bool
    count: int


class _DayEvents:
    """The events of the UTC day from `start` with seq <= `bound`, as archive rows with their log
    indices, in (timestamp, uuid) order: read ARCHIVE_BATCH at a time, each batch checked against
    its log entries (`check_entries`, raising ArchiveError) before any of it is given, so that a
    day is never held whole. Iterated once; `count` says how many were given."""

    def __init__(self, store: Store, account_id: int, feature: Feature, start: int, bound: int) -> None:
        self.store, self.account_id, self.feature = store, account_id, feature
        self.count = 0
        self._batches = (
            [event for event in batch if event[0] <= bound]
            for batch in store.iter_events(account_id, feature, start, start + DAY_NS, ARCHIVE_BATCH)
        )
        self._first = next((batch for batch in self._batches if batch), None)  # reads until one is taken
        self.empty = self._first is None

    def __iter__(self) -> Iterator[tuple[Row, int | None]]:
        batch = self._first
        while batch is not None:
            check_entries(self.store, self.account_id, self.feature, batch)
            for seq, ts, uuid, body in batch:
                self.count += 1
                yield (ts, uuid, body), seq - 1
            batch = next(self._batches, None)
