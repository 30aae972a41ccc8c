"""The parts a running siemgate is made of, built once from Settings and a Store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from siemgate import __version__
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
from siemgate.api.pages import PageReader
from siemgate.auth.api_keys import ApiKeyService
from siemgate.auth.ingest_keys import IngestKeyService
from siemgate.auth.keys import KeyRing
from siemgate.auth.ratelimit import RateLimiter
from siemgate.auth.sessions import SessionService
from siemgate.auth.signin_limits import SignInLimiter
from siemgate.auth.tokens import TokenService
from siemgate.auth.usage import UsageRecorder
from siemgate.config import Settings
from siemgate.integrity.keys import LogKeys
from siemgate.integrity.service import LogService
from siemgate.retention.service import RetentionService
from siemgate.store.base import Account, Store
from siemgate.store.ingest import EventWriter

Clock = Callable[[], int]


@dataclass
class Services:
    settings: Settings
    store: Store
    clock: Clock
    keys: KeyRing
    tokens: TokenService
    ingest_keys: IngestKeyService
    rate_limiter: RateLimiter
    quotas: IngestQuotas
    reader: PageReader
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

    def close(self) -> None:
        self.usage.flush()
        self.alerts.dispatcher.close()
        self.alerts.evaluator.save_state()
        self.store.close()


def build_services(settings: Settings, store: Store, clock: Clock = time.time_ns) -> Services:
    """Wire the services around an already-migrated store."""
    keys = KeyRing(store, settings.data_dir)
    tokens = TokenService(store, keys, settings.audience, clock)
    ingest_keys = IngestKeyService(store, clock)
    writer = EventWriter(store, clock, max_event_bytes=settings.ingest_max_event_bytes)
    audit = AuditRecorder(store, writer, clock, __version__)
    people = PeopleService(store, audit, clock)
    lifecycle = TokenLifecycle(store, tokens, people, audit, clock)
    retention = RetentionService(settings, store, people, audit, clock)
    api_keys = ApiKeyService(store, clock)
    sessions = SessionService(store, clock)
    limiter = SignInLimiter(settings.redis_url)
    personal = PersonalService(store, api_keys, people, audit, limiter, clock)
    log_keys = LogKeys(settings)
    return Services(
        settings=settings,
        store=store,
        clock=clock,
        keys=keys,
        tokens=tokens,
        ingest_keys=ingest_keys,
        rate_limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_per_hour, settings.redis_url),
        quotas=IngestQuotas(
            store,
            per_minute=settings.ingest_quota_per_minute,
            max_stored=settings.stored_events_quota,
            redis_url=settings.redis_url,
            stored_retry_seconds=settings.retention_interval_seconds,
        ),
        reader=PageReader(store, keys.cursor_key, settings.retention_days, clock, retention.retention_ns),
        writer=writer,
        usage=UsageRecorder(store),
        audit=audit,
        people=people,
        lifecycle=lifecycle,
        integrations=IntegrationService(store, people, lifecycle, audit, clock, settings.address),
        ingest_key_admin=IngestKeyAdmin(store, ingest_keys, people, audit),
        api_keys=api_keys,
        sessions=sessions,
        invitations=InvitationService(store, people, audit, clock),
        personal=personal,
        signin=SignInFlow(store, sessions, limiter, personal, audit),
        alerts=AlertService(settings, store, people, audit, writer, clock),
        retention=retention,
        log_keys=log_keys,
        tlog=LogService(settings, store, clock, log_keys),
        offboarding=AccountDeletion(store, people, settings.archive_path, clock),
    )
