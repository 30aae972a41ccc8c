"""Live evaluation: rules run on every batch the EventWriter stores, and the state, the alerts and
the checkpoint (the last seq evaluated per stream) are committed together, so a restart resumes
exactly where the last commit left off: no event is evaluated twice and none is skipped.

- `on_stored` (an EventWriter listener) evaluates the batch it is given. When events might be
  missing between the checkpoint and the batch (another thread's batch not yet seen, another
  process writing), it reads them from the store by seq first.
- `catch_up` (server schedule) evaluates whatever the listener has not seen: events written by
  other processes (`siemgate ingest`), or a batch whose evaluation failed.
- A stream's first evaluation starts at its head: history stored before alerting was enabled
  does not fire, but first-seen rules learn it (`backfill`): their state is built from the
  stream's stored history whenever it does not match the rule (a new or changed rule, a rule
  enabled again, a stream seen for the first time), so "never seen" means never in the store.
- Events stored as history (a simulation) or older than `max_event_age_days` fire nothing but
  teach first-seen rules.
- `check_tokens` (server schedule) evaluates `tokens` rules against every SIEM token of the account,
  `check_integrity` `integrity` rules against the health of each of its streams' logs (the records
  come from `integrity_records`, set by the composition root: alerting does not import the log).
- Alerts recorded as audit events (the `event` action) are written in one batch per account at
  about RECORD_SECONDS after their step committed them (`record_pending`, also called by the
  server's dispatch loop every RECORD_CHECK_SECONDS, with all of them at its tick and at shutdown):
  one write per second instead of one per step that fires. Their deliveries are committed leased
  to this process, so if it stops first the dispatcher records them when the lease ends.
- Two evaluators (two server processes) never commit the same step: the commit checks the
  checkpoint it started from (Store.commit_alert_evaluation), and the loser reloads.
- State is saved every STATE_SAVE_SECONDS or STATE_SAVE_EVENTS events (and after history, at the
  first evaluation of a stream, on shutdown, and at every step while another process evaluates
  the same account), not with every batch: a window key that changes in many batches is written
  once. Alerts and the checkpoint are committed with every batch. The state records the seq up to
  which it covers each stream; when it is loaded behind the checkpoint (after a crash, a rule
  change, another process's step) the events in between are evaluated again to rebuild it, firing
  nothing (their alerts were committed with them), so the state is exactly what it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import orjson

from siemgate.accounts.lifecycle import token_status
from siemgate.alerts import engine
from siemgate.alerts.actions.record import is_alert_event
from siemgate.alerts.caseless import shared_part
from siemgate.alerts.dispatch import LEASE_NS
from siemgate.alerts.engine import Evaluator, Firing, RuleIndex, StateBook
from siemgate.alerts.fields import get_path
from siemgate.alerts.model import CompiledRule, action_json
from siemgate.alerts.rules import AlertRules
from siemgate.errors import Conflict, NotFound, StoreError
from siemgate.model.facets import MAX_FACET_LENGTH
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import NS_PER_SECOND, format_ns, parse_ns
from siemgate.store.base import (
    SCHEDULED_CHECKS,
    Account,
    AlertCommit,
    AlertFailure,
    AlertRecord,
    AlertStateEntry,
    DeliveryRecord,
    Store,
)
from siemgate.store.ingest import StoredBatch

log = logging.getLogger("siemgate.alerts")
READ_BATCH = 2000
STATE_SAVE_SECONDS = 2.0
STATE_SAVE_EVENTS = 20_000
CONTENDED_SECONDS = 60.0  # after a conflict with another process, state is saved at every step this long
RECORD_SECONDS = 1.0  # alerts recorded as audit events wait at most this long to be written together
RECORD_CHECK_SECONDS = 0.25  # ... checked this often by the server's dispatch loop (composition.web)
RECORD_MAX = 1000  # ... or until this many are waiting
EXPIRE_SECONDS = 60.0  # state that expired in event time leaves memory at a save this often
BURST_SECONDS = 2.0  # CPU seconds of evaluation an account may save up (AlertEvaluator.cpu_share)
SHED_RECORD_SECONDS = 60.0  # rules left unevaluated by the budget are recorded as failing this often per stream
BUDGET, FLOOD, REBUILD = "budget", "flood", "rebuild"  # why a rule missed events or alerts (_gather_shed)
MAX_STEP_ALERTS = 1000  # alerts one evaluation step records (each holds its event: up to 64 KiB); the rest fail


class AlertEvaluator:
    def __init__(
        self,
        store: Store,
        rules: AlertRules,
        clock: Callable[[], int],
        max_event_age_days: int = 7,
        cpu_share: float = 0.0,
    ) -> None:
        """Events whose timestamp is more than `max_event_age_days` old when stored (archive
        replays, backfills) are not evaluated: history does not page anyone. `cpu_share`: the CPU
        seconds per second one account's evaluation may use on average (saved up to BURST_SECONDS);
        a step that finds them spent evaluates the rules it can and records the others as failing
        on its events (docs/alerts.md, "Bounded evaluation"). 0: unbounded."""
        self.max_event_age_ns = max_event_age_days * 86400 * NS_PER_SECOND
        self.cpu_share = cpu_share
        self._credit: dict[int, tuple[float, float]] = {}  # account -> (CPU seconds left, monotonic time then)
        # account -> (monotonic time before which no first-seen rebuild of it starts, seconds the last took)
        self._rebuilt: dict[int, tuple[float, float]] = {}
        self._deferred: dict[tuple[int, Feature], set[str]] = {}  # stale first-seen rules left out this step
        # (account, stream) -> {(rule, BUDGET or FLOOD): [first seq, last seq, count]}: events the budget left
        # unevaluated, alerts past MAX_STEP_ALERTS; not yet recorded (_shed)
        self._shed_pending: dict[tuple[int, Feature], dict[tuple[str, str], list[int]]] = {}
        self._shed_recorded: dict[tuple[int, Feature], float] = {}  # ... monotonic time they were last recorded
        self.store = store
        self.rules = rules
        self.clock = clock
        self.kick = threading.Event()  # set when new deliveries are due
        self._guard = threading.Lock()
        self._locks: dict[int, threading.RLock] = {}  # one per account: accounts never wait for each other
        self._versions: dict[int, tuple[int, int]] = {}
        self._books: dict[int, StateBook] = {}
        self._checkpoints: dict[tuple[int, Feature], int | None] = {}
        self._indexes: dict[tuple[int, str], RuleIndex] = {}
        # records alerts as audit events (the `event` action) right after they are committed
        self.record_events: Callable[[int, Sequence[tuple[dict[str, Any], DeliveryRecord]]], None] | None = None
        # (account id, now) -> one record per stream of the account's log health (integrity.health)
        self.integrity_records: Callable[[int, int], list[dict[str, Any]]] | None = None
        self._unsaved: dict[int, tuple[float, int]] = {}  # account -> (monotonic time of the last save, events since)
        self._contended: dict[int, float] = {}  # account -> monotonic time of the last conflict
        self._expired_at: dict[int, float] = {}  # account -> monotonic time state last expired (StateBook.expire)
        # account -> (monotonic time the oldest was queued, the alerts committed but not yet recorded as events)
        self._to_record: dict[int, tuple[float, list[tuple[dict[str, Any], DeliveryRecord]]]] = {}
        self._record_guard = threading.Lock()

    # state --------------------------------------------------------------------------------------
    def _lock(self, account_id: int) -> threading.RLock:
        with self._guard:
            lock = self._locks.get(account_id)
            if lock is None:
                lock = self._locks[account_id] = threading.RLock()
            return lock

    def _fresh(self, account_id: int) -> None:
        """Drop the account's cached state when its rules changed (their state may have been deleted)."""
        version = self.rules.version_of(account_id)
        if self._versions.get(account_id) != version:
            self._versions[account_id] = version
            self._books.pop(account_id, None)

    def _book(self, account_id: int) -> StateBook:
        """The state of the account's rules of event streams, loaded once and kept. Rules checked on
        a schedule are left out: each check reads their state as stored (`_check_account`), and a
        copy kept here would grow stale and, once expired, delete what a check stored since."""
        book = self._books.get(account_id)
        if book is None:
            scheduled = {e.rule.id for e in self.rules.entries(account_id) if e.rule.source in SCHEDULED_CHECKS}
            entries = [e for e in self.store.load_alert_state(account_id) if e.rule_id not in scheduled]
            book = StateBook.load(entries, self.clock() - self.max_event_age_ns)
            self._books[account_id] = book
        return book

    def _forget(self, account_id: int) -> None:
        """Drop what is kept of the account in memory: read again from the store at the next step
        (another process moved on, or deleted the account)."""
        self._books.pop(account_id, None)
        for key in [k for k in self._checkpoints if k[0] == account_id]:
            del self._checkpoints[key]

    @contextmanager
    def paused(self, account_id: int) -> Iterator[None]:
        """Hold the account's evaluation while the block runs (it is being deleted), then drop what
        is kept of it in memory, so nothing of it is saved again."""
        with self._lock(account_id):
            yield
            self._forget(account_id)
            with self._record_guard:  # its alerts were deleted with it
                self._to_record.pop(account_id, None)
            for per_stream in (self._shed_pending, self._shed_recorded, self._deferred):
                for key in [k for k in per_stream if k[0] == account_id]:
                    del per_stream[key]
            self._credit.pop(account_id, None)
            self._rebuilt.pop(account_id, None)

    def _checkpoint(self, account_id: int, feature: Feature) -> int | None:
        key = (account_id, feature)
        if key not in self._checkpoints:
            self._checkpoints[key] = self.store.alert_checkpoint(account_id, feature)
        return self._checkpoints[key]

    def _account(self, account_id: int) -> Account:
        """The account as it is now (read at each step that fires: its name changes with a rename,
        also by another process)."""
        return self.store.get_account_by_id(account_id)

    # streams ------------------------------------------------------------------------------------
    def on_stored(self, batch: StoredBatch) -> None:
        """EventWriter listener: never raises (the events are stored; catch_up retries)."""
        try:
            self._process(batch.account_id, batch.feature, batch.events, batch)
        except Exception:
            log.exception("alert evaluation failed for a %s batch; it is retried by the next catch-up", batch.feature)

    def catch_up(self) -> int:
        """Evaluate every stream up to its head, then record the rules left out by the budget that
        are due (record_shed); returns the number of events evaluated."""
        done = 0
        for account in self.store.list_accounts():
            for feature in ALL_FEATURES:
                try:
                    done += self._process(account.id, feature, None)
                except Exception:
                    log.exception("alert catch-up failed for %s of account %s", feature, account.uuid)
        self.record_shed()
        return done

    def _process(
        self,
        account_id: int,
        feature: Feature,
        events: Sequence[tuple[int, dict[str, Any]]] | None,
        batch: StoredBatch | None = None,
    ) -> int:
        with self._lock(account_id):
            self._fresh(account_id)
            try:
                return self._step(account_id, feature, events, batch)
            except Conflict:
                self._forget(account_id)  # another process moved on: reload and catch up from there
                self._contended[account_id] = time.monotonic()
                return self._step(account_id, feature, None, None)
            except Exception:
                self._forget(account_id)
                raise

    def _step(
        self,
        account_id: int,
        feature: Feature,
        events: Sequence[tuple[int, dict[str, Any]]] | None,
        batch: StoredBatch | None,
    ) -> int:
        checkpoint = self._checkpoint(account_id, feature)
        self._recount(account_id, feature.value, checkpoint or 0)
        if checkpoint is not None:
            self._replay(account_id, feature, checkpoint)
        if checkpoint is None:  # first look at this stream: start at its head (or just before this batch)
            start = events[0][0] - 1 if events else self.store.head_seq(account_id, feature)
            self._backfill(account_id, feature, None, start)
            checkpoint = start
            if events is None:
                return 0
        else:
            self._backfill(account_id, feature, checkpoint, checkpoint)
        given: Sequence[tuple[int, dict[str, Any]]] = []
        if events:  # seqs ascend: the batch as it is, unless it begins at or before the checkpoint
            given = events if events[0][0] > checkpoint else [(s, e) for s, e in events if s > checkpoint]
        if events is not None and not given:
            return 0
        if given and given[0][0] == checkpoint + 1:
            times = batch.times if batch is not None and len(given) == len(batch.times) else None
            return self._evaluate(account_id, feature, checkpoint, given, times, bool(batch and batch.history))
        upto = given[-1][0] if given else None
        done = 0
        while True:
            chunk = self._read(account_id, feature, checkpoint, upto)
            if not chunk:
                return done
            done += self._evaluate(account_id, feature, checkpoint, chunk, None, False)
            checkpoint = chunk[-1][0]

    def _read(
        self, account_id: int, feature: Feature, after: int, upto: int | None
    ) -> list[tuple[int, dict[str, Any]]]:
        rows = self.store.read_events(account_id, feature, after, 0, None, READ_BATCH)
        return [(seq, orjson.loads(body)) for seq, body, _ in rows if upto is None or seq <= upto]

    def _replay(self, account_id: int, feature: Feature, checkpoint: int) -> None:
        """Bring the state up to the checkpoint: the events after the seq the loaded state covers
        are evaluated again (their alerts were committed with them: what fires is dropped). State
        stored without that seq (before 0.2) covers the checkpoint."""
        book = self._book(account_id)
        stream = feature.value
        covered = book.covered.get(stream)
        if covered is None or covered >= checkpoint:
            book.covered[stream] = checkpoint if covered is None else covered
            return
        rules, index = self._rules(account_id, stream)
        # a threshold rule counts the events stored after it was created or changed (_recount)
        rules = [r for r in rules if r.window_ns is None or book.meta.get(r.id, {}).get("from", 0) <= covered]
        oldest = self.clock() - self.max_event_age_ns
        budget = self._budget(account_id)  # the events are evaluated again: on the account's CPU budget
        try:
            while covered < checkpoint:
                chunk = self._read(account_id, feature, covered, checkpoint)
                if not chunk:
                    break
                first, last = covered + 1, chunk[-1][0]
                if feature == Feature.AUDITEVENTS:
                    chunk = [(s, e) for s, e in chunk if not is_alert_event(e)]
                evaluator = Evaluator(rules, book, index)
                if rules and chunk:
                    evaluator.evaluate(chunk, oldest=oldest, budget=budget)
                covered = last
                if evaluator.shed:  # the rest is left out of the state, each rule failing on what it missed
                    self._gather_shed(account_id, feature, first, checkpoint, checkpoint - covered + len(chunk),
                                      evaluator.shed)  # fmt: skip
                    if covered < checkpoint:
                        rest = [r.id for r in rules if r.id not in evaluator.shed]
                        self._gather_shed(account_id, feature, covered + 1, checkpoint, checkpoint - covered, rest)
                    break
        finally:
            self._charge(account_id, budget)
        book.covered[stream] = checkpoint
        log.info("alert state of %s rebuilt from seq %s up to %d", stream, book.stored.get(stream), checkpoint)

    def _recount(self, account_id: int, source: str, checkpoint: int) -> None:
        """Start empty the windows of each threshold rule that is new, enabled again, or whose match
        or grouping changed since they were counted (CompiledRule.learnt_from, kept in the state's
        meta with `from`, the checkpoint then): they hold events the old condition matched, and the
        rule counts only events stored after `from` (the state rebuilt after a crash or a rule
        change leaves it out before that). Saved with the next step, so `from` and the checkpoint
        move together. A rule with windows but no meta (state saved before it was kept: 0.1) keeps them,
        keyed by their values folded when the rule groups ignoring case (StateBook.refold_windows);
        so do suppressions 0.1 saved, of any rule (StateBook.refold_suppress)."""
        book = self._book(account_id)
        for rule in self._rules(account_id, source)[0]:
            if rule.suppress_ns is not None:  # saved by 0.1 under the values as written: once per rule
                book.refold_suppress(rule.id, rule.suppress_nocase, rule.suppress_ns)
            meta = book.meta.get(rule.id)
            if rule.window_ns is None or (meta is not None and meta.get("fp") == rule.learnt_from):
                continue
            adopted = meta is None and any(key[0] == rule.id for key in book.windows)
            if not adopted:
                book.drop_windows(rule.id)
            elif rule.rule.threshold is not None and rule.rule.threshold.nocase:
                book.refold_windows(rule.id)  # counted by 0.1 under the values as written
            book.set_meta(rule.id, {**_meta(rule), "from": 0 if adopted else checkpoint})
            self._unsaved[account_id] = (float("-inf"), 0)  # saved with the next step

    def _state(self, account_id: int, book: StateBook, events: int, history: bool) -> list[AlertStateEntry]:
        """The state entries to commit with a step of `events` events: every change since the
        last save when one is due (see the module docstring), else none."""
        now = time.monotonic()
        saved_at, since = self._unsaved.get(account_id, (now, 0))
        since += events
        due = (
            history
            or book.covered.keys() - book.stored.keys()
            or now - saved_at >= STATE_SAVE_SECONDS
            or since >= STATE_SAVE_EVENTS
            or now - self._contended.get(account_id, -CONTENDED_SECONDS) < CONTENDED_SECONDS
        )
        if not due:
            self._unsaved[account_id] = (saved_at, since)
            return []
        self._unsaved[account_id] = (now, 0)
        if now - self._expired_at.get(account_id, -EXPIRE_SECONDS) >= EXPIRE_SECONDS:
            self._expired_at[account_id] = now
            book.expire(self.clock() - self.max_event_age_ns)
        dropped = book.trim(engine.MAX_WINDOWS)
        if dropped:
            log.warning(
                "account %s holds more than %d threshold windows: the %d whose newest event is oldest were"
                " dropped (per rule: %s); a rule grouped by a field with a value per event makes this",
                self._account(account_id).uuid, engine.MAX_WINDOWS, sum(dropped.values()), _per_rule(dropped),
            )  # fmt: skip
        self._trim_seen(account_id, book)
        return book.changes()

    def _trim_seen(self, account_id: int, book: StateBook, earlier: Counter[str] | None = None) -> None:
        """Bound the account's first-seen values (StateBook.trim_seen), telling the operator which
        rules lost keys (with those `earlier` in the same step)."""
        lost = Counter(earlier)
        lost.update(book.trim_seen(engine.MAX_SEEN_VALUES))
        if lost:
            log.warning(
                "account %s holds more than %d first-seen values: %d keys that learnt a value least recently"
                " were dropped (per rule: %s), and the next value of each counts as its first; a rule keyed"
                " by a field with many values (an address) makes this",
                self._account(account_id).uuid, engine.MAX_SEEN_VALUES, sum(lost.values()), _per_rule(lost),
            )  # fmt: skip

    def save_state(self) -> None:
        """Record the alerts waiting to be recorded as events and commit every account's unsaved
        state (server shutdown), so the next start rebuilds none."""
        self.record_pending(force=True)
        self.record_shed(force=True)
        for account_id in list(self._books):
            with self._lock(account_id):
                book = self._books.get(account_id)
                if book is None or not (book.dirty or book.covered != book.stored):
                    continue
                try:
                    self.store.get_account_by_id(account_id)  # deleted (by another process): nothing to save
                    self._commit(AlertCommit(account_id, None, None, 0, book.changes()))
                except (StoreError, Conflict, NotFound):
                    self._forget(account_id)  # rebuilt from the stored state at the next start
                self._unsaved.pop(account_id, None)

    def record_shed(self, *, force: bool = False) -> int:
        """Record the rules gathered by _shed (left out by the budget, or past MAX_STEP_ALERTS)
        of each stream whose last such record is SHED_RECORD_SECONDS old, or of every stream with
        `force` (shutdown): a stream's next step records them too, but an account may send nothing
        more for long. Returns how many failures were recorded; those of an account deleted
        meanwhile, or that the store cannot take, are dropped."""
        recorded = 0
        for account_id, feature in list(self._shed_pending):
            if not force and not self._shed_due((account_id, feature)):
                continue
            with self._lock(account_id):
                try:
                    failures = self._shed_failures(account_id, feature)
                    if failures:
                        self._commit(AlertCommit(account_id, None, None, 0, failures=failures))
                        recorded += len(failures)
                except (StoreError, Conflict, NotFound):
                    pass  # the account was deleted meanwhile (by another process), or the store is down
        return recorded

    def _rules(self, account_id: int, source: str) -> tuple[list[CompiledRule], RuleIndex]:
        rules = self.rules.enabled(account_id, source)
        index = self._indexes.get((account_id, source))
        if index is None or index.rules != tuple(rules):
            index = self._indexes[(account_id, source)] = RuleIndex(rules)
        return rules, index

    def _evaluate(
        self,
        account_id: int,
        feature: Feature,
        checkpoint: int | None,
        events: Sequence[tuple[int, dict[str, Any]]],
        times: Sequence[int] | None,
        history: bool,
    ) -> int:
        rules, index = self._rules(account_id, feature.value)
        deferred = self._deferred.get((account_id, feature))
        if deferred:  # first-seen rules waiting for their rebuild (_backfill) miss these events
            rules = [r for r in rules if r.id not in deferred]
            self._gather_shed(account_id, feature, events[0][0], events[-1][0], len(events), sorted(deferred), REBUILD)
        book = self._book(account_id)
        firings: list[Firing] = []
        failures: list[AlertFailure] = []
        budget: engine.Budget | None = None
        if rules:
            relevant = events
            if feature == Feature.AUDITEVENTS:
                kept = [i for i, (_, e) in enumerate(events) if not is_alert_event(e)]
                if len(kept) != len(events):
                    relevant = [events[i] for i in kept]
                    times = [times[i] for i in kept] if times is not None else None
            evaluator = Evaluator(rules, book, index)
            budget = self._budget(account_id)
        try:
            if rules:
                oldest = self.clock() - self.max_event_age_ns
                firings = evaluator.evaluate(relevant, oldest=oldest, times=times, learn_only=history, budget=budget)
                firings = self._capped(account_id, feature, firings)
                failures = self._shed(account_id, feature, relevant, evaluator.shed)  # the events rules read
            alerts, deliveries = self._records(account_id, feature.value, firings)
            book.covered[feature.value] = events[-1][0]
            state = self._state(account_id, book, len(events), history)
            commit = AlertCommit(account_id, feature, checkpoint, events[-1][0], state, alerts, deliveries, failures)
            try:
                self._commit(commit)
            except (StoreError, Conflict) as exc:
                if isinstance(exc, Conflict) and self.store.alert_checkpoint(account_id, feature) != checkpoint:
                    raise  # another evaluator moved the stream on: reload (see _process)
                self._commit_failure(commit, firings, events, exc)
        finally:  # what the step's alerts cost (their records, the commit) counts too
            self._charge(account_id, budget)
        return len(events)

    def _capped(self, account_id: int, feature: Feature, firings: list[Firing]) -> list[Firing]:
        """The step's first MAX_STEP_ALERTS firings; the others are gathered as failures of their
        rules (with the events that fired them), recorded as the budget's are (_shed)."""
        if len(firings) <= MAX_STEP_ALERTS:
            return firings
        left_out: dict[str, list[int]] = {}
        for firing in firings[MAX_STEP_ALERTS:]:
            seq = firing.events[-1]["seq"] if firing.events else 0
            left_out.setdefault(firing.rule.id, []).append(seq)
        for rule_id, seqs in left_out.items():
            self._gather_shed(account_id, feature, min(seqs), max(seqs), len(seqs), [rule_id], FLOOD)
        return firings[:MAX_STEP_ALERTS]

    def _budget(self, account_id: int) -> engine.Budget | None:
        """The CPU time the account's next step may use: what it saved up, at `cpu_share` CPU
        seconds per second since its last step, at most BURST_SECONDS; None when unbounded."""
        if self.cpu_share <= 0:
            return None
        now = time.monotonic()
        left, then = self._credit.get(account_id, (BURST_SECONDS, now))
        return engine.Budget(min(BURST_SECONDS, left + (now - then) * self.cpu_share))

    def _charge(self, account_id: int, budget: engine.Budget | None) -> None:
        """Take what the step used from the account's saved-up CPU time (it may go below zero:
        a test the budget ran out in finishes first, and the account waits for it)."""
        if budget is not None:
            self._credit[account_id] = (budget.seconds - budget.spent_ns() / 1e9, time.monotonic())

    def _shed(
        self, account_id: int, feature: Feature, events: Sequence[tuple[int, dict[str, Any]]], shed: Sequence[str]
    ) -> list[AlertFailure]:
        """Gather the rules the step's budget left unevaluated (on all or part of `events`, the
        step's events that rules read: not alerts recorded as events), and return the failures to
        record with the step: at once the first time, then every SHED_RECORD_SECONDS per stream,
        one per rule covering the events it missed since, so an account that stays over its budget
        shows its rules failing without a row per step."""
        key = (account_id, feature)
        if shed and events:
            self._gather_shed(account_id, feature, events[0][0], events[-1][0], len(events), shed)
        if key not in self._shed_pending or not self._shed_due(key):
            return []
        return self._shed_failures(account_id, feature)

    def _shed_due(self, key: tuple[int, Feature]) -> bool:
        """Whether the stream's gathered failures are due: its last such record is SHED_RECORD_SECONDS old."""
        return time.monotonic() - self._shed_recorded.get(key, float("-inf")) >= SHED_RECORD_SECONDS

    def _gather_shed(
        self,
        account_id: int,
        feature: Feature,
        first: int,
        last: int,
        count: int,
        rule_ids: Iterable[str],
        reason: str = BUDGET,
    ) -> None:
        """Remember that the rules missed `count` events (BUDGET: not evaluated on them) or alerts
        (FLOOD: fired past MAX_STEP_ALERTS, not recorded) of seqs `first` to `last`; _shed records them."""
        pending = self._shed_pending.setdefault((account_id, feature), {})
        for rule_id in rule_ids:
            missed = pending.get((rule_id, reason))
            if missed is None:
                pending[(rule_id, reason)] = [first, last, count]
            else:
                missed[0], missed[1], missed[2] = min(missed[0], first), max(missed[1], last), missed[2] + count

    def _shed_failures(self, account_id: int, feature: Feature) -> list[AlertFailure]:
        """The failures of the rules gathered by _shed for the stream, taken out of memory."""
        pending = self._shed_pending.pop((account_id, feature), {})
        self._shed_recorded[(account_id, feature)] = time.monotonic()
        if not pending:
            return []
        log.warning(
            "alert evaluation of account %s: %d rule(s) over the account's CPU budget (alerts_account_cpu_share = %s)"
            " or past the %d alerts one step records, on %s events (%s)",
            self._account(account_id).uuid, len(pending), self.cpu_share, MAX_STEP_ALERTS, feature.value,
            ", ".join(rule for rule, _ in list(pending)[:10]),
        )  # fmt: skip
        now = self.clock()
        return [
            AlertFailure(
                new_id(), account_id, rule_id, feature, now, self._shed_error(account_id, reason, first, last, count),
                first, last, count,
            )
            for (rule_id, reason), (first, last, count) in pending.items()
        ]  # fmt: skip

    def _shed_error(self, account_id: int, reason: str, first: int, last: int, count: int) -> str:
        """What a failure gathered by _gather_shed says, and what to do about it."""
        if reason == REBUILD:
            return (
                f"not evaluated on {count} event(s) (seq {first} to {last}): the rule changed (or was enabled again)"
                " and learns its first-seen values from the stored history again, at most"
                f" alerts_account_cpu_share = {self.cpu_share} of the time (the account's last such rebuild took"
                f" {self._rebuilt.get(account_id, (0.0, 0.0))[1]:.1f} s); it starts by itself: change first-seen"
                " rules less often"
            )
        if reason == FLOOD:
            return (
                f"{count} alert(s) fired on events seq {first} to {last} were not recorded: one evaluation step"
                f" records at most {MAX_STEP_ALERTS} alerts of the account; give the rule `suppress` or a narrower"
                " match"
            )
        return (
            f"not evaluated on {count} event(s) (seq {first} to {last}): the account's rules used the CPU time its"
            f" evaluation may use (alerts_account_cpu_share = {self.cpu_share} CPU seconds per second); make the"
            " costly rules cheaper (fewer contains, regex or nocase tests on long fields) or fewer"
        )

    def _record_events(
        self, account_id: int, alerts: Sequence[AlertRecord], deliveries: Sequence[DeliveryRecord]
    ) -> None:
        """Queue the committed `event` actions (leased to this evaluator) to be recorded with the
        account's others; records them all when the oldest has waited RECORD_SECONDS."""
        taken = [d for d in deliveries if d.kind == "event"]
        if not taken or self.record_events is None:
            return
        payloads = {a.id: orjson.loads(a.payload) for a in alerts}
        with self._record_guard:
            since, waiting = self._to_record.setdefault(account_id, (time.monotonic(), []))
            waiting.extend((payloads[d.alert_id], d) for d in taken)
            due = len(waiting) >= RECORD_MAX or time.monotonic() - since >= RECORD_SECONDS
        if due:
            self.record_pending(account_id, force=True)

    def record_pending(self, account_id: int | None = None, *, force: bool = False) -> int:
        """Record the alerts waiting to be recorded as audit events, in one batch per account: of
        `account_id` or of every account, those that waited RECORD_SECONDS, or all with `force`.
        Returns how many were recorded. A failed batch is left to the dispatcher, which carries
        its deliveries out when their lease ends. Those of a rule deleted since, or whose `event`
        action was removed, are not recorded (their deliveries were cancelled)."""
        now = time.monotonic()
        with self._record_guard:
            accounts = list(self._to_record) if account_id is None else [account_id]
            taken = [
                (a, self._to_record.pop(a)[1])
                for a in accounts
                if a in self._to_record and (force or now - self._to_record[a][0] >= RECORD_SECONDS)
            ]
        done = 0
        for a, items in taken:
            if self.record_events is None:
                continue  # switched off since they were queued: left to the dispatcher
            # a rule deleted (or its `event` action removed) meanwhile cancelled their deliveries
            held = {(e.rule.id, action_json(action)) for e in self.rules.entries(a) for action in e.rule.actions}
            items = [(alert, d) for alert, d in items if (d.rule_id, d.action) in held]
            if not items:
                continue
            try:
                self.record_events(a, items)
                self.store.mark_delivered([d.id for _, d in items], self.clock())
                done += len(items)
            except Exception as exc:
                log.warning("alerts recorded as events: %s; the dispatcher retries them", exc)
        return done

    def _backfill(self, account_id: int, feature: Feature, checkpoint: int | None, upto: int) -> None:
        """Build the first-seen state of every enabled first-seen rule of the stream whose state
        was not built for it (fingerprint of its source, match and first_seen) from the stored
        events up to seq `upto`, and commit it with the checkpoint moved from `checkpoint` to
        `upto` (Conflict when another evaluator moved it). Nothing fires."""
        rules, _ = self._rules(account_id, feature.value)
        book = self._book(account_id)
        stale = [r for r in rules if r.first_seen_parts is not None and book.meta.get(r.id) != _meta(r)]
        for entry in self.rules.entries(account_id):  # a disabled rule learns nothing: rebuilt when enabled
            if not entry.enabled and entry.rule.id in book.meta and entry.rule.source == feature.value:
                book.meta.pop(entry.rule.id)
                book.dirty.add((entry.rule.id, "meta", ""))
                book.drop_windows(entry.rule.id)  # and counts nothing: starts empty when enabled
                self._unsaved[account_id] = (float("-inf"), 0)  # saved with this step (see _recount)
        self._deferred.pop((account_id, feature), None)
        if stale and checkpoint is not None and self._rebuild_waits(account_id):
            self._deferred[(account_id, feature)] = {r.id for r in stale}
            for rule in stale:  # what it learnt is stale: changed back meanwhile, it is rebuilt all the same
                if book.meta.pop(rule.id, None) is not None:
                    book.dirty.add((rule.id, "meta", ""))
            return
        if not stale and checkpoint is not None:
            return
        started = time.monotonic()
        for rule in stale:
            first_seen = rule.rule.first_seen
            assert first_seen is not None
            kept = book.refold_seen(rule.id, first_seen.nocase)
            book.forget_seen(rule.id)
            book.set_meta(rule.id, _meta(rule))
            for keys, values in kept.items():  # learnt by 0.1, perhaps from events deleted since
                for value in values:
                    book.remember(rule.id, keys, value, first_seen.max_values)
        if stale and upto > 0:
            learner = Evaluator(stale, book)
            after = 0
            lost: Counter[str] = Counter()  # a long history is learnt within the bound on first-seen values
            while after < upto:
                chunk = self._read(account_id, feature, after, upto)
                if not chunk:
                    break
                after = chunk[-1][0]
                if feature == Feature.AUDITEVENTS:
                    chunk = [(s, e) for s, e in chunk if not is_alert_event(e)]
                learner.evaluate(chunk, now=0, learn_only=True)  # the time does not matter: nothing fires
                lost.update(book.trim_seen(engine.MAX_SEEN_VALUES))
            log.info("first-seen rules %s learnt %s history up to seq %d", [r.id for r in stale], feature.value, upto)
            self._trim_seen(account_id, book, lost)
            self._rebuild_done(account_id, started)
        book.covered[feature.value] = upto
        self._commit(AlertCommit(account_id, feature, checkpoint, upto, book.changes()))
        self._unsaved.pop(account_id, None)

    def _rebuild_waits(self, account_id: int) -> bool:
        """Whether the account's first-seen rules changed since their state was built must wait to
        learn the stored history again: its rebuilds (a scan of the stream each) may take at most
        `cpu_share` of the time, so after one that took T seconds the next starts T / cpu_share
        seconds after it ended. Rebuilding at every save of a rule let an owner keep a core
        scanning their history for ever. 0: never waits."""
        return self.cpu_share > 0 and time.monotonic() < self._rebuilt.get(account_id, (0.0, 0.0))[0]

    def _rebuild_done(self, account_id: int, started: float) -> None:
        """Record a rebuild that started at `started` (monotonic) and ends now (_rebuild_waits)."""
        if self.cpu_share > 0:
            now = time.monotonic()
            self._rebuilt[account_id] = (now + (now - started) / self.cpu_share, now - started)

    def _commit_failure(
        self,
        commit: AlertCommit,
        firings: list[Firing],
        events: Sequence[tuple[int, dict[str, Any]]],
        exc: StoreError | Conflict,
    ) -> None:
        """The step could not be stored (an alert the store cannot hold, say): record it as a
        failure of the rules involved, keep their state if it can be stored, and move the stream on.
        Raises StoreError when not even that can be stored (the store is down: catch-up retries)."""
        rule_ids = sorted({f.rule.id for f in firings} or {s.rule_id for s in commit.state} or {"*"})
        now = self.clock()
        error = f"alerts of {len(events)} event(s) could not be stored: {exc.message}"[:1000]
        failures = [
            AlertFailure(new_id(), commit.account_id, rule_id, commit.feature, now, error, events[0][0], events[-1][0],
                         len(events))
            for rule_id in rule_ids
        ]  # fmt: skip
        log.error("alert evaluation of %s: %s", commit.feature, error)
        try:
            self._commit(replace(commit, alerts=(), deliveries=(), failures=[*commit.failures, *failures]))
        except (StoreError, Conflict):
            self._books.pop(commit.account_id, None)  # its state was not stored: reload it
            self._commit(replace(commit, state=(), alerts=(), deliveries=(), failures=[*commit.failures, *failures]))

    def _commit(self, commit: AlertCommit) -> None:
        """Store the step, then queue its alerts to be recorded as events (_record_events)."""
        self.store.commit_alert_evaluation(commit)
        if commit.feature is not None:
            self._checkpoints[(commit.account_id, commit.feature)] = commit.new_seq
        if any(d.next_attempt_at is not None and d.next_attempt_at <= d.created_at for d in commit.deliveries):
            self.kick.set()  # due at once (`event` deliveries are carried out by _record_events)
        self._record_events(commit.account_id, commit.alerts, commit.deliveries)  # after the checkpoint moved

    # scheduled: SIEM tokens, log integrity --------------------------------------------------------
    def check_tokens(self) -> int:
        """Evaluate `tokens` rules for every account; returns the number of alerts fired."""
        return self._check_scheduled("tokens", lambda account, now: token_records(self.store, account, now))

    def check_integrity(self) -> int:
        """Evaluate `integrity` rules for every account (none when no records provider is set)."""
        provider = self.integrity_records
        if provider is None:
            return 0
        return self._check_scheduled("integrity", lambda account, now: provider(account.id, now))

    def _check_scheduled(self, source: str, records_of: Callable[[Account, int], list[dict[str, Any]]]) -> int:
        fired = 0
        now = self.clock()
        for account in self.store.list_accounts():
            rules = self.rules.enabled(account.id, source)
            if not rules:
                continue
            records = records_of(account, now)
            with self._lock(account.id):
                try:
                    fired += self._check_account(account.id, source, rules, records, now)
                except Conflict:
                    continue  # another process checked it from the same state: the next check reads its own
        return fired

    def _check_account(
        self, account_id: int, source: str, rules: list[CompiledRule], records: list[dict[str, Any]], now: int
    ) -> int:
        """One scheduled check of the account's `source` rules, on their state as stored (read after
        the check's generation), committed against that generation: of processes checking from the
        same state only the first commits, the others get Conflict having fired nothing, so an alert
        fires once per suppression whatever the number of processes. Before, each process kept
        these rules' suppressions in its own book, read once, and fired its own alert. Returns the
        alerts fired."""
        expected = self.store.scheduled_check_generation(account_id, source)
        entries = self.store.load_alert_state(account_id, sorted({rule.id for rule in rules}))
        book = StateBook.load(entries, self.clock() - self.max_event_age_ns)
        firings = Evaluator(rules, book).evaluate(enumerate(records), now=now)
        alerts, deliveries = self._records(account_id, source, firings)
        changes = book.changes()
        if not alerts and not changes:
            return 0  # nothing to write: the generation stays, and no other process's check conflicts
        generation = (expected or 0) + 1
        self._commit(AlertCommit(account_id, None, expected, generation, changes, alerts, deliveries, scheduled=source))
        return len(alerts)

    # alerts -------------------------------------------------------------------------------------
    def _records(
        self, account_id: int, source: str, firings: list[Firing]
    ) -> tuple[list[AlertRecord], list[DeliveryRecord]]:
        if not firings:
            return [], []
        account = self._account(account_id)
        now = self.clock()
        alerts, deliveries = [], []
        for firing in firings:
            payload = alert_payload(new_id(), account, source, firing, now)
            alert = AlertRecord(
                payload["id"],
                account_id,
                firing.rule.id,
                now,
                firing.event_ts,
                firing.rule.rule.severity,
                source,
                orjson.dumps(firing.group).decode(),
                firing.summary,
                orjson.dumps(payload).decode(),
                firing.rule.version,
            )
            alerts.append(alert)
            for action in firing.rule.rule.actions:
                due = now + LEASE_NS if action.type == "event" else now  # `event`: taken by _record_events
                deliveries.append(
                    DeliveryRecord(
                        new_id(), alert.id, account_id, firing.rule.id, action_json(action), action.type, "pending",
                        0, due, "", now,
                    )
                )  # fmt: skip
        return alerts, deliveries


def alert_payload(alert_id: str, account: Account, source: str, firing: Firing, now: int) -> dict[str, Any]:
    """The alert as actions send it (webhook `data`, syslog MSG, the `alerts` API): `event_time`
    is when the activity that completed the rule happened, `detected_at` (also `fired_at`) when
    siemgate evaluated it; `events` the triggering events and `explorer` the console's filter
    that shows them."""
    rule = firing.rule.rule
    return {
        "id": alert_id,
        "account": {"uuid": account.uuid, "name": account.name},
        "rule": {
            "id": rule.id,
            "name": rule.name,
            "severity": rule.severity,
            "kind": rule.kind,
            "description": rule.description,
            "version": firing.rule.version,
        },
        "source": source,
        "summary": firing.summary,
        "event_time": format_ns(firing.event_ts),
        "detected_at": format_ns(now),
        "fired_at": format_ns(now),
        "group": firing.group,
        "count": firing.count,
        "events": firing.events,
        "explorer": explorer_filter(source, firing),
        "event": firing.event,
    }


_ACTOR = {"signinattempts": "target_user.email", "itemusages": "user.email", "auditevents": "actor_details.email"}


def explorer_filter(source: str, firing: Firing) -> dict[str, Any] | None:
    """The event explorer's view of the triggering events: their stream, the time span they cover
    and, when they share one, their actor (docs/console.md, the explorer's filters), cut to the
    length of a facet: the explorer's forgiving match finds every one of them."""
    if source not in _ACTOR or not firing.events:
        return None
    times = [parse_ns(r["timestamp"]) for r in firing.events]
    view: dict[str, Any] = {"feature": source, "start": format_ns(min(times)), "end": format_ns(max(times))}
    actor = get_path(firing.event, _ACTOR[source])
    if isinstance(actor, str) and actor:
        shown = _shared_actor(firing, _ACTOR[source], actor[:MAX_FACET_LENGTH])
        if shown:
            view["actor"] = shown
    return view


def _shared_actor(firing: Firing, path: str, actor: str) -> str | None:
    """What the firing's events share of `actor` (the value at `path`) as the explorer's forgiving
    filter compares it (contained, ignoring the case of A to Z only): all of it for one event or a
    threshold grouped by the actor exactly; for one grouped ignoring case, its longest part that
    every spelling of the group holds (alerts.caseless.shared_part); None when not grouped by it."""
    threshold = firing.rule.rule.threshold
    if len(firing.events) == 1:
        return actor
    if threshold is None or path not in threshold.group_by:
        return None
    return shared_part(actor) if threshold.nocase else actor


def token_records(store: Store, account: Account, now: int) -> list[dict[str, Any]]:
    """One record per SIEM token of the account, as `tokens` rules see it (alerts.fields)."""
    integrations = {i.id: i for i in store.list_integrations(account.id)}
    records = []
    for token in store.list_tokens(account.id):
        integration = integrations.get(token.integration_id) or store.get_integration_by_id(token.integration_id)
        since = token.last_used_at or token.created_at
        records.append(
            {
                "id": token.id,
                "name": token.name,
                "timestamp": format_ns(now),
                "status": token_status(token, now),
                "features": [f.value for f in token.features],
                "created_at": format_ns(token.created_at),
                "last_used_at": format_ns(token.last_used_at) if token.last_used_at else None,
                "expires_at": format_ns(token.expires_at) if token.expires_at else None,
                "idle_seconds": max(0, (now - since) // NS_PER_SECOND),
                "integration": {"uuid": integration.uuid, "name": integration.name, "type": integration.type},
            }
        )
    return records


def _per_rule(counts: Mapping[str, int]) -> str:
    """`rule n, rule n` for a warning, the largest first."""
    return ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items(), key=lambda item: -item[1]))


def _meta(rule: CompiledRule) -> dict[str, Any]:
    """What a first-seen rule's state was built for, or a threshold rule's windows counted
    (CompiledRule.learnt_from): a change to its source, match, first_seen or grouping rebuilds it
    from history or starts the windows empty; renaming it or changing its actions keeps it."""
    return {"fp": rule.learnt_from}
