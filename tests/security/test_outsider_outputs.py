"""What the server's own outputs tell someone who is not its operator (docs/security.md, "Who is
who"). `/metrics` names every account (the log's per-stream metrics are labelled with the account's
uuid: docs/integrity.md, "Watching the log") and counts the whole server's requests and events, so
read over time it shows which tenants exist and when and how much each works. Before, it answered
anyone who reached the server: now only a scrape from the machine itself, not relayed by a proxy,
or one bearing the secret of `metrics_token_file`. Real servers on 127.0.0.1; a remote client is a
request relayed by a trusted proxy (X-Forwarded-For), as the server sees one."""

from __future__ import annotations

from pathlib import Path

import httpx

from siemgate.model.features import Feature
from support.events import auditevent
from support.servers import LiveServer, bearer, running_server

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
