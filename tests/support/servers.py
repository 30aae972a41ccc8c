"""A real siemgate server: uvicorn on 127.0.0.1 in a thread, real HTTP, helpers that set up
accounts and credentials directly in its services."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI
from uvicorn.config import HTTPProtocolType

from siemgate.cli.serve_cmds import forwarded_allow_ips
from siemgate.composition.web import create_app
from siemgate.composition.wiring import build_services
from siemgate.config import Settings, load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.services import Services
from siemgate.store.base import Account, Store

from .clocks import Clock
from .ports import free_port
from .stores import make_store


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    """A running server plus helpers that set up accounts and credentials directly."""

    def __init__(
        self,
        services: Services,
        clock: Clock,
        base_url: str,
        app: FastAPI | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.app = app  # the ASGI app served (start_server's)
        self.services = services
        self.store = services.store
        self.clock = clock
        self.base_url = base_url
        self.verify = verify  # for https: trusts the CA that signed the server's certificate
        self.http = httpx.Client(base_url=base_url, timeout=30, verify=verify)

    def account(self, name: str | None = None) -> Account:
        return self.store.create_account(new_id(), name or f"acct-{new_id()[:6]}", self.clock())

    def token(
        self,
        account: Account,
        features: Sequence[Feature] = ALL_FEATURES,
        *,
        expires_in_s: float | None = None,
        name: str = "test token",
    ) -> str:
        integration = self.store.create_integration(account.id, new_id(), "other", f"int-{new_id()[:8]}", "", 0)
        expires = None if expires_in_s is None else int(expires_in_s * 1_000_000_000)
        token, _ = self.services.tokens.issue(account, integration, name, list(features), expires)
        return token

    def ingest_key(self, account: Account, features: Sequence[Feature] = ALL_FEATURES) -> str:
        key, _ = self.services.ingest_keys.create(account, "test producer", list(features))
        return key

    def ingest(self, key: str, feature: Feature | str, events: Any, **kwargs: Any) -> httpx.Response:
        name = feature.value if isinstance(feature, Feature) else feature
        if isinstance(events, bytes | str):
            return self.http.post(f"/api/ingest/v2/{name}", content=events, headers=bearer(key), **kwargs)
        return self.http.post(f"/api/ingest/v2/{name}", json=events, headers=bearer(key), **kwargs)

    def page(
        self,
        token: str,
        feature: Feature | str,
        body: Any = None,
        *,
        version: int = 2,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        name = feature.value if isinstance(feature, Feature) else feature
        all_headers = {**bearer(token), **(headers or {})}
        content = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
        return self.http.post(f"/api/v{version}/{name}", content=content, headers=all_headers)

    def drain(self, token: str, feature: Feature, cursor: str, *, version: int = 2) -> tuple[list[dict[str, Any]], str]:
        """Follow the cursor until has_more is false; returns (items, last cursor)."""
        items: list[dict[str, Any]] = []
        while True:
            response = self.page(token, feature, {"cursor": cursor}, version=version)
            assert response.status_code == 200, response.text
            data = response.json()
            items.extend(data["items"])
            cursor = data["cursor"]
            if not data["has_more"]:
                return items, cursor


def start_server(
    settings: Settings, store: Store, clock: Clock, *, ca: Path | None = None, http: HTTPProtocolType = "auto"
) -> tuple[LiveServer, uvicorn.Server, threading.Thread]:
    """Services on `store` served on a free port (over https with the settings' tls_certfile, whose
    CA is `ca`; with uvicorn's HTTP parser `http`: auto, httptools or h11); returns once uvicorn has
    started."""
    services = build_services(settings, store, clock)
    port = free_port()
    app = create_app(services)
    tls: dict[str, Any] = {}
    if settings.tls_certfile is not None:
        tls = {"ssl_certfile": str(settings.tls_certfile), "ssl_keyfile": str(settings.tls_keyfile)}
    # X-Forwarded-* believed as `siemgate serve` does: from trusted_proxies only (uvicorn's default
    # believes loopback, which every test client is)
    proxies: dict[str, Any] = {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": forwarded_allow_ips(settings),
    }
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=http, log_config=None, access_log=False, **proxies, **tls
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    scheme = "https" if tls else "http"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca is not None else True
    return LiveServer(services, clock, f"{scheme}://127.0.0.1:{port}", app, verify), server, thread


def stop_server(live: LiveServer, server: uvicorn.Server, thread: threading.Thread) -> None:
    """Stop what start_server started and close its services."""
    live.http.close()
    server.should_exit = True
    thread.join(timeout=10)
    live.services.close()


@contextlib.contextmanager
def running_server(data_dir: Path, backend: str = "sqlite", **overrides: Any) -> Iterator[LiveServer]:
    """A live server on a fresh store of `backend` in `data_dir`, with settings `overrides`; stopped
    on exit (for a module's server; tests that move the clock use the make_server fixture)."""
    live, server, thread = start_server(
        load_settings(data_dir=data_dir, **overrides), make_store(backend, data_dir), Clock()
    )
    try:
        yield live
    finally:
        stop_server(live, server, thread)
