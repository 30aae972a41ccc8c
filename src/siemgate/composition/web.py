"""The composition root's web app: create_app(services) mounts the Events API, the ingest API, the
admin API, the service endpoints and the console side by side around one Services, installs the
middleware that guards them all, and runs the process's background jobs (docs/architecture.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from siemgate import __version__
from siemgate.alerts.evaluator import RECORD_CHECK_SECONDS
from siemgate.api.admin import alert_routes, event_routes, integration_routes, me_routes, people_routes
from siemgate.api.admin.slots import AccountSlots, heavy_reads_total
from siemgate.api.errors import install_error_handlers
from siemgate.api.events_routes import events_router
from siemgate.api.guard import RequestGuard
from siemgate.api.ingest_routes import ingest_router
from siemgate.api.meta_routes import meta_router
from siemgate.api.metrics import IntegrityCollector, Metrics, MetricsAccess
from siemgate.api.middleware import NoStoreMiddleware, ReplyHeadersMiddleware, RequestLogMiddleware
from siemgate.api.openapi import install_openapi
from siemgate.api.proof_routes import proof_router
from siemgate.auth.passwords import warm_up
from siemgate.console.routes import mount_console
from siemgate.integrity.service import WORKER_SECONDS
from siemgate.services import Services

log = logging.getLogger("siemgate.server")
USAGE_FLUSH_SECONDS = 2.0
LIFECYCLE_SECONDS = 60.0
TURN_WAIT_SECONDS = 10.0  # how long an account's ingest or Events API request waits for its turn, then 429
RETENTION_STOP_SECONDS = 30.0  # how long a stopping server waits for a retention run to end its day

DESCRIPTION = """\
siemgate serves account activity (sign-in attempts, item usages, audit events) to SIEMs through an
API that is wire-compatible with the 1Password Events API: point any 1Password SIEM connector at
this server with a siemgate token. Producers add events through the ingest API with an ingest key.
"""


def create_app(services: Services, *, close_on_shutdown: bool = False) -> FastAPI:
    """Build the app around `services`; the caller owns and closes them, unless
    `close_on_shutdown` (worker processes started by uvicorn, which own nothing else)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            # the dummy hash for unknown addresses, made off the start-up path
            asyncio.create_task(asyncio.to_thread(warm_up)),
            # account deletions a killed server left under way (accounts/offboarding.py)
            asyncio.create_task(_once(services.finish_account_deletions, "finish the account deletions left")),
            asyncio.create_task(_every(USAGE_FLUSH_SECONDS, services.usage.flush, "record credential use")),
            asyncio.create_task(_every(LIFECYCLE_SECONDS, services.lifecycle.run_due, "apply token lifecycle")),
            asyncio.create_task(_every(WORKER_SECONDS, services.tlog.run, "integrate and sign the event logs")),
        ]
        if services.settings.alerts_enabled:
            tasks += alert_tasks(services)
        tasks.append(  # at start too: a server restarted more often than the interval still applies it
            asyncio.create_task(
                _every(
                    services.settings.retention_interval_seconds,
                    services.retention.apply_shared,
                    "apply retention",
                    first=True,
                )
            )
        )
        try:
            yield
        finally:
            services.alerts.stop()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # A retention run goes on in its thread: one of a long backlog ends after its current
            # day, before the store closes, instead of holding the process's exit for hours.
            if not await asyncio.to_thread(services.retention.stop, RETENTION_STOP_SECONDS):
                log.warning("retention still running after %s s; stopping without it", RETENTION_STOP_SECONDS)
            await asyncio.to_thread(services.usage.flush)
            if close_on_shutdown:
                services.close()

    app = FastAPI(
        title="siemgate",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    settings = services.settings
    app.state.query_slots = AccountSlots(
        settings.admin_queries_per_account, heavy_reads_total(settings.database_pool_size)
    )
    app.state.ingest_slots = _turns(
        settings.ingest_requests_per_account, "ingest requests", "ingest_requests_per_account"
    )
    app.state.page_slots = _turns(settings.events_pages_per_account, "Events API requests", "events_pages_per_account")
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(IntegrityCollector(services.tlog))
    app.state.metrics_access = MetricsAccess.from_file(services.settings.metrics_token_file)
    install_error_handlers(app)
    app.include_router(events_router(services))
    app.include_router(proof_router(services))
    app.include_router(ingest_router())
    app.include_router(meta_router())
    app.include_router(me_routes.router)
    app.include_router(people_routes.router)
    app.include_router(integration_routes.router)
    app.include_router(alert_routes.router)
    mount_console(app)
    app.include_router(event_routes.router)
    app.add_middleware(RequestGuard, settings=services.settings)
    app.add_middleware(NoStoreMiddleware, prefix="/api/admin/")
    app.add_middleware(ReplyHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware, metrics=app.state.metrics)  # outermost: logs the guard's replies too

    install_openapi(app)
    return app


def _turns(per_account: int, what: str, setting: str) -> AccountSlots:
    """Turns of one account's requests of a kind (`what`, bounded by `setting`), with no bound over
    all accounts; a request waits TURN_WAIT_SECONDS at most for its turn."""
    return AccountSlots(per_account, None, TURN_WAIT_SECONDS, what=what, setting=setting)


def alert_tasks(services: Services) -> list[asyncio.Task[None]]:
    """Background jobs of alerting: catch-up and scheduled rules, and carrying out actions (woken
    as soon as new deliveries are committed or a delivery ends, else every alerts_dispatch_seconds;
    the deliveries run concurrently in the dispatcher's own threads), and recording alerts as
    events once they waited RECORD_SECONDS."""
    settings, alerts = services.settings, services.alerts

    def scheduled() -> None:
        alerts.evaluator.catch_up()
        alerts.evaluator.check_tokens()
        alerts.evaluator.check_integrity()

    evaluator, pump_at = alerts.evaluator, [0.0]  # the monotonic time of the next tick

    def dispatch() -> None:
        # Woken every RECORD_CHECK_SECONDS too, so that alerts waiting to be recorded as events are
        # written once they waited RECORD_SECONDS, however long alerts_dispatch_seconds is.
        kicked = evaluator.kick.wait(max(0.0, min(RECORD_CHECK_SECONDS, pump_at[0] - time.monotonic())))
        evaluator.kick.clear()
        if alerts.stopped.is_set():
            return
        tick = kicked or time.monotonic() >= pump_at[0] - 0.001
        evaluator.record_pending(force=tick)  # at a tick, every alert waiting to be recorded, together
        if tick:
            pump_at[0] = time.monotonic() + settings.alerts_dispatch_seconds
            alerts.dispatcher.pump()  # starts what fits and returns; a finished delivery wakes it again

    return [
        asyncio.create_task(_every(settings.alerts_check_seconds, scheduled, "check alert rules", first=True)),
        asyncio.create_task(_every(0, dispatch, "carry out alert actions")),
    ]


async def _once(job: Callable[[], object], what: str) -> None:
    """Run a blocking job in a thread once; a failure is logged."""
    try:
        await asyncio.to_thread(job)
    except Exception:
        log.exception("could not %s", what)


async def _every(seconds: float, job: Callable[[], object], what: str, *, first: bool = False) -> None:
    """Run a blocking job in a thread every `seconds` (`first`: also at once); failures are logged
    and retried."""
    while True:
        if not first:
            await asyncio.sleep(seconds)
        first = False
        try:
            await asyncio.to_thread(job)
        except Exception:
            log.exception("could not %s; will retry", what)
