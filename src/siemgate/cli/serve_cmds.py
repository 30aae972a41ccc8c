"""`siemgate serve`: run the HTTP server."""

from __future__ import annotations

import gc
import logging
import os
import socket
import ssl
from typing import TYPE_CHECKING, Any

import typer

from siemgate.cli.common import state
from siemgate.cli.listen import bind
from siemgate.errors import ConfigError
from siemgate.logs import configure_logging
from siemgate.services import Services

if TYPE_CHECKING:
    from siemgate.config import Settings

log = logging.getLogger("siemgate.server")
GRACEFUL_SECONDS = 30


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises the signal that stopped it after a graceful shutdown, which kills the
        process before our own clean-up runs; a stop on SIGTERM/SIGINT is a normal exit here."""

        def handle_exit(self, sig: int, frame: object) -> None:
            super().handle_exit(sig, frame)  # type: ignore[arg-type]
            self._captured_signals.clear()

    return Server


def tune_gc() -> None:
    """Garbage collection for a server process, called once its app is built (docs/benchmarks.md,
    "Ingest"): what exists by then (modules, the app, its services) lives as long as the process,
    so it is frozen out of every later collection; and the youngest generation is collected after
    50,000 net new objects instead of 700, so that the dicts of a 1000-event batch are freed by
    reference counting before a collection walks them. Together they took the collector from about
    9 µs to under 1 µs per ingested event."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def run_server(services: Services, settings: Settings, sock: socket.socket | None = None) -> None:
    """Serve until SIGTERM/SIGINT on `sock` (default: one bound here to settings.host:port, so a busy
    port is a ConfigError); in-flight requests finish, then usage is flushed."""
    import uvicorn  # the web stack is imported only by the commands that serve

    from siemgate.composition.web import create_app

    sock = sock or bind(settings.host, settings.port)
    app = create_app(services)
    tune_gc()
    config = uvicorn.Config(app, **uvicorn_options(settings))
    try:
        _server_class()(config).run(sockets=[sock])
    finally:
        sock.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves, from the settings (one worker or several alike)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "ssl_certfile": str(settings.tls_certfile) if settings.tls_certfile else None,
        "ssl_keyfile": str(settings.tls_keyfile) if settings.tls_keyfile else None,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        # idle connections stay open as long as load balancers and connectors expect (not uvicorn's 5 s)
        "timeout_keep_alive": settings.http_keepalive_seconds,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": forwarded_allow_ips(settings),
    }


def check_tls(settings: Settings) -> None:
    """Load the TLS certificate and key as the server will, so that a missing, unreadable or
    mismatched file is a ConfigError naming the setting, before anything starts (uvicorn's own
    error is a traceback); a key without a certificate, which would serve plain HTTP, too."""
    cert, key = settings.tls_certfile, settings.tls_keyfile
    if cert is None:
        if key is not None:
            raise ConfigError("tls_keyfile is set but tls_certfile is not: set both to serve HTTPS, or neither")
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        files = f"tls_certfile {cert}" + (f" and tls_keyfile {key}" if key is not None else "")
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot load the TLS certificate from {files}: {why}; give a readable PEM certificate and its private"
            " key (in tls_certfile, or in tls_keyfile)"
        ) from None


def check_paths(settings: Settings) -> None:
    """The archive folder, the log's public key file and the metrics token file, checked before
    anything starts: a ConfigError naming the setting rather than a failure at the first retention
    run or proof, or in every worker."""
    from siemgate.api.metrics import MetricsAccess
    from siemgate.tlog.keys import KeyFileError, PublicKeyring

    MetricsAccess.from_file(settings.metrics_token_file)

    archives = settings.archive_path
    if archives.exists() and not archives.is_dir():
        raise ConfigError(f"archive_dir: {archives} is not a directory; name a directory (it is made when missing)")
    if settings.integrity_public_key_file is not None:
        try:
            PublicKeyring.load(settings.integrity_public_key_file)
        except KeyFileError as exc:
            raise ConfigError(f"integrity_public_key_file: {exc}") from None


def forwarded_allow_ips(settings: Settings) -> str:
    """X-Forwarded-For / -Proto are believed from `trusted_proxies` only, never by default
    (uvicorn's own default believes any client on 127.0.0.1; docs/security.md)."""
    return ",".join(settings.trusted_proxies)


def _say_address(configured: Settings, serving: Settings) -> None:
    """Log the public address; warn when --host/--port move the server away from it (the address
    tokens and guides name comes from the configuration, which `siemgate token issue` reads too)."""
    log.info("public address (tokens, console guides): %s", configured.base_url)
    if configured.address_configured or (serving.host, serving.port) == (configured.host, configured.port):
        return
    log.warning(
        "serving on %s:%s, but tokens and connection guides name %s (SIEMGATE_HOST/SIEMGATE_PORT):"
        " set SIEMGATE_PUBLIC_URL to the address SIEMs reach this server by",
        serving.host,
        serving.port,
        configured.base_url,
    )


def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        None, "--host", help="Address to listen on (default 127.0.0.1); SIEMs are told SIEMGATE_PUBLIC_URL."
    ),
    port: int = typer.Option(None, "--port", "-p", min=1, max=65535, help="Port to listen on (default 8080)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Server processes sharing the store."),
) -> None:
    """Serve the Events API, the ingest API, the admin API and the web console (/console)."""
    from siemgate.auth.ratelimit import check_redis
    from siemgate.composition.wiring import open_services

    configured = state(ctx).settings()
    # --host/--port choose where to listen; the public address stays the configured one
    settings = configured.model_copy(
        update={"host": host or configured.host, "port": port or configured.port, "public_url": configured.base_url}
    )
    configure_logging(settings.log_level, settings.log_format)
    _say_address(configured, settings)
    check_redis(settings.redis_url)  # a clear error now rather than a 500 on every request
    check_tls(settings)
    check_paths(settings)
    if workers == 1:
        sock = bind(settings.host, settings.port)  # a busy port is said at once, before migrations
        services = open_services(settings)
        try:
            log.info("serving on %s:%s (data in %s)", settings.host, settings.port, settings.data_dir.resolve())
            scheme = "https" if settings.tls_certfile else "http"
            log.info("web console: %s://%s:%s/console", scheme, settings.host, settings.port)
            run_server(services, settings, sock)
        finally:
            services.close()
            sock.close()
        return
    import uvicorn

    if not settings.redis_url:
        log.warning(
            "serving with %d workers without redis_url: each worker counts failed sign-ins, two-factor codes,"
            " rate limits and ingest quotas on its own, so each of those limits is %d times as loose;"
            " set SIEMGATE_REDIS_URL to share them (docs/scaling.md)",
            workers,
            workers,
        )
    open_services(settings).close()  # create keys and migrate once, before the workers start
    os.environ["SIEMGATE_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["SIEMGATE_HOST"] = settings.host
    os.environ["SIEMGATE_PORT"] = str(settings.port)
    os.environ["SIEMGATE_PUBLIC_URL"] = settings.base_url
    os.environ.pop("SIEMGATE_PUBLIC_HOST", None)
    # Every worker opens the same store and shares rate limits through the same Redis.
    os.environ["SIEMGATE_DATABASE_URL"] = settings.store_url
    if settings.redis_url:
        os.environ["SIEMGATE_REDIS_URL"] = settings.redis_url
    uvicorn.run("siemgate.cli.asgi:create", factory=True, workers=workers, **uvicorn_options(settings))
