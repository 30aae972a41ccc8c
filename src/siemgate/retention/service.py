"""Retention policies and applying them: archive first (write, fsync, read back and check), then
purge exactly what was archived.

For each (account, stream): events older than `days` leave the store. With an archive format,
whole UTC days before the cutoff day are archived one file per day and only then purged
(bounded by the stream's head seq when the run started, so events stored meanwhile stay); the
cutoff day itself waits for the next run, so events may stay up to a day longer than `days`.
Without an archive, events older than the cutoff are purged at once. Any archive failure
(disk full, unwritable folder, a file that does not read back) stops that stream's run before
its purge: nothing is deleted that is not in a checked archive file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.people import PeopleService
from siemgate.config import Settings
from siemgate.errors import BadRequest
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.retention.archive import DAY_NS, LOCK_FILE, ArchiveError, StreamArchive, day_of, day_start
from siemgate.store.base import Account, RetentionPolicy, Store

log = logging.getLogger("siemgate.retention")
ARCHIVES = ("none", "jsonl", "parquet")
Progress = Callable[[str, int], None]  # (what, events done)


@dataclass
class StreamResult:
    account: str
    feature: Feature
    cutoff: int
    archived: int = 0
    purged: int = 0
    files: list[str] = field(default_factory=list)
    error: str | None = None


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

    # policies -----------------------------------------------------------------------------------
    def policy(self, account_id: int, feature: Feature) -> RetentionPolicy:
        """The account's policy for the stream, or the server default. Read from the store each time
        (one indexed query, made by Events API resets only), so a policy set by any process — the
        CLI, another server — applies to this one's next request."""
        found = self.store.retention_policies(account_id).get(feature)
        if found is not None:
            return found
        return RetentionPolicy(account_id, feature, self.settings.retention_days, self.settings.archive_format, 0)

    def retention_ns(self, account_id: int, feature: Feature) -> int:
        """How far back the Events API serves this stream (the policy's days)."""
        return self.policy(account_id, feature).days * DAY_NS

    def set_policy(
        self, actor: Actor, account: Account, feature: Feature, days: int, archive: str | None = None
    ) -> RetentionPolicy:
        """Set the stream's retention (owners and administrators); recorded as `update account`."""
        self.people.require(actor, account, "administrator", "change retention")
        if days < 1:
            raise BadRequest("retention must be at least 1 day")
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
        """Apply every stream's policy (one run at a time). Failures are reported per stream."""
        results = []
        with self._lock:
            for account in accounts or self.store.list_accounts():
                for feature in ALL_FEATURES:
                    result = self.apply_stream(account, feature, progress)
                    if result.error:
                        log.error("retention of %s/%s stopped: %s", account.uuid, feature.value, result.error)
                    results.append(result)
        return results

    def apply_shared(
        self, progress: Progress | None = None, accounts: list[Account] | None = None, *, wait: bool = False
    ) -> list[StreamResult]:
        """`apply`, one process at a time among those sharing the archive folder (a lock file in
        it): when another is applying retention, wait for it (`wait`) or skip this run (a server's
        schedule: the other run does the work)."""
        try:
            self.archive_root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.archive_root / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
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
        cutoff = self.clock() - policy.days * DAY_NS
        result = StreamResult(account.uuid, feature, cutoff)
        head = self.store.head_seq(account.id, feature)
        if policy.archive == "none":
            result.purged = self.store.purge_events(account.id, feature, cutoff, max_seq=head)
            return result
        last_day_start = day_start(day_of(cutoff))  # whole days before the cutoff's day
        archive = StreamArchive(
            self.archive_root, account.uuid, account.name, feature, policy.archive, fault=self.fault
        )
        try:
            while True:
                first = next(self.store.iter_events(account.id, feature, 0, last_day_start, 1), [])
                if not first:
                    break
                day = day_of(first[0][1])
                start = day_start(day)
                rows = [
                    (ts, uuid, body)
                    for batch in self.store.iter_events(account.id, feature, start, start + DAY_NS)
                    for seq, ts, uuid, body in batch
                    if seq <= head
                ]
                if not rows:
                    break  # the oldest day left holds only events stored after this run began
                entry = archive.write_day(day, rows)
                result.files.append(entry.path)
                result.archived += len(rows)
                purged = self.store.purge_events(account.id, feature, start + DAY_NS, max_seq=head)
                result.purged += purged
                if progress is not None:
                    progress(f"{account.name}/{feature.value} {day}", len(rows))
                if purged == 0:
                    break  # nothing more this run can take out (the rest is newer than the run)
        except ArchiveError as exc:
            result.error = str(exc)
        return result
