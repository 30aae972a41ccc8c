"""The parts a running siemgate is made of: what the API routes and the console are handed.

Built once from Settings and a Store by the composition root (siemgate.composition.wiring), the
one place that knows how the services are wired to each other (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the services' modules load with the composition root, not with this one (start-up time)
    from siemgate.accounts.actor import Actor
    from siemgate.accounts.audit import AuditRecorder
    from siemgate.accounts.credentials import IngestKeyAdmin
    from siemgate.accounts.integrations import IntegrationService
    from siemgate.accounts.invitations import InvitationService
    from siemgate.accounts.lifecycle import TokenLifecycle
    from siemgate.accounts.offboarding import AccountDeletion
    from siemgate.accounts.people import PeopleService
    from siemgate.accounts.personal import PersonalService
    from siemgate.accounts.quotas import IngestQuotas
    from siemgate.accounts.signin import SignInFlow
    from siemgate.alerts.service import AlertService
    from siemgate.auth.api_keys import ApiKeyService
    from siemgate.auth.ingest_keys import IngestKeyService
    from siemgate.auth.keys import KeyRing
    from siemgate.auth.ratelimit import RateLimiter
    from siemgate.auth.sessions import SessionService
    from siemgate.auth.tokens import TokenService
    from siemgate.auth.usage import UsageRecorder
    from siemgate.config import Settings
    from siemgate.integrity.keys import LogKeys
    from siemgate.integrity.proofs import ProofService
    from siemgate.integrity.service import LogService
    from siemgate.retention.service import RetentionService
    from siemgate.store.base import Account, Store
    from siemgate.store.ingest import EventWriter

Clock = Callable[[], int]


@dataclass
class Services:
    """Every service of one process around one store; `close()` flushes and closes them."""

    settings: Settings
    store: Store
    clock: Clock
    keys: KeyRing
    tokens: TokenService
    ingest_keys: IngestKeyService
    rate_limiter: RateLimiter
    account_rate_limiter: RateLimiter  # the Events API's requests per account, all its tokens together
    admin_rate_limiter: RateLimiter
    quotas: IngestQuotas
    writer: EventWriter
    usage: UsageRecorder
    audit: AuditRecorder
    people: PeopleService
    lifecycle: TokenLifecycle
    integrations: IntegrationService
    ingest_key_admin: IngestKeyAdmin
    api_keys: ApiKeyService
    sessions: SessionService
    invitations: InvitationService
    personal: PersonalService
    signin: SignInFlow
    alerts: AlertService
    retention: RetentionService
    log_keys: LogKeys
    tlog: LogService
    proofs: ProofService
    offboarding: AccountDeletion
    _accounts: dict[int, Account] = field(default_factory=dict)

    def account(self, account_id: int) -> Account:
        """The account (cached: its id and uuid never change)."""
        account = self._accounts.get(account_id)
        if account is None:
            account = self.store.get_account_by_id(account_id)
            if len(self._accounts) > 10_000:
                self._accounts.clear()
            self._accounts[account_id] = account
        return account

    def delete_account(self, actor: Actor, account: Account, confirm: str) -> dict[str, int]:
        """Delete the account for good (accounts.offboarding), its alert evaluation held meanwhile;
        then nothing of it is kept in memory."""
        with self.alerts.evaluator.paused(account.id):
            removed = self.offboarding.delete(actor, account, confirm)
        self.alerts.rules.invalidate(account.id)
        self._accounts.pop(account.id, None)
        return removed

    def finish_account_deletions(self) -> None:
        """Carry on the account deletions that were stopped (a server killed while deleting), as
        delete_account does; the server runs this at start."""
        for account, begun in self.store.pending_account_deletions():
            with self.alerts.evaluator.paused(account.id):
                self.offboarding.carry_out(account, begun.actor, begun.detail)
            self.alerts.rules.invalidate(account.id)
            self._accounts.pop(account.id, None)

    def close(self) -> None:
        self.usage.flush()
        self.alerts.dispatcher.close()
        self.alerts.evaluator.save_state()
        self.store.close()
