"""How healthy each stream's log is, as siemgate watches its own integrity (docs/integrity.md,
"Watching the log"): the Prometheus metrics and the built-in `log-integrity` alert rule read it.

A stream's status, the first that applies:

- `stopped`: its log is stopped by an integrity error (a rewritten entry or tree hash);
- `signer-down`: the signer did not answer this process's last request or health check;
- `signer-ahead`: the signer refused the stream's tree because it signed a larger one (the store
  was rolled back, e.g. restored from a backup): nothing is signed until `siemgate log recover`;
- `unwitnessed`: the signer signed, but fewer than the quorum of witnesses cosigned, so nothing was
  published (the reason names each witness's refusal or failure);
- `stale`: the newest published checkpoint is older than twice the heartbeat interval (the
  verifier's default `--max-age` with the default hourly heartbeat);
- `ok`.

Nothing is reported when the server has no signer configured: there is no log to watch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siemgate.errors import NotFound
from siemgate.integrity.service import LogService
from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns

STATUSES = ("ok", "stale", "signer-down", "signer-ahead", "unwitnessed", "stopped")


@dataclass(frozen=True)
class StreamHealth:
    account_id: int
    account_uuid: str
    feature: Feature
    log_size: int  # integrated entries
    checkpoint_size: int | None  # of the newest published checkpoint
    checkpoint_time: int | None  # unix seconds
    age: int | None  # seconds since checkpoint_time
    status: str
    reason: str | None

    def record(self, now_ns: int, witness_failures: int) -> dict[str, Any]:
        """The stream as an `integrity` alert rule sees it (docs/alerts.md)."""
        return {
            "id": self.feature.value,
            "feature": self.feature.value,
            "timestamp": format_ns(now_ns),
            "status": self.status,
            "reason": self.reason,
            "log_size": self.log_size,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_age_seconds": self.age,
            "checkpoint_time": format_ns(self.checkpoint_time * 1_000_000_000) if self.checkpoint_time else None,
            "witness_failures": witness_failures,
        }


def stale_after(tlog: LogService) -> int:
    """Seconds after which a stream's newest checkpoint is stale."""
    return 2 * tlog.cadence.heartbeat


def streams_health(tlog: LogService, account_id: int | None = None) -> list[StreamHealth]:
    """The health of every stream that has a log (of one account, if given); [] without a signer."""
    if tlog.signer is None:
        return []
    now = tlog.clock() // 1_000_000_000
    out: list[StreamHealth] = []
    uuids: dict[int, str] = {}
    for acct, feature, _head, size, stopped in tlog.store.log_overview():
        if account_id is not None and acct != account_id:
            continue
        if acct not in uuids:
            uuids[acct] = tlog.store.get_account_by_id(acct).uuid
        stored = tlog.store.last_log_checkpoint(acct, feature)
        age = now - stored.time if stored is not None else None
        unwitnessed = tlog.unwitnessed.get((acct, feature))
        status, reason = "ok", None
        if stopped:
            state = tlog.store.log_state(acct, feature)
            status, reason = "stopped", state.error if state is not None else None
        elif tlog.signer_up is False:
            status, reason = "signer-down", tlog.signer_error
        elif (ahead := tlog.signer_ahead((acct, feature), stored)) is not None:
            status, reason = "signer-ahead", ahead
        elif unwitnessed is not None:
            status, reason = "unwitnessed", unwitnessed[1]
        elif age is not None and age > stale_after(tlog):
            status, reason = "stale", f"the newest checkpoint is {age} s old"
        out.append(
            StreamHealth(
                acct,
                uuids[acct],
                feature,
                max(size, 0),
                stored.size if stored else None,
                stored.time if stored else None,
                age,
                status,
                reason,
            )
        )
    return out


def witness_failures(tlog: LogService, account_id: int, feature: Feature) -> int:
    """Cosignatures of the stream's checkpoints asked for and not obtained since this process
    started, over all witnesses: the stream's own, never another account's (their count would tell
    an account how many other streams on the server changed while a witness failed)."""
    if tlog.witnessing is None:
        return 0
    try:
        origin = tlog.origin(account_id, feature)
    except NotFound:  # no signer keys: nothing was signed, so nothing was asked of a witness
        return 0
    return tlog.witnessing.failures_of(origin)


def integrity_records(tlog: LogService, account_id: int, now_ns: int) -> list[dict[str, Any]]:
    """One record per stream of the account, for `integrity` alert rules."""
    streams = streams_health(tlog, account_id)
    # read after the statuses: the log worker counts a witness's failure before it marks a stream
    # unwitnessed, so an unwitnessed stream is never reported with its failure not yet counted
    return [h.record(now_ns, witness_failures(tlog, h.account_id, h.feature)) for h in streams]
