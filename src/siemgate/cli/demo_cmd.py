"""`siemgate demo`: a fresh store with 30 days of activity, a token, and a running server."""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from siemgate.accounts.actor import CLI
from siemgate.cli.common import CliState, state
from siemgate.cli.listen import bind, when_answering
from siemgate.cli.output import err
from siemgate.cli.serve_cmds import run_server
from siemgate.errors import ConfigError
from siemgate.logs import configure_logging
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id

if TYPE_CHECKING:
    from siemgate.config import Settings

DEMO_DIR = Path("siemgate-demo")
DEMO_OWNER = "owner@example.com"


MARKER = ".siemgate-demo"


def _fresh(data_dir: Path) -> None:
    """Empty the demo data dir. Only a folder an earlier demo made (it holds a marker file), or an
    empty one, is ever deleted; anything else is refused."""
    if data_dir.exists():
        if not data_dir.is_dir():
            raise ConfigError(f"{data_dir} is not a folder; choose another with --data-dir")
        if any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
            raise ConfigError(
                f"{data_dir} is not empty and was not made by `siemgate demo`; it is left alone."
                " Choose another folder with --data-dir"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("made by `siemgate demo`; the next demo run empties this folder\n")


def _instructions(base: str, token: str, ingest_key: str, start: str, password: str, days: int) -> str:
    auth = "Authorization: Bearer $SIEMGATE_TOKEN"
    history = f"All {days} day{'s' if days != 1 else ''}"
    return f"""
siemgate demo is running at {base}

Web console: {base}/console   sign in as {DEMO_OWNER} with password {password}

  export SIEMGATE_TOKEN='{token}'
  export SIEMGATE_INGEST_KEY='{ingest_key}'

Who is this token?
  curl -s {base}/api/v2/auth/introspect -H "{auth}"

The last hour of sign-in attempts, 5 per page (live activity keeps arriving, at the history's pace):
  curl -s -X POST {base}/api/v2/signinattempts -H "{auth}" -d '{{"limit": 5}}'

{history} of item usages, 1000 per page; then send the returned cursor to get the next page:
  curl -s -X POST {base}/api/v2/itemusages -H "{auth}" -d '{{"limit": 1000, "start_time": "{start}"}}'
  curl -s -X POST {base}/api/v2/itemusages -H "{auth}" -d '{{"cursor": "<cursor from the previous reply>"}}'

Audit events (v1 shape, as older connectors read them):
  curl -s -X POST {base}/api/v1/auditevents -H "{auth}" -d '{{"limit": 5}}'

Add your own events with the ingest key:
  curl -s -X POST {base}/api/ingest/v2/auditevents -H "Authorization: Bearer $SIEMGATE_INGEST_KEY" \\
       --data-binary '[{{"action": "suspend", "object_type": "user"}}]'

The API description: {base}/openapi.json    Stop with Ctrl-C.
"""


# Settings of a real deployment the demo never uses: it has its own store, serves plain HTTP on
# 127.0.0.1 and shares nothing (rate limits, archives, the log signer) with anything configured.
_IGNORED = (
    "database_url",
    "redis_url",
    "public_host",
    "public_url",
    "tls_certfile",
    "tls_keyfile",
    "archive_dir",
    "integrity_signer_url",
    "integrity_signer_secret_file",
    "integrity_public_key_file",
)


def demo_settings(cli: CliState, data_dir: Path, port: int) -> Settings:
    """The demo's settings: whatever is configured, except that the store is SQLite in `data_dir` and
    nothing in `_IGNORED` applies; says on stderr which configured settings are ignored."""
    configured = cli.settings(data_dir=data_dir, host="127.0.0.1", port=port)
    ignored = [name for name in _IGNORED if getattr(configured, name) is not None]
    if ignored:
        names = ", ".join(f"SIEMGATE_{name.upper()}" for name in ignored)
        err.print(f"the demo ignores {names}: it uses its own store in {data_dir.resolve()} and serves plain HTTP")
    return configured.model_copy(update=dict.fromkeys(_IGNORED))


def demo(
    ctx: typer.Context,
    port: int = typer.Option(8080, "--port", "-p", min=1, max=65535, help="Port to serve on (127.0.0.1)."),
    users: int = typer.Option(200, "--users", min=1, help="People in the simulated organisation."),
    days: int = typer.Option(30, "--days", min=1, help="Days of history."),
    seed: int = typer.Option(1, "--seed", help="Simulation seed."),
    rate: float = typer.Option(
        None, "--rate", min=0.0, help="Live actions per second while serving (default: the history's rhythm; 0: none)."
    ),
) -> None:
    """Fresh data dir, an account, 30 days of activity (--days), a token; then serve with live activity.

    The port is taken first (a busy port fails at once, exit code 2); the instructions are printed
    once the server answers. The demo always uses its own store, whatever SIEMGATE_DATABASE_URL says."""
    from siemgate.composition.wiring import open_services
    from siemgate.simulate.runner import run_live, simulate_history
    from siemgate.simulate.world import build_world

    cli = state(ctx)
    sock = bind("127.0.0.1", port, hint="--port (make demo PORT=...)")
    try:
        data_dir = cli.data_dir or DEMO_DIR
        settings = demo_settings(cli, data_dir, port)
        _fresh(data_dir)
        configure_logging("warning", "text")
        services = open_services(settings)
        try:
            now = time.time_ns()
            password = secrets.token_urlsafe(12)
            account, _ = services.people.create_account(CLI, "Demo Org", DEMO_OWNER, "Demo Owner", password)
            world = build_world(account.uuid, account.name, users, seed)
            err.print(f"simulating {days} days of activity for {users} people in {data_dir.resolve()} ...")
            simulate_history(services.writer, account.id, world, days=days, end_ns=now, seed=seed, console=err)
            integration = services.store.create_integration(account.id, new_id(), "other", "Demo SIEM", "", now)
            token, _ = services.tokens.issue(account, integration, "demo", ALL_FEATURES, None)
            ingest_key, _ = services.ingest_keys.create(account, "demo producer", ALL_FEATURES)
            start = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(now / 1e9 - days * 86400))
            text = _instructions(settings.base_url, token, ingest_key, start, password, days)
            stop = threading.Event()
            live = None
            if rate is None or rate > 0:
                live = threading.Thread(
                    target=run_live,
                    args=(services.writer, account.id, world),
                    kwargs={"seed": seed + 1, "rate": rate or None, "stop": stop},
                    daemon=True,
                )
                live.start()
            when_answering(f"{settings.base_url}/healthz", lambda: print(text, flush=True), stop)
            try:
                run_server(services, settings, sock)
            finally:
                stop.set()
                if live is not None:
                    live.join(timeout=10)
        finally:
            services.close()
    finally:
        sock.close()
