"""The Store interface every backend implements, and the records it returns.

Contract (tests/contract/ runs it against every backend):

- Everything is scoped to an account; no method returns another account's rows.
- Events live in one ordered log per (account, feature). `insert_events` gives each new event a
  `seq`, strictly increasing in the order events become visible to readers, and is atomic: the
  whole batch is stored or none of it. An event whose uuid is already in its stream (or earlier in
  the same batch) is a duplicate: not stored, counted.
- Readers page by seq (`read_events`), never by OFFSET; `start_position` finds where a time
  window starts without scanning the log from its beginning.
- Times are integer nanoseconds since the Unix epoch (UTC) throughout.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

from siemgate.model.features import Feature

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


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated event ready to store."""

    uuid: str
    ts: int
    body: bytes
    v1_cut: int | None


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


class Store(abc.ABC):
    """Persistence for accounts, credentials and event logs. Backends: sqlite, postgres."""

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
    def list_integrations(self, account_id: int) -> list[Integration]: ...

    # SIEM tokens
    @abc.abstractmethod
    def create_token(self, record: TokenRecord) -> None:
        """Raises Conflict when the id or hash is taken."""

    @abc.abstractmethod
    def get_token(self, token_id: str) -> TokenRecord:
        """Raises NotFound."""

    @abc.abstractmethod
    def list_tokens(self, account_id: int | None = None) -> list[TokenRecord]: ...

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
    def head_seq(self, account_id: int, feature: Feature) -> int:
        """The highest seq ever given in the stream (0 when empty)."""

    @abc.abstractmethod
    def count_events(self, account_id: int, feature: Feature) -> int: ...
