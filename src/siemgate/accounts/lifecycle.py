"""The SIEM token lifecycle: issue, revoke, rotate with a grace period, expiry warnings.

Status of a token: `revoked`, `expired`, `expiring` (within 14 days of its expiry), or `active`.
Rotation issues a replacement with the same integration and features and revokes the old token
after the grace period chosen, or by default as soon as the replacement is first used, and after
24 hours at the latest. Scheduled transitions (a rotation's deadline, the 14-day warning, expiry)
are recorded as audit events by `run_due`, which the server calls every minute; the Events API
also applies a passed deadline on the very next request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from siemgate.accounts.actor import SYSTEM, Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.people import PeopleService, check_name
from siemgate.auth.tokens import TokenService
from siemgate.errors import BadRequest, NotFound
from siemgate.model.durations import MAX_EXPIRY, MAX_EXPIRY_NS, MAX_GRACE, MAX_GRACE_NS
from siemgate.model.features import Feature
from siemgate.model.text import excerpt
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.store.base import Account, Integration, Store, TokenRecord

DAY_NS = 86400 * NS_PER_SECOND
EXPIRY_WARNING_NS = 14 * DAY_NS
DEFAULT_GRACE_NS = DAY_NS


def token_status(record: TokenRecord, now: int) -> str:
    if record.revoked_at is not None or (record.revoke_at is not None and now >= record.revoke_at):
        return "revoked"
    if record.expires_at is not None:
        if now >= record.expires_at:
            return "expired"
        if record.expires_at - now <= EXPIRY_WARNING_NS:
            return "expiring"
    return "active"


@dataclass(frozen=True, slots=True)
class StreamLag:
    feature: Feature
    last_seq: int | None
    head_seq: int
    behind: int | None  # events stored after the consumer's last position (None: never read)
    last_read_at: int | None
    waiting_since: int | None = None  # activity time when the oldest unread event was stored


@dataclass(frozen=True, slots=True)
class DueSummary:
    revoked: list[str]
    warned: list[str]
    expired: list[str]


class TokenLifecycle:
    def __init__(
        self, store: Store, tokens: TokenService, people: PeopleService, audit: AuditRecorder, clock: Callable[[], int]
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.people = people
        self.audit = audit
        self.clock = clock
        self._handled_replacements: set[str] = set()
        self._lock = threading.Lock()

    def _integration_of(self, account: Account, record: TokenRecord) -> Integration:
        if record.account_id != account.id:
            raise NotFound(f"Not Found: no token {record.id!r} in {account.name!r}")
        return self.store.get_integration_by_id(record.integration_id)

    def find(self, account: Account, token_id: str) -> TokenRecord:
        try:
            record = self.store.get_token(token_id)
        except NotFound:
            raise NotFound(f"Not Found: no token {excerpt(token_id)} in {account.name!r}") from None
        if record.account_id != account.id:
            raise NotFound(f"Not Found: no token {excerpt(token_id)} in {account.name!r}")
        return record

    def issue(
        self,
        actor: Actor,
        account: Account,
        integration: Integration,
        name: str,
        features: Sequence[Feature],
        expires_in_ns: int | None,
        *,
        replaces: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """Issue a token (shown once to the caller); records `create satoken`. Raises BadRequest,
        writing nothing, for an empty name or a lifetime not above 0 and at most MAX_EXPIRY."""
        self.people.require(actor, account, "administrator", "issue tokens")
        if integration.account_id != account.id or integration.deleted_at is not None:
            raise NotFound(f"Not Found: no integration {integration.uuid!r} in {account.name!r}")
        if not check_name(name).strip():
            raise BadRequest("Bad Request: name: a token needs a name, e.g. the SIEM host it is for")
        if expires_in_ns is not None and not 0 < expires_in_ns <= MAX_EXPIRY_NS:
            raise BadRequest(f"Bad Request: expires: the expiry must be in the future and at most {MAX_EXPIRY} away")
        token, record = self.tokens.issue(
            account,
            integration,
            name,
            features,
            expires_in_ns,
            created_by=actor.user.id if actor.user else None,
            replaces=replaces,
        )
        self.audit.record(
            account,
            actor,
            "create",
            "satoken",
            object_uuid=record.id,
            aux_uuid=integration.uuid,
            aux_info={
                "name": record.name,
                "features": [f.value for f in record.features],
                "expires_at": format_ns(record.expires_at) if record.expires_at else None,
            },
        )
        return token, record

    def revoke(self, actor: Actor, account: Account, token_id: str, *, reason: str | None = None) -> TokenRecord:
        """Revoke now (idempotent); records `trevoke satoken` the first time."""
        self.people.require(actor, account, "administrator", "revoke tokens")
        record = self.find(account, token_id)
        if record.revoked_at is not None:
            return record
        now = self.clock()
        revoked = self.store.revoke_token(record.id, now)
        if revoked.revoked_at != now:
            return revoked  # another process revoked it meanwhile (its own time is kept) and recorded it
        integration = self._integration_of(account, record)
        info = {"name": record.name}
        if reason:
            info["reason"] = reason
        self.audit.record(
            account, actor, "trevoke", "satoken", object_uuid=record.id, aux_uuid=integration.uuid, aux_info=info
        )
        return revoked

    def rotate(self, actor: Actor, account: Account, token_id: str, grace_ns: int | None) -> tuple[str, TokenRecord]:
        """Issue a replacement with the same features and expiry length; revoke the old token after
        `grace_ns` (0: at once), or by default at the replacement's first use or after 24 hours.
        Raises BadRequest, writing nothing, for a token past its use or a grace not in 0..MAX_GRACE."""
        self.people.require(actor, account, "administrator", "rotate tokens")
        old = self.find(account, token_id)
        if token_status(old, self.clock()) in ("revoked", "expired"):
            raise BadRequest(f"token {old.id} is {token_status(old, self.clock())}; issue a new token instead")
        if grace_ns is not None and not 0 <= grace_ns <= MAX_GRACE_NS:
            raise BadRequest(f"Bad Request: grace: the grace period must be 0 or a duration of at most {MAX_GRACE}")
        integration = self._integration_of(account, old)
        # as long as the old token's, within today's bound (a token issued before it may live longer)
        lifetime = None if old.expires_at is None else min(old.expires_at - old.created_at, MAX_EXPIRY_NS)
        token, new = self.issue(actor, account, integration, old.name, old.features, lifetime, replaces=old.id)
        now = new.created_at  # the grace period runs from the replacement's creation (one clock reading)
        if grace_ns == 0:
            self.revoke(actor, account, old.id, reason=f"rotated to {new.id}")
        elif grace_ns is None:
            self.store.schedule_revocation(old.id, now + DEFAULT_GRACE_NS, on_replacement_use=True)
        else:
            self.store.schedule_revocation(old.id, now + grace_ns, on_replacement_use=False)
        self.audit.record(
            account,
            actor,
            "replace",
            "satoken",
            object_uuid=new.id,
            aux_uuid=old.id,
            aux_info={
                "name": old.name,
                "old_token_revoked": "now"
                if grace_ns == 0
                else (
                    f"at first use of the replacement, at the latest {format_ns(now + DEFAULT_GRACE_NS)}"
                    if grace_ns is None
                    else format_ns(now + grace_ns)
                ),
            },
        )
        return token, new

    def replacement_used(self, record: TokenRecord) -> None:
        """Revoke what `record` replaced when it asked for that at first use of the replacement
        (the composition root hands this to TokenService.on_authenticated)."""
        if record.replaces is None or record.replaces in self._handled_replacements:
            return
        with self._lock:
            if record.replaces in self._handled_replacements:
                return
            self._handled_replacements.add(record.replaces)
        old = self.store.get_token(record.replaces)
        if old.revoked_at is None and old.revoke_on_replacement_use:
            account = self.store.get_account_by_id(old.account_id)
            self.revoke(SYSTEM, account, old.id, reason=f"replacement {record.id} was used")

    def run_due(self) -> DueSummary:
        """Apply passed rotation deadlines and record expiry warnings and expiries (each once),
        reading only the tokens with one of them due (Store.due_tokens)."""
        now = self.clock()
        summary = DueSummary([], [], [])
        for record in self.store.due_tokens(now, EXPIRY_WARNING_NS):
            account = self.store.get_account_by_id(record.account_id)
            if record.revoke_at is not None and now >= record.revoke_at:
                self.revoke(SYSTEM, account, record.id, reason="rotation grace period ended")
                summary.revoked.append(record.id)
                continue
            if record.expires_at is None:
                continue
            integration = self.store.get_integration_by_id(record.integration_id)
            if now >= record.expires_at and record.expiry_recorded_at is None:
                info = {"name": record.name, "state": "expired", "expired_at": format_ns(record.expires_at)}
                if self._record_once(account, record, integration.uuid, info, expiry_recorded_at=now):
                    summary.expired.append(record.id)
            elif (
                now < record.expires_at
                and record.expires_at - now <= EXPIRY_WARNING_NS
                and record.expiry_warned_at is None
            ):
                info = {"name": record.name, "state": "expiring_soon", "expires_at": format_ns(record.expires_at)}
                if self._record_once(account, record, integration.uuid, info, expiry_warned_at=now):
                    summary.warned.append(record.id)
        return summary

    def _record_once(
        self, account: Account, record: TokenRecord, integration_uuid: str, info: dict[str, Any], **claim: int
    ) -> bool:
        """Record the token's `expire` audit event (`info`) once whatever the number of processes
        running `run_due`: claim it first (store.mark_token with `claim`, the column and time), then
        write it; a claim whose event cannot be written is given back for the next run. False when
        another process claimed it. Before, each process recorded then marked, so two running at
        the same moment both recorded it."""
        if not self.store.mark_token(record.id, **claim):
            return False
        try:
            self.audit.record(
                account, SYSTEM, "expire", "satoken", object_uuid=record.id, aux_uuid=integration_uuid, aux_info=info
            )
        except Exception:
            self.store.unmark_token(record.id, **claim)
            raise
        return True

    def lag(self, record: TokenRecord) -> list[StreamLag]:
        """How far the token's consumer is behind the head of each stream it may read."""
        positions = self.store.token_positions(record.id)
        result = []
        for feature in record.features:
            head = self.store.head_seq(record.account_id, feature)
            seen = positions.get(feature)
            if seen is None:
                result.append(StreamLag(feature, None, head, None, None))
            else:
                behind = self.store.count_events(record.account_id, feature, after_seq=seen[0])
                waiting = self.store.first_unread_time(record.account_id, feature, seen[0]) if behind else None
                result.append(StreamLag(feature, seen[0], head, behind, seen[1], waiting))
        return result
