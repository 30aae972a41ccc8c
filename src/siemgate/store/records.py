"""The records the store takes and returns: frozen dataclasses, and plain tuples where a path is hot.
Times are integer nanoseconds since the Unix epoch (UTC)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from siemgate.model.facets import Facets
from siemgate.model.features import SCHEDULED_SOURCES, Feature

__all__ = [
    "ALERT_STATES",
    "DELIVERY_STATUSES",
    "ROLES",
    "SCHEDULED_CHECKS",
    "Account",
    "AlertCommit",
    "AlertFailure",
    "AlertRecord",
    "AlertRuleRecord",
    "AlertRuleStats",
    "AlertStateEntry",
    "ApiKey",
    "DeliveryRecord",
    "EventRow",
    "IngestKey",
    "InsertResult",
    "Integration",
    "MadeWith",
    "Member",
    "NewEvent",
    "PageRows",
    "RetentionPolicy",
    "RuleRoom",
    "Session",
    "SignInProof",
    "SigningKey",
    "StoredEvent",
    "TokenRecord",
    "TokenUse",
    "User",
    "scheduled_check_code",
]

# One stored event as the serving path needs it: (seq, v2 JSON bytes, v1 cut; see model.encoding).
EventRow = tuple[int, bytes, int | None]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    uuid: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Integration:
    id: int
    uuid: str
    account_id: int
    type: str
    name: str
    description: str
    created_at: int
    deleted_at: int | None = None


ROLES = ("owner", "administrator", "member")


@dataclass(frozen=True, slots=True)
class User:
    """A person; `home_account_id` is the account they belong to (others they join as external users)."""

    id: int
    uuid: str
    email: str
    name: str
    password_hash: str | None
    home_account_id: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Member:
    """A person's membership of an account."""

    user: User
    account_id: int
    role: str
    joined_at: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A personal API key for the admin API: acts as its user. Stored as SHA-256."""

    id: str
    user_id: int
    name: str
    key_sha256: str
    prefix: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A console sign-in session. The cookie value is stored as SHA-256."""

    id: str
    user_id: int
    token_sha256: str
    csrf_token: str
    created_at: int
    expires_at: int
    last_seen_at: int
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class MadeWith:
    """The credential of the person's that a request creating another one used: a console session
    (`kind` "session") or a personal API key ("api_key"), by id."""

    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class SignInProof:
    """What a sign-in checked before its session is recorded: the password hash it verified, and
    whether it passed a second factor (else the person had none on)."""

    password_hash: str | None
    second_factor: bool


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the server keeps of a SIEM bearer token: never the token, only its SHA-256."""

    id: str
    account_id: int
    integration_id: int
    name: str
    features: tuple[Feature, ...]
    kid: str
    token_sha256: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None = None
    last_used_at: int | None = None
    replaces: str | None = None
    revoke_at: int | None = None
    revoke_on_replacement_use: bool = False
    created_by: int | None = None
    expiry_warned_at: int | None = None
    expiry_recorded_at: int | None = None

    def is_live(self, now: int) -> bool:
        """Not revoked and not expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class IngestKey:
    """A producer credential: may add events to one account, never read them."""

    id: str
    account_id: int
    name: str
    features: tuple[Feature, ...]
    key_sha256: str
    prefix: str
    created_at: int
    revoked_at: int | None = None
    last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class PageRows:
    """A page as the Events API sends it: `items` is the events' JSON objects joined by commas.

    `position` is set when the page stopped at its scan budget before the stream's head (the store
    examined every stored event up to that seq, and at most `limit` of them matched): the seq the
    next page reads after, at or beyond `last_seq`. `has_more` is then true (docs/cursors.md,
    "Bounded work")."""

    items: bytes
    count: int
    last_seq: int | None
    has_more: bool
    position: int | None = None


class NewEvent(NamedTuple):
    """A validated event ready to store (a named tuple: a batch makes a thousand of them)."""

    uuid: str
    ts: int
    body: bytes
    v1_cut: int | None
    ts_assigned: bool = False  # sent without a timestamp: the store gave it the time of receipt
    facets: Facets | None = None  # for the explorer and dashboards (model.facets)


@dataclass(frozen=True, slots=True)
class InsertResult:
    """Outcome of `insert_events`: `seqs[i]` is the seq given to event i, or None for a duplicate."""

    seqs: list[int | None] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(1 for s in self.seqs if s is not None)

    @property
    def duplicates(self) -> int:
        return sum(1 for s in self.seqs if s is None)


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A SIEM token was used at `at`; `feature`/`seq` record how far its cursor had read."""

    token_id: str
    at: int
    feature: Feature | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A token signing key (EC P-256, PKCS#8 PEM); `active` signs new tokens (one key at a time)."""

    kid: str
    pem: bytes
    created_at: int
    active: bool = False


# One stored event as archives need it: (seq, timestamp ns, uuid, v2 JSON bytes).
StoredEvent = tuple[int, int, str, bytes]


@dataclass(frozen=True, slots=True)
class AlertRuleRecord:
    """A rule as stored: `definition` is its JSON (siemgate.alerts.model.Rule); `origin` is
    `api`, `file` or `starter` (an override of a shipped starter rule)."""

    account_id: int
    rule_id: str
    definition: str
    origin: str
    enabled: bool
    created_at: int
    updated_at: int
    version: int = 0  # set by the store: 1 when created, +1 on every change


@dataclass(frozen=True, slots=True)
class RuleRoom:
    """A bound on an account's rules (store.put_alert_rules): at most `limit` of them whose ids are
    not in `uncounted` (the starter rules' overrides)."""

    limit: int
    uncounted: frozenset[str]


@dataclass(frozen=True, slots=True)
class AlertStateEntry:
    """One piece of evaluation state: kind `window`, `seen` or `suppress`; `value` is JSON, and an
    empty value in a commit deletes the entry."""

    rule_id: str
    kind: str
    key: str
    value: str
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A fired alert; `payload` is JSON (rule name, group, count, the events it fired on)."""

    id: str
    account_id: int
    rule_id: str
    fired_at: int
    event_ts: int
    severity: str
    source: str
    group_key: str
    summary: str
    payload: str
    rule_version: int = 0
    state: str = "open"  # open, acknowledged, resolved
    state_by: str = ""
    state_at: int | None = None


ALERT_STATES = ("open", "acknowledged", "resolved")
DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class AlertFailure:
    """An evaluation step whose alerts (or state) could not be stored: the stream moved on, and the
    rule shows it as failing. `first_seq`..`last_seq` are the events it covered."""

    id: str
    account_id: int
    rule_id: str
    feature: Feature | None
    at: int
    error: str
    first_seq: int | None
    last_seq: int | None
    events: int


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One action to carry out for one alert (the outbox); `action` is the action's JSON config."""

    id: str
    alert_id: str
    account_id: int
    rule_id: str
    action: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: int | None
    last_error: str
    created_at: int
    delivered_at: int | None = None


@dataclass(frozen=True, slots=True)
class AlertCommit:
    """What one evaluation step writes, atomically (see Store.commit_alert_evaluation). A step of
    a stream (`feature`) moves its checkpoint from `expected_seq` to `new_seq`; a scheduled check
    (`scheduled`: one of SCHEDULED_CHECKS) moves that check's generation the same way."""

    account_id: int
    feature: Feature | None
    expected_seq: int | None
    new_seq: int
    state: Sequence[AlertStateEntry] = ()
    alerts: Sequence[AlertRecord] = ()
    deliveries: Sequence[DeliveryRecord] = ()
    failures: Sequence[AlertFailure] = ()
    scheduled: str | None = None


# The sources of rules checked on a schedule rather than on stored events (model.features, where
# retention and the rules' fields read them too). Each has a generation per account, kept beside
# the streams' checkpoints (alert_checkpoints, under a negative code: -1 for the first, -2 for the
# second), so that two processes never both commit a check made from the same state.
SCHEDULED_CHECKS = SCHEDULED_SOURCES


def scheduled_check_code(source: str) -> int:
    """The alert_checkpoints key of a scheduled check's generation (negative: no feature's)."""
    return -1 - SCHEDULED_CHECKS.index(source)


@dataclass(frozen=True, slots=True)
class AlertRuleStats:
    fired: int
    last_fired_at: int | None
    pending: int
    delivered: int
    failed: int
    cancelled: int = 0
    failures: int = 0  # evaluation failures (alerts that could not be stored)
    last_failure_at: int | None = None


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Keep events of (account, feature) for `days`; `archive` is `none`, `jsonl` or `parquet`."""

    account_id: int
    feature: Feature
    days: int
    archive: str
    updated_at: int
