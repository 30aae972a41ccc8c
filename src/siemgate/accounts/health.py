"""Whether an integration's SIEM is connected and caught up, from its tokens (docs/console.md,
"Integration health"): the one answer the integrations list and an integration's page show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from siemgate.accounts.lifecycle import StreamLag
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.store.base import TokenRecord

BEHIND_NS = 15 * 60 * NS_PER_SECOND  # an unread event waiting longer than this: the SIEM is behind
LIVE = ("active", "expiring")


def seconds_behind(lag: StreamLag, now: int) -> int | None:
    """How long the oldest event the consumer has not read has waited (0: caught up; None: the
    stream was never read)."""
    if lag.behind is None:
        return None
    if not lag.behind or lag.waiting_since is None:
        return 0
    return max(0, (now - lag.waiting_since) // NS_PER_SECOND)


def token_behind(lags: Sequence[StreamLag], now: int) -> int | None:
    """A token's lag: its furthest-behind stream among those it reads (None: it reads none)."""
    known = [s for s in (seconds_behind(lag, now) for lag in lags) if s is not None]
    return max(known) if known else None


def integration_health(tokens: Sequence[tuple[TokenRecord, str, Sequence[StreamLag]]], now: int) -> dict[str, Any]:
    """{"state", "behind_seconds", "expires_at_ns"} of an integration from (record, status, lag) of
    each of its tokens. States, most urgent first: `no_active_token` (every token revoked or
    expired), `never_used` (no live token has read yet), `behind` (the most current live token's
    oldest unread event has waited more than 15 minutes), `expiring` (every live token expires
    within 14 days), `active`. A token being retired by a rotation counts as live until it goes."""
    live = [(record, status, lag) for record, status, lag in tokens if status in LIVE]
    if not live:
        return {"state": "no_active_token", "behind_seconds": None, "expires_at_ns": None}
    expiries = [record.expires_at for record, _, _ in live]
    expires_at = None if None in expiries else max(e for e in expiries if e is not None)
    used = [token_behind(lag, now) for record, _, lag in live if record.last_used_at is not None]
    behind = min((b for b in used if b is not None), default=None)
    if not used:
        state = "never_used"
    elif behind is not None and behind * NS_PER_SECOND > BEHIND_NS:
        state = "behind"
    elif all(status == "expiring" for _, status, _ in live):
        state = "expiring"
    else:
        state = "active"
    return {"state": state, "behind_seconds": behind, "expires_at_ns": expires_at}
