"""The composition root's wiring: build the services around the store (opened by
siemgate.composition.stores) and wire them to each other (docs/architecture.md). The web app is
put together in siemgate.composition.web.
"""

from __future__ import annotations

import secrets
import time

from siemgate import __version__
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
from siemgate.auth.signin_limits import SIGNIN_LIMIT_KEY, SignInLimiter
from siemgate.auth.tokens import TokenService
from siemgate.auth.usage import UsageRecorder
from siemgate.composition.stores import open_data_store
from siemgate.config import Settings
from siemgate.integrity.health import integrity_records
from siemgate.integrity.keys import LogKeys
from siemgate.integrity.proofs import ProofService
from siemgate.integrity.service import LogService
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.retention.service import RetentionService
from siemgate.services import Clock, Services
from siemgate.store.base import Store
from siemgate.store.ingest import EventWriter


def open_services(settings: Settings) -> Services:
    """Store plus every service, ready to use; close with `services.close()`."""
    return build_services(settings, open_data_store(settings))


def build_services(settings: Settings, store: Store, clock: Clock = time.time_ns) -> Services:
    """Wire the services around an already-migrated store: every service is made here, and every
    hook from one service into another is set here."""
    keys = KeyRing(store, settings.data_dir)
    tokens = TokenService(store, keys, settings.audience, clock)
    ingest_keys = IngestKeyService(store, clock)
    writer = EventWriter(store, clock, max_event_bytes=settings.ingest_max_event_bytes)
    audit = AuditRecorder(store, writer, clock, __version__)
    people = PeopleService(store, audit, clock)
    lifecycle = TokenLifecycle(store, tokens, people, audit, clock)
    tokens.on_authenticated = lifecycle.replacement_used
    retention = RetentionService(settings, store, people, audit, clock)
    api_keys = ApiKeyService(store, clock)
    sessions = SessionService(
        store,
        clock,
        lifetime_ns=settings.console_session_hours * 3600 * NS_PER_SECOND,
        idle_ns=settings.console_idle_minutes * 60 * NS_PER_SECOND,
        public_https=settings.address.scheme == "https",
    )
    limiter = SignInLimiter(store.secret(SIGNIN_LIMIT_KEY, secrets.token_bytes(32), clock()), settings.redis_url)
    personal = PersonalService(store, api_keys, people, audit, limiter, clock)
    log_keys = LogKeys(settings)
    tlog = LogService(settings, store, clock, log_keys)
    alerts = AlertService(settings, store, people, audit, writer, clock)
    alerts.evaluator.integrity_records = lambda account_id, now: integrity_records(tlog, account_id, now)
    return Services(
        settings=settings,
        store=store,
        clock=clock,
        keys=keys,
        tokens=tokens,
        ingest_keys=ingest_keys,
        rate_limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_per_hour, settings.redis_url),
        account_rate_limiter=RateLimiter(
            settings.account_rate_limit_per_minute,
            settings.account_rate_limit_per_minute * 60,
            settings.redis_url,
            "events-account",
        ),
        admin_rate_limiter=RateLimiter(
            settings.admin_rate_limit_per_minute, settings.admin_rate_limit_per_hour, settings.redis_url, "admin"
        ),
        quotas=IngestQuotas(
            store,
            per_minute=settings.ingest_quota_per_minute,
            max_stored=settings.stored_events_quota,
            redis_url=settings.redis_url,
            stored_retry_seconds=settings.retention_interval_seconds,
        ),
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
        alerts=alerts,
        retention=retention,
        log_keys=log_keys,
        tlog=tlog,
        proofs=ProofService(store, tlog, clock, retention.retention_ns),
        offboarding=AccountDeletion(store, people, settings.archive_path, clock),
    )
