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

from siemgate.store.interfaces import EventStore as EventStore
from siemgate.store.interfaces import StoreLifecycle as StoreLifecycle
from siemgate.store.records import *  # noqa: F403 (the records, re-exported: services import them from here)
from siemgate.store.shared.alerts import AlertStore as AlertStore
from siemgate.store.shared.credentials import CredentialStore as CredentialStore
from siemgate.store.shared.deletion import DeletionStore as DeletionStore
from siemgate.store.shared.facets import FacetStore as FacetStore
from siemgate.store.shared.identity import IdentityStore as IdentityStore
from siemgate.store.shared.log import LogStore as LogStore
from siemgate.store.shared.people import AccountStore as AccountStore
from siemgate.store.shared.retention import RetentionStore as RetentionStore


class Store(
    StoreLifecycle,
    EventStore,
    RetentionStore,
    AccountStore,
    CredentialStore,
    FacetStore,
    AlertStore,
    IdentityStore,
    LogStore,
    DeletionStore,
):
    """Persistence for accounts, credentials and event logs: the union of one interface per
    aggregate, which is what a service depends on (docs/architecture.md, "The store contract").

    What differs per backend is abstract: StoreLifecycle and EventStore (store/interfaces.py), and
    RetentionStore's reading by time and purging. Every other aggregate is written once in
    store/shared/ over the backend's primitives (store/shared/dialect.py): its class is both its
    interface and its implementation. A service takes the narrowest of them that has what it
    uses (imported from here, with the records)."""
