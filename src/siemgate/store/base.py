"""The Store interface every backend implements, and the records it returns.

Contract (tests/contract/ runs it against every backend):

- Everything is scoped to an account; no method returns another account's rows.
- Events live in one ordered log per (account, feature). `insert_events` gives each new event a
  `seq`: 1, 2, 3, ... with no gap (duplicates and failed batches take no seq; only purges remove
  seqs), in the order events become visible to readers, and is atomic: the whole batch is stored
  or none of it. An event whose uuid and timestamp are already in its stream (or earlier in the
  same batch) is a duplicate: not stored, counted; so is an event sent without a timestamp
  (`ts_assigned`) whose uuid was already sent that way.
- Readers page by seq (`read_events`), never by OFFSET; `start_position` finds where a time
  window starts without scanning the log from its beginning.
- Times are integer nanoseconds since the Unix epoch (UTC) throughout.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from siemgate.model.facets import Facets
from siemgate.model.features import Feature
from siemgate.store.shared.deletion import AccountSQL
from siemgate.store.shared.identity import IdentityStore
from siemgate.store.shared.log import LogSQL

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
    """A page as the Events API sends it: `items` is the events' JSON objects joined by commas."""

    items: bytes
    count: int
    last_seq: int | None
    has_more: bool


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


class Store(IdentityStore, LogSQL, AccountSQL, abc.ABC):
    """Persistence for accounts, credentials and event logs. Backends: sqlite, postgres.

    Invitations, two-factor enrolments and account sign-in policy are written once for both
    backends in store/shared/identity.py, the tamper-evident log's tables in store/shared/log.py, deleting an
    account and the server's log of operations in store/shared/deletion.py."""

    # lifecycle
    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending numbered migrations; return the names applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    # accounts
    @abc.abstractmethod
    def create_account(self, uuid: str, name: str, now: int) -> Account:
        """Raises Conflict when the name is taken."""

    @abc.abstractmethod
    def get_account(self, uuid_or_name: str) -> Account:
        """By uuid, else by name (case-insensitive); raises NotFound."""

    @abc.abstractmethod
    def get_account_by_id(self, account_id: int) -> Account:
        """Raises NotFound."""

    @abc.abstractmethod
    def list_accounts(self) -> list[Account]: ...

    @abc.abstractmethod
    def rename_account(self, account_id: int, name: str) -> Account:
        """Raises Conflict when the name is taken, NotFound for an unknown account."""

    # people
    @abc.abstractmethod
    def create_user(
        self, uuid: str, email: str, name: str, password_hash: str | None, home_account_id: int | None, now: int
    ) -> User:
        """Raises Conflict when the email is taken."""

    @abc.abstractmethod
    def get_user(self, uuid_or_email: str) -> User:
        """By uuid, else by email (case-insensitive); raises NotFound."""

    @abc.abstractmethod
    def get_user_by_id(self, user_id: int) -> User:
        """Raises NotFound."""

    @abc.abstractmethod
    def set_password(self, user_id: int, password_hash: str) -> None: ...

    @abc.abstractmethod
    def add_member(self, account_id: int, user_id: int, role: str, now: int) -> Member:
        """Raises Conflict when the person is already a member."""

    @abc.abstractmethod
    def get_member(self, account_id: int, user_id: int) -> Member:
        """Raises NotFound when the person is not a member of the account."""

    @abc.abstractmethod
    def set_role(self, account_id: int, user_id: int, role: str) -> Member:
        """Change a role atomically; raises Conflict if the account would be left without an owner."""

    @abc.abstractmethod
    def remove_member(self, account_id: int, user_id: int) -> None:
        """Raises Conflict if the account would be left without an owner, NotFound if not a member."""

    @abc.abstractmethod
    def list_members(self, account_id: int, after_user_id: int = 0, limit: int = 1000) -> list[Member]:
        """Members ordered by user id, after `after_user_id`."""

    @abc.abstractmethod
    def list_memberships(self, user_id: int) -> list[Member]:
        """Every account the person belongs to."""

    # personal API keys and console sessions
    @abc.abstractmethod
    def create_api_key(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    def get_api_key_by_hash(self, key_sha256: str) -> ApiKey:
        """Raises NotFound."""

    @abc.abstractmethod
    def list_api_keys(self, user_id: int) -> list[ApiKey]: ...

    @abc.abstractmethod
    def revoke_api_key(self, user_id: int, key_id: str, now: int) -> ApiKey:
        """Raises NotFound (also for another person's key)."""

    @abc.abstractmethod
    def touch_api_keys(self, last_used: dict[str, int]) -> None: ...

    @abc.abstractmethod
    def create_session(self, session: Session) -> None: ...

    @abc.abstractmethod
    def get_session_by_hash(self, token_sha256: str) -> Session:
        """Raises NotFound."""

    @abc.abstractmethod
    def touch_session(self, session_id: str, now: int, expires_at: int) -> None: ...

    @abc.abstractmethod
    def delete_session(self, session_id: str) -> None: ...

    @abc.abstractmethod
    def delete_sessions(self, user_id: int) -> None:
        """Sign a person out everywhere."""

    # integrations
    @abc.abstractmethod
    def create_integration(
        self, account_id: int, uuid: str, type: str, name: str, description: str, now: int
    ) -> Integration:
        """Raises Conflict when the account already has an integration with that name."""

    @abc.abstractmethod
    def get_integration(self, account_id: int, uuid_or_name: str) -> Integration:
        """Raises NotFound."""

    @abc.abstractmethod
    def get_integration_by_id(self, integration_id: int) -> Integration:
        """Raises NotFound."""

    @abc.abstractmethod
    def list_integrations(self, account_id: int) -> list[Integration]:
        """The account's live (not deleted) integrations."""

    @abc.abstractmethod
    def update_integration(self, integration_id: int, name: str, description: str) -> Integration:
        """Raises Conflict when another live integration of the account has the name."""

    @abc.abstractmethod
    def delete_integration(self, integration_id: int, now: int) -> list[str]:
        """Mark deleted and revoke its live tokens in one transaction; returns the revoked token ids."""

    # SIEM tokens
    @abc.abstractmethod
    def create_token(self, record: TokenRecord) -> None:
        """Raises Conflict when the id or hash is taken."""

    @abc.abstractmethod
    def get_token(self, token_id: str) -> TokenRecord:
        """Raises NotFound."""

    @abc.abstractmethod
    def token_revocation(self, token_id: str) -> tuple[int | None, int | None]:
        """(revoked_at, revoke_at) of a token: the per-request check, kept as small as possible.

        Raises NotFound."""

    @abc.abstractmethod
    def list_tokens(self, account_id: int | None = None, integration_id: int | None = None) -> list[TokenRecord]: ...

    @abc.abstractmethod
    def schedule_revocation(self, token_id: str, revoke_at: int | None, on_replacement_use: bool) -> None:
        """Revoke the token at `revoke_at` at the latest, or when its replacement is first used."""

    @abc.abstractmethod
    def mark_token(
        self, token_id: str, *, expiry_warned_at: int | None = None, expiry_recorded_at: int | None = None
    ) -> None:
        """Record that a lifecycle audit event was written (each is written once)."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str, now: int) -> TokenRecord:
        """Mark revoked (idempotent: the first revocation time is kept); raises NotFound."""

    @abc.abstractmethod
    def record_token_uses(self, uses: Sequence[TokenUse]) -> None:
        """Remember last use and, per feature, the last seq each token's cursor reached.

        Uses of unknown tokens are ignored; an older use never overwrites a newer one."""

    @abc.abstractmethod
    def token_positions(self, token_id: str) -> dict[Feature, tuple[int, int]]:
        """Per feature, (last seq the token's cursor reached, when) as recorded by record_token_uses."""

    @abc.abstractmethod
    def live_token_kids(self, now: int) -> set[str]:
        """Signing-key ids that at least one live (unrevoked, unexpired) token was signed with."""

    # ingest keys
    @abc.abstractmethod
    def create_ingest_key(self, key: IngestKey) -> None:
        """Raises Conflict when the id or hash is taken."""

    @abc.abstractmethod
    def get_ingest_key_by_hash(self, key_sha256: str) -> IngestKey:
        """Raises NotFound."""

    @abc.abstractmethod
    def list_ingest_keys(self, account_id: int | None = None) -> list[IngestKey]: ...

    @abc.abstractmethod
    def revoke_ingest_key(self, key_id: str, now: int) -> IngestKey:
        """Raises NotFound."""

    @abc.abstractmethod
    def touch_ingest_keys(self, last_used: dict[str, int]) -> None:
        """Set last use times: key id -> time."""

    # signing keys and deployment secrets (shared by every server process through the store)
    @abc.abstractmethod
    def signing_keys(self) -> list[SigningKey]:
        """Every signing key, oldest first."""

    @abc.abstractmethod
    def add_signing_key(self, key: SigningKey) -> None:
        """Store a key; when `key.active`, it replaces the active key in the same transaction.

        Raises Conflict when the kid exists."""

    @abc.abstractmethod
    def delete_signing_keys(self, kids: Iterable[str]) -> None:
        """Delete these keys (never the active one; unknown kids are ignored)."""

    @abc.abstractmethod
    def secret(self, name: str, new_value: bytes, now: int) -> bytes:
        """The deployment secret `name`, created with `new_value` if it does not exist yet (atomic:
        concurrent first calls all get the value that was stored first)."""

    # events
    @abc.abstractmethod
    def insert_events(self, account_id: int, feature: Feature, events: Sequence[NewEvent]) -> InsertResult:
        """Store the new events of the batch atomically, in order (see the module contract)."""

    @abc.abstractmethod
    def start_position(self, account_id: int, feature: Feature, start: int) -> int:
        """A seq such that every event with timestamp >= start has a greater seq (fast, not a scan)."""

    @abc.abstractmethod
    def read_events(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int
    ) -> list[EventRow]:
        """Up to `limit` events with seq > after_seq and start <= timestamp <= end, in seq order."""

    @abc.abstractmethod
    def read_page(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int, *, v1: bool
    ) -> PageRows:
        """The events read_events would return, as one JSON fragment (v1 views when `v1`), plus
        whether more matching events exist right now. The serving hot path: backends build the
        fragment natively instead of returning rows."""

    @abc.abstractmethod
    def facet_counts(
        self,
        account_id: int,
        feature: Feature,
        start: int,
        end: int,
        group_by: Sequence[str],
        *,
        bucket_ns: int | None = None,
        filters: Mapping[str, str] | None = None,
        limit: int = 1000,
    ) -> list[tuple[Any, ...]]:
        """Count events with start <= timestamp <= end (and facet == value for each filter), grouped
        by the named facets (model.facets.FACET_NAMES). Rows are (*values, count), most first; with
        `bucket_ns`, (bucket start ns, *values, count) in time order. At most `limit` rows."""

    @abc.abstractmethod
    def search_events(
        self,
        account_id: int,
        feature: Feature,
        start: int,
        end: int,
        filters: Mapping[str, str] | None,
        before: tuple[int, int] | None,
        limit: int,
    ) -> list[tuple[int, int, bytes]]:
        """Events with start <= timestamp <= end matching the facet filters, newest first, as
        (timestamp, seq, v2 JSON); `before` = (timestamp, seq) of the last row of the previous page."""

    @abc.abstractmethod
    def head_seq(self, account_id: int, feature: Feature) -> int:
        """The highest seq ever given in the stream (0 when empty)."""

    @abc.abstractmethod
    def count_events(self, account_id: int, feature: Feature, after_seq: int = 0) -> int:
        """Events stored in the stream with seq > after_seq."""

    @abc.abstractmethod
    def first_unread_time(self, account_id: int, feature: Feature, after_seq: int) -> int | None:
        """The stream's newest activity time (max_ts) when the first event with seq > after_seq was
        stored: how long that event has waited for a reader. None when there is no such event."""

    # alert rules, evaluation state, alerts and deliveries (siemgate.alerts) ----------------------
    # Written once for both backends in store/shared/alerts.py.
    @abc.abstractmethod
    def list_alert_rules(self, account_id: int | None = None) -> list[AlertRuleRecord]:
        """Stored rules (and starter-rule overrides), of one account or all, ordered by account and id."""

    @abc.abstractmethod
    def put_alert_rule(self, record: AlertRuleRecord, keep_actions: Sequence[str] | None = None) -> int:
        """Insert or replace the rule (account_id, rule_id); `created_at` of an existing row is kept
        and its version goes up by one. With `keep_actions` (action JSON texts), pending deliveries
        of the rule whose action is not among them are cancelled in the same transaction. Returns
        the rule's new version."""

    @abc.abstractmethod
    def delete_alert_rule(self, account_id: int, rule_id: str) -> None:
        """Delete the rule and its evaluation state, cancelling its pending deliveries; raises
        NotFound when there is no such rule."""

    @abc.abstractmethod
    def alert_checkpoint(self, account_id: int, feature: Feature) -> int | None:
        """The last seq of the stream that rule evaluation committed; None before the first commit."""

    @abc.abstractmethod
    def load_alert_state(self, account_id: int) -> list[AlertStateEntry]:
        """Every state entry of the account's rules."""

    @abc.abstractmethod
    def commit_alert_evaluation(self, commit: AlertCommit) -> None:
        """Atomically: move the checkpoint of (account, feature) from `expected_seq` to `new_seq`,
        write the state entries (an empty value deletes), and insert the alerts, deliveries and
        failures.

        With `feature` None there is no checkpoint (scheduled checks). Raises Conflict, writing
        nothing, when the checkpoint is not `expected_seq` (another evaluator moved it first);
        StoreError when the store cannot hold what is written."""

    @abc.abstractmethod
    def list_alerts(
        self,
        account_id: int,
        rule_id: str | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 100,
        *,
        state: str | None = None,
        severity: str | None = None,
    ) -> list[AlertRecord]:
        """Alerts newest first (by detection time); `before` = (fired_at, id) of the last alert of
        the previous page; optionally of one state or severity."""

    @abc.abstractmethod
    def get_alert(self, alert_id: str) -> AlertRecord:
        """Raises NotFound."""

    @abc.abstractmethod
    def set_alert_state(self, alert_id: str, state: str, by: str, at: int) -> AlertRecord:
        """Set an alert's state (open, acknowledged, resolved) with who and when; raises NotFound."""

    @abc.abstractmethod
    def alert_rule_stats(self, account_id: int) -> dict[str, AlertRuleStats]:
        """Per rule id that ever fired or failed: alerts fired, the last firing, deliveries by
        status, and evaluation failures."""

    @abc.abstractmethod
    def list_alert_failures(self, account_id: int, rule_id: str | None = None, limit: int = 50) -> list[AlertFailure]:
        """Evaluation failures (alerts that could not be stored), newest first."""

    @abc.abstractmethod
    def claim_deliveries(
        self,
        now: int,
        lease_until: int,
        limit: int,
        per_account: int = 1_000_000,
        skip_accounts: Sequence[int] = (),
        skip_actions: Sequence[str] = (),
    ) -> list[DeliveryRecord]:
        """Pending deliveries due at `now` (next_attempt_at <= now), oldest first, at most
        `per_account` of each account, none of `skip_accounts` and none whose action (its JSON
        text: the destination) is in `skip_actions`; each is leased
        (next_attempt_at = lease_until) in the same transaction, so two dispatchers never claim one."""

    @abc.abstractmethod
    def finish_delivery(
        self, delivery_id: str, status: str, attempts: int, next_attempt_at: int | None, last_error: str, now: int
    ) -> None:
        """Record an attempt's outcome: `delivered` (delivered_at = now), `pending` (retry at
        next_attempt_at) or `failed` (gave up). A delivery cancelled meanwhile stays cancelled
        unless it was delivered. Raises NotFound."""

    @abc.abstractmethod
    def mark_delivered(self, delivery_ids: Sequence[str], now: int) -> None:
        """Record one successful attempt of each of these pending deliveries (delivered_at = now);
        a delivery no longer pending (cancelled, delivered) is left as it is."""

    @abc.abstractmethod
    def list_deliveries(
        self, account_id: int, status: str | None = None, alert_id: str | None = None, limit: int = 200
    ) -> list[DeliveryRecord]:
        """Deliveries newest first, optionally of one status or one alert."""

    @abc.abstractmethod
    def get_delivery(self, delivery_id: str) -> DeliveryRecord:
        """Raises NotFound."""

    @abc.abstractmethod
    def retry_delivery(self, delivery_id: str, now: int) -> DeliveryRecord:
        """Make a delivery pending again, due now (attempts kept); raises NotFound."""

    # retention (siemgate.retention) -----------------------------------------------------------------
    @abc.abstractmethod
    def retention_policies(self, account_id: int) -> dict[Feature, RetentionPolicy]:
        """The account's explicit policies by feature (streams without one use the server default)."""

    @abc.abstractmethod
    def set_retention_policy(self, policy: RetentionPolicy) -> None:
        """Insert or replace the policy of (account, feature)."""

    @abc.abstractmethod
    def iter_events(
        self, account_id: int, feature: Feature, start_ts: int, end_ts: int, batch: int = 5000
    ) -> Iterator[list[StoredEvent]]:
        """Every event of the stream with start_ts <= timestamp < end_ts, in (timestamp, uuid) order,
        as lists of at most `batch` (>= 1) rows (seq, timestamp, uuid, v2 JSON) read by keyset through
        the timestamp index: never a scan of the stream, never OFFSET. Events stored while iterating
        may or may not be included. Raises StoreError when the store fails."""

    @abc.abstractmethod
    def purge_events(self, account_id: int, feature: Feature, before_ts: int, *, max_seq: int | None = None) -> int:
        """Delete the stream's events with timestamp < before_ts (and seq <= max_seq when given, so
        that events stored after an archive was taken are never deleted); returns how many.
        Seqs are never reused: the stream's head stays where it was; a late event stored later for
        a purged day is stored and served as usual. Their facets go with them.

        SQLite deletes rows. PostgreSQL drops the day's partition (feature, UTC day) when the day
        lies wholly before `before_ts` and holds nothing else (no other account's events, no seq
        after `max_seq`), else deletes rows: purging by whole UTC days (before_ts at midnight) is
        what lets it drop. Raises StoreError when the store fails."""


# Records of alerts and retention (defined after Store; annotations are evaluated lazily). ----------

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
    """What one evaluation step writes, atomically (see Store.commit_alert_evaluation)."""

    account_id: int
    feature: Feature | None
    expected_seq: int | None
    new_seq: int
    state: Sequence[AlertStateEntry] = ()
    alerts: Sequence[AlertRecord] = ()
    deliveries: Sequence[DeliveryRecord] = ()
    failures: Sequence[AlertFailure] = ()


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
