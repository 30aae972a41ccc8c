"""What the server's own outputs tell someone who is not its operator (docs/security.md, "Who is
who"). `/metrics` names every account (the log's per-stream metrics are labelled with the account's
uuid: docs/integrity.md, "Watching the log") and counts the whole server's requests and events, so
read over time it shows which tenants exist and when and how much each works. Before, it answered
anyone who reached the server: now only a scrape from the machine itself, not relayed by a proxy,
or one bearing the secret of `metrics_token_file`. Real servers on 127.0.0.1; a remote client is a
request relayed by a trusted proxy (X-Forwarded-For), as the server sees one."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Store
from support.events import auditevent
from support.servers import LiveServer, bearer, running_server
from support.stores import STORE_BACKENDS

SECRET = "metrics-secret-0123456789"
REMOTE = {"X-Forwarded-For": "203.0.113.7"}


def _busy(server: LiveServer) -> None:
    """Another tenant at work: what the metrics would count."""
    key = server.ingest_key(server.account())
    assert server.ingest(key, Feature.AUDITEVENTS, [auditevent(server.clock())]).status_code == 200


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "siemgate_" not in response.text
    assert "operator" in response.json()["Error"]["Message"]


def test_metrics_answer_the_operator_only(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(SECRET + "\n")
    with running_server(tmp_path / "data", trusted_proxies=["127.0.0.1"], metrics_token_file=token_file) as server:
        _busy(server)
        # a client elsewhere, relayed by the trusted proxy: refused, with or without a wrong secret
        _refused(server.http.get("/metrics", headers=REMOTE))
        _refused(server.http.get("/metrics", headers={**REMOTE, **bearer(SECRET + "x")}))
        _refused(server.http.get("/metrics", headers={**REMOTE, **{"Authorization": "Basic " + SECRET}}))
        # Prometheus elsewhere with the secret, and a scrape from this machine
        for headers in ({**REMOTE, **bearer(SECRET)}, {}):
            response = server.http.get("/metrics", headers=headers)
            assert response.status_code == 200, response.text
            assert 'route="/api/ingest/v2/{feature}"' in response.text


def test_a_relayed_request_is_not_taken_for_a_local_scrape(tmp_path: Path) -> None:
    """A reverse proxy on this machine left out of trusted_proxies: every request comes from
    loopback, but one it relays says so, and is refused (there is no metrics token here)."""
    with running_server(tmp_path) as server:
        _busy(server)
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            _refused(server.http.get("/metrics", headers={header: "for=203.0.113.7"}))
        assert server.http.get("/metrics").status_code == 200


def test_the_refusal_says_only_a_loopback_scrape_needs_nothing(tmp_path: Path) -> None:
    """Prometheus on the server's machine scraping its network address (siemgate listening on
    0.0.0.0) is not a loopback peer and is refused: the refusal told it to scrape "from this
    machine", which it was doing. It now names the loopback addresses."""
    with running_server(tmp_path, trusted_proxies=["127.0.0.1"]) as server:
        response = server.http.get("/metrics", headers=REMOTE)
        _refused(response)
        message = response.json()["Error"]["Message"]
        assert "127.0.0.1" in message and "::1" in message, message
        assert "from this machine" not in message, message


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_healthz_reads_no_more_with_more_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """/healthz, which anyone may ask, read every account to check the store: 0.92 ms (median of
    200) with no account, 8.54 ms with 5,000 (SQLite), so an outsider could estimate how many
    tenants the server has, and make it do work that grows with them at no cost. Now it reads
    one row: no store call it makes returns more than one item, however many accounts there are."""
    with running_server(tmp_path, backend, alerts_enabled=False, retention_interval_seconds=86400) as server:
        for n in range(50):
            server.store.create_account(new_id(), f"tenant-{n}-{new_id()[:6]}", server.clock())
        sizes = _result_sizes(monkeypatch, server.store)
        for _ in range(3):
            assert server.http.get("/healthz").json()["status"] == "ok"
        assert sizes and max(sizes) <= 1, sizes


def _result_sizes(monkeypatch: pytest.MonkeyPatch, store: Store) -> list[int]:
    """The sizes of what the store's public methods return from now on (1 for anything not a list)."""
    sizes: list[int] = []
    for name in dir(store):
        method = getattr(store, name)
        if name.startswith("_") or not inspect.ismethod(method):
            continue

        def call(*args: Any, __method: Callable[..., Any] = method, **kwargs: Any) -> Any:
            result = __method(*args, **kwargs)
            sizes.append(len(result) if isinstance(result, list) else 1)
            return result

        monkeypatch.setattr(store, name, call)
    return sizes
