"""The server's log worker (docs/integrity.md, "In the store" and "Cadence"): it integrates every
stream's new entries and asks the signer for the checkpoints that are due, which it verifies and
stores. `serve` runs it every few seconds; `siemgate log checkpoint` runs it for one stream.

While the signer is unreachable ingest goes on (entries are written with the events, integration
goes on); signing is retried after the checkpoint interval, and the first checkpoint after the
signer is back covers everything since, with one consistency proof.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from siemgate.config import Settings
from siemgate.errors import ConfigError, NotFound, SiemgateError
from siemgate.integrity.export import Exported, export_log
from siemgate.integrity.keys import LogKeys, signer_client
from siemgate.integrity.tree import Integrated, LogIntegrityError, StoredTree, integrate, stored_root, stream_label
from siemgate.integrity.witnessing import QuorumNotMet, Witnessing
from siemgate.model.features import Feature
from siemgate.store.base import Store
from siemgate.store.shared.log import StoredCheckpoint
from siemgate.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    Recovery,
    open_checkpoint,
    open_recovery,
    unverified_text,
)
from siemgate.tlog.note import NoteError
from siemgate.tlog.publisher import Cadence, SignerAhead, ahead_message, due, publish
from siemgate.tlog.signer import SignerRefused
from siemgate.tlog.signer_client import SignerClient, SignerUnavailable

log = logging.getLogger("siemgate.integrity")

WORKER_SECONDS = 2.0
# Streams whose signed size is read from the signer per worker round after a start (one cheap read
# each, nothing signed): a few hundred take well under a second on loopback.
START_CHECKS_PER_ROUND = 500
Stream = tuple[int, Feature]


class LogUnavailable(SiemgateError):
    """A checkpoint cannot be had now (no signer configured, the signer is down, or the log is
    stopped by an integrity error); the message says what to do."""


class SignerRejects(LogUnavailable):
    """The signer turns this server away (wrong secret, HTTP 401/403, fails with 5xx, or gives no
    keys): a deployment problem, retried like an unreachable signer."""


class NotWitnessed(LogUnavailable):
    """The signer signed, but fewer than the quorum of witnesses cosigned: nothing was published.
    `reason` is the witnesses' side alone, the same at each attempt while it lasts (the message
    also names the checkpoint, whose time is new at each attempt)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Recovered:
    recovery: Recovery
    checkpoint: Checkpoint
    origin: str
    statement: str  # the signed recovery statement, as stored
    note: str  # the signed checkpoint, as stored


@dataclass(frozen=True)
class Resumed:
    """What `LogService.resume` found: the error it cleared, the log's size after integrating, and
    either the checkpoint signed at once or why there is none yet (`pending`), or the error that
    stopped the log again (`stopped`)."""

    cleared: str
    size: int
    checkpoint: Checkpoint | None = None
    pending: str | None = None
    stopped: str | None = None


@dataclass
class _Ahead:
    message: str
    retry_at: int
    stored_time: int | None  # the newest stored checkpoint's time when the signer was found ahead


class LogService:
    """Integration and checkpoints of every stream's log. One worker per process runs `run`; several
    processes may share a database (the signer orders concurrent signing)."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], int], keys: LogKeys) -> None:
        if settings.integrity_heartbeat_seconds < settings.integrity_checkpoint_seconds:
            raise ConfigError("integrity_heartbeat_seconds must be at least integrity_checkpoint_seconds")
        self.store = store
        self.clock = clock
        self.keys = keys
        self.cadence = Cadence(settings.integrity_checkpoint_seconds, settings.integrity_heartbeat_seconds)
        self.signer = signer_client(settings)
        self.signer_url = settings.integrity_signer_url
        self.witnessing = Witnessing.from_settings(settings, self._now)
        self.unwitnessed: dict[Stream, tuple[int, str]] = {}  # stream -> (retry at, why not published)
        self._unwitnessed_logged: dict[Stream, str] = {}  # stream -> the witnesses' reason last logged
        self._last: dict[Stream, Checkpoint | None] = {}
        self._down_until = 0
        self._down_logged = False
        self.signer_up: bool | None = None  # None until this process has talked to the signer
        self.signer_error: str | None = None
        self._next_probe = 0
        self._ahead: dict[Stream, _Ahead] = {}
        self.unchecked: list[Stream] | None = None  # streams the start check has still to ask about

    def _now(self) -> int:
        return self.clock() // 1_000_000_000

    # integration ---------------------------------------------------------------------------------
    def integrate_all(self) -> dict[Stream, Integrated]:
        """Integrate every stream that has entries past its integrated size."""
        done = {}
        for account_id, feature, head, size, stopped in self.store.log_overview():
            if head > size and not stopped:
                done[(account_id, feature)] = integrate(self.store, account_id, feature, self.clock())
        return done

    def run(self) -> None:
        """One round of the worker: integrate, then sign what is due."""
        self.integrate_all()
        if self.signer is not None and self._now() >= self._next_probe:
            self.probe_signer()
        if self.signer is not None and self._now() >= self._down_until:
            self.check_at_start()
        if self.signer is not None and self._now() >= self._down_until:
            self.sign_due()

    def probe_signer(self) -> bool:
        """Ask the signer's health check (at most once per checkpoint interval from `run`); records
        and returns whether it answers."""
        self._next_probe = self._now() + self.cadence.min_interval
        if self.signer is None:
            return False
        try:
            self.signer.health()
        except SignerUnavailable as exc:
            self._signer_seen(False, str(exc))
            return False
        self._signer_seen(True, None)
        return True

    def _signer_seen(self, up: bool, error: str | None) -> None:
        """`error`: why the signer is down, the reason every account's streams report (health)."""
        self.signer_up, self.signer_error = up, error

    def _shared_reason(self, message: str, account_id: int) -> str:
        """`message`, the failure of a request about one of `account_id`'s streams (the signer's
        answer names its origin), as the signer-down reason that every account's streams report and
        their `log-integrity` alerts carry: with the account's uuid left out, which would tell the
        other tenants that the account exists and when its log grew. The operator's log line keeps
        the message whole."""
        try:
            uuid = self.store.get_account_by_id(account_id).uuid
        except NotFound:  # deleted meanwhile: its uuid cannot be looked up, so say nothing of the request
            return "the signer cannot sign (the server's log says why)"
        return message.replace(uuid, "<account>")

    # checkpoints ---------------------------------------------------------------------------------
    def origin(self, account_id: int, feature: Feature) -> str:
        """`<signer's key name>/<account uuid>/<feature>`; NotFound when there are no keys."""
        ring = self.keys.public()
        names = [k.verifier.name for k in ring.keys if k.retired is None] or [k.verifier.name for k in ring.keys]
        return f"{names[0]}/{self.store.get_account_by_id(account_id).uuid}/{feature.value}"

    def last_checkpoint(self, account_id: int, feature: Feature) -> Checkpoint | None:
        stream = (account_id, feature)
        if stream not in self._last:
            stored = self.store.last_log_checkpoint(account_id, feature)
            self._last[stream] = Checkpoint.parse(unverified_text(stored.note)) if stored else None
        return self._last[stream]

    def sign_due(self) -> int:
        """Ask for every checkpoint that is due; returns how many were signed."""
        signed = 0
        now = self._now()
        for account_id, feature, _head, size, stopped in self.store.log_overview():
            stream = (account_id, feature)
            if size < 0 or stopped or self._waiting(stream, now) or self.unwitnessed.get(stream, (0, ""))[0] > now:
                continue
            last = self.last_checkpoint(account_id, feature)
            if last is not None and now - last.time < self.cadence.min_interval:
                continue  # whatever is due (a day-close against a clock ahead of the signer's too)
            if due(self.cadence, size, last, now) is None:
                continue
            try:
                self._sign(account_id, feature, size)
            except (SignerUnavailable, SignerRejects) as exc:
                self._signer_seen(False, self._shared_reason(str(exc), account_id))
                self._down_until = now + self.cadence.min_interval
                if not self._down_logged:
                    log.warning("the log signer cannot sign; ingest goes on and checkpoints catch up: %s", exc)
                    self._down_logged = True
                return signed
            except NotWitnessed as exc:
                if self._unwitnessed_logged.get(stream) != exc.reason:
                    log.error("log of %s: %s", stream_label(self.store, account_id, feature), exc)
                    self._unwitnessed_logged[stream] = exc.reason
                self.unwitnessed[stream] = (now + self.cadence.min_interval, str(exc))
                continue
            except LogUnavailable as exc:
                log.error("log of %s: %s", stream_label(self.store, account_id, feature), exc)
                continue
            self._unwitnessed_logged.pop(stream, None)
            if self.unwitnessed.pop(stream, None) is not None:
                log.info("log of %s: witnessed and published again", stream_label(self.store, account_id, feature))
            signed += 1
            if self._down_logged:
                log.info("the log signer is reachable again; checkpoints caught up")
                self._down_logged = False
        return signed

    def check_at_start(self) -> int:
        """After a start, ask the signer the size it last signed of each stream with a stored
        checkpoint (a read: nothing is signed), at most START_CHECKS_PER_ROUND a round, so that a
        store restored from a backup older than the signer's state is `signer-ahead` at once, not
        at the stream's next change or heartbeat, and a stored tree whose root at the signer's size
        is not the signed one (rewritten, or restored from another history) is stopped at once.
        Returns how many streams were found ahead; a signer that cannot be reached leaves the rest
        for a later round."""
        if self.signer is None:
            return 0
        if self.unchecked is None:
            self.unchecked = [
                (a, f) for a, f, _head, size, stopped in self.store.log_overview() if size >= 0 and not stopped
            ]
        found = 0
        for _ in range(min(START_CHECKS_PER_ROUND, len(self.unchecked))):
            account_id, feature = self.unchecked[-1]
            try:
                found += self._ahead_at_start(account_id, feature)
            except (SignerUnavailable, SignerRejects) as exc:
                self._signer_seen(False, self._shared_reason(str(exc), account_id))
                self._down_until = self._now() + self.cadence.min_interval
                return found
            except LogUnavailable as exc:
                log.error("log of %s: %s", stream_label(self.store, account_id, feature), exc)
            self.unchecked.pop()
        return found

    def _ahead_at_start(self, account_id: int, feature: Feature) -> bool:
        """Whether the signer last signed a larger tree of the stream than its log holds; if so the
        stream waits as after the signer's refusal (`signer_ahead`). Otherwise the stored tree must
        have the signed root at the signer's size (LogUnavailable, the log stopped, if not). False
        for a stream with no stored checkpoint: its first one is due at once, and the signer's
        answer tells then."""
        stream = (account_id, feature)
        stored = self.store.last_log_checkpoint(account_id, feature)
        state = self.store.log_state(account_id, feature)
        if stored is None or state is None or self.signer is None:
            return False
        try:
            origin = self.origin(account_id, feature)
            note = self.signer.checkpoint(origin)
        except NotFound as exc:  # no keys to name the log by
            raise SignerRejects(str(exc)) from None
        except SignerRefused as exc:
            raise SignerRejects(f"the signer turns this server away: {exc}") from None
        if note is None:
            return False
        try:
            signed = open_checkpoint(note, self.keys.public(), now=self._now()).checkpoint
        except (CheckpointError, NoteError, NotFound) as exc:
            raise LogUnavailable(
                f"the signer's last checkpoint does not verify with the published keys: {exc}"
            ) from None
        if signed.origin != origin:
            raise LogUnavailable(f"asked for the last checkpoint of {origin}, the signer answered {signed.describe()}")
        if signed.size <= state.size:
            self._same_root_at_start(account_id, feature, signed, state.size)
            return False
        message = ahead_message(origin, signed.size, state.size)
        self._ahead[stream] = _Ahead(message, self._now() + self.cadence.heartbeat, stored.time)
        self._last.pop(stream, None)
        log.error("log of %s: %s", stream_label(self.store, account_id, feature), message)
        return True

    def _same_root_at_start(self, account_id: int, feature: Feature, signed: Checkpoint, size: int) -> None:
        """Check that the stored tree (integrated to `size`) has the root the signer signed at its
        size; if not (rows rewritten, or a store restored from another backup) stop the stream's
        log as the signer's refusal of such a tree would, and raise LogUnavailable saying why."""
        try:
            root = stored_root(self.store, account_id, feature, signed.size, size)
        except LogIntegrityError as exc:
            raise self._stop(account_id, feature, f"{exc} (checked against the signer's size {signed.size})") from None
        if root != signed.root:
            raise self._stop(
                account_id,
                feature,
                f"the stored tree of size {signed.size} does not have the root the signer signed at that size"
                f" ({signed.describe()}): its entries were rewritten or restored from another history",
            )

    def _stop(self, account_id: int, feature: Feature, message: str) -> LogUnavailable:
        """Record `message` as the stream's integrity error (its log is integrated and signed no
        further until `siemgate log resume`); returns the error to raise."""
        self.store.set_log_error(account_id, feature, message, self.clock())
        return LogUnavailable(message)

    def _waiting(self, stream: Stream, now: int) -> bool:
        """Whether a stream whose signer is ahead (a rollback) waits: until the heartbeat interval
        has passed, or a recovery stored a new checkpoint (possibly from another process)."""
        ahead = self._ahead.get(stream)
        if ahead is None:
            return False
        if now >= ahead.retry_at or self.signer_ahead(stream, self.store.last_log_checkpoint(*stream)) is None:
            del self._ahead[stream]
            self._last.pop(stream, None)
            return False
        return True

    def signer_ahead(self, stream: Stream, stored: StoredCheckpoint | None) -> str | None:
        """Why the signer last refused the stream's tree as smaller than what it signed (the store
        was rolled back: it needs `siemgate log recover`), while `stored`, the newest stored
        checkpoint, is still the one of then; None otherwise (a recovery stored a new one)."""
        ahead = self._ahead.get(stream)
        if ahead is None or (stored.time if stored is not None else None) != ahead.stored_time:
            return None
        return ahead.message

    def checkpoint(self, account_id: int, feature: Feature) -> Checkpoint:
        """Integrate the stream and have its current tree signed now (a heartbeat if unchanged).

        Raises LogUnavailable saying why not (no signer, signer down, log stopped or ahead)."""
        if self.signer is None:
            raise LogUnavailable("this server has no log signer: set integrity_signer_url (docs/integrity.md)")
        result = integrate(self.store, account_id, feature, self.clock())
        if result.error:
            raise LogUnavailable(f"the log is stopped by an integrity error: {result.error}")
        state = self.store.log_state(account_id, feature)
        if state is None:
            raise LogUnavailable("the stream has no events yet: there is nothing to sign")
        try:
            return self._sign(account_id, feature, state.size)
        except SignerUnavailable as exc:
            raise LogUnavailable(f"{exc}; try again when it is back") from None

    def export(
        self, account_id: int, feature: Feature, out: Path, retention_cutoff_ns: int | None
    ) -> tuple[Exported, str | None]:
        """Have the stream's current tree signed if a signer is reachable, then export the bundle up
        to the newest stored checkpoint. Returns it with a warning when no fresh checkpoint could
        be had (the bundle then ends at an older one)."""
        warning = None
        if self.signer is None:
            warning = "this server has no log signer: the bundle ends at the newest stored checkpoint"
        else:
            try:
                self.checkpoint(account_id, feature)
            except LogUnavailable as exc:
                warning = f"no fresh checkpoint ({exc}); the bundle ends at the newest stored one"
        done = export_log(
            self.store, account_id, feature, out, now=self._now(), retention_cutoff_ns=retention_cutoff_ns
        )
        return done, warning

    def recover(self, account_id: int, feature: Feature, reason: str, recovery_secret: str) -> Recovered:
        """Declare the stream's tree as the store now holds it the log's history (after a restore
        from backup): the signer signs a recovery statement and a first checkpoint of it, both
        stored. The caller records the operator's action in the account's audit stream.

        Raises LogUnavailable saying why not (no signer, signer down, a refusal such as nothing to
        recover or a wrong recovery secret, a log stopped by an integrity error)."""
        if not self.signer_url:
            raise LogUnavailable("this server has no log signer: set integrity_signer_url (docs/integrity.md)")
        result = integrate(self.store, account_id, feature, self.clock())
        if result.error:
            raise LogUnavailable(
                f"the log is stopped by an integrity error ({result.error}); a recovery declares a restored"
                " tree, it does not repair a damaged one"
            )
        state = self.store.log_state(account_id, feature)
        if state is None:
            raise LogUnavailable("the stream has no events: there is nothing to recover")
        try:
            origin = self.origin(account_id, feature)
            client = SignerClient(self.signer_url, recovery_secret)
            rec_note, cp_note = client.recover(origin, state.size, state.root, reason)
            keys = self.keys.public()
            rec = open_recovery(rec_note, keys).recovery
            cp = open_checkpoint(cp_note, keys, now=self._now()).checkpoint
        except (NotFound, SignerUnavailable, SignerRefused, CheckpointError, NoteError, ValueError) as exc:
            raise LogUnavailable(f"the recovery was not signed: {exc}") from None
        self.store.add_log_recovery(account_id, feature, rec.time, rec_note)
        self.store.add_log_checkpoint(account_id, feature, StoredCheckpoint(cp.time, cp.size, cp_note))
        self._last[(account_id, feature)] = cp
        self._ahead.pop((account_id, feature), None)
        return Recovered(rec, cp, origin, rec_note, cp_note)

    def resume(self, account_id: int, feature: Feature) -> Resumed:
        """Clear the integrity error that stopped the stream's log, then run at once every check
        the log runs: integrate (entries dense, each where its event says) and, with a signer, have
        the tree signed (the signer refuses a tree that does not extend what it signed). A log
        still damaged, or refused again, is stopped again: `Resumed.stopped` says why.

        Raises LogUnavailable when the log is not stopped."""
        state = self.store.log_state(account_id, feature)
        if state is None or not state.error:
            raise LogUnavailable("the log is not stopped by an integrity error: there is nothing to resume")
        self.store.set_log_error(account_id, feature, None, self.clock())
        result = integrate(self.store, account_id, feature, self.clock())
        if result.error:
            return Resumed(state.error, result.size, stopped=result.error)
        if self.signer is None:
            return Resumed(state.error, result.size, pending="this server has no log signer")
        try:
            return Resumed(state.error, result.size, checkpoint=self.checkpoint(account_id, feature))
        except LogUnavailable as exc:
            stopped = self.store.log_state(account_id, feature)
            if stopped is not None and stopped.error:
                return Resumed(state.error, result.size, stopped=stopped.error)
            return Resumed(state.error, result.size, pending=str(exc))

    def _sign(self, account_id: int, feature: Feature, size: int) -> Checkpoint:
        stream = (account_id, feature)
        try:
            origin = self.origin(account_id, feature)
        except NotFound as exc:  # no keys to name the log by: nothing can be signed yet
            raise SignerRejects(str(exc)) from None
        self._last.pop(stream, None)  # the stored one: another process (a recovery) may have added one
        last = self.last_checkpoint(account_id, feature)
        tree = StoredTree(self.store, account_id, feature, size)
        try:
            note = publish(self.signer, origin, size, tree, last)  # type: ignore[arg-type]
            self._signer_seen(True, None)
        except SignerAhead as exc:
            stored = self.store.last_log_checkpoint(account_id, feature)
            self._ahead[stream] = _Ahead(
                str(exc), self._now() + self.cadence.heartbeat, stored.time if stored else None
            )
            self._last.pop(stream, None)
            raise LogUnavailable(str(exc)) from None
        except SignerRefused as exc:
            if (exc.status is not None and exc.status >= 500) or exc.status in (401, 403):
                raise SignerRejects(f"the signer turns this server away: {exc}") from None
            raise self._stop(
                account_id, feature, f"the signer refused to sign the stored tree of size {size}: {exc}"
            ) from None
        try:
            cp = open_checkpoint(note, self.keys.public(), now=self._now()).checkpoint
        except (CheckpointError, NoteError, NotFound) as exc:
            raise LogUnavailable(f"the signer's checkpoint does not verify with the published keys: {exc}") from None
        if cp.origin != origin or cp.size != size:
            raise LogUnavailable(f"the signer signed {cp.describe()}, not size {size} of {origin}")
        if self.witnessing is not None:
            try:
                note = self.witnessing.cosign(note, cp, tree, last.size if last is not None else 0)
            except QuorumNotMet as exc:
                raise NotWitnessed(f"{cp.describe()} was signed but not witnessed: {exc}", str(exc)) from None
        self.store.add_log_checkpoint(account_id, feature, StoredCheckpoint(cp.time, cp.size, note))
        self._last[stream] = cp
        self._ahead.pop(stream, None)
        return cp
