"""The store's interfaces, one per aggregate: a service depends on the ones it uses; `Store`
(store/base.py) is their union, which both backends implement. The contract common to all is in
store/base.py.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from siemgate.model.features import Feature
from siemgate.store.records import (
    Account,
    AlertCommit,
    AlertFailure,
    AlertRecord,
    AlertRuleRecord,
    AlertRuleStats,
    AlertStateEntry,
    ApiKey,
    DeliveryRecord,
    EventRow,
    IngestKey,
    InsertResult,
    Integration,
    Member,
    NewEvent,
    PageRows,
    RetentionPolicy,
    Session,
    SigningKey,
    StoredEvent,
    TokenRecord,
    TokenUse,
    User,
)


class StoreLifecycle(abc.ABC):
    """Opening and closing: migrations and connections."""

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending numbered migrations; return the names applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""


class AccountStore(abc.ABC):
    """Accounts, people and their memberships, personal API keys, console sessions and integrations
    (SQL in store/shared/people.py)."""

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


class CredentialStore(abc.ABC):
    """SIEM token records and their use, ingest keys, token signing keys and deployment secrets
    (SQL in store/shared/credentials.py)."""

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


class EventStore(abc.ABC):
    """The event logs: writing batches, paging by seq (per backend:
    sqlite/, postgres/)."""

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
    def head_seq(self, account_id: int, feature: Feature) -> int:
        """The highest seq ever given in the stream (0 when empty)."""

    @abc.abstractmethod
    def count_events(self, account_id: int, feature: Feature, after_seq: int = 0) -> int:
        """Events stored in the stream with seq > after_seq."""

    @abc.abstractmethod
    def first_unread_time(self, account_id: int, feature: Feature, after_seq: int) -> int | None:
        """The stream's newest activity time (max_ts) when the first event with seq > after_seq was
        stored: how long that event has waited for a reader. None when there is no such event."""


class FacetStore(abc.ABC):
    """The explorer's and dashboards' reads over event facets (SQL in store/shared/facets.py)."""

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


class AlertStore(abc.ABC):
    """Alert rules, evaluation checkpoints and state, alerts and deliveries (SQL in
    store/shared/alerts.py)."""

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


class RetentionStore(abc.ABC):
    """Retention policies (store/shared/retention.py), reading a stream by time for archives and
    purging it (per backend)."""

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
