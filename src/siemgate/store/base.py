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

from siemgate.store.interfaces import (
    AccountStore,
    AlertStore,
    CredentialStore,
    EventStore,
    FacetStore,
    RetentionStore,
    StoreLifecycle,
)
from siemgate.store.records import (
    ALERT_STATES,
    DELIVERY_STATUSES,
    ROLES,
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
from siemgate.store.shared.deletion import AccountSQL
from siemgate.store.shared.identity import IdentityStore
from siemgate.store.shared.log import LogSQL

__all__ = [
    "ALERT_STATES",
    "DELIVERY_STATUSES",
    "ROLES",
    "Account",
    "AccountStore",
    "AlertCommit",
    "AlertFailure",
    "AlertRecord",
    "AlertRuleRecord",
    "AlertRuleStats",
    "AlertStateEntry",
    "AlertStore",
    "ApiKey",
    "CredentialStore",
    "DeliveryRecord",
    "EventRow",
    "EventStore",
    "FacetStore",
    "IngestKey",
    "InsertResult",
    "Integration",
    "Member",
    "NewEvent",
    "PageRows",
    "RetentionPolicy",
    "RetentionStore",
    "Session",
    "SigningKey",
    "Store",
    "StoreLifecycle",
    "StoredEvent",
    "TokenRecord",
    "TokenUse",
    "User",
]


class Store(
    StoreLifecycle,
    AccountStore,
    CredentialStore,
    EventStore,
    FacetStore,
    AlertStore,
    RetentionStore,
    IdentityStore,
    LogSQL,
    AccountSQL,
):
    """Persistence for accounts, credentials and event logs: the union of the interfaces in
    store/interfaces.py. Backends: sqlite/, postgres/.

    Invitations, two-factor enrolments and account sign-in policy (store/shared/identity.py), the
    tamper-evident log's tables (store/shared/log.py), deleting an account and the server's log of
    operations (store/shared/deletion.py) are written once for both backends and have no separate
    interface."""
